"""The fused whole-layer op (sparsefuse.kernels.layer) against the float64 composition, any grid.

``kan_linear`` computes ``silu(x) @ base_weight^T + spline(x)`` in one contraction per chunk
(streamed) or one gather kernel; every output starts NaN (``poisoned``) so an element left
unwritten fails.
"""

import pytest
import torch

pytest.importorskip("triton")  # (conftest chose the interpreter on CPU before anything imported it)

from conftest import make_problem  # noqa: E402
from sparsefuse import kernels as sk  # noqa: E402
from sparsefuse.kernels import autograd, layer, layout, naive, writer  # noqa: E402
from sparsefuse.kernels.naive import rel_err  # noqa: E402

DEV = "cuda" if torch.cuda.is_available() else "cpu"
pytestmark = [pytest.mark.skipif(not sk.available(DEV), reason="fused kernels unavailable here"),
              pytest.mark.usefixtures("poisoned")]


def case(seed, N, IN, OUT, G, k, kind="per_feature", dtype=torch.float32, scaler=True):
    """``(grid, x, base_weight, spline_weight, scaler)``: x inside and outside, on knots (adaptive)."""
    x, grid, sw = make_problem(N, IN, OUT, G, k, seed=seed, kind=kind, spread=1.2)
    gen = torch.Generator().manual_seed(seed)
    bw, sc = torch.randn(OUT, IN, generator=gen, dtype=torch.float64), torch.randn(OUT, IN, generator=gen,
                                                                                   dtype=torch.float64)
    out = [t.to(dtype).to(DEV) for t in (grid, x, bw, sw, sc)]
    if not scaler:
        out[4] = None
    return out


def _grads(fn, x, params, gy):
    x = x.clone().requires_grad_()
    ps = [p.clone().requires_grad_() if p is not None else None for p in params]
    y = fn(x, *ps)
    gs = torch.autograd.grad(y, [x] + [p for p in ps if p is not None], gy.to(y.dtype))
    return y, gs


def _double(ts):
    return [t.double() if t is not None else None for t in ts]


@pytest.mark.parametrize("strategy", ["auto", "gather"])
@pytest.mark.parametrize("k,G,scaler,kind", [(1, 3, True, "uniform"), (2, 6, False, "adaptive"),
                                             (3, 5, True, "adaptive"), (5, 9, True, "per_feature")])
