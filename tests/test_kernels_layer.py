"""The fused whole-layer op (sparsefuse.kernels.layer) against the float64 composition.

``kan_linear`` computes ``silu(x) @ base_weight^T + spline(x)`` as one GEMM per chunk;
every output starts NaN (``poison_outputs``) so an element left unwritten fails.
"""

import contextlib

import pytest
import torch

pytest.importorskip("triton")  # (conftest chose the interpreter on CPU before anything imported it)

import torch.nn.functional as F  # noqa: E402

from sparsefuse import kernels as sk  # noqa: E402
from sparsefuse.kernels import layer, naive, streamed  # noqa: E402
from sparsefuse.kernels.naive import rel_err  # noqa: E402

DEV = "cuda" if torch.cuda.is_available() else "cpu"
pytestmark = [pytest.mark.skipif(not sk.available(DEV), reason="fused kernels unavailable here"),
              pytest.mark.usefixtures("poisoned")]


def case(seed, N, IN, OUT, G, k, dtype=torch.float32, scaler=True):
    gen = torch.Generator().manual_seed(seed)
    lo = torch.rand(IN, 1, generator=gen, dtype=torch.float64) - 1.5
    h = (torch.rand(IN, 1, generator=gen, dtype=torch.float64) + 0.5) * 2.0 / G
    grid = lo + h * torch.arange(-k, G + k + 1, dtype=torch.float64)
    u = torch.rand(N, IN, generator=gen, dtype=torch.float64) * 1.3 - 0.15  # inside and outside
    x = grid[:, 0] + u * (grid[:, -1] - grid[:, 0])
    x[: min(N, 2), 0] = grid[0, k + 1]  # exactly on a knot
    p = [torch.randn(*s, generator=gen, dtype=torch.float64) for s in ((OUT, IN), (OUT, IN, G + k), (OUT, IN))]
    cast = [t.to(dtype).to(DEV) for t in (grid, x, *p)]
    if not scaler:
        cast[4] = None
    return cast


def reference(x, grid, bw, sw, sc, k):
    coeff = sw if sc is None else sw * sc[..., None]
    return F.linear(F.silu(x), bw) + naive.spline_contract(x, grid, coeff, k)


def _grads(fn, x, params, gy):
    x = x.clone().requires_grad_()
    ps = [p.clone().requires_grad_() if p is not None else None for p in params]
    y = fn(x, *ps)
    gs = torch.autograd.grad(y, [x] + [p for p in ps if p is not None], gy.to(y.dtype))
    return y, gs


