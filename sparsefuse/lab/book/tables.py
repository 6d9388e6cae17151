"""Tables as a reader sees them: units in the headers, three significant figures, no index column.

``show(df)`` returns an object that Jupyter (and the static book) renders as an
HTML table in a box that scrolls sideways on a narrow screen, and that prints as
plain text elsewhere. The data frame itself is untouched: the experiment
functions keep returning numbers, and only the notebook cell that displays them
calls ``show``.
"""
from __future__ import annotations

import html
import math
import numbers
import re

import pandas as pd

# Column-name suffixes that carry a unit: median_ms -> "median (ms)", tokens_per_s -> "tokens/s".
_UNITS = [
    (re.compile(r"^(.*)_per_s$"), r"\1/s"),
    (re.compile(r"^ms_per_(.*)$"), r"ms/\1"),
    (re.compile(r"^(.*)_ms$"), r"\1 (ms)"),
    (re.compile(r"^(.*)_mib$"), r"\1 (MiB)"),
    (re.compile(r"^(.*)_s$"), r"\1 (s)"),
]
MAX_TEXT = 90  # longer cells (error notes) are cut, the full text kept as a tooltip


def header(name) -> str:
    """A column name with its unit spelled out (``peak_mib`` -> ``peak (MiB)``); others unchanged."""
    text = str(name)
    for pattern, repl in _UNITS:
        if pattern.match(text):
            return pattern.sub(repl, text)
    return text


def number(value, digits: int = 3) -> str:
    """Three significant figures, without exponents between 0.001 and 10⁶; whole numbers as they are."""
    if value is None or isinstance(value, bool):
        return "—" if value is None else str(value)
    if isinstance(value, numbers.Integral):
        return f"{int(value):,}"
    if isinstance(value, numbers.Real):
        v = float(value)
        if math.isnan(v):
            return "—"
        if math.isinf(v):
            return "∞" if v > 0 else "−∞"
        if v == 0:
            return "0"
        v = float(f"{v:.{digits}g}")  # round first: 0.99999997 is 1.00, not 1.000
        mag = math.floor(math.log10(abs(v)))
        if mag >= 6 or mag < -3:
            return f"{v:.{digits - 1}e}"
        if mag >= digits - 1:  # 12345.6 -> 12,300 (3 significant figures, no decimals)
            return f"{v:,.0f}"
        return f"{v:.{max(digits - 1 - mag, 0)}f}"
    return str(value)


def _is_whole_column(col: pd.Series) -> bool:
    if not pd.api.types.is_float_dtype(col):
        return False
    v = col.dropna()
    return bool(len(v)) and bool(((v - v.round()).abs() == 0).all()) and bool((v.abs() < 1e15).all())


def _flat(name) -> str:
    if isinstance(name, tuple):
        return " · ".join(str(p) for p in name if str(p) != "")
    return str(name)


def frame(df: pd.DataFrame, *, digits: int = 3, unit: str | None = None, index: bool | None = None) -> pd.DataFrame:
    """The table as strings: index as a first column when it means something, units in the headers.

    ``unit`` is appended to the headers of the value columns (a pivot of times: ``unit="ms"``);
    ``index=None`` keeps the index only when it has a name (row numbers are dropped).
    """
    t = df.copy()
    # an index with a name (a pivot's G, a path) is a column worth showing; row numbers left over from
    # filtering are not
    keep_index = index if index is not None else any(n is not None for n in t.index.names)
    index_cols: list[str] = []
    if keep_index:
        names = [n if n is not None else "" for n in t.index.names]
        t.index = t.index.set_names([n or f"_index{i}" for i, n in enumerate(names)])
        index_cols = [_flat(n) for n in t.index.names]
        t = t.reset_index()
        t.columns = [_flat(c) for c in t.columns]
        t = t.rename(columns={c: "" for c in index_cols if c.startswith("_index")})
        index_cols = ["" if c.startswith("_index") else c for c in index_cols]
    else:
        t = t.reset_index(drop=True)
        t.columns = [_flat(c) for c in t.columns]
    out = pd.DataFrame(index=t.index)
    for pos, col in enumerate(t.columns):
        s = t.iloc[:, pos]
        whole = _is_whole_column(s)
        cells = []
        for v in s:
            if whole and isinstance(v, float) and not math.isnan(v):
                v = int(v)
            if isinstance(v, str) and len(v) > MAX_TEXT:
                v = v[:MAX_TEXT - 1] + "…"
            cells.append(number(v, digits) if not isinstance(v, str) else v)
        name = header(col)
        if unit and pos >= len(index_cols) and not name.endswith(")") and not name.endswith("/s"):
            name = f"{name} ({unit})"
        out[f"{pos}"] = cells
        out = out.rename(columns={f"{pos}": name}) if name not in out.columns else out
    return out


class Table:
    """A formatted table: HTML in a sideways-scrolling box in notebooks and the book, text elsewhere."""

    def __init__(self, df: pd.DataFrame, *, caption: str | None = None, **fmt):
        self.data = df
        self.caption = caption
        self.text = frame(df, **fmt)

    def _repr_html_(self) -> str:
        t = self.text
        cols = list(t.columns)
        numeric = [bool(len(t)) and all(_looks_numeric(v) for v in t[c]) for c in cols]
        head = "".join(f'<th style="text-align:{"right" if n else "left"}">{html.escape(c)}</th>'
                       for c, n in zip(cols, numeric))
        rows = []
        for _, r in t.iterrows():
            cells = "".join(f'<td style="text-align:{"right" if n else "left"}">{html.escape(str(v))}</td>'
                            for v, n in zip(r.tolist(), numeric))
            rows.append(f"<tr>{cells}</tr>")
        cap = f"<caption>{html.escape(self.caption)}</caption>" if self.caption else ""
        return ('<div class="sf-table" style="overflow-x:auto;max-width:100%">'
                f'<table class="dataframe sf-table">{cap}<thead><tr>{head}</tr></thead>'
                f'<tbody>{"".join(rows)}</tbody></table></div>')

    def __repr__(self) -> str:
        body = self.text.to_string(index=False)
        return f"{self.caption}\n{body}" if self.caption else body


def _looks_numeric(text: str) -> bool:
    return bool(re.fullmatch(r"[−+-]?[\d,]*\.?\d+(e[+-]?\d+)?|—|∞|−∞", str(text)))


def show(df: pd.DataFrame, *, caption: str | None = None, digits: int = 3, unit: str | None = None,
         index: bool | None = None) -> Table:
    """``df`` for display: see :func:`frame`; ``caption`` is printed above the table (None: an empty table)."""
    if df is None:
        df = pd.DataFrame({"": ["(no rows in this run)"]})
    if not isinstance(df, pd.DataFrame):
        raise ValueError(f"df must be a pandas DataFrame, got {type(df).__name__}")
    return Table(df, caption=caption, digits=digits, unit=unit, index=index)
