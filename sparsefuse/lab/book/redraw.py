"""Redraw a committed result's figure from its committed table with the current ``plot()``.

A figure is a view of the numbers: when a chapter's plot function changes (a clearer legend,
a sign convention), the committed GPU reference need not be measured again to show it. The
table is read back, the side tables saved beside it are attached as the notebook attached
them, the PNG/SVG are rewritten together with the sidecar, and the sidecar records who drew
the figure (``figure_redrawn``: commit and time) beside the unchanged measurement provenance.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

from . import results
from .atomic import atomic_write_many
from .contract import Plotted, experiment_modules
from .provenance import git_state


def plotter(name: str) -> Plotted:
    """The experiment module whose ``NAME`` is ``name`` and which can ``plot`` it."""
    for mod in experiment_modules():
        if mod.NAME == name and isinstance(mod, Plotted):
            return mod
    raise ValueError(f"name: no experiment module with NAME {name!r} has a plot()")


def redraw(name: str, root: Path | None = None) -> Path:
    """Rewrite the reference figure of ``name`` (under ``root``, default the reference root); returns its PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sparsefuse.lab.side_tables import attach_tables

    ref = results.reference(name, root)
    if ref is None:
        raise ValueError(f"name: no committed GPU result {name!r}")
    table = ref.table()
    side = {p.stem[len(name) + 1:]: p for p in ref.folder.glob(f"{name}_*.csv")}
    if side:
        import pandas as pd

        attach_tables(table, **{k: pd.read_csv(p) for k, p in side.items()})
    fig = plotter(name).plot(table)
    if fig is None:
        raise ValueError(f"name: {name}'s plot() drew nothing")
    commit, dirty = git_state()
    meta = dict(ref.meta)
    meta["figure_redrawn"] = {"commit": commit, "dirty": dirty,
                              "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                              "how": f"python -m sparsefuse.lab.book redraw {name}"}
    png = ref.folder / f"{name}.png"
    atomic_write_many({png: results.figure_bytes(fig, "png"), ref.folder / f"{name}.svg": results.figure_bytes(fig, "svg"),
                       ref.folder / f"{name}.json": json.dumps(results.jsonable(meta), indent=2, sort_keys=True) + "\n"})
    plt.close(fig)
    return png
