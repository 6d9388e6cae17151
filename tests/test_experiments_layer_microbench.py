"""The layer microbenchmark: rows, statuses, the figure."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from sparsefuse import kernels  # noqa: E402
from sparsefuse.lab.experiments import layer_microbench as mb  # noqa: E402


def test_run_gives_one_row_per_path_g_and_pass():
    df = mb.run("smoke", "cpu", progress=False, grid_sizes=[3, 7], passes=["forward", "forward+backward"],
                paths=["linear", "reference"], warmup=0, rep=1)
    assert list(df.columns) == mb.COLUMNS
    assert len(df) == 2 * 2 * 2
    assert set(df["status"]) == {"ok"}
    assert (df["median_ms"] > 0).all()
    assert df.loc[df["G"] == 7, "density"].iloc[0] == pytest.approx(4 / 10)
    assert df.attrs["parameters"]["grid_sizes"] == [3, 7]


@pytest.mark.skipif(not kernels.available("cpu"), reason="fused kernels need triton and TRITON_INTERPRET=1")
def test_fused_rows_are_measured_where_the_kernels_run():
    df = mb.run("smoke", "cpu", progress=False, grid_sizes=[3], paths=["fused"], warmup=0, rep=1, N=4)
    assert list(df["status"]) == ["ok", "ok"] and (df["median_ms"] > 0).all()


def test_fused_rows_say_why_they_cannot_run(monkeypatch):
    monkeypatch.setattr(kernels, "available", lambda device: False)
    df = mb.run("smoke", "cpu", progress=False, grid_sizes=[3], passes=["forward"], paths=["fused"],
                warmup=0, rep=1, N=4)
    assert list(df["status"]) == ["unsupported"] and "TRITON_INTERPRET" in df["note"].iloc[0]
    assert df["median_ms"].isna().all()


@pytest.mark.parametrize("kwargs, arg", [
    (dict(profile="huge"), "profile"), (dict(bogus=1), "bogus"), (dict(paths=["magic"]), "paths"),
    (dict(passes=["bwd"]), "passes"),
])
def test_bad_settings_are_named(kwargs, arg):
    with pytest.raises(ValueError, match=arg):
        mb.run(**({"progress": False} | kwargs))


def test_profiles_share_their_keys():
    keys = set(mb.PROFILES["smoke"])
    assert all(set(cfg) == keys for cfg in mb.PROFILES.values())


def test_plot_has_one_panel_per_pass():
    df = pd.DataFrame([
        {"path": p, "G": G, "k": 3, "N": 8, "in": 2, "out": 2, "pass": s, "density": 4 / (G + 3),
         "median_ms": 1.0 + G, "q20_ms": 1.0, "q80_ms": 2.0, "peak_mib": float("nan"), "status": st, "note": ""}
        for p, st in (("linear", "ok"), ("dense", "ok"), ("fused", "oom")) for G in (3, 5)
        for s in ("forward", "forward+backward")])
    fig = mb.plot(df)
    assert len(fig.axes) == 2
    assert [len(ax.get_lines()) for ax in fig.axes] == [2, 2]  # the oom path draws nothing
    assert mb.explorer(df).baseline == "linear"


def test_flat_words_follow_the_growth():
    from sparsefuse.lab.words import flat_in_g

    assert "as the paper claims" in flat_in_g(1.51, 37.5)
    assert "does not hold" in flat_in_g(6.07, 12.7) and "less than half" in flat_in_g(6.07, 12.7)
    assert "about as much as the reference" in flat_in_g(10.0, 12.0)


def test_layer_microbench_verdict_on_the_h200_reference():
    from sparsefuse.lab.book import results
    from sparsefuse.lab.experiments import layer_microbench as lm

    v = lm.verdict_numbers(results.reference(lm.NAME).table())
    assert "does not hold" in v["lm_flat"]  # 6.07x from G=3 to 100 is not flat
    assert v["lm_cmp_lo"].endswith("faster than the reference")