@pytest.mark.parametrize("k,G,scaler", [(1, 3, True), (2, 6, False), (3, 5, True), (5, 9, True)])
def test_layer_matches_float64_composition_in_every_chunking(k, G, scaler):
    grid, x, bw, sw, sc = case(k * 10 + G, 41, 7, 6, G, k, scaler=scaler)
    gy = torch.randn(41, 6, dtype=torch.float64).to(DEV)
    d = [t.double() if t is not None else None for t in (bw, sw, sc)]
    ref_y, ref_g = _grads(lambda a, *p: reference(a, grid.double(), *p, k), x.double(), d, gy)
    MB = G + k + 1
    # one piece; row chunks; feature blocks over all rows (and the dw accumulation modes)
    for budget in (None, 41 * MB * 4 * 2, 41 * MB * 4 // 2, 2000):
        chunks = streamed.chunk_budget(budget) if budget else contextlib.nullcontext()
        with chunks:
            y, g = _grads(lambda a, *p: sk.kan_linear(a, grid, *p, k), x, [bw, sw, sc], gy)
        assert y.dtype == torch.float32
        assert rel_err(y, ref_y) < 1e-5, budget
        for name, a, b in zip(("x", "base", "spline", "scaler"), g, ref_g):
            assert rel_err(a, b) < 1e-5, (name, budget)


def test_layer_float64_gradcheck_and_gradgradcheck():
    grid, x, bw, sw, sc = case(3, 5, 3, 2, 4, 3, dtype=torch.float64)
    args = [t.requires_grad_() for t in (x, bw, sw, sc)]

    def f(a, b, c, d):
        return sk.kan_linear(a, grid, b, c, d, 3)

    assert torch.autograd.gradcheck(f, args)
    assert torch.autograd.gradgradcheck(f, args)


def test_layer_float64_is_exact_and_third_order_composes():
    grid, x, bw, sw, sc = case(4, 9, 4, 3, 6, 5, dtype=torch.float64)
    ref = reference(x, grid, bw, sw, sc, 5)
    assert rel_err(sk.kan_linear(x, grid, bw, sw, sc, 5), ref) < 1e-13
    outs = []
    for fn in (lambda a: sk.kan_linear(a, grid, bw, sw, sc, 5), lambda a: reference(a, grid, bw, sw, sc, 5)):
        a = x.clone().requires_grad_()
        (g1,) = torch.autograd.grad(fn(a).sum(), a, create_graph=True)
        (g2,) = torch.autograd.grad(g1.sum(), a, create_graph=True)
        (g3,) = torch.autograd.grad(g2.sum(), a)
        outs.append(g3)
    assert rel_err(outs[0], outs[1]) < 1e-10


def test_layer_autocast_bfloat16_dtype_and_error():
    grid, x, bw, sw, sc = case(5, 64, 9, 5, 5, 3)
    ref = reference(x.double(), grid.double(), bw.double(), sw.double(), sc.double(), 3)
    xr, ps = x.clone().requires_grad_(), [t.clone().requires_grad_() for t in (bw, sw, sc)]
    with torch.autocast(DEV, dtype=torch.bfloat16):
        y = sk.kan_linear(xr, grid, *ps, 3)
        # the same computation in PyTorch at that precision
        torch_bf16 = F.linear(F.silu(x), bw) + sk.spline_contract(x, grid, sw * sc[..., None], 3)
    assert y.dtype == torch.bfloat16
    assert rel_err(y, ref) <= 2 * rel_err(torch_bf16, ref) + 1e-2
    y.float().sum().backward()
    assert xr.grad.dtype == torch.float32 and all(p.grad.dtype == torch.float32 for p in ps)


def test_layer_nan_inf_propagate_and_empty_batch():
    grid, x, bw, sw, sc = case(6, 6, 3, 2, 4, 3)
    x = x.clone()
    x[1, 0] = float("nan")
    x[3, 2] = float("inf")
    xr = x.clone().requires_grad_()
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


def test_layer_declines_under_the_sparse_strategy_and_rejects_bad_grids():
    grid, x, bw, sw, sc = case(7, 5, 3, 2, 4, 3)
    with sk.force_strategy("sparse"):
        assert layer.plan(x, 7, None) is None and sk.kan_linear(x, grid, bw, sw, sc, 3) is None
    with pytest.raises(ValueError, match="grid"):
        sk.kan_linear(x, grid, bw, sw, sc, 3, uniform=False)
    with pytest.raises(ValueError, match="coeff"):
        sk.kan_linear(x, grid, bw, sw[:, :, :-1], sc, 3)


def test_kanlinear_takes_the_fused_layer_path(monkeypatch):
    from sparsefuse import KANLinear

    calls = []
    real = layer.FusedKANLinear.apply
    monkeypatch.setattr(layer.FusedKANLinear, "apply", lambda *a: calls.append(1) or real(*a))
    torch.manual_seed(0)
    lay = KANLinear(5, 4, grid_size=6, impl="fused").to(DEV)
    ref = KANLinear(5, 4, grid_size=6, impl="reference").to(DEV)
    ref.load_state_dict(lay.state_dict())
    x = torch.rand(3, 7, 5, device=DEV) * 2 - 1
    assert rel_err(lay(x), ref(x)) < 1e-5 and calls == [1]
    lay.base_activation = torch.nn.GELU()  # another base branch: composed, same function
    ref.base_activation = torch.nn.GELU()
    assert rel_err(lay(x), ref(x)) < 1e-5 and calls == [1]


def test_layer_in_feature_blocks(monkeypatch):
    # forward and dW over all rows in blocks of 8 features (the thin-row-chunk regime): the
    # weight packed in the blocked layout, dW unpacked from it, the last block partial
    k, G, N, IN = 3, 5, 40, 19
    grid, x, bw, sw, sc = case(8, N, IN, 5, G, k)
    seen = []
    real = streamed.write_basis
    monkeypatch.setattr(streamed, "write_basis", lambda *a, **kw: seen.append(a[8]) or real(*a, **kw))
    gy = torch.randn(N, 5, dtype=torch.float64).to(DEV)
    d = [t.double() for t in (bw, sw, sc)]
    ref_y, ref_g = _grads(lambda a, *p: reference(a, grid.double(), *p, k), x.double(), d, gy)
    with streamed.chunk_budget(8 * N * (G + k + 1) * 4):
        y, g = _grads(lambda a, *p: sk.kan_linear(a, grid, *p, k), x, [bw, sw, sc], gy)
    assert sorted(set(seen)) == [0, 8, 16]
    assert rel_err(y, ref_y) < 1e-5 and all(rel_err(a, b) < 1e-5 for a, b in zip(g, ref_g))


def test_layer_plan_follows_config_overrides_and_forced_strategy(monkeypatch):
    # the per-call plan is memoised: an override_config or a forced strategy set after the
    # first call must still reach the next call (nothing stale)
    from sparsefuse.kernels import dispatch

    grid, x, bw, sw, sc = case(9, 12, 5, 3, 4, 3)
    first = sk.kan_linear(x, grid, bw, sw, sc, 3)
    seen = []
    real = streamed.write_basis
    monkeypatch.setattr(streamed, "write_basis", lambda *a, **kw: seen.append(a[9]["BASIS_BLOCK_I"]) or real(*a, **kw))
    with dispatch.override_config("stream", "dense", BASIS_BLOCK_I=2):
        again = sk.kan_linear(x, grid, bw, sw, sc, 3)
    assert seen == [2] and rel_err(again, first) < 1e-6
    with dispatch.force_strategy("sparse"):
        assert sk.kan_linear(x, grid, bw, sw, sc, 3) is None  # the fused layer steps aside
    assert sk.kan_linear(x, grid, bw, sw, sc, 3) is not None
