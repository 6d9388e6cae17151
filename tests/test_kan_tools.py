"""sparsefuse.kan_tools: plot, prune, fit and the methods that expose them on KANLinear / KAN."""

import matplotlib
import pytest
import torch

import sparsefuse
from sparsefuse.kan_linear import KAN, KANLinear
from sparsefuse.kan_tools import edge_activations, edge_scores, fit, prune

matplotlib.use("Agg")
D = torch.float64


def _visible_axes(fig):
    return [ax for ax in fig.axes if ax.get_visible()]  # a Figure's axes include its subfigures'


def test_edge_activations_add_up_to_the_layer():
    torch.manual_seed(0)
    lay = KANLinear(3, 2, dtype=D)
    x = torch.rand(20, 3, dtype=D) * 2 - 1
    torch.testing.assert_close(edge_activations(lay, x).sum(1), lay(x))


def test_layer_plot_one_panel_per_edge_or_per_chosen_edge():
    from matplotlib.figure import Figure

    lay = KANLinear(3, 2)
    fig = lay.plot()
    assert isinstance(fig, Figure) and len(_visible_axes(fig)) == 6
    fig = lay.plot(torch.randn(50, 3), edges=[(1, 2), (0, 0)])
    axes = _visible_axes(fig)
    assert [ax.get_title().split("  ")[0] for ax in axes] == ["x2 → y1", "x0 → y0"]
    for bad in ([(2, 0)], [(0, 3)], []):
        with pytest.raises(ValueError, match="edges"):
            lay.plot(edges=bad)
    with pytest.raises(ValueError, match="edges"):
        KANLinear(10, 10).plot()  # 100 panels: choose a subset


def test_kan_plot_draws_every_layer_over_its_input_range():
    torch.manual_seed(0)
    model = KAN([2, 3, 1])
    x = torch.rand(40, 2) * 2 - 1
    fig = model.plot(x)
    assert len(fig.subfigs) == 2 and len(_visible_axes(fig)) == 2 * 3 + 3 * 1
    with torch.no_grad():
        hidden = model.layers[0](x)
    # the second layer's panels span the range of the hidden activations on x
    lines = [ax.lines[0] for ax in fig.subfigs[1].axes if ax.get_visible()]
    lo, hi = hidden.min(0).values, hidden.max(0).values
    for i, line in enumerate(lines):
        xs = line.get_xdata()
        assert xs[0] == pytest.approx(float(lo[i]), abs=1e-6) and xs[-1] == pytest.approx(float(hi[i]), abs=1e-6)


def _with_dead_neurons():
    torch.manual_seed(0)
    model = KAN([3, 6, 2], dtype=D)
    with torch.no_grad():
        for j in (1, 4):  # hidden neurons 1 and 4 feed nothing
            model.layers[1].base_weight[:, j] = 0
            model.layers[1].spline_weight[:, j] = 0
    return model


def test_prune_removes_inactive_neurons_and_keeps_the_function():
    model = _with_dead_neurons()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.rand(100, 3, dtype=D) * 2 - 1
    small = model.prune(1e-9, x)
    assert [(m.in_features, m.out_features) for m in small.layers] == [(3, 4), (4, 2)]
    assert small.layers[0].spline_weight.shape == (4, 3, 8) and small.layers[1].grid.shape == (4, 12)
    torch.testing.assert_close(small(x), model(x), rtol=1e-12, atol=1e-12)
    assert all(torch.equal(model.state_dict()[k], v) for k, v in before.items())  # the model is untouched
    small(x).sum().backward()  # a working model
    assert small.layers[1].spline_weight.grad.shape == (2, 4, 8)


