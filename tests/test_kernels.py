"""Fused Triton primitives against the float64 naive reference (CPU interpreter or CUDA).

Every kernel output is allocated NaN-filled (``poison_outputs``), so an element a
kernel forgets to write fails the comparison.
"""

import contextlib
import os

import pytest
import torch

pytest.importorskip("triton")  # (conftest chose the interpreter on CPU before anything imported it)

from sparsefuse import kernels as sk  # noqa: E402
from sparsefuse.grid import is_uniform  # noqa: E402
from sparsefuse.kernels import dw as kdw  # noqa: E402
from sparsefuse.kernels import dx as kdx  # noqa: E402
from sparsefuse.kernels import fwd as kfwd  # noqa: E402
from sparsefuse.kernels import naive  # noqa: E402
from sparsefuse.kernels.naive import rel_err  # noqa: E402
from sparsefuse.kernels import ops  # noqa: E402

DEV = "cuda" if torch.cuda.is_available() else "cpu"
pytestmark = [pytest.mark.skipif(not sk.available(DEV), reason="fused kernels unavailable here"),
              pytest.mark.usefixtures("poisoned")]


def make_grid(n_in, G, k, gen, dtype=torch.float32):
    """Distinct uniform grid per feature, built like efficient-kan (arange * h + lo)."""
    lo = torch.rand(n_in, generator=gen, dtype=torch.float64) - 1.5
    h = (torch.rand(n_in, generator=gen, dtype=torch.float64) + 0.5) * 2.0 / G
    knots = torch.arange(-k, G + k + 1, dtype=torch.float64)
    return (lo[:, None] + h[:, None] * knots).to(dtype).to(DEV)


def make_x(N, grid, gen, dtype=torch.float32):
    """Inputs over the whole extended grid plus a margin outside it on both sides."""
    g = grid.double().cpu()
    a, b = g[:, 0], g[:, -1]
    span = b - a
    u = torch.rand(N, grid.shape[0], generator=gen, dtype=torch.float64) * 1.3 - 0.15
    return (a + u * span).to(dtype).to(DEV)


def geo(grid, dtype=torch.float32):
    return sk.geometry(grid, dtype)


def case(seed, N, IN, OUT, G, k, dtype=torch.float32):
    gen = torch.Generator().manual_seed(seed)
    grid = make_grid(IN, G, k, gen, torch.float64 if dtype == torch.float64 else torch.float32)
    x = make_x(N, grid, gen, dtype)
    C = torch.randn(OUT, IN, G + k, generator=gen, dtype=torch.float64).to(dtype).to(DEV)
    g = torch.randn(N, OUT, generator=gen, dtype=torch.float64).to(dtype).to(DEV)
    s = torch.randn(N, IN, generator=gen, dtype=torch.float64).to(dtype).to(DEV)
    return grid, x, C, g, s


# ---- the three primitives, every strategy, against naive float64 ---------------------

# Every (k, G) once; strategies alternate like a chessboard so every k and every G
# meets both strategies (keeps the interpreter run short).
CONFIGS = [(k, G, ("dense", "sparse")[(a + b) % 2])
           for a, k in enumerate((1, 2, 3, 5)) for b, G in enumerate((1, 3, 7, 12))]


@pytest.mark.parametrize("k,G,strategy", CONFIGS)
def test_primitives_match_naive(k, G, strategy):
    grid, x, C, g, s = case(k * 100 + G, 7 + 2 * G, 13, 5, G, k)
    t0, ih = geo(grid)
    gd, xd, Cd, gdd, sd = grid.double(), x.double(), C.double(), g.double(), s.double()
    for d in sorted({0, 1, min(2, k + 1)}):
        y = kfwd.fwd(x, t0, ih, C, s, k, d, strategy=strategy)
        u = kdx.dx(x, t0, ih, C, g, k, d, strategy=strategy)
        w = kdw.dw(x, t0, ih, g, s, k, d, G + k, strategy=strategy)
        assert rel_err(y, naive.fwd(xd, gd, Cd, k, d, sd)) < 1e-4, ("fwd", d)
        assert rel_err(u, naive.dx(xd, gd, Cd, gdd, k, d)) < 1e-4, ("dx", d)
        assert rel_err(w, naive.dw(xd, gd, gdd, k, d, sd)) < 1e-4, ("dw", d)
        assert y.dtype == C.dtype and u.dtype == x.dtype and w.dtype == g.dtype


