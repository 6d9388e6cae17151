"""Symbolic fitting and the science chapters' experiments (PINNs, approximation, grid extension, tabular)."""


import matplotlib
import numpy as np
import pandas as pd
import pytest
import torch

matplotlib.use("Agg")

from sparsefuse.lab.experiments import approximation, grid_extension_symbolic_tabular as gest, pinns  # noqa: E402
from sparsefuse.kan_linear import KANLinear  # noqa: E402
from sparsefuse.lab.symbolic import FORMS, best_fit, edge_function, fit_form, fit_symbolic  # noqa: E402

X = np.linspace(-1, 1, 150)


@pytest.mark.parametrize("form,y", [
    ("sin", 0.7 * np.sin(2.5 * X + 0.3) - 0.2),
    ("exp", 1.3 * np.exp(0.8 * X) + 0.5),
    ("x^2", 2.0 * (X - 0.25) ** 2 - 1.0),
    ("affine", -3.0 * X + 0.5),
    ("log", np.log(X + 1.7)),
    ("tanh", np.tanh(4 * X - 1)),
])
def test_best_fit_recovers_known_formulas(form, y):
    fit = best_fit(X, y)
    assert fit.form == form, fit_symbolic(X, y)[["form", "r2"]]
    assert fit.r2 > 0.99999
    assert np.allclose(fit(X), y, atol=1e-3)


def test_fit_form_parameters_and_bad_input():
    f = fit_form(X, 0.7 * np.sin(2.5 * X + 0.3) - 0.2, "sin")
    assert (f.a, f.b, f.c, f.d) == pytest.approx((2.5, 0.3, 0.7, -0.2), abs=1e-4)
    assert "sin(" in f.formula
    assert fit_form(X, X**2, "log").r2 < 0.99  # log cannot make a parabola
    with pytest.raises(ValueError, match="form"):
        fit_form(X, X, "sinh")
    with pytest.raises(ValueError, match="x and y"):
        fit_form(X, X[:-1], "sin")
    with pytest.raises(ValueError, match="finite"):
        fit_form(X, np.where(X > 0, np.nan, X), "sin")
    assert set(FORMS) >= {"sin", "exp", "x^2", "x^3", "log", "tanh", "affine"}


def test_edge_function_reads_the_learned_spline():
    layer = KANLinear(2, 1, grid_size=8, impl="reference").double()
    xs = torch.linspace(-1, 1, 200, dtype=torch.float64).unsqueeze(1).repeat(1, 2)
    target = torch.stack([xs[:, 0] ** 2, torch.sin(3 * xs[:, 1])], 1).unsqueeze(-1)  # [N, in, out]
    with torch.no_grad():
        layer.base_weight.zero_()
        layer.spline_scaler.fill_(1.0)
        layer.spline_weight.copy_(layer.curve2coeff(xs, target))
    x0, y0 = edge_function(layer, 0, 0)
    x1, y1 = edge_function(layer, 0, 1, x_range=(-0.5, 0.5))
    assert x1.min() == pytest.approx(-0.5) and x1.max() == pytest.approx(0.5)
    assert best_fit(x0, y0).form == "x^2" and best_fit(x1, y1).form == "sin"
    with pytest.raises(ValueError, match="in_index"):
        edge_function(layer, 0, 2)


def test_pinns_run_records_rows_curves_and_divergence():
    df = pinns.run("smoke", progress=False, problems=["poisson2d"], models=["kan_fused", "mlp"], steps=3)
    assert list(df["model"]) == ["kan_fused", "mlp"] and (df["status"] == "ok").all()
    assert (df["rel_l2"] > 0).all() and (df["params"] > 0).all() and (df["seed"] == 0).all()
    assert df["impl"].iloc[0] in {"fused", "dense", "sparse", "reference"} and df["impl"].iloc[1] == ""
    cur = pinns.curves(df)
    assert {"problem", "model", "step", "loss", "pde", "bc"} <= set(cur.columns) and len(cur) >= 2
    assert len(pinns.solutions(df)) > 0
    assert isinstance(pinns.plot(df), matplotlib.figure.Figure)
    bad = pinns.run("smoke", progress=False, problems=["poisson1d_multiscale"], models=["mlp"], steps=5, lr=1e30)
    assert bad["status"].iloc[0] == "diverged" and "step" in bad["note"].iloc[0]
    with pytest.raises(ValueError, match="override"):
        pinns.run("smoke", progress=False, stepz=3)
    with pytest.raises(ValueError, match="profile"):
        pinns.run("huge")