def test_layer_matches_float64_composition_in_every_chunking(k, G, scaler, kind, strategy):
    grid, x, bw, sw, sc = case(k * 10 + G, 41, 7, 6, G, k, kind, scaler=scaler)
    gy = torch.randn(41, 6, dtype=torch.float64).to(DEV)
    ref_y, ref_g = _grads(lambda a, *p: naive.kan_linear(a, grid.double(), *p, k), x.double(),
                          _double((bw, sw, sc)), gy)
    MB = G + k + 1
    # one piece; row chunks; feature blocks over all rows (and the dw accumulation modes)
    budgets = (None, 41 * MB * 4 * 2, 41 * MB * 4 // 2, 2000) if strategy == "auto" else (None,)
    for budget in budgets:
        with sk.force_strategy(strategy), sk.chunk_budget(budget or 2**30):
            y, g = _grads(lambda a, *p: sk.kan_linear(a, grid, *p, k), x, [bw, sw, sc], gy)
        assert y.dtype == torch.float32 and rel_err(y, ref_y) < 1e-5, budget
        for name, a, b in zip(("x", "base", "spline", "scaler"), g, ref_g):
            assert rel_err(a, b) < 1e-5, (name, budget)


@pytest.mark.parametrize("kind,strategy", [("uniform", "streamed"), ("random", "gather")])
def test_layer_float64_gradcheck_and_gradgradcheck(kind, strategy):
    grid, x, bw, sw, sc = case(3, 5, 3, 2, 4, 3, kind, dtype=torch.float64)
    args = [t.requires_grad_() for t in (x, bw, sw, sc)]

    def f(a, b, c, d):
        return sk.kan_linear(a, grid, b, c, d, 3)

    with sk.force_strategy(strategy):
        assert torch.autograd.gradcheck(f, args, fast_mode=True)
        assert torch.autograd.gradgradcheck(f, args, fast_mode=True)


@pytest.mark.parametrize("kind", ["uniform", "adaptive"])
def test_layer_float64_is_exact_and_third_order_composes(kind):
    grid, x, bw, sw, sc = case(4, 9, 4, 3, 6, 5, kind, dtype=torch.float64)
    ref = naive.kan_linear(x, grid, bw, sw, sc, 5)
    assert rel_err(sk.kan_linear(x, grid, bw, sw, sc, 5), ref) < 1e-13
    outs = []
    for fn in (lambda a: sk.kan_linear(a, grid, bw, sw, sc, 5), lambda a: naive.kan_linear(a, grid, bw, sw, sc, 5)):
        a = x.clone().requires_grad_()
        (g1,) = torch.autograd.grad(fn(a).sum(), a, create_graph=True)
        (g2,) = torch.autograd.grad(g1.sum(), a, create_graph=True)
        (g3,) = torch.autograd.grad(g2.sum(), a)
        outs.append(g3)
    assert rel_err(outs[0], outs[1]) < 1e-10


def test_pinn_step_keeps_the_fused_first_derivative(monkeypatch):
    # create_graph: the first derivative runs the fused backward (as LayerBwdFn), the second
    # differentiates it through the primitives; both against float64
    grid, x, bw, sw, sc = case(5, 23, 2, 4, 5, 3, "adaptive")
    calls = []
    real = autograd.LayerBwdFn.apply
    monkeypatch.setattr(autograd.LayerBwdFn, "apply", lambda *a: calls.append(1) or real(*a))
    outs = []
    for fn, dt in ((lambda a, *p: sk.kan_linear(a, grid, *p, 3), torch.float32),
                   (lambda a, *p: naive.kan_linear(a, grid.double(), *p, 3), torch.float64)):
        a = x.to(dt).clone().requires_grad_()
        ps = [p.to(dt).clone().requires_grad_() for p in (bw, sw, sc)]
        (gx,) = torch.autograd.grad(fn(a, *ps).sum(), a, create_graph=True)
        loss = (gx ** 2).sum() + gx[:, 0].sum()
        outs.append([gx] + list(torch.autograd.grad(loss, [a] + ps)))
    assert calls == [1]
    for a, b in zip(*outs):
        assert rel_err(a, b) < 1e-4


def test_layer_autocast_bfloat16_dtype_and_error():
    grid, x, bw, sw, sc = case(5, 64, 9, 5, 5, 3, "adaptive")
    ref = naive.kan_linear(*_double((x, grid, bw, sw, sc)), 3)
    xr, ps = x.clone().requires_grad_(), [t.clone().requires_grad_() for t in (bw, sw, sc)]
    with torch.autocast(DEV, dtype=torch.bfloat16):
        y = sk.kan_linear(xr, grid, *ps, 3)
        # the same computation in PyTorch at that precision
        torch_bf16 = torch.nn.functional.linear(torch.nn.functional.silu(x), bw) + sk.spline_contract(
            x, grid, sw * sc[..., None], 3)
    assert y.dtype == torch.bfloat16
    assert rel_err(y, ref) <= 2 * rel_err(torch_bf16, ref) + 1e-2
    y.float().sum().backward()
    assert xr.grad.dtype == torch.float32 and all(p.grad.dtype == torch.float32 for p in ps)


@pytest.mark.parametrize("strategy", ["streamed", "gather"])
def test_layer_nan_inf_propagate_and_empty_batch(strategy):
    grid, x, bw, sw, sc = case(6, 6, 3, 2, 4, 3, "adaptive")
    x = x.clone()
    x[1, 0] = float("nan")
    x[3, 2] = float("inf")
    xr = x.clone().requires_grad_()
    with sk.force_strategy(strategy):
        y = sk.kan_linear(xr, grid, bw, sw, sc, 3)
        y.sum().backward()
        assert torch.isnan(y[1]).all() and torch.isnan(y[3]).all()
        assert torch.isfinite(y[[0, 2, 4, 5]]).all() and torch.isnan(xr.grad[1, 0])
        x0 = x[:0].clone().requires_grad_()
        p = bw.clone().requires_grad_()
        y0 = sk.kan_linear(x0, grid, p, sw, sc, 3)
        assert y0.shape == (0, 2)
        y0.sum().backward()
    assert x0.grad.shape == (0, 3) and torch.equal(p.grad, torch.zeros_like(p))


def test_layer_rejects_bad_arguments():
    grid, x, bw, sw, sc = case(7, 5, 3, 2, 4, 3)
    with pytest.raises(ValueError, match="coeff"):
        sk.kan_linear(x, grid, bw, sw[:, :, :-1], sc, 3)
    with pytest.raises(ValueError, match="grid"):
        sk.kan_linear(x, grid[:2], bw, sw, sc, 3)
    with pytest.raises(ValueError, match="spline_order"):
        sk.kan_linear(x, grid, bw, sw, sc, 8)


def test_kanlinear_takes_the_fused_layer_path_on_any_grid(monkeypatch):
    from sparsefuse import KANLinear

    calls = []
    real = autograd.LayerFn.apply
    monkeypatch.setattr(autograd.LayerFn, "apply", lambda *a: calls.append(1) or real(*a))
    torch.manual_seed(0)
    lay = KANLinear(5, 4, grid_size=6, impl="fused").to(DEV)
    ref = KANLinear(5, 4, grid_size=6, impl="reference").to(DEV)
    x = torch.rand(3, 7, 5, device=DEV) * 2 - 1
    lay.update_grid(x.reshape(-1, 5) ** 3)  # skewed data: an adaptive grid
    ref.load_state_dict(lay.state_dict())
    assert lay.resolve_impl(x) == "fused"
    assert rel_err(lay(x), ref(x)) < 1e-5 and calls == [1]
    lay.base_activation = torch.nn.GELU()  # another base branch: composed, same function
    ref.base_activation = torch.nn.GELU()
    assert rel_err(lay(x), ref(x)) < 1e-5 and calls == [1]


def test_layer_plan_follows_config_overrides_and_forced_strategy(monkeypatch):
    # the per-call plan is memoised: an override_config or a forced strategy set after the
    # first call must still reach the next call (nothing stale)
    from sparsefuse.kernels import dispatch

    grid, x, bw, sw, sc = case(9, 12, 5, 3, 4, 3)
    first = sk.kan_linear(x, grid, bw, sw, sc, 3)
    p = layer.plan(torch.float32, x.device, 7, 3)
    assert (p.fwd, p.dx, p.dw) == ("streamed",) * 3 and p.dx_layout == 1
    seen = []
    real = writer.write_basis
    monkeypatch.setattr(writer, "write_basis", lambda *a, **kw: seen.append(a[9]["BASIS_BLOCK_I"]) or real(*a, **kw))
    monkeypatch.setattr(sk.fwd, "write_basis", writer.write_basis)
    with dispatch.override_config("all", "streamed", BASIS_BLOCK_I=2):
        again = sk.kan_linear(x, grid, bw, sw, sc, 3)
    assert seen == [2] and rel_err(again, first) < 1e-6
    with sk.force_strategy("gather"):
        p = layer.plan(torch.float32, x.device, 7, 3)
        assert (p.fwd, p.dx, p.dw, p.dx_layout) == ("gather",) * 3 + (layout.OUT_MAJOR,)
        assert rel_err(sk.kan_linear(x, grid, bw, sw, sc, 3), first) < 1e-6
    assert layer.plan(torch.float32, x.device, 7, 3).fwd == "streamed"