def test_prune_zeroes_weak_edges_and_keeps_a_neuron_in_an_empty_layer():
    model = _with_dead_neurons()
    x = torch.rand(100, 3, dtype=D) * 2 - 1
    scores = edge_scores(model, x)
    t = float(scores[0].median())
    small = model.prune(t, x)
    kept = [m.in_features for m in small.layers[1:]]
    assert kept[0] <= 4
    lay = small.layers[0]
    weak = (lay.base_weight == 0) & (lay.spline_weight == 0).all(-1)
    assert weak.any() and (edge_scores(small, x)[0][weak] == 0).all()
    tiny = model.prune(1e6, x)
    assert [(m.in_features, m.out_features) for m in tiny.layers] == [(3, 1), (1, 2)]
    with pytest.raises(ValueError, match="threshold"):
        model.prune(-1.0, x)
    with pytest.raises(ValueError, match="x"):
        model.prune(0.1, torch.rand(5, 4, dtype=D))


def test_fit_trains_and_keeps_a_loss_history():
    torch.manual_seed(0)
    x = torch.rand(128, 2) * 2 - 1
    y = torch.sin(3 * x[:, :1]) + x[:, 1:] ** 2
    model = KAN([2, 3, 1], grid_size=5)
    res = sparsefuse.fit(model, (x, y, x[:32], y[:32]), 40, lr=3e-2, reg=1e-4, batch_size=64, progress=False)
    assert sparsefuse.fit is fit and res.status == "ok" and res.steps == 40
    assert list(res.curve.columns[:3]) == ["step", "time_s", "loss"] and "test_loss" in res.curve
    assert res.curve["loss"].iloc[-5:].mean() < 0.5 * res.curve["loss"].iloc[:5].mean()
    res = fit(model, {"train_input": x, "train_label": y}, 3, optimizer="lbfgs", progress=True)
    assert res.status == "ok" and len(res.curve) == 3
    with pytest.raises(ValueError, match="optimizer"):
        fit(model, (x, y), 1, optimizer="sgd")
    with pytest.raises(ValueError, match="data"):
        fit(model, x, 1)
    with pytest.raises(ValueError, match="steps"):
        fit(model, (x, y), -1)


def test_prune_by_function_and_method_agree():
    model = _with_dead_neurons()
    x = torch.rand(50, 3, dtype=D)
    a, b = prune(model, 1e-9, x), model.prune(1e-9, x)
    assert all(torch.equal(a.state_dict()[k], v) for k, v in b.state_dict().items())


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), "empty"])
def test_data_methods_share_one_rule_for_bad_samples(bad):
    """Issue 22.6: prune and plot took NaN silently (prune cut a model to one neuron, plot titled
    its panels |φ|=nan) while update_grid refused it; now each raises the same ValueError on x."""
    model = _with_dead_neurons()
    x = torch.rand(20, 3, dtype=D) * 2 - 1
    if bad == "empty":
        x = x[:0]
    else:
        x[3, 1] = bad
    state = {k: v.clone() for k, v in model.state_dict().items()}
    calls = {"prune": lambda: model.prune(0.01, x), "KAN.plot": lambda: model.plot(x),
             "KANLinear.plot": lambda: model.layers[0].plot(x), "update_grid": lambda: model.layers[0].update_grid(x),
             "KAN(update_grid=True)": lambda: model(x, update_grid=True)}
    for name, call in calls.items():
        with pytest.raises(ValueError, match=r"^x: .*(finite samples|at least one sample)") as info:
            call()
        print(f"{name}: {info.value}")
    assert all(torch.equal(model.state_dict()[k], v) for k, v in state.items())


def test_kan_plot_too_many_panels_names_what_exists():
    """It said ``edges: ... pass a subset of (out, in) pairs``, an option KAN.plot does not have."""
    model = KAN([8, 16, 1])
    with pytest.raises(ValueError, match=r"^max_panels: .*model\.layers\[i\]\.plot\(x, edges=") as info:
        model.plot(torch.rand(10, 8))
    print(info.value)
    assert len(_visible_axes(model.plot(max_panels=8 * 16 + 16))) == 8 * 16 + 16
    with pytest.raises(ValueError, match=r"^edges: .*max_panels"):
        KANLinear(10, 10).plot()


def test_prune_threshold_is_documented_on_its_scale():
    """The threshold compares with mean |phi| on x (edge_scores): the docstring and README say so."""
    from pathlib import Path

    assert "edge_scores" in prune.__doc__ and "mean" in prune.__doc__
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert "edge_scores" in readme