@pytest.mark.parametrize("strategy", ["dense", "sparse"])
def test_multi_block_sizes_and_row_splits(strategy):
    # Several blocks along every axis, both dw row-split paths (sparse) and, for the
    # dense strategy, budgets that force several row chunks and both dw chunkings
    # (accumulated row chunks; blocks of features over all rows).
    from sparsefuse.kernels import streamed

    k, G = 3, 5
    grid, x, C, g, s = case(7, 150, 9, 40, G, k)
    t0, ih = geo(grid)
    gd, xd, Cd, gdd, sd = grid.double(), x.double(), C.double(), g.double(), s.double()
    ref = naive.dw(xd, gd, gdd, k, 0, sd)
    budgets = (None, 150 * 8 * 4, 4000) if strategy == "dense" else (None,)
    for budget in budgets:
        ctx = streamed.chunk_budget(budget) if budget else contextlib.nullcontext()
        with ctx:
            assert rel_err(kfwd.fwd(x, t0, ih, C, None, k, 0, strategy=strategy),
                           naive.fwd(xd, gd, Cd, k, 0)) < 1e-4, budget
            assert rel_err(kdx.dx(x, t0, ih, C, g, k, 1, strategy=strategy),
                           naive.dx(xd, gd, Cd, gdd, k, 1)) < 1e-4, budget
            for split in (1, 3):
                w = kdw.dw(x, t0, ih, g, s, k, 0, G + k, strategy=strategy, split=split)
                assert rel_err(w, ref) < 1e-4, (split, budget)
            wb = kdw.dw(x, t0, ih, g.bfloat16(), s, k, 0, G + k, strategy=strategy)
            assert wb.dtype == torch.bfloat16 and rel_err(wb, ref) < 2e-2, budget


@pytest.mark.parametrize("k", [3, 5])
def test_float64_primitives_are_exact(k):
    # float64 stays float64 through every constant of the on-chip triangle (k >= 3 has 1/3).
    G = 4
    grid, x, C, g, s = case(3, 11, 5, 4, G, k, dtype=torch.float64)
    t0, ih = geo(grid, torch.float64)
    for strategy in ("dense", "sparse"):
        for d in (0, 1):
            assert rel_err(kfwd.fwd(x, t0, ih, C, s, k, d, strategy=strategy),
                           naive.fwd(x, grid.double(), C, k, d, s)) < 1e-12
            assert rel_err(kdx.dx(x, t0, ih, C, g, k, d, strategy=strategy),
                           naive.dx(x, grid.double(), C, g, k, d)) < 1e-12
        assert rel_err(kdw.dw(x, t0, ih, g, None, k, 2, G + k, strategy=strategy),
                       naive.dw(x, grid.double(), g, k, 2)) < 1e-12


def test_dw_is_deterministic():
    k, G = 2, 12
    grid, x, C, g, s = case(5, 90, 4, 3, G, k)
    t0, ih = geo(grid)
    for strategy in ("dense", "sparse"):
        a = kdw.dw(x, t0, ih, g, s, k, 0, G + k, strategy=strategy, split=2)
        b = kdw.dw(x, t0, ih, g, s, k, 0, G + k, strategy=strategy, split=2)
        assert torch.equal(a, b)


# ---- autograd through the custom ops ------------------------------------------------

def _losses(fn, x, C, w1, w2):
    """y, first derivatives, and derivatives of a PINN-like loss on the first ones."""
    y = fn(x, C)
    L = (y * w1).sum()
    gx, gC = torch.autograd.grad(L, (x, C), create_graph=True)
    L2 = (gx * w2).sum() + (gx ** 2).sum() + (gC ** 2).sum()
    gx2, gC2 = torch.autograd.grad(L2, (x, C))
    return y, gx, gC, gx2, gC2


