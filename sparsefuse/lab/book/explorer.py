"""Explorer widget: G and density sliders over a precomputed sweep.

The sweep table travels inside the widget state and the view is computed in
JavaScript (``explorer.js``), so the same widget works in JupyterLab, in
Colab and in the static book, where no kernel is behind the page.
"""
from __future__ import annotations

import math
from pathlib import Path

import anywidget
import pandas as pd
import traitlets


def _records(df: pd.DataFrame, columns: list[str]) -> list[dict]:
    out = []
    for row in df[columns].to_dict("records"):
        clean = {}
        for key, value in row.items():
            if hasattr(value, "item"):
                value = value.item()
            if isinstance(value, float) and not math.isfinite(value):
                value = None
            clean[key] = value
        out.append(clean)
    return out


class Explorer(anywidget.AnyWidget):
    """Pick a point of a sweep by grid size or by density; read every path's time there.

    ``df`` needs the columns ``x`` (grid size), ``series`` (one line per value),
    ``y`` (the measure), ``status`` and either ``density`` or ``k`` (spline
    order, from which density = (k+1)/(G+k)). ``facet`` (optional) splits the
    table, e.g. by forward / forward+backward pass.
    """

    _esm = Path(__file__).with_name("explorer.js")

    data = traitlets.List().tag(sync=True)
    title = traitlets.Unicode("").tag(sync=True)
    x = traitlets.Unicode("G").tag(sync=True)
    y = traitlets.Unicode("median_ms").tag(sync=True)
    series = traitlets.Unicode("path").tag(sync=True)
    facet = traitlets.Unicode("pass").tag(sync=True)
    baseline = traitlets.Unicode("").tag(sync=True)
    source = traitlets.Unicode("").tag(sync=True)
    index = traitlets.Int(0).tag(sync=True)
    facet_value = traitlets.Unicode("").tag(sync=True)

    def __init__(self, df: pd.DataFrame, *, title: str = "", x: str = "G", y: str = "median_ms",
                 series: str = "path", facet: str | None = "pass", baseline: str | None = None,
                 source: str | None = None, **kwargs):
        if not isinstance(df, pd.DataFrame):
            raise ValueError(f"df must be a pandas DataFrame, got {type(df).__name__}")
        source = source if source is not None else str(df.attrs.get("evidence_label") or "")
        df = df.copy()
        if "status" not in df.columns:
            df["status"] = "ok"
        for arg, col in (("x", x), ("y", y), ("series", series)) + ((("facet", facet),) if facet else ()):
            if col not in df.columns:
                raise ValueError(f"{arg}={col!r} is not a column of df")
        if "density" not in df.columns:
            if "k" not in df.columns:
                raise ValueError("df needs a 'density' or a 'k' column")
            df["density"] = (df["k"] + 1) / (df[x] + df["k"])
        if baseline is not None and baseline not in set(df[series]):
            raise ValueError(f"baseline={baseline!r} is not a value of column {series!r}")
        columns = list(dict.fromkeys([x, y, series, "status", "density"]
                                     + ([facet] if facet else []) + (["k"] if "k" in df.columns else [])))
        first_facet = str(df[facet].iloc[0]) if facet and len(df) else ""
        super().__init__(data=_records(df, columns), title=title, source=source, x=x, y=y, series=series,
                         facet=facet or "", baseline=baseline or "", facet_value=first_facet, **kwargs)

    def points(self) -> list:
        """The sweep's x values, in slider order."""
        return sorted({r[self.x] for r in self.data})

    def select(self, x_value) -> None:
        """Move the slider to ``x_value`` (as the reader would)."""
        pts = self.points()
        if x_value not in pts:
            raise ValueError(f"x_value must be one of {pts}, got {x_value!r}")
        self.index = pts.index(x_value)