def test_approximation_lstsq_follows_the_theoretical_rate():
    df = approximation.run("smoke", progress=False, targets=["exp_sin", "xy"], lstsq_grids=[10, 20, 40],
                           train_grids=[5], steps=2, n_train=64)
    ls = df[df["method"] == "lstsq"]
    assert list(ls["target"]) == ["exp_sin"] * 3  # xy has no least-squares decomposition here
    assert ls["test_rmse"].is_monotonic_decreasing
    rate = approximation.fitted_rates(df)
    slope = float(rate[(rate["target"] == "exp_sin") & (rate["method"] == "lstsq")]["fitted_rate"].iloc[0])
    assert -5.0 < slope < -3.5  # G^-(k+1) with k = 3
    tr = df[df["method"] == "train"]
    assert len(tr) == 2 and (tr["status"] == "ok").all() and (tr["train_rmse"] > 0).all()
    assert set(approximation.curves(df)["target"]) == {"exp_sin", "xy"}
    assert isinstance(approximation.plot(df), matplotlib.figure.Figure)


def test_grid_extension_symbolic_tabular_parts():
    df = gest.run("smoke", progress=False, ext_grids=[3, 6], ext_steps_per_stage=2, sym_steps=3,
                  tab_datasets=["wine", "diabetes"], tab_epochs=5)
    t = gest.tables(df)
    assert set(t) == set(gest.PARTS)
    ext = t["grid_extension"]
    assert list(ext["model"]) == ["extension", "extension", "fixed"] and list(ext["G"]) == [3, 6, 6]
    assert "refit error" in ext["note"].iloc[1]
    sym = t["symbolic"]
    assert list(sym["expected"]) == ["sin", "x^2"] and (sym["metric"] > 0.9).all()
    tab = t["tabular"]
    assert list(tab["model"]) == ["kan", "mlp"] * 2
    for case, grp in tab.groupby("case"):  # the MLP is parameter-matched
        p = grp.set_index("model")["params"]
        assert abs(p["kan"] - p["mlp"]) / p["kan"] < 0.1
    assert set(tab["metric_name"]) == {"accuracy", "r2"}
    cur = gest.curves(df)
    assert cur[cur["run"] == "extension"]["step"].is_monotonic_increasing
    assert isinstance(gest.plot(df), matplotlib.figure.Figure)
    with pytest.raises(ValueError, match="parts"):
        gest.run("smoke", progress=False, parts=["nonsense"])


def test_grid_extension_prune_demo():
    demo = gest.prune_demo("smoke", progress=False, prune_steps=20)
    assert list(demo.table["stage"]) == ["trained", "pruned", "pruned, retrained"]
    widths = [lay.out_features for lay in demo.pruned.layers]
    assert demo.table["shape"].iloc[1] == [2, *widths] and widths[0] <= 5
    assert demo.table["params"].iloc[1] <= demo.table["params"].iloc[0]
    assert isinstance(demo.model.plot(demo.x), matplotlib.figure.Figure)


def test_pinns_plot_marks_failed_runs_inside_the_log_axes():
    import pandas as pd

    rows = [dict(problem="poisson2d", model="mlp", status="ok", rel_l2=0.1, ms_per_step=5.0),
            dict(problem="poisson2d", model="kan_fused", status="oom", rel_l2=np.nan, ms_per_step=np.nan)]
    fig = pinns.plot(pd.DataFrame(rows, columns=pinns.COLUMNS))
    fig.canvas.draw()
    for ax in fig.axes[:2]:  # error and time panels, both log-scaled
        marks = [t for t in ax.texts if t.get_text() == "oom"]
        assert len(marks) == 1
        box, frame = marks[0].get_window_extent(), ax.get_window_extent()
        assert frame.y0 <= box.y0 and box.y1 <= frame.y1, (box, frame)


def test_approximation_verdict_on_the_h200_reference():
    from sparsefuse.lab.book import results

    v = approximation.verdict_numbers(results.reference(approximation.NAME).table())
    assert "exp_sin_sq (-3.65 on 2 points) rests on too few points" in v["ap_tr_text"]
    assert "collapsed" in v["ap_collapse_text"] and "exp_sin_sq from 0.0004 at G = 10 to 1.1 at G = 100" in \
        v["ap_collapse_text"]


def test_tabular_claim_in_plain_words():
    from sparsefuse.lab.book import results

    ref = results.reference(gest.NAME)
    v = gest.verdict_numbers(ref.table(), curves=pd.read_csv(ref.folder / f"{gest.NAME}_curves.csv"))
    assert v["tb_claim_text"].startswith("The tabular part of the claim holds on digits and wine but not on "
                                         "breast_cancer (0.937 against 0.958)")


def test_grid_extension_page_says_when_the_reference_predates_the_whole_support_refit():
    from sparsefuse.lab.book import results
    from sparsefuse.lab.experiments import grid_extension_figures as figs

    ref = results.reference(gest.NAME)
    table, curves = ref.table(), pd.read_csv(ref.folder / f"{gest.NAME}_curves.csv")
    assert gest.verdict_numbers(table, curves=curves)["ge_refit_text"].startswith(" This reference predates")
    new = table.assign(note=table["note"].where(table["note"].isna(), table["note"] + " " + gest.WHOLE_SUPPORT))
    assert figs.verdict_numbers(new, curves=curves)["ge_refit_text"] == ""