@pytest.mark.parametrize("strategy", ["dense", "sparse"])
@pytest.mark.parametrize("k,G", [(1, 3), (2, 7), (3, 5), (5, 3)])
def test_first_and_second_derivatives_match_naive(k, G, strategy):
    grid, x, C, _, _ = case(11 * k + G, 9, 7, 5, G, k)
    gen = torch.Generator().manual_seed(1)
    w1 = torch.randn(9, 5, generator=gen).to(DEV)
    w2 = torch.randn(9, 7, generator=gen).to(DEV)
    xf, Cf = x.clone().requires_grad_(), C.clone().requires_grad_()
    xd, Cd = x.double().requires_grad_(), C.double().requires_grad_()
    with sk.force_strategy(strategy):
        got = _losses(lambda a, b: sk.spline_contract(a, grid, b, k), xf, Cf, w1, w2)
    ref = _losses(lambda a, b: naive.spline_contract(a, grid.double(), b, k), xd, Cd,
                  w1.double(), w2.double())
    for name, a, b in zip(("y", "gx", "gC", "gx2", "gC2"), got, ref):
        assert rel_err(a, b) < 2e-4, name


def test_third_derivative_composes():
    k, G = 3, 4
    grid, x, C, _, _ = case(21, 6, 3, 2, G, k, dtype=torch.float64)
    outs = []
    for fn in (lambda a: sk.spline_contract(a, grid, C, k),
               lambda a: naive.spline_contract(a, grid.double(), C, k)):
        a = x.clone().requires_grad_()
        y = fn(a).sum()
        (g1,) = torch.autograd.grad(y, a, create_graph=True)
        (g2,) = torch.autograd.grad(g1.sum(), a, create_graph=True)
        (g3,) = torch.autograd.grad(g2.sum(), a)
        outs.append(g3)
    assert outs[1].abs().max() > 0
    assert rel_err(outs[0], outs[1]) < 1e-8


@pytest.mark.parametrize("strategy", ["dense", "sparse"])
def test_gradcheck_and_gradgradcheck_float64(strategy):
    k, G = 3, 3
    grid, x, C, _, _ = case(4, 5, 3, 2, G, k, dtype=torch.float64)
    x.requires_grad_()
    C.requires_grad_()

    def f(a, b):
        return sk.spline_contract(a, grid, b, k)

    with sk.force_strategy(strategy):
        assert torch.autograd.gradcheck(f, (x, C), fast_mode=True)
        assert torch.autograd.gradgradcheck(f, (x, C), fast_mode=True)


@pytest.mark.parametrize("path", ["custom_op", "eager"])
@pytest.mark.parametrize("op", ["dx", "dw"])
def test_gradcheck_dx_dw_ops_float64(op, path):
    # Their backward formulas (incl. the s input) are otherwise hit only at third order.
    k, G = 2, 3
    grid, x, C, g, s = case(8, 5, 3, 2, G, k, dtype=torch.float64)
    t0, ih = geo(grid, torch.float64)
    x, C, g, s = (t.requires_grad_() for t in (x, C, g, s))
    P = ops._Eager if path == "eager" else torch.ops.sparsefuse
    if op == "dx":
        def f(a, b, c):
            return P.dx(a, t0, ih, b, c, k, 1)
        args = (x, C, g)
    else:
        def f(a, b, c):
            return P.dw(a, t0, ih, b, c, k, 1, G + k)
        args = (x, g, s)
    assert torch.autograd.gradcheck(f, args, fast_mode=True)


def test_torch_compile_fullgraph_has_no_graph_break():
    k, G = 3, 5
    grid, x, C, _, _ = case(9, 7, 4, 3, G, k)

    def f(a, b):
        y = sk.spline_contract(torch.tanh(a), grid, b, k)
        return (y ** 2).sum()

    a1, b1 = x.clone().requires_grad_(), C.clone().requires_grad_()
    a2, b2 = x.clone().requires_grad_(), C.clone().requires_grad_()
    backend = "inductor" if DEV == "cuda" else "aot_eager"  # inductor on CPU: slow C++ build
    torch._dynamo.reset()
    loss = torch.compile(f, fullgraph=True, backend=backend)(a1, b1)
    loss.backward()
    ref = f(a2, b2)
    ref.backward()
    assert rel_err(loss, ref) < 1e-6
    assert rel_err(a1.grad, a2.grad) < 1e-5 and rel_err(b1.grad, b2.grad) < 1e-5


