"""Figures sized for the book's page and verdicts readable from every committed reference table.

Each chapter's ``plot`` is drawn from its committed GPU reference (the table a
CPU-built book shows first): the figure must fit the ~700 px text column at the
book's 110 dpi with no text under 9 pt, and ``verdict_numbers`` must give every
number its prose quotes from that table alone.
"""
from __future__ import annotations

import importlib
import io
import math

import matplotlib
import pytest

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.text import Text  # noqa: E402
from PIL import Image  # noqa: E402

from sparsefuse.lab.book import results, tables, verdict  # noqa: E402
from sparsefuse.lab import words  # noqa: E402
from sparsefuse.lab.experiments import _page  # noqa: E402

CHAPTERS = ["layer_microbench", "sparse_vs_dense", "grid_scaling", "compile_checkpoint", "heatmaps", "cross_basis",
            "matrixkan", "pinns", "minigpt", "vit", "approximation", "grid_extension_symbolic_tabular"]
DPI = 110  # results.figure_bytes
MAX_PX = int(7.5 * DPI)


def _reference(mod):
    ref = results.reference(mod.NAME)
    if ref is None:
        pytest.skip(f"no committed reference for {mod.NAME}")
    return ref


@pytest.mark.parametrize("name", CHAPTERS)
def test_plot_of_the_reference_fits_the_page(name):
    mod = importlib.import_module(f"sparsefuse.lab.experiments.{name}")
    fig = mod.plot(_reference(mod).table())
    try:
        width, _ = fig.get_size_inches()
        assert width <= _page.PAGE_WIDTH_IN + 1e-6
        small = [(t.get_text(), t.get_fontsize()) for t in fig.findobj(Text)
                 if t.get_text() and t.get_visible() and t.get_fontsize() < _page.MIN_FONT_PT]
        assert not small, small
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")
        assert Image.open(buf).size[0] <= MAX_PX, "the saved figure is wider than the page: its text would shrink"
    finally:
        plt.close(fig)


@pytest.mark.parametrize("name", CHAPTERS)
def test_verdict_numbers_come_from_the_reference_table(name):
    mod = importlib.import_module(f"sparsefuse.lab.experiments.{name}")
    ref = _reference(mod)
    kwargs = {}
    if name == "grid_extension_symbolic_tabular":
        curves = ref.folder / f"{mod.NAME}_curves.csv"
        kwargs["curves"] = __import__("pandas").read_csv(curves) if curves.exists() else None
    values = verdict.clean(mod.verdict_numbers(ref.table(), **kwargs))
    assert values
    for key, value in values.items():
        assert isinstance(value, (str, int, float)), (key, value)
    numbers = [v for v in values.values() if isinstance(v, float)]
    assert any(math.isfinite(v) for v in numbers), "no number could be read from the reference"


def test_evidence_prefers_the_reference_over_a_cpu_smoke_run():
    import pandas as pd

    fresh = pd.DataFrame({"path": ["fused"], "G": [3], "pass": ["forward"], "median_ms": [1.0], "status": ["ok"]})
    ev = verdict.evidence("layer_microbench", fresh, profile="smoke", device="cpu")
    if results.reference("layer_microbench") is None:
        assert ev.fresh and "code runs" in ev.source
    else:
        assert not ev.fresh and ev.source.startswith("the committed reference run")
    ev = verdict.evidence("no_such_result", fresh, profile="smoke", device="cpu")
    assert ev.fresh and "not comparable" in ev.source


def test_faster_words():
    # three significant figures as the tables print them (1.0953 reads 1.10, not 1.1)
    assert words.faster(2.0, "the reference") == "2.00× faster than the reference"
    assert words.faster(0.5) == "2.00× slower than"
    assert words.faster(1 / 1.0953) == "1.10× slower than"
    assert words.faster(float("nan"), "x") == "not measured against x"
    assert words.less(4.0, "memory", "y") == "4.00× less memory than y"
    assert words.times(1234.5) == "1,234×" and words.times(100.0) == "100×"


def test_tables_show_units_digits_and_no_row_numbers():
    import pandas as pd

    df = pd.DataFrame({"impl": ["fused", "reference"], "median_ms": [137.591848, 0.0123456],
                       "peak_mib": [1234.5, 2.0], "tokens_per_s": [563516.7, float("nan")]}).iloc[[1, 0]]
    t = tables.show(df)
    assert list(t.text.columns) == ["impl", "median (ms)", "peak (MiB)", "tokens/s"]
    assert t.text["median (ms)"].tolist() == ["0.0123", "138"]
    assert t.text["tokens/s"].tolist() == ["—", "564,000"]
    html = t._repr_html_()
    assert "overflow-x:auto" in html and "<th" in html and ">1<" not in html  # no index column
    piv = df.pivot_table(index="impl", values="median_ms")
    assert tables.show(piv, unit="ms").text.columns[0] == "impl"
