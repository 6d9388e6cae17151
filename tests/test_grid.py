"""sparsefuse.grid: the one uniformity test of the library, and the grids update_grid / extend_grid build."""

import pytest
import torch

from sparsefuse.grid import adaptive_grid, is_uniform, refined_grid, uniform_flag, uniform_grid
from sparsefuse.kan_linear import KANLinear

LOW = (torch.bfloat16, torch.float16)


@pytest.mark.parametrize("g", [1, 5, 20, 100, 1000])
@pytest.mark.parametrize("k", [1, 3, 5])
@pytest.mark.parametrize("rng", [(-1.0, 1.0), (0.0, 1.0), (-3.3, 7.1), (1000.0, 1001.0)])
def test_uniform_grids_pass_in_every_dtype(g, k, rng):
    for built in (torch.float32, torch.float64):
        grid = uniform_grid(3, g, k, rng, dtype=built)
        for dtype in (built, torch.float32, *LOW):
            resolved = torch.finfo(dtype).eps * grid.abs().max() < (rng[1] - rng[0]) / g  # else knots collide
            assert is_uniform(grid.to(dtype)) or not resolved, (built, dtype)


def test_fresh_layer_in_bfloat16_is_uniform_a_quantile_grid_is_not():
    torch.manual_seed(0)
    lay = KANLinear(4, 3, grid_size=5)
    assert is_uniform(lay.grid) and is_uniform(lay.to(torch.bfloat16).grid)
    for dtype in (torch.float32, torch.float64):
        lay = KANLinear(4, 3, grid_size=5, dtype=dtype)
        lay.update_grid(torch.randn(500, 4, dtype=dtype))
        assert not is_uniform(lay.grid)
    # a float32 grid in float64 is uniform only to float32 precision: the exact general evaluator
    assert not is_uniform(uniform_grid(2, 5, 3).double())


def test_non_uniform_rows_fail():
    grid = uniform_grid(3, 7, 3)
    bent = grid.clone()
    bent[1, 4] += 0.01 * (grid[1, 5] - grid[1, 4])  # one knot, 1% of a spacing
    assert not is_uniform(bent)
    assert not is_uniform(torch.zeros(3, 5))  # zero spacing
    assert not is_uniform(grid.flip(1))  # decreasing
    nan = grid.clone()
    nan[0, 0] = float("nan")
    assert not is_uniform(nan)
    lin = torch.linspace(-1, 1, 12)
    assert is_uniform(torch.stack([lin, 3 * lin + 1]))  # rows may differ in origin and spacing
    assert is_uniform(torch.zeros(0, 12))
    with pytest.raises(ValueError, match="grid"):
        is_uniform(torch.arange(5.0))
    with pytest.raises(ValueError, match="grid"):
        is_uniform(torch.arange(10).reshape(2, 5))


def test_uniform_flag_stays_on_device_and_compiles():
    grid = uniform_grid(3, 5, 3)
    bent = grid.clone()
    bent[0, 3] += 0.05
    flag = torch.compile(uniform_flag, fullgraph=True)
    for g, want in ((grid, True), (bent, False)):
        got = uniform_flag(g)
        assert got.dtype == torch.bool and got.dim() == 0 and got.device == g.device
        assert bool(got) == want == is_uniform(g) == bool(flag(g))


def test_adaptive_and_refined_grids():
    x = torch.rand(101, 2, dtype=torch.float64) * 3 - 1
    g = adaptive_grid(x, 4, 2, grid_eps=1.0, margin=0.0)  # grid_eps=1: uniform over the data range
    assert g.shape == (2, 4 + 2 * 2 + 1) and is_uniform(g)
    torch.testing.assert_close(g[:, 2], x.min(0).values)
    torch.testing.assert_close(g[:, -3], x.max(0).values)
    q = adaptive_grid(x, 4, 2, grid_eps=0.0, margin=0.0)  # grid_eps=0: the quantiles
    torch.testing.assert_close(q[:, 2:-2], torch.sort(x, 0)[0][[0, 25, 50, 75, 100]].T)
    r = refined_grid(q, 2, 7)
    assert r.shape == (2, 7 + 5) and is_uniform(r[:, 2:-2])  # uniform over the same [t_k, t_{G+k}] ...
    torch.testing.assert_close(r[:, [2, -3]], q[:, [2, -3]], rtol=0, atol=0)
    assert torch.equal(r[:, :2], q[:, :2]) and torch.equal(r[:, -2:], q[:, -2:])  # ... the outer knots kept
