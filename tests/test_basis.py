import math

import pytest
import torch

from sparsefuse.basis import BASES, make_basis
from sparsefuse.basis import bspline, chebyshev, fourier, power, rbf
from sparsefuse.grid import is_uniform, uniform_grid

D = torch.float64


def _grid(kind, n_in, G, k, problem):
    return problem(1, n_in, 1, G, k, kind=kind)[1]


# ---- semantics pinned (efficient-kan's) ------------------------------------------------------------

def test_bspline_semantics_half_open_zero_outside_partition_of_unity():
    G, k = 4, 3
    grid = uniform_grid(1, G, k, (-1.0, 1.0), dtype=D)
    t = grid[0]
    # order 0: indicator of [t_j, t_{j+1}); a knot belongs to the interval on its right
    b0 = bspline.cox_de_boor(t[2:3].view(1, 1), grid, 0)[0, 0]
    assert b0[2] == 1 and b0.sum() == 1
    # zero at and beyond t_end, and below t_0
    x = torch.tensor([[t[-1].item()], [t[-1].item() + 0.3], [t[0].item() - 1e-9], [-50.0], [50.0]], dtype=D)
    assert torch.all(bspline.cox_de_boor(x, grid, k) == 0)
    # partition of unity inside [t_k, t_{G+k}); strictly less in the outer intervals
    xin = torch.linspace(t[k].item(), t[G + k].item(), 201, dtype=D)[:-1].view(-1, 1)
    s = bspline.cox_de_boor(xin, grid, k).sum(-1)
    assert torch.allclose(s, torch.ones_like(s), atol=1e-14)
    xout = torch.linspace(t[0].item(), t[k].item(), 50, dtype=D)[1:-1].view(-1, 1)
    assert torch.all(bspline.cox_de_boor(xout, grid, k).sum(-1) < 1 - 1e-6)
    # at most k+1 non-zero bases, consecutive
    xs = torch.linspace(-1.9, 1.9, 301, dtype=D).view(-1, 1)
    nz = bspline.cox_de_boor(xs, grid, k)[:, 0] != 0
    assert int(nz.sum(-1).max()) <= k + 1
    # the local window agrees on every count above, with fast evaluators
    for uniform in (True, False):
        first, vals = bspline.local(xs, grid, k, uniform=uniform)
        assert first.min() >= 0 and first.max() <= G - 1
        assert torch.allclose(bspline.scatter_dense(first, vals, G + k), bspline.cox_de_boor(xs, grid, k), atol=1e-14)


def test_linear_bspline_is_a_hat():
    grid = uniform_grid(1, 2, 1, (0.0, 2.0), dtype=D)  # knots -1, 0, 1, 2, 3
    x = torch.tensor([[0.25], [1.0], [1.5]], dtype=D)
    b = bspline.cox_de_boor(x, grid, 1)[:, 0]  # bases centred at 0, 1, 2
    want = torch.tensor([[0.75, 0.25, 0.0], [0.0, 1.0, 0.0], [0.0, 0.5, 0.5]], dtype=D)
    assert torch.allclose(b, want, atol=1e-15)


@pytest.mark.parametrize("k", [1, 2, 3, 5])
@pytest.mark.parametrize("kind", ["uniform", "per_feature", "random"])
def test_local_evaluators_match_cox_de_boor(k, kind, problem):
    x, grid, _ = problem(97, 5, 1, 7, k, kind=kind)
    ref = bspline.cox_de_boor(x, grid, k)
    if kind != "random":
        assert is_uniform(grid)
        assert torch.allclose(bspline.evaluate(x, grid, k, uniform=True), ref, atol=1e-13)
    else:
        assert not is_uniform(grid)
    assert torch.allclose(bspline.evaluate(x, grid, k, uniform=False), ref, atol=1e-13)


def _per_basis_derivatives(x, grid, k):
    """d/dx and d2/dx2 of each reference basis by autograd (bases are elementwise in x)."""
    x = x.clone().requires_grad_()
    b = bspline.cox_de_boor(x, grid, k)
    d1, d2 = [], []
    for j in range(b.shape[-1]):
        g1 = torch.autograd.grad(b[..., j].sum(), x, create_graph=True, retain_graph=True)[0]
        d1.append(g1)
        g2 = torch.autograd.grad(g1.sum(), x, retain_graph=True)[0] if g1.requires_grad else torch.zeros_like(x)
        d2.append(g2)
    return torch.stack(d1, -1).detach(), torch.stack(d2, -1)