def test_activation_checkpointing():
    from torch.utils.checkpoint import checkpoint

    k, G = 3, 3
    grid, x, C, _, _ = case(10, 6, 3, 2, G, k)
    C.requires_grad_()
    y = checkpoint(lambda b: sk.spline_contract(x, grid, b, k), C, use_reentrant=False)
    y.sum().backward()
    ref = naive.dw(x.double(), grid.double(), torch.ones(6, 2, dtype=torch.float64), k)
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
    k, G = 3, 5
    grid, x, C, _, _ = case(2, 24, 6, 4, G, k)
    ref = naive.spline_contract(x.double(), grid.double(), C.double(), k)
    x3 = x.reshape(2, 3, 4, 6)
    xt = x.t().contiguous().t()  # column-major view
    Ct = C.permute(2, 0, 1).contiguous().permute(1, 2, 0)  # same values, odd strides
    assert not xt.is_contiguous() and not Ct.is_contiguous()
    for strategy in ("dense", "sparse"):
        with sk.force_strategy(strategy):
            y3 = sk.spline_contract(x3, grid, C, k)
            assert y3.shape == (2, 3, 4, 4)
            assert rel_err(y3.reshape(24, 4), ref) < 1e-4
            assert rel_err(sk.spline_contract(xt, grid, Ct, k), ref) < 1e-4


@pytest.mark.filterwarnings("ignore:invalid value encountered")
@pytest.mark.parametrize("strategy", ["dense", "sparse"])
def test_nan_and_inf_propagate_outside_is_zero(strategy):
    k, G = 3, 4
    grid, x, C, _, _ = case(6, 6, 3, 2, G, k)
    x = x.clone()
    x[1, 0] = float("nan")
    x[3, 2] = float("inf")
    x[4, :] = grid[:, -1] + 1.0  # outside the grid: zero bases
    xr = x.clone().requires_grad_()
    Cr = C.clone().requires_grad_()
    with sk.force_strategy(strategy):
        y = sk.spline_contract(xr, grid, Cr, k)
        y.sum().backward()
    assert torch.isnan(y[1]).all() and torch.isnan(y[3]).all()
    finite_rows = [0, 2, 4, 5]
    assert torch.isfinite(y[finite_rows]).all()
    assert torch.equal(y[4], torch.zeros_like(y[4]))
    ref = naive.spline_contract(x.double(), grid.double(), C.double(), k)
    assert rel_err(y[finite_rows], ref[finite_rows]) < 1e-4
    assert torch.isnan(xr.grad[1, 0]) and torch.isnan(Cr.grad[:, 0]).any()
    assert torch.isfinite(Cr.grad[:, 1]).all()


def test_bfloat16_coefficients_and_autocast():
    k, G = 3, 5
    grid, x, C, _, _ = case(12, 20, 6, 5, G, k)
    ref = naive.spline_contract(x.double(), grid.double(), C.double(), k)
    for strategy in ("dense", "sparse"):
        with sk.force_strategy(strategy):
            y = sk.spline_contract(x, grid, C.bfloat16(), k)
            assert y.dtype == torch.bfloat16 and rel_err(y, ref) < 2e-2
            xr = x.clone().requires_grad_()
            Cr = C.clone().requires_grad_()
            with torch.autocast(DEV, dtype=torch.bfloat16):
                ya = sk.spline_contract(xr, grid, Cr, k)
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


def test_matches_reference_path():
    reference = pytest.importorskip("sparsefuse.paths.reference")
    k, G = 3, 5
    grid, x, C, _, _ = case(14, 17, 5, 3, G, k)
    ref = reference.spline_contract(x.double(), grid.double(), C.double(), k)
    for strategy in ("dense", "sparse"):
        with sk.force_strategy(strategy):
            assert rel_err(sk.spline_contract(x, grid, C, k), ref) < 1e-4


# ---- argument checking ---------------------------------------------------------------

