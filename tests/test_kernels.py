"""Fused Triton primitives against the float64 naive reference (CPU interpreter or CUDA), on any grid.

Every kernel output is allocated NaN-filled (``poisoned``), so an element a kernel forgets to
write fails the comparison.  Grids: uniform per feature, random, and adaptive (close but
distinct knots, x exactly on knots and outside the grid).
"""

import pytest
import torch

pytest.importorskip("triton")  # (conftest chose the interpreter on CPU before anything imported it)

from conftest import make_problem  # noqa: E402
from sparsefuse import kernels as sk  # noqa: E402
from sparsefuse.grid import closed_form_ok, uniform_grid  # noqa: E402
from sparsefuse.kernels import dw as kdw  # noqa: E402
from sparsefuse.kernels import dx as kdx  # noqa: E402
from sparsefuse.kernels import fwd as kfwd  # noqa: E402
from sparsefuse.kernels import naive  # noqa: E402
from sparsefuse.kernels.autograd import Eager  # noqa: E402
from sparsefuse.kernels.geometry import geometry  # noqa: E402
from sparsefuse.kernels.naive import rel_err  # noqa: E402

DEV = "cuda" if torch.cuda.is_available() else "cpu"
pytestmark = [pytest.mark.skipif(not sk.available(DEV), reason="fused kernels unavailable here"),
              pytest.mark.usefixtures("poisoned")]


def case(seed, N, IN, OUT, G, k, kind="per_feature", dtype=torch.float32):
    """``(grid, x, C, g, s)`` on ``DEV``: x over the whole grid and beyond it."""
    x, grid, C = make_problem(N, IN, OUT, G, k, seed=seed, kind=kind, spread=1.3)
    gen = torch.Generator().manual_seed(seed + 1)
    g = torch.randn(N, OUT, generator=gen, dtype=torch.float64)
    s = torch.randn(N, IN, generator=gen, dtype=torch.float64)
    return [t.to(dtype).to(DEV) for t in (grid, x, C, g, s)]


def geo(grid, dtype=torch.float32):
    return geometry(grid, dtype)


def check_all(grid, x, C, g, s, k, d, strategy, tol):
    """fwd_d, dx_d and dw_d of one strategy against naive float64."""
    gd, xd, Cd, gdd, sd = (t.double() for t in (grid, x, C, g, s))
    G = geo(grid, torch.float64 if x.dtype == torch.float64 else torch.float32)
    y = kfwd.fwd(x, grid, G, C, s, k, d, strategy=strategy)
    u = kdx.dx(x, grid, G, C, g, k, d, strategy=strategy)
    w = kdw.dw(x, grid, G, g, s, k, d, C.shape[2], strategy=strategy)
    assert y.dtype == C.dtype and u.dtype == x.dtype and w.dtype == g.dtype
    for name, a, b in (("fwd", y, naive.fwd(xd, gd, Cd, k, d, sd)), ("dx", u, naive.dx(xd, gd, Cd, gdd, k, d)),
                       ("dw", w, naive.dw(xd, gd, gdd, k, d, sd))):
        assert rel_err(a, b) < tol, (name, d, strategy, rel_err(a, b))


# ---- the three primitives, both strategies, every kind of grid ---------------------

# Every (k, G) once; strategies and grid kinds alternate like a chessboard so every k, G and
# kind meets both strategies (keeps the interpreter run short).
CONFIGS = [(k, G, ("streamed", "gather")[(a + b) % 2], ("per_feature", "adaptive", "random")[(a + 2 * b) % 3])
           for a, k in enumerate((1, 2, 3, 5)) for b, G in enumerate((1, 3, 7, 12))]


@pytest.mark.parametrize("k,G,strategy,kind", CONFIGS)
def test_primitives_match_naive(k, G, strategy, kind):
    grid, x, C, g, s = case(k * 100 + G, 7 + 2 * G, 13, 5, G, k, kind)
    for d in sorted({0, 1, min(2, k + 1)}):
        check_all(grid, x, C, g, s, k, d, strategy, 1e-4)


@pytest.mark.parametrize("kind", ["uniform", "adaptive"])
@pytest.mark.parametrize("k", [3, 5])
def test_float64_primitives_are_exact(k, kind):
    # float64 stays float64 through every constant of both triangles (k >= 3 has 1/3) and the search
    grid, x, C, g, s = case(3, 11, 5, 4, 4, k, kind, dtype=torch.float64)
    for strategy in ("streamed", "gather"):
        for d in (0, 1):
            check_all(grid, x, C, g, s, k, d, strategy, 1e-12)