@pytest.mark.parametrize("k", [1, 2, 3, 5])
@pytest.mark.parametrize("kind", ["per_feature", "random"])
def test_bspline_derivatives_match_autograd(k, kind, problem):
    x, grid, _ = problem(41, 3, 1, 5, k, kind=kind, spread=1.0)
    d1, d2 = _per_basis_derivatives(x, grid, k)
    for uniform in ([True, False] if kind != "random" else [False]):
        assert torch.allclose(bspline.evaluate(x, grid, k, 1, uniform=uniform), d1, atol=1e-10)
        assert torch.allclose(bspline.evaluate(x, grid, k, 2, uniform=uniform), d2, atol=1e-8)
    assert torch.all(bspline.evaluate(x, grid, k, k + 1, uniform=False) == 0)


def test_bspline_derivative_finite_difference():
    k, grid = 3, uniform_grid(1, 6, 3, (-1.0, 1.0), dtype=D)
    x = torch.tensor([[-0.77], [0.1], [0.63]], dtype=D)
    eps = 1e-5
    fd = (bspline.cox_de_boor(x + eps, grid, k) - bspline.cox_de_boor(x - eps, grid, k)) / (2 * eps)
    assert torch.allclose(bspline.evaluate(x, grid, k, 1), fd, atol=1e-7)
    fd2 = (bspline.evaluate(x + eps, grid, k, 1) - bspline.evaluate(x - eps, grid, k, 1)) / (2 * eps)
    assert torch.allclose(bspline.evaluate(x, grid, k, 2), fd2, atol=1e-5)


def test_nan_inf_give_nan_bases():
    grid = uniform_grid(3, 4, 3, dtype=D)
    x = torch.tensor([[float("nan"), float("inf"), -float("inf")]], dtype=D)
    for uniform in (True, False):
        _, vals = bspline.local(x, grid, 3, uniform=uniform)
        assert torch.isnan(vals).all(-1).all()
    assert torch.isnan(bspline.cox_de_boor(x, grid, 3)).all()


# ---- MatrixKAN power form -------------------------------------------------------------------------

def test_power_matrix_cubic_is_the_known_one():
    want = torch.tensor([[1, 4, 1, 0], [-3, 0, 3, 0], [3, -6, 3, 0], [-1, 3, -3, 1]], dtype=D) / 6
    assert torch.equal(power.bspline_matrix(3), want)


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5, 7])
def test_power_form_equals_cox_de_boor(k, problem):
    x, grid, _ = problem(120, 3, 1, 6, k, kind="per_feature")
    m = power.bspline_matrix(k)
    assert torch.allclose(m[0].sum(), torch.tensor(1.0, dtype=D)) and torch.allclose(m[1:].sum(1), torch.zeros(k, dtype=D), atol=1e-14)
    assert torch.allclose(power.evaluate(x, grid, k), bspline.cox_de_boor(x, grid, k), atol=1e-12)
    d1 = bspline.evaluate(x, grid, k, 1, uniform=False)
    assert torch.allclose(power.evaluate(x, grid, k, 1), d1, atol=1e-9)


# ---- other bases ----------------------------------------------------------------------------------

def test_chebyshev_rbf_fourier_formulas():
    x = torch.linspace(-3, 3, 37, dtype=D).view(-1, 1)
    cheb = chebyshev.evaluate(x, 6)
    n = torch.arange(7, dtype=D)
    assert torch.allclose(cheb, torch.cos(n * torch.acos(torch.tanh(x)).unsqueeze(-1)), atol=1e-12)
    r = rbf.evaluate(x, -2.0, 2.0, 5)
    c = torch.linspace(-2, 2, 5, dtype=D)
    assert torch.allclose(r, torch.exp(-(((x.unsqueeze(-1) - c) / 1.0) ** 2)))
    f = fourier.evaluate(x, 3)
    assert torch.allclose(f[..., 1], torch.cos(2 * x)) and torch.allclose(f[..., 5], torch.sin(3 * x))


