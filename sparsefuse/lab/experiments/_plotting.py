"""How the kernel chapters draw and tabulate: one colour per implementation, gaps named.

Every figure of the book reads the same way, and a point that did not run is
listed under the axes or shown by its status in a pivot, never left silent.
"""
from __future__ import annotations

from sparsefuse.status import OK

# One colour per implementation so every figure of the book reads the same way.
STYLE = {name: dict(color=color, marker=marker) for name, color, marker in [
    ("reference", "#7f7f7f", "s"), ("dense", "#1f77b4", "o"), ("sparse", "#2ca02c", "^"), ("fused", "#d62728", "*"),
    ("csr", "#9467bd", "v"), ("bsr", "#8c564b", "D"), ("padded", "#e377c2", "P"), ("linear", "#aaaaaa", "."),
    ("inkan", "#bcbd22", "x"), ("flashkan", "#17becf", "+"), ("kanditioned", "#ff7f0e", "1"), ("pykan", "#000000", "2"),
]}


def status_pivot(df, index: str, columns: str, value: str, digits: int = 3):
    """A readable pivot: the value where the row ran, its status (``oom``, ``peer-missing``, …) where not."""
    import pandas as pd

    def cell(row):
        if row["status"] == OK and pd.notna(row[value]):
            return f"{row[value]:.{digits}g}"
        return row["status"]

    d = df.assign(_cell=df.apply(cell, axis=1))
    order_c = list(dict.fromkeys(df[columns]))
    piv = d.pivot_table(index=index, columns=columns, values="_cell", aggfunc="first")
    return piv.reindex(columns=[c for c in order_c if c in piv.columns])


def plain_ticks(ax, axis: str = "x") -> None:
    """Label a log axis with plain numbers (3, 30, 300) instead of powers (3×10⁰)."""
    import matplotlib.ticker as mt

    target = ax.xaxis if axis == "x" else ax.yaxis
    target.set_major_formatter(mt.FuncFormatter(lambda v, _: f"{v:g}"))
    target.set_minor_formatter(mt.NullFormatter())
