"""The import graph of sparsefuse/ has no circle, and the library never imports the lab.

A circle means two modules that cannot be read, tested or moved apart; the lab
(``sparsefuse.lab``: experiments, models, data, the book's machinery) rests on the
library, never the other way, so a ``pip install`` user gets layers that do not
depend on it. Both are found here from the source with ``ast``, lazy imports inside
functions included, without importing anything.
"""
from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "sparsefuse"


def _modules(root: Path) -> dict[str, Path]:
    found = {}
    for path in root.rglob("*.py"):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def import_graph(root: Path = PACKAGE) -> dict[str, set[str]]:
    """Module -> the package modules it imports (``from pkg import sub`` points at ``pkg.sub``)."""
    modules = _modules(root)
    graph = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[:len(package.split(".")) - node.level + 1]
                    origin = ".".join(base + ([node.module] if node.module else []))
                else:
                    origin = node.module or ""
                targets.update(f"{origin}.{a.name}" if f"{origin}.{a.name}" in modules else origin
                               for a in node.names)
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one module (Tarjan)."""
    index, low, stack, on_stack, found, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


LAB = "sparsefuse.lab"


def lab_imports(graph: dict[str, set[str]], lab: str = LAB) -> dict[str, set[str]]:
    """Module outside ``lab`` -> the modules of ``lab`` it imports (only those that do)."""
    def inside(name):
        return name == lab or name.startswith(lab + ".")

    found = {m: {t for t in targets if inside(t)} for m, targets in graph.items() if not inside(m)}
    return {m: t for m, t in found.items() if t}


def test_sparsefuse_has_no_import_circle():
    graph = import_graph()
    assert "sparsefuse.lab.book.runner" in graph and "sparsefuse.lab.book.layout" in graph["sparsefuse.lab.book.runner"]
    assert circles(graph) == []


def test_the_library_does_not_import_the_lab():
    graph = import_graph()
    assert "sparsefuse.kan_linear" in graph and "sparsefuse.lab.experiments" in graph
    assert lab_imports(graph) == {}


def test_a_circle_is_found(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from . import b\n")
    (pkg / "b.py").write_text("def f():\n    from .sub import c\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "c.py").write_text("from ..a import thing\n")
    assert circles(import_graph(pkg)) == [["pkg.a", "pkg.b", "pkg.sub.c"]]


def test_a_library_module_importing_the_lab_is_found(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "lab" / "book").mkdir(parents=True)
    for init in (pkg, pkg / "lab", pkg / "lab" / "book"):
        (init / "__init__.py").write_text("")
    (pkg / "layer.py").write_text("import math\n")
    (pkg / "tools.py").write_text("def f():\n    from .lab.book import runner\n")
    (pkg / "lab" / "book" / "runner.py").write_text("from ...layer import thing\n")
    (pkg / "lab" / "models.py").write_text("from pkg import layer\nfrom . import book\n")
    assert lab_imports(import_graph(pkg), lab="pkg.lab") == {"pkg.tools": {"pkg.lab.book.runner"}}
