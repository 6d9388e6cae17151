import pytest
import torch
from torch.autograd import gradcheck, gradgradcheck
from torch.utils._python_dispatch import TorchDispatchMode

from sparsefuse.paths import PATH_NAMES, check_inputs, get_path
from sparsefuse.paths.sparse import bag_contract, gather_contract

FAST = ("dense", "sparse")
D = torch.float64


@pytest.mark.parametrize("k", [1, 2, 3, 5])
@pytest.mark.parametrize("kind", ["uniform", "per_feature", "random"])
@pytest.mark.parametrize("dims", [(37, 5, 3, 7), (1, 1, 1, 1), (64, 3, 11, 13)])
def test_paths_match_reference(k, kind, dims, problem):
    n, n_in, n_out, g = dims
    x, grid, coeff = problem(n, n_in, n_out, g, k, kind=kind, seed=k * 7 + g)
    ref = get_path("reference")(x, grid, coeff, k)
    assert ref.shape == (n, n_out)
    for name in FAST:
        for uniform in (None, kind != "random"):
            y = get_path(name)(x, grid, coeff, k, uniform=uniform)
            torch.testing.assert_close(y, ref, rtol=1e-12, atol=1e-12)


def test_paths_float32_close_to_float64(problem):
    x, grid, coeff = problem(50, 4, 3, 6, 3)
    ref = get_path("reference")(x, grid, coeff, 3)
    for name in PATH_NAMES:
        y = get_path(name)(x.float(), grid.float(), coeff.float(), 3)
        assert y.dtype == torch.float32
        torch.testing.assert_close(y.double(), ref, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", PATH_NAMES)
@pytest.mark.parametrize("kind", ["uniform", "random"])
def test_gradcheck_and_gradgradcheck(name, kind, problem):
    x, grid, coeff = problem(5, 2, 2, 4, 3, kind=kind, spread=1.2)
    x.requires_grad_()
    coeff.requires_grad_()
    f = lambda x, c: get_path(name)(x, grid, c, 3)  # noqa: E731
    assert gradcheck(f, (x, coeff))
    assert gradgradcheck(lambda x: f(x, coeff.detach()), (x,))
    assert gradgradcheck(lambda c: f(x.detach(), c), (coeff,))


@pytest.mark.parametrize("name", FAST)
def test_second_derivative_in_x_matches_reference(name, problem):
    """PINN-style: d2y/dx2 through the fast paths equals the reference's."""
    x, grid, coeff = problem(20, 2, 3, 5, 3, spread=0.9)
    out = []
    for p in ("reference", name):
        xr = x.clone().requires_grad_()
        y = get_path(p)(xr, grid, coeff, 3).sum()
        (g,) = torch.autograd.grad(y, xr, create_graph=True)
        (h,) = torch.autograd.grad(g.sum(), xr)
        out.append((g.detach(), h))
    torch.testing.assert_close(out[1], out[0], rtol=1e-10, atol=1e-10)


def test_sparse_native_and_twin_gradients_agree(gen):
    rows = torch.randint(0, 30, (9, 8), generator=gen)
    vals = torch.randn(9, 8, generator=gen, dtype=D, requires_grad=True)
    table = torch.randn(30, 4, generator=gen, dtype=D, requires_grad=True)
    gy = torch.randn(9, 4, generator=gen, dtype=D)
    a = torch.autograd.grad(bag_contract(vals, table, rows), (vals, table), gy)
    b = torch.autograd.grad(gather_contract(vals, table, rows, chunk_elements=50), (vals, table), gy)
    torch.testing.assert_close(a, b)


class _Sizes(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.largest = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(t, torch.Tensor):
                self.largest = max(self.largest, t.numel())
        return out


@pytest.mark.parametrize("uniform", [True, False])
def test_sparse_never_builds_the_dense_basis(uniform, problem):
    n, n_in, n_out, g, k = 64, 8, 2, 200, 3
    x, grid, coeff = problem(n, n_in, n_out, g, k, kind="uniform" if uniform else "random")
    x.requires_grad_()
    coeff.requires_grad_()
    dense_size = n * n_in * (g + k)
    for name, expect_big in (("dense", True), ("sparse", False)):
        with _Sizes() as s:
            y = get_path(name)(x, grid, coeff, k, uniform=uniform)
            y.sum().backward()
        assert (s.largest >= dense_size) == expect_big, (name, s.largest, dense_size)


@pytest.mark.parametrize("name", PATH_NAMES)
def test_empty_batch_nan_and_inf(name, problem):
    x, grid, coeff = problem(5, 3, 2, 4, 3)
    f = get_path(name)
    y0 = f(x[:0], grid, coeff, 3)
    assert y0.shape == (0, 2)
    x = x.clone()
    x[1, 0] = float("nan")
    x[2, 1] = float("inf")
    x[3, 2] = -float("inf")
    y = f(x, grid, coeff, 3)
    assert torch.isnan(y[1:4]).all() and torch.isfinite(y[[0, 4]]).all()


def test_check_inputs_names_the_argument(problem):
    x, grid, coeff = problem(5, 3, 2, 4, 3)
    with pytest.raises(ValueError, match="x"):
        check_inputs(x[:, :2], grid, coeff, 3)
    with pytest.raises(ValueError, match="x"):
        check_inputs(x.long(), grid, coeff, 3)
    with pytest.raises(ValueError, match="grid"):
        check_inputs(x, grid[:2], coeff, 3)
    with pytest.raises(ValueError, match="coeff"):
        check_inputs(x, grid, coeff[..., :-1], 3)
    with pytest.raises(ValueError, match="spline_order"):
        check_inputs(x, grid, coeff, 0)
    with pytest.raises(ValueError, match="name"):
        get_path("fast")


@pytest.mark.parametrize("name", FAST)
def test_float32_closed_form_error_does_not_grow_with_G(name):
    # issue 22 item 3: the closed form took (x - t_0)/h - m (losing log2(m) bits) and assumed the
    # float32 knots exactly on their line: 4e-6 at G=100 and 2.6e-5 at G=1000 against float64 on
    # the same knots, the reference path 1e-7; now (x - t_m)/h, and the knots where they are off it
    from sparsefuse.grid import uniform_grid

    gen = torch.Generator().manual_seed(5)
    for G, tol in ((100, 3e-6), (1000, 5e-7)):
        grid = uniform_grid(2, G, 3, (-1.0, 1.0))
        x = torch.rand(256, 2, generator=gen) * 2 - 1
        coeff = torch.randn(2, 2, G + 3, generator=gen)
        want = get_path("reference")(x.double(), grid.double(), coeff.double(), 3)
        got = get_path(name)(x, grid, coeff, 3)
        assert ((got.double() - want).abs().max() / want.abs().max()).item() < tol, G