def test_geometry_derives_the_closed_form_flag_from_the_knots():
    # on the line within 2^-17 spacings in float32; a float32 grid in float64 is not; adaptive is not
    g32 = uniform_grid(3, 6, 3, (-1.0, 1.0)).to(DEV)
    bent = g32.clone()
    bent[1, 4] += 1e-3 * (bent[1, 5] - bent[1, 4])
    adaptive = make_problem(1, 3, 1, 6, 3, kind="adaptive")[1].float().to(DEV)
    nan = g32.clone()
    nan[2, 3] = float("nan")
    for grid, dtype, want in ((g32, torch.float32, [1, 1, 1]), (bent, torch.float32, [1, 0, 1]),
                              (g32.double(), torch.float64, [0, 0, 0]), (adaptive, torch.float32, [0, 0, 0]),
                              (nan, torch.float32, [1, 1, 0]),
                              (uniform_grid(2, 3000, 3, (-1.0, 1.0)).to(DEV), torch.float32, [0, 0])):
        G = geo(grid, dtype)
        assert G.dtype == dtype and G[3].tolist() == want, (dtype, G[3])
        assert closed_form_ok(grid[[i for i, w in enumerate(want) if w]], dtype)
        torch.testing.assert_close(G[0], grid[:, 0].to(dtype), equal_nan=True)
        torch.testing.assert_close(G[1], grid[:, -1].to(dtype), equal_nan=True)


def test_float32_error_does_not_grow_with_G():
    # issue 22 item 3: (x - t_0)/h - j lost log2(G) bits and the closed form assumed the float32
    # knots exactly on their line (kernel v2: 1.7e-5 at G=100, 1.8e-4 at G=1000); now the local
    # coordinate is taken from the knot and far-off knots are searched, at every G
    for G, tol in ((100, 5e-6), (1000, 1e-6)):
        grid, x, C, _, _ = case(5, 16, 2, 2, G, 3, "uniform")
        x = x.clamp(-1, 1)
        want = naive.spline_contract(x.double(), grid.double(), C.double(), 3)
        for strategy in ("streamed", "gather"):
            with sk.force_strategy(strategy):
                assert rel_err(sk.spline_contract(x, grid, C, 3), want) < tol, (G, strategy)


def test_a_grid_written_through_data_is_seen():
    # nothing is cached between calls: uniform -> adaptive -> uniform, written behind autograd's back
    grid, x, C, _, _ = case(6, 9, 3, 2, 5, 3, "uniform")
    adaptive = make_problem(1, 3, 1, 5, 3, kind="adaptive", seed=2)[1].float().to(DEV)
    for new in (adaptive, grid.clone(), adaptive * 0.5):
        grid.data.copy_(new)
        assert rel_err(sk.spline_contract(x, grid, C, 3), naive.spline_contract(x.double(), new.double(),
                                                                                C.double(), 3)) < 1e-4


def test_dw_is_deterministic():
    grid, x, C, g, s = case(5, 90, 4, 3, 12, 2, "adaptive")
    G = geo(grid)
    for strategy in ("streamed", "gather"):
        a = kdw.dw(x, grid, G, g, s, 2, 0, 14, strategy=strategy, split=2)
        b = kdw.dw(x, grid, G, g, s, 2, 0, 14, strategy=strategy, split=2)
        assert torch.equal(a, b)


# ---- autograd through the primitives ------------------------------------------------

def _losses(fn, x, C, w1, w2):
    """y, first derivatives, and derivatives of a PINN-like loss on the first ones."""
    y = fn(x, C)
    gx, gC = torch.autograd.grad((y * w1).sum(), (x, C), create_graph=True)
    gx2, gC2 = torch.autograd.grad((gx * w2).sum() + (gx ** 2).sum() + (gC ** 2).sum(), (x, C))
    return y, gx, gC, gx2, gC2


