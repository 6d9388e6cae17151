"""The v0 layer microbenchmark: rows, statuses, the plain stand-in layer, the figure."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from sparsefuse.experiments import layer_microbench as mb  # noqa: E402


def test_run_gives_one_row_per_path_g_and_pass():
    df = mb.run("smoke", "cpu", progress=False, grid_sizes=[3, 7], passes=["fwd", "fwd+bwd"],
                paths=["linear", "reference"], warmup=0, rep=1)
    assert list(df.columns) == mb.COLUMNS
    assert len(df) == 2 * 2 * 2
    assert set(df["status"]) == {"ok"}
    assert (df["median_ms"] > 0).all()
    assert df.loc[df["G"] == 7, "density"].iloc[0] == pytest.approx(4 / 10)


def test_fused_rows_never_raise():
    df = mb.run("smoke", "cpu", progress=False, grid_sizes=[3], passes=["fwd"], paths=["fused"],
                warmup=0, rep=1, N=4)
    assert len(df) == 1 and df["status"].iloc[0] in {"ok", "unsupported", "skipped"}


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


def test_plain_layer_matches_the_library_reference():
    KANLinear = mb._library_layer()
    if KANLinear is None:
        pytest.skip("sparsefuse.kan_linear not importable yet")
    torch.manual_seed(1)
    lib = KANLinear(5, 4, grid_size=6, spline_order=3, impl="reference").double()
    plain = mb.PlainKANLinear(5, 4, 6, 3).double()
    with torch.no_grad():
        plain.grid.copy_(lib.grid)
        plain.base_weight.copy_(lib.base_weight)
        plain.spline_weight.copy_(lib.scaled_spline_weight)
    x = torch.rand(33, 5, dtype=torch.float64) * 2.4 - 1.2  # partly outside the grid
    torch.testing.assert_close(plain(x), lib(x))


def test_plot_has_one_panel_per_pass():
    df = pd.DataFrame([
        {"path": p, "G": G, "k": 3, "N": 8, "in": 2, "out": 2, "pass": s, "density": 4 / (G + 3),
         "median_ms": 1.0 + G, "q20_ms": 1.0, "q80_ms": 2.0, "peak_mib": float("nan"), "status": st}
        for p, st in (("linear", "ok"), ("dense", "ok"), ("fused", "OOM")) for G in (3, 5) for s in ("fwd", "fwd+bwd")])
    fig = mb.plot(df)
    assert len(fig.axes) == 2
    assert [len(ax.get_lines()) for ax in fig.axes] == [2, 2]  # the OOM path draws nothing
    assert mb.explorer(df).baseline == "linear"
