"""Paired ``.ipynb`` for every jupytext ``.py`` notebook (what Colab opens).

The ``.py`` is the source that is reviewed and edited; the ``.ipynb`` beside
it is derived, carries no outputs and no jupytext bookkeeping, and has
stable cell ids, so regenerating it changes nothing unless the source did.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import nbformat

from .runner import notebooks, read_source

KERNELSPEC = {"display_name": "Python 3", "language": "python", "name": "python3"}


def render_ipynb(src: Path) -> str:
    """The paired notebook's exact text for ``src``."""
    nb = read_source(src)
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
        meta = {k: v for k, v in cell.metadata.items() if k == "tags"}
        cell.metadata = meta
    nb.nbformat, nb.nbformat_minor = 4, 5
    nbformat.validate(nb)
    return nbformat.writes(nb, version=4) + "\n"


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
    from .results import atomic_write

    return [atomic_write(paired_path(src), text) for src, text in _stale(folder)]
