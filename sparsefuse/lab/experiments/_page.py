"""Figures sized for the book's page: 7 inches wide, text at 10 pt (never below 9).

The book's text column is about 700 px wide and a figure is saved at 110 dpi,
so a 7-inch figure is shown at its natural size and 9 pt text stays above 12 px
on screen. A figure wider than that is shrunk to the column and its text with
it, which is what made the earlier 14-inch figures unreadable. ``panels`` lays
the panels of a chapter's figure out at that width (stacked, one idea per
panel), and ``page_figure`` draws a plot function under the book's font sizes
and raises any smaller text it finds to the minimum.
"""
from __future__ import annotations

import functools

PAGE_WIDTH_IN = 7.0
MIN_FONT_PT = 9.0
RC = {
    "font.size": 10, "axes.titlesize": 10.5, "axes.labelsize": 10, "xtick.labelsize": 10,
    "ytick.labelsize": 10, "legend.fontsize": 9, "legend.title_fontsize": 9, "figure.titlesize": 11,
    "axes.titlelocation": "left",
}


def panels(n: int, *, ncols: int = 1, height: float = 3.2, width: float = PAGE_WIDTH_IN, **kwargs):
    """``(fig, axes)``: ``n`` panels in ``ncols`` columns, each ``height`` inches tall, page-wide in all.

    ``axes`` is a flat list of ``n`` axes (extra grid cells are removed).
    """
    import matplotlib.pyplot as plt

    nrows = -(-n // ncols)
    fig, grid = plt.subplots(nrows, ncols, figsize=(width, height * nrows), squeeze=False,
                             layout="constrained", **kwargs)
    axes = [ax for row in grid for ax in row]
    for ax in axes[n:]:
        ax.remove()
    return fig, axes[:n]


def enforce_min_font(fig, minimum: float = MIN_FONT_PT) -> None:
    """Raise every text of ``fig`` (ticks, legends, notes) below ``minimum`` points to it."""
    from matplotlib.text import Text

    for text in fig.findobj(Text):
        if text.get_text() and text.get_fontsize() < minimum:
            text.set_fontsize(minimum)


def page_figure(plot):
    """Decorate a ``plot(df, ...) -> Figure``: drawn with the book's font sizes, no text below the minimum."""
    @functools.wraps(plot)
    def draw(*args, **kwargs):
        import matplotlib.pyplot as plt

        with plt.rc_context(RC):
            fig = plot(*args, **kwargs)
            if fig is not None:
                enforce_min_font(fig)
        return fig
    return draw


def not_run(df, label_cols: list[str], *, width: int = 80, limit: int = 6) -> str:
    """``"not run: bsr unsupported; pykan skipped"`` for the rows of ``df`` whose status is not ok ('' if none).

    Meant for an axis label (``ax.set_xlabel(label + "\\n" + note)``), which the
    constrained layout makes room for, so the note never runs into the next panel.
    """
    import textwrap

    if "status" not in df.columns:
        return ""
    bad = df[df["status"].astype(str) != "ok"]
    if bad.empty:
        return ""
    groups = bad.groupby([*label_cols, "status"], dropna=False).size().reset_index()
    parts = [" ".join(str(v) for v in row[:-1]) for row in groups.itertuples(index=False)]
    text = "not run: " + "; ".join(parts[:limit]) + (" …" if len(parts) > limit else "")
    return "\n".join(textwrap.wrap(text, width))


def not_in_table(ax, what: str) -> None:
    """Say in an empty panel that ``what`` is not part of the table drawn (a table read back from its CSV
    comes without the side tables a fresh run attaches)."""
    ax.text(0.5, 0.5, what, ha="center", va="center", transform=ax.transAxes, color="#666666")
    ax.set_xticks([]), ax.set_yticks([])


def with_note(label: str, note: str) -> str:
    return f"{label}\n{note}" if note else label


def log_ticks(ax, axis: str = "y") -> None:
    """Plain labels at 1, 2, 5 × 10^k on a log axis (a short range would otherwise show one label)."""
    import matplotlib.ticker as mt

    target = ax.yaxis if axis == "y" else ax.xaxis
    target.set_major_locator(mt.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    target.set_major_formatter(mt.FuncFormatter(lambda v, _: f"{v:g}"))
    target.set_minor_locator(mt.LogLocator(base=10, subs="auto"))
    target.set_minor_formatter(mt.NullFormatter())


def legend_on_top(fig, axes, ncols: int | None = None, where: str = "upper") -> None:
    """One legend for the whole figure, above the panels (``where="lower"``: below them); the constrained
    layout makes room for it."""
    handles, labels = [], []
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    if handles:
        fig.legend(handles, labels, loc=f"outside {where} left", ncols=ncols or min(len(labels), 4), frameon=False)
