"""Where the book's parts live, which notebooks it has, and the Colab badge.

One module that the runner, the site and ``sync`` all read, so none of them
has to import another for a path or a constant.
"""
from __future__ import annotations

import re
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]
NOTEBOOK_DIR = REPO_ROOT / "notebooks"
# Where the book reads executed notebooks from (git-ignored, see _toc.yml).
EXECUTED_DIR = REPO_ROOT / "book" / "executed"
LIBRARY_DIR = REPO_ROOT / "sparsefuse"
GENERATED_DIR = REPO_ROOT / "book" / "_generated"
NODE_MODULES = REPO_ROOT / "node_modules"
VENDOR_DIR = REPO_ROOT / "build" / "vendor"

DEVICES = ("auto", "cpu", "cuda")

REPOSITORY = "sparsefuse/sparsefuse"
BRANCH = "main"
BADGE_URL = "https://colab.research.google.com/assets/colab-badge.svg"
LOCAL_BADGE = "../badges/colab-badge.svg"  # relative to book/executed/: the book loads nothing off-host
_BADGE_LINE = re.compile(r"^\[!\[Open In Colab\]\([^)]*\)\]\([^)]*\)\n*", re.MULTILINE)


def colab_url(stem: str) -> str:
    return f"https://colab.research.google.com/github/{REPOSITORY}/blob/{BRANCH}/notebooks/{stem}.ipynb"


def badge(stem: str) -> str:
    """The Open-in-Colab badge of one notebook, as markdown."""
    return f"[![Open In Colab]({BADGE_URL})]({colab_url(stem)})"


def without_badge(markdown: str) -> str:
    """``markdown`` less any Colab badge line (the badge is generated, not written by hand)."""
    return _BADGE_LINE.sub("", markdown)


def localize_badge(text: str) -> str:
    return text.replace(BADGE_URL, LOCAL_BADGE)


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when torch sees a GPU, else ``cpu``; other names are checked, not probed."""
    if device not in DEVICES and not str(device).startswith("cuda:"):
        raise ValueError(f"device must be one of {DEVICES}, got {device!r}")
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def notebooks(folder: Path | None = None) -> list[Path]:
    """The book's notebook sources, in reading order."""
    return sorted(p for p in Path(folder or NOTEBOOK_DIR).glob("*.py") if not p.name.startswith("_"))


def resolve(names: list[str] | None, folder: Path | None = None) -> list[Path]:
    """Notebook paths from names: a path, a stem (``01_layer_microbenchmarks``) or its number (``01``)."""
    available = notebooks(folder)
    if not names:
        return available
    chosen = []
    for name in names:
        path = Path(name)
        if path.suffix == ".py" and path.exists():
            chosen.append(path.resolve())
            continue
        stem = path.stem if path.suffix in (".py", ".ipynb") else path.name
        hits = [p for p in available if p.stem == stem] or [p for p in available if p.stem.split("_")[0] == stem]
        if len(hits) != 1:
            raise ValueError(f"notebook {name!r} matches {len(hits)} of {[p.stem for p in available]}")
        chosen.append(hits[0])
    return chosen


def read_source(path: Path):
    """The jupytext ``.py`` as a NotebookNode (papermill cannot read jupytext files itself)."""
    import jupytext

    return jupytext.read(str(path), fmt="py:percent")


def parameters(path: Path) -> dict:
    """The defaults of the notebook's ``parameters`` cell, as papermill reads them."""
    import ast

    import papermill

    nb = read_source(path)
    nb.metadata.setdefault("kernelspec", {"name": "python3", "language": "python", "display_name": "Python 3"})
    found = papermill.inspect_notebook(nb)
    out = {}
    for name, spec in found.items():
        try:
            out[name] = ast.literal_eval(spec["default"])
        except (ValueError, SyntaxError):
            out[name] = spec["default"]
    return out