@pytest.mark.parametrize("strategy", ["streamed", "gather"])
@pytest.mark.parametrize("k,G,kind", [(1, 3, "uniform"), (2, 7, "adaptive"), (3, 5, "adaptive"), (5, 3, "uniform")])
def test_first_and_second_derivatives_match_naive(k, G, kind, strategy):
    grid, x, C, _, _ = case(11 * k + G, 9, 7, 5, G, k, kind)
    gen = torch.Generator().manual_seed(1)
    w1, w2 = torch.randn(9, 5, generator=gen).to(DEV), torch.randn(9, 7, generator=gen).to(DEV)
    xf, Cf = x.clone().requires_grad_(), C.clone().requires_grad_()
    xd, Cd = x.double().requires_grad_(), C.double().requires_grad_()
    with sk.force_strategy(strategy):
        got = _losses(lambda a, b: sk.spline_contract(a, grid, b, k), xf, Cf, w1, w2)
    ref = _losses(lambda a, b: naive.spline_contract(a, grid.double(), b, k), xd, Cd, w1.double(), w2.double())
    for name, a, b in zip(("y", "gx", "gC", "gx2", "gC2"), got, ref):
        assert rel_err(a, b) < 2e-4, name


def test_third_derivative_composes():
    grid, x, C, _, _ = case(21, 6, 3, 2, 4, 3, "adaptive", dtype=torch.float64)
    outs = []
    for fn in (lambda a: sk.spline_contract(a, grid, C, 3), lambda a: naive.spline_contract(a, grid, C, 3)):
        a = x.clone().requires_grad_()
        (g1,) = torch.autograd.grad(fn(a).sum(), a, create_graph=True)
        (g2,) = torch.autograd.grad(g1.sum(), a, create_graph=True)
        (g3,) = torch.autograd.grad(g2.sum(), a)
        outs.append(g3)
    assert outs[1].abs().max() > 0 and rel_err(outs[0], outs[1]) < 1e-8


@pytest.mark.parametrize("kind", ["uniform", "adaptive"])
@pytest.mark.parametrize("strategy", ["streamed", "gather"])
def test_gradcheck_and_gradgradcheck_float64(strategy, kind):
    grid, x, C, _, _ = case(4, 5, 3, 2, 3, 3, kind, dtype=torch.float64)
    x.requires_grad_()
    C.requires_grad_()

    def f(a, b):
        return sk.spline_contract(a, grid, b, 3)

    with sk.force_strategy(strategy):
        assert torch.autograd.gradcheck(f, (x, C), fast_mode=True)
        assert torch.autograd.gradgradcheck(f, (x, C), fast_mode=True)


@pytest.mark.parametrize("path", ["registered", "eager"])
@pytest.mark.parametrize("op", ["dx", "dw"])
def test_gradcheck_dx_dw_ops_float64(op, path):
    # Their backward formulas (incl. the s input) are otherwise hit only at third order.
    k, G = 2, 3  # (a random grid: x on a knot would meet the jump of the quadratic's second derivative)
    grid, x, C, g, s = case(8, 5, 3, 2, G, k, "random", dtype=torch.float64)
    gm = geo(grid, torch.float64)
    x, C, g, s = (t.requires_grad_() for t in (x, C, g, s))
    P = Eager if path == "eager" else torch.ops.sparsefuse
    if op == "dx":
        def f(a, b, c):
            return P.dx(a, grid, gm, b, c, k, 1)
        args = (x, C, g)
    else:
        def f(a, b, c):
            return P.dw(a, grid, gm, b, c, k, 1, G + k)
        args = (x, g, s)
    assert torch.autograd.gradcheck(f, args, fast_mode=True)


def test_activation_checkpointing():
    from torch.utils.checkpoint import checkpoint

    grid, x, C, _, _ = case(10, 6, 3, 2, 3, 3)
    C.requires_grad_()
    y = checkpoint(lambda b: sk.spline_contract(x, grid, b, 3), C, use_reentrant=False)
    y.sum().backward()
    ref = naive.dw(x.double(), grid.double(), torch.ones(6, 2, dtype=torch.float64), 3)
    assert rel_err(C.grad, ref) < 1e-4


# ---- shapes, layouts, special values, dtypes ------------------------------------------

def test_empty_batch():
    grid, x, C, _, _ = case(1, 4, 3, 2, 3, 3)
    x0 = x[:0].clone().requires_grad_()
    C = C.clone().requires_grad_()
    y = sk.spline_contract(x0, grid, C, 3)
    assert y.shape == (0, 2)
    y.sum().backward()
    assert x0.grad.shape == (0, 3) and torch.equal(C.grad, torch.zeros_like(C))


