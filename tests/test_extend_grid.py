"""extend_grid keeps the layer's function everywhere it is used, inside the grid range and outside it,
and reports the largest change it made (issue 22, item 2)."""

import warnings

import pytest
import torch

import sparsefuse
from sparsefuse.grid import is_uniform
from sparsefuse.kan_linear import KAN, GridResizeWarning, KANLinear

D = torch.float64


def _quiet_extend(module, g):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GridResizeWarning)
        return module.extend_grid(g)


def _random_layer(dtype=torch.float32, **kw):
    torch.manual_seed(0)
    lay = KANLinear(1, 1, dtype=dtype, **kw)
    with torch.no_grad():
        lay.spline_weight.normal_()
    return lay


def test_value_outside_the_grid_range_is_kept():
    """The issue's repro: at x = -1.5 (inside the old support [-2.2, 2.2], outside [-1, 1]) the value
    went -0.602 -> 0.002 while extend_grid(20) reported an error of 2.4e-7."""
    lay = _random_layer()
    x = torch.tensor([[-1.5]])
    with torch.no_grad():
        before = lay(x).item()
        err = _quiet_extend(lay, 20)
        after = lay(x).item()
    print(f"x=-1.5: {before:.4f} -> {after:.4f}, reported error {err:.1e}")
    assert before == pytest.approx(-0.6022, abs=1e-3)
    assert after == pytest.approx(before, abs=1e-5) and err < 1e-5


@pytest.mark.parametrize("new_g", [7, 10, 12, 20, 3])
def test_reported_error_is_the_largest_change_anywhere(new_g):
    lay = _random_layer(D, grid_size=5)
    x = torch.linspace(-4, 4, 20001, dtype=D).unsqueeze(1)  # beyond the support [-2.2, 2.2] on both sides
    with torch.no_grad():
        before = lay(x)
        err = _quiet_extend(lay, new_g)
        change = (lay(x) - before).abs().max().item()
    print(f"5 -> {new_g}: reported {err:.3e}, largest change on a fine mesh {change:.3e}")
    if new_g % 5 == 0:  # nested spline spaces: exact everywhere
        assert err < 1e-12 and change < 1e-12
    else:
        assert 0.95 * change <= err <= change * (1 + 1e-9) + 1e-15
        assert change < 0.1 * before.abs().max().item()


def test_pykan_workflow_loss_does_not_jump():
    """Train, then extend_grid(20): the test loss went 0.0041 -> 0.0277 (hidden activations beyond
    [-1, 1] lost their spline)."""
    torch.manual_seed(0)
    f = lambda x: torch.exp(torch.sin(torch.pi * x[:, :1]) + x[:, 1:] ** 2)  # noqa: E731
    x = torch.rand(1000, 2) * 2 - 1
    xt = torch.rand(1000, 2) * 2 - 1
    model = KAN([2, 5, 1], grid_size=5)
    sparsefuse.fit(model, (x, f(x)), 200, progress=False)
    with torch.no_grad():
        hidden = model.layers[0](xt)
        before = torch.nn.functional.mse_loss(model(xt), f(xt)).item()
        err = _quiet_extend(model, 20)
        after = torch.nn.functional.mse_loss(model(xt), f(xt)).item()
    print(f"test loss {before:.4f} -> {after:.4f}; hidden activations beyond [-1, 1]: "
          f"{int((hidden.abs() > 1).sum())}/{hidden.numel()}; reported error {err:.1e}")
    assert (hidden.abs() > 1).any()  # the case that matters: a hidden layer used outside its grid range
    assert after == pytest.approx(before, rel=1e-3) and err < 1e-5


def test_the_interior_is_refined_and_the_outer_knots_kept():
    lay = KANLinear(3, 2, grid_size=5, dtype=D)
    old = lay.grid.clone()
    _quiet_extend(lay, 8)
    assert lay.grid.shape == (3, 8 + 7) and lay.grid_size == 8
    torch.testing.assert_close(lay.grid[:, :3], old[:, :3], rtol=0, atol=0)
    torch.testing.assert_close(lay.grid[:, -3:], old[:, -3:], rtol=0, atol=0)
    torch.testing.assert_close(lay.grid[:, 3:-3], torch.linspace(-1, 1, 9, dtype=D).expand(3, -1))
    _quiet_extend(lay, 5)  # back to the original size: the original uniform grid
    torch.testing.assert_close(lay.grid, old)
    assert is_uniform(lay.grid)


def _resize_warnings(call):
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        call()
    return [w for w in seen if issubclass(w.category, GridResizeWarning)]


def test_resize_warning_only_when_an_optimizer_holds_state_for_the_weight():
    """It warned on every extend_grid, with no optimizer anywhere."""
    x = torch.rand(32, 3) * 2 - 1
    lay = KANLinear(3, 2)
    assert not _resize_warnings(lambda: lay.extend_grid(7))  # no optimizer at all
    opt = torch.optim.Adam(lay.parameters())
    assert not _resize_warnings(lambda: lay.extend_grid(8))  # an optimizer without state yet: nothing to misfit
    lay(x).sum().backward()
    opt.step()
    seen = _resize_warnings(lambda: lay.extend_grid(9))
    assert len(seen) == 1 and "spline_weight [2, 3, 11] -> [2, 3, 12]" in str(seen[0].message)
    other = KANLinear(3, 2)  # Adam's state for lay does not concern a layer it does not hold
    assert not _resize_warnings(lambda: other.extend_grid(9))
    del opt
    assert not _resize_warnings(lambda: lay.extend_grid(10))  # the optimizer is gone
    model = KAN([3, 2, 1])
    sgd = torch.optim.SGD(model.layers[1].parameters(), lr=0.1, momentum=0.9)
    model(x).sum().backward()
    sgd.step()
    seen = _resize_warnings(lambda: model.extend_grid(6))
    assert len(seen) == 1 and "layers.1.spline_weight" in str(seen[0].message)
    assert "layers.0" not in str(seen[0].message)
    lbfgs = torch.optim.LBFGS(model.parameters())  # its history is kept on the first parameter only

    def closure():
        lbfgs.zero_grad()
        loss = model(x).square().mean()
        loss.backward()
        return loss

    lbfgs.step(closure)
    seen = _resize_warnings(lambda: model.extend_grid(7))
    assert len(seen) == 1 and "layers.0.spline_weight" in str(seen[0].message)