def test_bad_arguments_name_the_argument():
    grid, x, C, _, _ = case(15, 4, 3, 2, 3, 3)
    with pytest.raises(ValueError, match="x"):
        sk.spline_contract(x[:, :2], grid, C, 3)
    with pytest.raises(ValueError, match="x"):
        sk.spline_contract(x.long(), grid, C, 3)
    with pytest.raises(ValueError, match="grid"):
        sk.spline_contract(x, grid[:2], C, 3)
    with pytest.raises(ValueError, match="coeff"):
        sk.spline_contract(x, grid, C[:, :, :-1], 3)
    with pytest.raises(ValueError, match="spline_order"):
        sk.spline_contract(x, grid, C, 3.0)
    with pytest.raises(ValueError, match="spline_order"):
        sk.spline_contract(x, grid, C, 9)
    bent = grid.clone()
    bent[1, 4] += 0.3 * (bent[1, 5] - bent[1, 4])
    assert not is_uniform(bent) and is_uniform(grid)
    with pytest.raises(ValueError, match="grid"):
        sk.spline_contract(x, bent, C, 3)
    with pytest.raises(ValueError, match="grid"):
        sk.spline_contract(x, grid, C, 3, uniform=False)
    mutable = grid.clone()
    sk.spline_contract(x, mutable, C, 3)  # uniform: accepted (and the check cached)
    mutable.copy_(bent)  # in-place change must invalidate the cached check
    with pytest.raises(ValueError, match="grid"):
        sk.spline_contract(x, mutable, C, 3)
    with pytest.raises(ValueError, match="name"):
        with sk.force_strategy("fastest"):
            pass


def test_available_and_uniform_checks():
    assert sk.available(DEV)
    assert not sk.available("meta")
    assert not is_uniform(torch.zeros(3, 5))  # zero spacing
    with pytest.raises(ValueError, match="grid"):
        is_uniform(torch.arange(5.0))  # not 2-D
    lin = torch.linspace(-1, 1, 12)
    assert is_uniform(torch.stack([lin, 3 * lin + 1]))


def test_eager_functions_and_custom_ops_agree_to_second_order():
    # Eager code runs the autograd.Functions, torch.compile the custom ops: same kernels,
    # same formulas, so first and second derivatives must agree bit for bit.
    k, G = 3, 4
    grid, x, C, g, s = case(17, 23, 5, 7, G, k, torch.float64)
    t0, ih = geo(grid, torch.float64)
    results = []
    for P in (ops._Eager, ops._CustomOps):
        xx = x.clone().requires_grad_()
        cc = C.clone().requires_grad_()
        ss = s.clone().requires_grad_()
        y = P.fwd(xx, t0, ih, cc, ss, k, 0)
        gx, gc, gs = torch.autograd.grad((y * g).sum(), (xx, cc, ss), create_graph=True)
        hx, hc = torch.autograd.grad((gx ** 2).sum() + (gc * gc).sum() + gs.sum(), (xx, cc))
        results.append([t.detach() for t in (y, gx, gc, gs, hx, hc)])
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert ops.primitives() is ops._Eager


def test_custom_op_registration_passes_opcheck():
    # schema, fake tensors, autograd registration, AOT dispatch with dynamic shapes
    k, G = 2, 3
    grid, x, C, g, s = case(16, 5, 3, 2, G, k)
    t0, ih = geo(grid)
    x, C = x.requires_grad_(), C.requires_grad_()
    ops = torch.ops.sparsefuse
    for op, args in ((ops.fwd.default, (x, t0, ih, C, s, k, 0)),
                     (ops.dx.default, (x, t0, ih, C, g, k, 1)),
                     (ops.dw.default, (x, t0, ih, g, s, k, 0, G + k))):
        torch.library.opcheck(op, args)


# ---- launch configs: data files, run-time override, num_stages ----------------------

class _LaunchSpy:
    """Stands in for a kernel: records each launch's grid and keywords, then launches."""

    def __init__(self, kernel):
        self.kernel, self.calls = kernel, []

    def __getitem__(self, grid):
        launch = self.kernel[grid]

        def run(*args, **kwargs):
            self.calls.append((tuple(grid), kwargs))
            return launch(*args, **kwargs)
        return run