def test_leading_dims_and_non_contiguous_inputs():
    grid, x, C, _, _ = case(2, 24, 6, 4, 5, 3, "adaptive")
    ref = naive.spline_contract(x.double(), grid.double(), C.double(), 3)
    x3 = x.reshape(2, 3, 4, 6)
    xt = x.t().contiguous().t()  # column-major view
    Ct = C.permute(2, 0, 1).contiguous().permute(1, 2, 0)  # same values, odd strides
    gt = grid.t().contiguous().t()
    assert not xt.is_contiguous() and not Ct.is_contiguous() and not gt.is_contiguous()
    for strategy in ("streamed", "gather"):
        with sk.force_strategy(strategy):
            y3 = sk.spline_contract(x3, grid, C, 3)
            assert y3.shape == (2, 3, 4, 4) and rel_err(y3.reshape(24, 4), ref) < 1e-4
            assert rel_err(sk.spline_contract(xt, gt, Ct, 3), ref) < 1e-4


@pytest.mark.filterwarnings("ignore:invalid value encountered")
@pytest.mark.parametrize("kind", ["uniform", "adaptive"])
@pytest.mark.parametrize("strategy", ["streamed", "gather"])
def test_nan_and_inf_propagate_outside_is_zero(strategy, kind):
    grid, x, C, _, _ = case(6, 6, 3, 2, 4, 3, kind)
    x = x.clone()
    x[1, 0] = float("nan")
    x[3, 2] = float("inf")
    x[4, :] = grid[:, -1] + 1.0  # outside the grid: zero bases
    xr, Cr = x.clone().requires_grad_(), C.clone().requires_grad_()
    with sk.force_strategy(strategy):
        y = sk.spline_contract(xr, grid, Cr, 3)
        y.sum().backward()
    assert torch.isnan(y[1]).all() and torch.isnan(y[3]).all()
    finite_rows = [0, 2, 4, 5]
    assert torch.isfinite(y[finite_rows]).all() and torch.equal(y[4], torch.zeros_like(y[4]))
    ref = naive.spline_contract(x.double(), grid.double(), C.double(), 3)
    assert rel_err(y[finite_rows], ref[finite_rows]) < 1e-4
    assert torch.isnan(xr.grad[1, 0]) and torch.isnan(Cr.grad[:, 0]).any()
    assert torch.isfinite(Cr.grad[:, 1]).all()


def test_bfloat16_coefficients_and_autocast():
    grid, x, C, _, _ = case(12, 20, 6, 5, 5, 3, "adaptive")
    ref = naive.spline_contract(x.double(), grid.double(), C.double(), 3)
    for strategy in ("streamed", "gather"):
        with sk.force_strategy(strategy):
            y = sk.spline_contract(x, grid, C.bfloat16(), 3)
            assert y.dtype == torch.bfloat16 and rel_err(y, ref) < 2e-2
            xr, Cr = x.clone().requires_grad_(), C.clone().requires_grad_()
            with torch.autocast(DEV, dtype=torch.bfloat16):
                ya = sk.spline_contract(xr, grid, Cr, 3)
            assert ya.dtype == torch.bfloat16 and rel_err(ya, ref) < 2e-2
            ya.float().sum().backward()
            assert xr.grad.dtype == torch.float32 and Cr.grad.dtype == torch.float32


def test_tf32_setting_is_honoured():
    from sparsefuse.kernels import _runtime

    old = torch.get_float32_matmul_precision()
    try:
        torch.set_float32_matmul_precision("highest")
        assert _runtime.dot_precision(torch.float32) == "ieee"
        torch.set_float32_matmul_precision("high")
        assert _runtime.dot_precision(torch.float32) == "tf32"
        assert _runtime.dot_precision(torch.bfloat16) == "ieee"
        grid, x, C, _, _ = case(13, 8, 3, 2, 3, 3)
        ref = naive.spline_contract(x.double(), grid.double(), C.double(), 3)
        assert rel_err(sk.spline_contract(x, grid, C, 3), ref) < 5e-3
    finally:
        torch.set_float32_matmul_precision(old)


def test_bad_arguments_name_the_argument():
    grid, x, C, _, _ = case(15, 4, 3, 2, 3, 3)
    for args, name in (((x[:, :2], grid, C, 3), "x"), ((x.long(), grid, C, 3), "x"), ((x, grid[:2], C, 3), "grid"),
                       ((x, grid.long(), C, 3), "grid"), ((x, grid, C[:, :, :-1], 3), "coeff"),
                       ((x, grid, C, 3.0), "spline_order"), ((x, grid, C, 9), "spline_order")):
        with pytest.raises(ValueError, match=name):
            sk.spline_contract(*args)
    with pytest.raises(ValueError, match="name"):
        with sk.force_strategy("fastest"):
            pass
    assert sk.available(DEV) and not sk.available("meta")
