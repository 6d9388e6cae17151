"""Paired ``.ipynb`` for every jupytext ``.py`` notebook (what Colab opens).

The ``.py`` is the source that is reviewed and edited; the ``.ipynb`` beside
it is derived. As d2l generates its install cell, the parts that are the same
in every notebook are added here, not written in each source: the Open-in-Colab
badge under the title, and after the parameters the Colab cell (install, GPU
check, a profile chooser). The ``.ipynb`` carries no outputs and no jupytext
bookkeeping, and has stable cell ids, so regenerating it changes nothing unless
the source did.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import nbformat

from .. import profiles
from .atomic import atomic_write
from .layout import REPOSITORY, badge, notebooks, read_source, without_badge

# the profile menu of the Colab form
COLAB_CHOICES = ", ".join(f'"{name}"' for name in ("auto", *profiles.NAMES))
KERNELSPEC = {"display_name": "Python 3", "language": "python", "name": "python3"}
INSTALL = f"sparsefuse[colab] @ git+https://github.com/{REPOSITORY}"
COLAB_CELL = f'''\
# @title Colab: install SparseFuse, check the GPU, choose a profile {{ display-mode: "form" }}
colab_profile = "auto"  # @param [{COLAB_CHOICES}]
# auto: quick on a GPU runtime, smoke without one. Outside Colab this cell does nothing.
import sys

if "google.colab" in sys.modules:
    import subprocess

    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "{INSTALL}"], check=True)
    from sparsefuse.lab.book.notebook import choose_colab_profile

    profile = choose_colab_profile(colab_profile)
'''


def _with_badge(nb, stem: str) -> None:
    """Put the badge under the title of the first markdown cell (or in a cell of its own)."""
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            cell.source = without_badge(cell.source)
    first = nb.cells[0] if nb.cells else None
    if first is not None and first.cell_type == "markdown" and first.source.lstrip().startswith("# "):
        title, _, rest = first.source.lstrip().partition("\n")
        rest = rest.strip("\n")
        first.source = f"{title}\n\n{badge(stem)}" + (f"\n\n{rest}" if rest else "")
    else:
        nb.cells.insert(0, nbformat.v4.new_markdown_cell(badge(stem)))


def _with_colab_cell(nb) -> None:
    """The Colab cell right after the parameters cell, so the profile chosen there wins in Colab."""
    where = next((i + 1 for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])), 1)
    nb.cells.insert(where, nbformat.v4.new_code_cell(COLAB_CELL.rstrip("\n"), metadata={"tags": ["remove-cell"]}))


def render(src: Path):
    """The notebook Colab opens and the runner executes: the source plus badge and Colab cell."""
    nb = read_source(src)
    _with_badge(nb, Path(src).stem)
    _with_colab_cell(nb)
    nb.metadata = {
        "kernelspec": KERNELSPEC,
        "language_info": {"name": "python"},
        "accelerator": "GPU",  # Colab opens it on a GPU runtime
        "colab": {"provenance": []},
    }
    seen: dict[str, int] = {}
    for cell in nb.cells:
        digest = hashlib.sha1(f"{cell.cell_type}\n{cell.source}".encode()).hexdigest()[:8]
        seen[digest] = seen.get(digest, 0) + 1
        cell.id = digest if seen[digest] == 1 else f"{digest}-{seen[digest]}"
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        cell.metadata = {k: v for k, v in cell.metadata.items() if k == "tags"}
    nb.nbformat, nb.nbformat_minor = 4, 5
    nbformat.validate(nb)
    return nb


def render_ipynb(src: Path) -> str:
    """The paired notebook's exact text for ``src``."""
    return nbformat.writes(render(src), version=4) + "\n"


def paired_path(src: Path) -> Path:
    return Path(src).with_suffix(".ipynb")


def _stale(folder: Path | None = None) -> list[tuple[Path, str]]:
    """(source, rendered text) of every source whose paired ``.ipynb`` is missing or differs."""
    stale = []
    for src in notebooks(folder):
        dst, text = paired_path(src), render_ipynb(src)
        if not dst.exists() or dst.read_text() != text:
            stale.append((src, text))
    return stale


def out_of_sync(folder: Path | None = None) -> list[Path]:
    """Sources whose paired ``.ipynb`` is missing or differs."""
    return [src for src, _ in _stale(folder)]


def sync(folder: Path | None = None) -> list[Path]:
    """Rewrite every stale paired notebook (each rendered once); returns the ones written."""
    return [atomic_write(paired_path(src), text) for src, text in _stale(folder)]