def test_override_config_changes_the_launch_not_the_result(monkeypatch):
    from sparsefuse.kernels import dispatch

    k, G = 3, 5
    grid, x, C, g, s = case(11, 37, 6, 20, G, k)
    t0, ih = geo(grid)
    spy = _LaunchSpy(kfwd._fwd_sparse_kernel)
    monkeypatch.setattr(kfwd, "_fwd_sparse_kernel", spy)
    base = kfwd.fwd(x, t0, ih, C, None, k, 0, strategy="sparse")
    entry = dispatch.config("fwd", "sparse", "ieee")  # float32 at "highest" precision
    with dispatch.override_config("fwd", "sparse", BLOCK_N=16, num_stages=3) as cfg:
        assert dispatch.config("fwd", "sparse", "ieee") == cfg
        assert cfg["BLOCK_N"] == 16 and cfg["num_stages"] == 3
        tuned = kfwd.fwd(x, t0, ih, C, None, k, 0, strategy="sparse")
    after = kfwd.fwd(x, t0, ih, C, None, k, 0, strategy="sparse")
    (g0, kw0), (g1, kw1), (g2, kw2) = spy.calls
    assert kw1["BLOCK_N"] == 16 and g1[0] == 3 and kw1["num_stages"] == 3
    assert kw0 == kw2 and g0 == g2 and kw0["BLOCK_N"] == entry["BLOCK_N"]
    assert dispatch.config("fwd", "sparse", "ieee") == entry
    torch.testing.assert_close(tuned, base, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(after, base, rtol=0, atol=0)
    assert rel_err(tuned, naive.fwd(x.double(), grid.double(), C.double(), k, 0)) < 1e-4


def test_stream_settings_change_the_launch_not_the_result(monkeypatch):
    from sparsefuse.kernels import dispatch, streamed

    k, G = 3, 5
    grid, x, C, g, s = case(12, 41, 6, 7, G, k)
    t0, ih = geo(grid)
    spy = _LaunchSpy(streamed._basis_block_kernel)
    monkeypatch.setattr(streamed, "_basis_block_kernel", spy)
    base = kfwd.fwd(x, t0, ih, C, s, k, 0, strategy="dense")
    with dispatch.override_config("stream", "dense", BASIS_BLOCK_N=16, BASIS_BLOCK_I=2):
        tuned = kfwd.fwd(x, t0, ih, C, s, k, 0, strategy="dense")
    (g0, kw0), (g1, kw1) = spy.calls
    assert (kw1["BLOCK_N"], kw1["BLOCK_I"], g1) == (16, 2, (3, 3))
    torch.testing.assert_close(tuned, base, rtol=1e-5, atol=1e-5)


def test_override_config_rejects_bad_keys():
    from sparsefuse.kernels import dispatch

    bad = [(("fwd", "sparse"), dict(BLOCK_I=8), "BLOCK_I"),      # not a key of this launch
           (("dx", "sparse"), dict(WINDOW=16), "WINDOW"),
           (("fwd", "sparse"), dict(BLOCK_N=48), "BLOCK_N"),    # not a power of two
           (("dw", "sparse"), dict(num_warps=0), "num_warps"),
           (("stream", "dense"), dict(BASIS_BLOCK_I=3), "BASIS_BLOCK_I"),
           (("stream", "dense"), dict(basis_scatter=1), "basis_scatter"),  # a retired key
           (("bwd", "sparse"), dict(BLOCK_N=32), "primitive"),
           (("fwd", "auto"), dict(BLOCK_N=32), "strategy")]
    for (prim, strat), cfg, name in bad:
        with pytest.raises(ValueError, match=name):
            with dispatch.override_config(prim, strat, **cfg):
                pass
    assert not dispatch._overrides  # nothing left behind by a failed override


def test_config_files_lookup_order_and_atomic_write(monkeypatch, tmp_path):
    # A GPU's own file wins over default.json key by key; a class entry over the plain one;
    # write_gpu_table merges, validates and replaces the file atomically.
    from sparsefuse.kernels import dispatch

    monkeypatch.setattr(dispatch, "CONFIG_DIR", str(tmp_path))
    dispatch.load_table.cache_clear()
    try:
        path = dispatch.write_gpu_table("Test GPU", {
            "launch": {"fwd/sparse/bf16": {"BLOCK_O": 32}},
            "dense_max_bases": {"fwd/ieee": 3}}, "test")
        assert os.path.basename(path) == "Test_GPU.json"
        gpu = dispatch.load_table("Test_GPU.json")
        tables = (gpu, dispatch._DEFAULT)
        monkeypatch.setattr(dispatch, "tables", lambda device=None: tables)
        monkeypatch.setattr(dispatch, "_merged", {})
        assert dispatch.config("fwd", "sparse", "bf16")["BLOCK_O"] == 32
        assert dispatch.config("fwd", "sparse", "bf16")["BLOCK_N"] == dispatch._DEFAULT["launch"][
            ("fwd", "sparse")]["BLOCK_N"]
        assert dispatch.choose("fwd", 4, "ieee") == "sparse" and dispatch.choose("fwd", 3, "ieee") == "dense"
        assert dispatch.choose("dx", 4, "ieee") == dispatch.choose("dx", 4, "ieee")
        with pytest.raises(ValueError, match="BLOCK_O"):
            dispatch.write_gpu_table("Test GPU", {"launch": {"fwd/sparse": {"BLOCK_O": 24}}}, "bad")
        assert dispatch.load_table("Test_GPU.json")["launch"][("fwd", "sparse", "bf16")] == {"BLOCK_O": 32}
    finally:
        dispatch.load_table.cache_clear()


def test_num_stages_entry_is_accepted():
    # The interpreter ignores num_stages; on CUDA it reaches the compiler.
    from sparsefuse.kernels import dispatch

    k, G = 2, 3
    grid, x, C, g, s = case(13, 19, 5, 6, G, k)
    t0, ih = geo(grid)
    gd, xd, Cd, gdd = grid.double(), x.double(), C.double(), g.double()
    with dispatch.override_config("fwd", "sparse", num_stages=2), \
            dispatch.override_config("dx", "sparse", num_stages=2), \
            dispatch.override_config("dw", "sparse", num_stages=2):
        assert dispatch.launch_options(dispatch.config("dw", "sparse"))["num_stages"] == 2
        assert rel_err(kfwd.fwd(x, t0, ih, C, None, k, 0, strategy="sparse"),
                       naive.fwd(xd, gd, Cd, k, 0)) < 1e-4
        assert rel_err(kdx.dx(x, t0, ih, C, g, k, 1, strategy="sparse"),
                       naive.dx(xd, gd, Cd, gdd, k, 1)) < 1e-4
        assert rel_err(kdw.dw(x, t0, ih, g, None, k, 0, G + k, strategy="sparse"),
                       naive.dw(xd, gd, gdd, k, 0)) < 1e-4
    with dispatch.override_config("fwd", "sparse", num_stages=None) as cfg:
        assert "num_stages" not in cfg and "num_stages" not in dispatch.launch_options(cfg)


@pytest.mark.parametrize("budget_features", [8, 16])
def test_dense_feature_blocks_match_naive(monkeypatch, budget_features):
    # A budget that holds 8 or 16 features of all rows but not all features: forward and dW
    # run in blocks of features (column offsets 16-byte aligned), accumulated / written per block.
    from sparsefuse.kernels import streamed

    k, G, N, IN = 3, 5, 40, 21
    grid, x, C, g, s = case(31, N, IN, 6, G, k)
    t0, ih = geo(grid)
    seen = []
    real = streamed.write_basis
    monkeypatch.setattr(streamed, "write_basis", lambda *a, **kw: seen.append(a[8]) or real(*a, **kw))
    gd, xd, Cd, gdd, sd = grid.double(), x.double(), C.double(), g.double(), s.double()
    with streamed.chunk_budget(budget_features * N * (G + k) * 4):
        y = kfwd.fwd(x, t0, ih, C, s, k, 0, strategy="dense")
        w = kdw.dw(x, t0, ih, g, s, k, 1, G + k, strategy="dense")
        wb = kdw.dw(x, t0, ih, g.bfloat16(), s, k, 0, G + k, strategy="dense")
    assert sorted(set(seen)) == list(range(0, IN, budget_features))  # the blocks' first features
    assert rel_err(y, naive.fwd(xd, gd, Cd, k, 0, sd)) < 1e-5
    assert rel_err(w, naive.dw(xd, gd, gdd, k, 1, sd)) < 1e-5
    assert rel_err(wb, naive.dw(xd, gd, gdd, k, 0, sd)) < 2e-2


def test_launch_specs_name_real_kernels_and_check_configs():
    from sparsefuse.kernels import dispatch, dw, dx, fwd, streamed
    from sparsefuse.kernels.spec import SPECS

    modules = {"fwd": fwd, "dx": dx, "dw": dw, "stream": streamed}
    for (prim, strat), spec in SPECS.items():
        for name in spec.kernels:
            assert hasattr(modules[prim], name), (prim, strat, name)
        cfg = dispatch.config(prim, strat, "ieee")
        assert set(cfg) <= set(spec.keys) and spec.per_thread(cfg) > 0
        assert dispatch.CONFIG_KEYS[(prim, strat)] == spec.keys
    bad = dict(dispatch.config("dw", "sparse", "ieee"), WINDOW=8)
    assert "WINDOW" in SPECS[("dw", "sparse")].invalid(bad)


def test_basis_writer_and_weight_layouts():
    # the writer fills a block basis-major (column t*F + i), any k, with and without the base
    # slot, features 3..9 of 11, over poisoned memory; pack / unpack put the parameters in
    # and out of the blocked layout of any block width (a partial last block included)
    from sparsefuse.kernels import dispatch, streamed

    for k, G in ((1, 3), (3, 5), (5, 11)):
        grid, x, C, g, s = case(40 + k, 37, 11, 5, G, k)
        t0, ih = geo(grid)
        M = G + k
        ref = naive.basis(x.double(), grid.double(), k, 1) * s.double()[..., None]
        for base in (False, True):
            MB = M + int(base)
            with dispatch.override_config("stream", "dense", BASIS_BLOCK_I=4, BASIS_BLOCK_N=16):
                cfg = dispatch.config("stream", "dense", "ieee")
                out = torch.full((37, 7 * MB), float("nan"), device=DEV)
                streamed.write_basis(x, s, t0, ih, out, k, 1, M, 3, cfg, base)  # features 3..9
            got = out.view(37, MB, 7).transpose(1, 2)
            assert rel_err(got[..., int(base):], ref[:, 3:10]) < 1e-5, (k, base)
            if base:
                xs = x[:, 3:10].double()
                assert rel_err(got[..., 0], xs * torch.sigmoid(xs)) < 1e-6
    OUT, IN, M = 3, 11, 6
    sw, sc, bw = (torch.randn(OUT, IN, M, device=DEV), torch.randn(OUT, IN, device=DEV),
                  torch.randn(OUT, IN, device=DEV))
    full = torch.cat([bw[..., None], sw * sc[..., None]], dim=2)  # [out, in, MB], slot 0 the base
    for fb in (1, 4, 8, IN):
        W, Wfm = streamed.pack(sw, sc, bw, torch.float32, fb, fb2=1)
        assert torch.equal(Wfm, full.reshape(OUT, -1))
        for f0 in range(0, IN, fb):  # each block basis-major over its own features
            f1 = min(IN, f0 + fb)
            blk = W[:, f0 * (M + 1):f1 * (M + 1)].reshape(OUT, M + 1, f1 - f0).transpose(1, 2)
            assert torch.equal(blk, full[:, f0:f1])
        gbw, gsw, gsc = streamed.unpack(W, fb, M, sw, sc, bw)
        assert torch.equal(gbw, bw) and rel_err(gsw, sw * sc[..., None] ** 2) < 1e-6
        assert rel_err(gsc, (sw * sc[..., None] * sw).sum(-1)) < 1e-6
        plain = streamed.pack(sw, None, None, torch.float32, fb)
        assert torch.equal(streamed.unpack(plain, fb, M, gsw=torch.empty_like(sw))[1], sw)


def test_narrow_layers_use_the_sparse_strategy_sooner(monkeypatch):
    # the narrow rule caps G+k for layers with few outputs; the precision class's own
    # threshold still caps everything else; a malformed rule in a config file is refused
    from sparsefuse.kernels import dispatch

    below, cap = dispatch.narrow_rule()
    wide = dispatch.dense_max_bases("fwd", "tf32")
    assert cap < wide
    assert dispatch.choose("fwd", cap + 1, "tf32", out=below) == "dense"
    assert dispatch.choose("fwd", cap + 1, "tf32", out=below - 1) == "sparse"
    assert dispatch.choose("fwd", cap, "tf32", out=below - 1) == "dense"
    assert dispatch.choose("fwd", cap + 1, "tf32") == "dense"  # out unknown: the class threshold
    with pytest.raises(ValueError, match="narrow"):
        dispatch._parse({"narrow": {"out_below": 128}}, "test.json")
