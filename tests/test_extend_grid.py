"""extend_grid keeps the layer's function everywhere it is used, inside the grid range and outside it,
and reports the largest change it made (issue 22, item 2)."""

import warnings

import pytest
import torch

import sparsefuse
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
    assert lay._grid_uniform()