def test_registry_and_common_interface():
    x = torch.linspace(-0.9, 0.9, 11, dtype=D).view(-1, 1)
    assert set(BASES) == {"bspline", "power", "chebyshev", "rbf", "fourier"}
    for name in BASES:
        b = make_basis(name)
        v = b.evaluate(x)
        assert v.shape == (11, 1, b.num_basis)
        assert b.evaluate(x, 1).shape == v.shape
    # autodiff derivative of a global basis equals the analytic one
    f = make_basis("fourier", gridsize=2)
    assert torch.allclose(f.evaluate(x, 1)[..., 0], -torch.sin(x))
    assert torch.allclose(f.evaluate(x, 2)[..., 3], -4 * torch.sin(2 * x))
    bs = make_basis("bspline", grid_size=4, spline_order=2)
    first, vals = bs.local(x)
    assert torch.allclose(bspline.scatter_dense(first, vals, bs.num_basis), bs.reference(x), atol=1e-14)
    with pytest.raises(NotImplementedError):
        make_basis("chebyshev").local(x)
    with pytest.raises(ValueError, match="name"):
        make_basis("wavelet")
    with pytest.raises(ValueError, match="degree"):
        chebyshev.evaluate(x, -1)
    assert math.isclose(float(make_basis("power").evaluate(x).sum(-1)[5]), 1.0)


def test_bad_derivative_and_grid_arguments_are_named():
    grid, x = uniform_grid(2, 5, 3, dtype=D), torch.randn(4, 2, dtype=D)
    for uniform in (True, False):  # one raised a factorial error, the other a shape mismatch
        with pytest.raises(ValueError, match="derivative"):
            bspline.local(x, grid, 3, -1, uniform=uniform)
    with pytest.raises(ValueError, match="derivative"):
        power.evaluate(x, grid, 3, -1)
    with pytest.raises(ValueError, match="derivative"):  # the autograd fallback returned the values
        make_basis("chebyshev").evaluate(x, derivative=-1)
    with pytest.raises(ValueError, match="derivative"):
        make_basis("bspline", in_features=2).evaluate(x, derivative=1.5)
    for kw, name in ((dict(grid_size=0), "grid_size"), (dict(spline_order=-1), "spline_order"),
                     (dict(in_features=2.0), "in_features"), (dict(grid_range=(1.0, 1.0)), "grid_range")):
        args = dict(in_features=2, grid_size=5, spline_order=3, grid_range=(-1.0, 1.0)) | kw
        with pytest.raises(ValueError, match=name):  # grid_size=0 was a ZeroDivisionError
            uniform_grid(args["in_features"], args["grid_size"], args["spline_order"], args["grid_range"])
    np = pytest.importorskip("numpy")
    assert torch.equal(uniform_grid(np.int64(2), np.int64(5), np.int64(3), dtype=D), grid)


def test_bspline_basis_uniformity_follows_its_grid():
    # derived from the grid, never a flag that can go stale: an in-place edit, a replaced grid
    import torch

    from sparsefuse.basis import BSplineBasis

    b = BSplineBasis(3, grid_size=5, spline_order=3)
    assert b.uniform
    with torch.no_grad():
        b.grid[1, 4] += 0.3 * (b.grid[1, 5] - b.grid[1, 4])
    assert not b.uniform
    b.grid = BSplineBasis(3, grid_size=5, spline_order=3).grid
    assert b.uniform
    b.grid.data[0, 3] += 0.1  # a write that bypasses the version counter
    assert not b.uniform


def test_power_matrix_tensor_needs_no_fractions(monkeypatch):
    """The tensor ``M_k`` is built from ints: torch 2.11's Dynamo cannot trace ``Fraction.__iadd__``
    (compiled JHCG blocks failed on the H200 with an uncached matrix)."""
    class NoFraction:
        def __init__(self, *args, **kwargs):
            raise AssertionError("Fraction used on the tensor path")

    exact = {k: power.bspline_matrix_exact(k) for k in range(5)}
    monkeypatch.setattr(power, "Fraction", NoFraction)
    power._matrix_cached.cache_clear()
    power._scaled_matrix.cache_clear()
    try:
        for k in range(5):
            m = power.bspline_matrix(k, torch.float64)
            assert m.tolist() == [[float(c) for c in row] for row in exact[k]]
    finally:
        power._matrix_cached.cache_clear()
