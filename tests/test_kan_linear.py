import math
import os
import sys
import types
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch.autograd import gradcheck, gradgradcheck

if not torch.cuda.is_available():  # the fused path runs on CPU under the Triton interpreter
    os.environ.setdefault("TRITON_INTERPRET", "1")

from sparsefuse.grid import is_uniform, uniform_grid  # noqa: E402
from sparsefuse.kan_linear import IMPLS, KAN, GridResizeWarning, KANLinear  # noqa: E402

D = torch.float64
CPU_IMPLS = ("reference", "dense", "sparse", "auto")


def layer(*args, seed=0, **kw):
    torch.manual_seed(seed)
    return KANLinear(*args, **kw).to(D)


def layer64(*args, seed=0, **kw):
    """Built in float64, so its grid is uniform to float64 precision (closed-form evaluator)."""
    torch.manual_seed(seed)
    return KANLinear(*args, dtype=D, **kw)


# ---- an independent efficient-kan-style forward, from the published formulas ----------------------

def ek_bases(x, grid, k):
    xe = x.unsqueeze(-1)
    b = ((xe >= grid[:, :-1]) & (xe < grid[:, 1:])).to(x.dtype)
    for p in range(1, k + 1):
        left = (xe - grid[:, : -(p + 1)]) / (grid[:, p:-1] - grid[:, : -(p + 1)])
        right = (grid[:, p + 1 :] - xe) / (grid[:, p + 1 :] - grid[:, 1:-p])
        b = left * b[..., :-1] + right * b[..., 1:]
    return b


def ek_forward(sd, prefix, x, k):
    w = sd[prefix + "spline_weight"]
    if prefix + "spline_scaler" in sd:
        w = w * sd[prefix + "spline_scaler"].unsqueeze(-1)
    b = ek_bases(x, sd[prefix + "grid"], k)
    return F.linear(F.silu(x), sd[prefix + "base_weight"]) + F.linear(b.reshape(x.shape[0], -1), w.reshape(w.shape[0], -1))


def ek_state_dict(widths, g, k, standalone=True, seed=0, dtype=D):
    """A checkpoint laid out as efficient-kan saves it, built by hand."""
    gen = torch.Generator().manual_seed(seed)
    sd = {}
    for li, (i, o) in enumerate(zip(widths, widths[1:])):
        h = 2.0 / g
        grid = (torch.arange(-k, g + k + 1, dtype=dtype) * h - 1).expand(i, -1).contiguous()
        grid = grid + 0.05 * torch.rand(i, 1, generator=gen, dtype=dtype)  # per-feature shift: still uniform rows
        sd[f"layers.{li}.grid"] = grid
        sd[f"layers.{li}.base_weight"] = torch.randn(o, i, generator=gen, dtype=dtype) * 0.3
        sd[f"layers.{li}.spline_weight"] = torch.randn(o, i, g + k, generator=gen, dtype=dtype) * 0.3
        if standalone:
            sd[f"layers.{li}.spline_scaler"] = torch.randn(o, i, generator=gen, dtype=dtype)
    return sd


@pytest.mark.parametrize("standalone", [True, False])
@pytest.mark.parametrize("k", [2, 3])
def test_efficient_kan_checkpoint_parity(standalone, k):
    widths, g = [5, 7, 3], 6
    sd = ek_state_dict(widths, g, k, standalone)
    model = KAN(widths, grid_size=g, spline_order=k, enable_standalone_scale_spline=standalone).to(D)
    model.load_state_dict(sd, strict=True)
    assert set(model.state_dict()) == set(sd)
    x = torch.rand(40, 5, dtype=D) * 2.6 - 1.3
    want = x
    for li in range(len(widths) - 1):
        want = ek_forward(sd, f"layers.{li}.", want, k)
    for impl in CPU_IMPLS:
        model.impl = impl
        torch.testing.assert_close(model(x), want, rtol=1e-12, atol=1e-12)
    model.float()
    torch.testing.assert_close(model(x.float()).double(), want, rtol=1e-4, atol=1e-5)


def test_init_follows_efficient_kan_recipe():
    """Same seed, same draws in the same order: base kaiming, noise fit, scaler kaiming."""
    i, o, g, k, sn, sb, ss = 4, 3, 5, 3, 0.1, 1.0, 0.7
    torch.manual_seed(7)
    lay = KANLinear(i, o, grid_size=g, spline_order=k, scale_noise=sn, scale_base=sb, scale_spline=ss)
    torch.manual_seed(7)
    base = torch.empty(o, i)
    torch.nn.init.kaiming_uniform_(base, a=math.sqrt(5) * sb)
    noise = (torch.rand(g + 1, i, o) - 0.5) * sn / g
    grid = (torch.arange(-k, g + k + 1) * (2 / g) - 1).expand(i, -1).contiguous()
    xs = grid.T[k:-k]
    a = ek_bases(xs, grid, k).transpose(0, 1)
    spline = torch.linalg.lstsq(a, noise.transpose(0, 1)).solution.permute(2, 0, 1)
    scaler = torch.empty(o, i)
    torch.nn.init.kaiming_uniform_(scaler, a=math.sqrt(5) * ss)
    assert torch.equal(lay.grid, grid)
    assert torch.equal(lay.base_weight.data, base)
    torch.testing.assert_close(lay.spline_weight.data, spline, rtol=1e-4, atol=1e-6)
    assert torch.equal(lay.spline_scaler.data, scaler)
    # without a standalone scaler, scale_spline multiplies the fitted noise
    torch.manual_seed(3)
    l1 = KANLinear(i, o, scale_spline=1.0, enable_standalone_scale_spline=False)
    torch.manual_seed(3)
    l2 = KANLinear(i, o, scale_spline=2.5, enable_standalone_scale_spline=False)
    assert not hasattr(l1, "spline_scaler") or l1.spline_scaler is None
    torch.testing.assert_close(l2.spline_weight.data, 2.5 * l1.spline_weight.data)


def test_names_shapes_and_leading_dims():
    lay = layer(3, 4, grid_size=7, spline_order=2)
    shapes = {n: tuple(t.shape) for n, t in lay.state_dict().items()}
    assert shapes == {"grid": (3, 12), "base_weight": (4, 3), "spline_weight": (4, 3, 9), "spline_scaler": (4, 3)}
    assert [n for n, _ in lay.named_buffers()] == ["grid"]
    x = torch.randn(2, 5, 3, dtype=D)
    y = lay(x)
    assert y.shape == (2, 5, 4)
    torch.testing.assert_close(y, lay(x.reshape(10, 3)).reshape(2, 5, 4))
    assert lay.b_splines(x[0]).shape == (5, 3, 9)


@pytest.mark.parametrize("k", [1, 2, 3, 5])
def test_impls_agree_random_configs(k):
    for trial, (i, o, g) in enumerate([(3, 5, 1), (7, 2, 4), (5, 9, 11)]):
        make = layer64 if trial != 1 else layer
        lay = make(i, o, grid_size=g, spline_order=k, grid_range=[-0.7, 1.3], seed=trial)
        x = torch.rand(31, i, dtype=D) * 4 - 2  # partly outside grid_range
        ref = (lay.__setattr__("impl", "reference"), lay(x))[1]
        for impl in CPU_IMPLS[1:]:
            lay.impl = impl
            torch.testing.assert_close(lay(x), ref, rtol=1e-12, atol=1e-12)


def test_update_grid_semantics_and_paths_after_it():
    lay = layer(4, 3, grid_size=5, spline_order=3, grid_eps=0.1)
    x = torch.randn(200, 4, dtype=D) * 0.6
    lay.impl = "reference"
    before = lay(x)
    lay.update_grid(x, margin=0.01)
    # efficient-kan's grid: quantiles blended with a uniform grid, extended by k steps
    xs = torch.sort(x, 0)[0]
    q = xs[torch.linspace(0, 199, 6, dtype=torch.int64)]
    step = (xs[-1] - xs[0] + 0.02) / 5
    uni = torch.arange(6, dtype=D)[:, None] * step + xs[0] - 0.01
    core = 0.1 * uni + 0.9 * q
    want = torch.cat([core[:1] - step * torch.arange(3, 0, -1, dtype=D)[:, None], core,
                      core[-1:] + step * torch.arange(1, 4, dtype=D)[:, None]]).T
    torch.testing.assert_close(lay.grid, want)
    assert not is_uniform(lay.grid)
    after = lay(x)
    # the spline branch is refit on x: the layer keeps its function on the data
    assert (after - before).abs().max() < 0.05 * before.abs().max()
    for impl in CPU_IMPLS[1:]:
        lay.impl = impl
        torch.testing.assert_close(lay(x * 1.5), (setattr(lay, "impl", "reference"), lay(x * 1.5))[1], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("new_g", [10, 7, 20])
def test_extend_grid_preserves_the_function(new_g):
    lay = layer64(3, 2, grid_size=5, spline_order=3)
    with torch.no_grad():
        lay.spline_weight.normal_()
    x = torch.rand(300, 3, dtype=D) * 2 - 1  # inside grid_range
    lay.impl = "reference"
    before = lay(x)
    err = lay.extend_grid(new_g)
    after = lay(x)
    scale = before.abs().max().item()
    print(f"extend_grid 5 -> {new_g}: max fit error {err:.3e}, max output change {(after - before).abs().max():.3e} (output scale {scale:.2f})")
    assert lay.grid.shape == (3, new_g + 7) and lay.spline_weight.shape == (2, 3, new_g + 3)
    assert lay.grid_size == new_g and not is_uniform(lay.grid)  # outer knots kept: tests/test_extend_grid.py
    if new_g % 5 == 0:  # nested spline spaces: exact
        assert err < 1e-9
        torch.testing.assert_close(after, before, rtol=1e-9, atol=1e-9)
    else:
        assert err < 0.05 * scale
    for impl in ("dense", "sparse"):
        lay.impl = impl
        torch.testing.assert_close(lay(x), after, rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="new_grid_size"):
        lay.extend_grid(0)
    for bad in (0, -3, 2.5):  # used to surface as linspace errors that named no argument
        with pytest.raises(ValueError, match="num_samples"):
            lay.extend_grid(7, num_samples=bad)
    assert lay.grid_size == new_g  # a rejected call leaves the layer as it was


def test_regularization_loss_formula():
    lay = layer(3, 4)
    l1 = lay.scaled_spline_weight.abs().mean(-1)  # efficient-kan takes spline_weight: see the module docstring
    p = l1 / l1.sum()
    want = 0.3 * l1.sum() + 0.7 * -(p * p.log()).sum()
    torch.testing.assert_close(lay.regularization_loss(0.3, 0.7), want)
    model = KAN([3, 4, 2]).to(D)
    torch.testing.assert_close(model.regularization_loss(), sum(m.regularization_loss() for m in model.layers))


@pytest.mark.parametrize("impl", ["reference", "dense", "sparse"])
def test_gradcheck_x_and_all_parameters(impl):
    lay = layer(2, 2, grid_size=3, spline_order=3, impl=impl)
    x = (torch.rand(4, 2, dtype=D) * 2.4 - 1.2).requires_grad_()
    names = ["base_weight", "spline_weight", "spline_scaler"]
    params = [getattr(lay, n) for n in names]

    def f(x, *ps):
        return torch.func.functional_call(lay, dict(zip(names, ps)), (x,))

    assert gradcheck(f, (x, *params))
    assert gradgradcheck(lambda x: lay(x), (x,))


def test_bad_input_names_the_argument():
    with pytest.raises(ValueError, match="grid_size"):
        KANLinear(2, 2, grid_size=0)
    with pytest.raises(ValueError, match="spline_order"):
        KANLinear(2, 2, spline_order=0)
    with pytest.raises(ValueError, match="grid_range"):
        KANLinear(2, 2, grid_range=[1, 1])
    with pytest.raises(ValueError, match="grid_range"):
        KANLinear(2, 2, grid_range=[1, -1])
    with pytest.raises(ValueError, match="dtype"):
        KANLinear(2, 2, dtype=torch.int32)
    with pytest.raises(ValueError, match="impl"):
        KANLinear(2, 2, impl="cuda")
    with pytest.raises(ValueError, match="in_features"):
        KANLinear(0, 2)
    lay = KANLinear(3, 2)
    with pytest.raises(ValueError, match="x"):
        lay(torch.randn(4, 2))
    with pytest.raises(ValueError, match="x"):
        lay(torch.ones(4, 3, dtype=torch.int64))
    with pytest.raises(ValueError, match="impl"):
        lay.impl = "fast"
    with pytest.raises(ValueError, match="impl"):
        KAN([2, 2]).impl = "fast"
    with pytest.raises(ValueError, match="x"):
        lay.update_grid(torch.zeros(0, 3))


@pytest.mark.parametrize("impl", ["reference", "dense", "sparse"])
def test_nan_inf_propagate_and_empty_batches(impl):
    lay = layer(3, 2, impl=impl)
    x = torch.randn(5, 3, dtype=D) * 0.5
    x[1, 0], x[2, 1], x[3, 2] = float("nan"), float("inf"), -float("inf")
    y = lay(x)
    assert (~torch.isfinite(y[1:4])).all() and torch.isfinite(y[[0, 4]]).all()
    assert lay(torch.zeros(0, 3, dtype=D)).shape == (0, 2)
    e = torch.zeros(2, 0, 3, dtype=D, requires_grad=True)
    out = lay(e)
    assert out.shape == (2, 0, 2)
    out.sum().backward()
    assert lay.spline_weight.grad is not None and (lay.spline_weight.grad == 0).all()


def test_auto_rule_and_fused_dispatch(monkeypatch):
    small, big = layer(2, 2, grid_size=5), layer(2, 2, grid_size=100)
    x = torch.randn(3, 2, dtype=D)
    assert small.resolve_impl(x) == "dense" and big.resolve_impl(x) == "sparse"
    with torch.no_grad():
        assert small.resolve_impl(x) == "sparse"
    from sparsefuse.kernels.naive import kan_linear

    calls = []
    fake = types.ModuleType("sparsefuse.kernels")
    fake.unavailable = lambda device, dtype=None: "no kernels in this test"
    monkeypatch.setitem(sys.modules, "sparsefuse.kernels", fake)
    monkeypatch.setattr(sys.modules["sparsefuse"], "kernels", fake, raising=False)
    small.impl = "fused"
    with pytest.raises(ValueError, match="impl.*fused.*no kernels"):
        small(x)

    def fused_layer(x2, grid, bw, sw, sc, k, dtype):
        calls.append(dtype)
        return kan_linear(x2, grid, bw, sw, sc, k)

    fake.unavailable = lambda device, dtype=None: None
    fake.fused_layer = fused_layer
    y = small(x)
    assert calls == [D]  # one call of the whole-layer op, in the layer's dtype
    small.impl = "reference"
    torch.testing.assert_close(y, small(x))
    small.impl = "auto"  # CPU tensors never take the fused path automatically
    assert small.resolve_impl(x) == "dense"


def test_kan_container():
    model = KAN([3, 5, 2], grid_size=4, impl="dense").to(D)
    assert model.impl == "dense" and all(m.impl == "dense" for m in model.layers)
    model.impl = "sparse"
    x = torch.randn(20, 3, dtype=D)
    assert model(x).shape == (20, 2)
    assert model(x.reshape(4, 5, 3)).shape == (4, 5, 2)
    g0 = model.layers[0].grid.clone()
    y = model(x, update_grid=True)
    assert y.shape == (20, 2) and not torch.equal(model.layers[0].grid, g0)
    assert set(IMPLS) == {"auto", "reference", "dense", "sparse", "fused"}


def test_auto_without_fused_prefers_dense_on_cuda_and_follows_the_cpu_rule():
    from sparsefuse.kan_linear import AUTO_TRAIN_SPARSE_MIN_BASES, auto_without_fused

    assert auto_without_fused("cuda", True, 8) == "dense"
    assert auto_without_fused("cuda", False, 500) == "dense"
    assert auto_without_fused("cpu", False, 8) == "sparse"
    assert auto_without_fused("cpu", True, 8) == "dense"
    assert auto_without_fused("cpu", True, AUTO_TRAIN_SPARSE_MIN_BASES) == "sparse"


# ---- issue 13: no silent wrong answers, failed calls leave the layer intact ---------------------------

def _fused_ok():
    from sparsefuse import kernels  # imports without triton; available() says whether it can run
    return kernels.available("cpu")


needs_fused = pytest.mark.skipif(not _fused_ok(), reason="fused kernels need triton (CPU interpreter)")


def _reference_layer(lay):
    ref = KANLinear(lay.in_features, lay.out_features, grid_size=lay.grid_size, spline_order=lay.spline_order,
                    impl="reference", dtype=lay.grid.dtype)
    ref.load_state_dict(lay.state_dict())
    return ref


def _reference_of(lay, x):
    return _reference_layer(lay)(x)


def _quantile_grid(i, g, k, dtype=torch.float32, seed=1):
    torch.manual_seed(seed)
    lay = KANLinear(i, 2, grid_size=g, spline_order=k, dtype=dtype)
    lay.update_grid(torch.randn(300, i, dtype=dtype))
    return lay.grid.clone()


@pytest.mark.parametrize("write", ["copy_ under no_grad", "through .data"])
@pytest.mark.parametrize("impl", ["dense", "sparse", "auto"])
def test_grid_written_in_place_is_seen_by_every_path(impl, write):
    torch.manual_seed(0)
    lay = KANLinear(3, 2, grid_size=5, impl=impl)
    x = torch.rand(40, 3) * 2.4 - 1.2
    lay(x)  # the uniformity of the first grid is known now
    for new in (_quantile_grid(3, 5, 3), uniform_grid(3, 5, 3, (-2.0, 0.5)), _quantile_grid(3, 5, 3, seed=2)):
        if write == "copy_ under no_grad":
            with torch.no_grad():
                lay.grid.copy_(new)
        else:
            lay.grid.data.copy_(new)  # bypasses the version counter
        torch.testing.assert_close(lay(x), _reference_of(lay, x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("impl", ["dense", "sparse", pytest.param("fused", marks=needs_fused)])
def test_grid_written_in_place_under_compile(impl):
    torch.manual_seed(0)
    lay = KANLinear(3, 2, grid_size=5, impl=impl)
    compiled = torch.compile(lay, fullgraph=True)
    x = torch.rand(40, 3) * 2.4 - 1.2
    for new in (None, _quantile_grid(3, 5, 3), uniform_grid(3, 5, 3, (-2.0, 0.5)), _quantile_grid(3, 5, 3, seed=2)):
        if new is not None:
            with torch.no_grad():
                lay.grid.copy_(new)
        lay.zero_grad()
        y = compiled(x)
        y.square().sum().backward()  # training: sparse used to fail here under fullgraph
        ref = _reference_layer(lay)
        want = ref(x)
        want.square().sum().backward()
        torch.testing.assert_close(y, want, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(lay.spline_weight.grad, ref.spline_weight.grad, rtol=1e-4, atol=1e-5)


def test_auto_picks_sparse_for_training_at_large_g_and_it_compiles():
    torch.manual_seed(0)
    lay = KANLinear(3, 2, grid_size=64)
    x = torch.rand(30, 3) * 2 - 1
    assert lay.resolve_impl(x) == "sparse"
    y = torch.compile(lay, fullgraph=True)(x)
    y.sum().backward()
    got = lay.spline_weight.grad.clone()
    lay.zero_grad()
    lay.impl = "reference"
    y0 = lay(x)
    y0.sum().backward()
    torch.testing.assert_close(y, y0, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(got, lay.spline_weight.grad, rtol=1e-5, atol=1e-6)


@needs_fused
def test_fused_layer_converted_to_bfloat16():
    torch.manual_seed(0)
    lay = KANLinear(4, 3, grid_size=5, impl="fused")
    x = torch.rand(64, 4) * 2 - 1
    want = _reference_of(lay, x)
    lay = lay.to(torch.bfloat16)
    y = lay(x.bfloat16())
    assert y.dtype == torch.bfloat16
    # bfloat16 keeps 8 bits: a few of its epsilons (2**-7) of the output scale
    assert (y.float() - want).abs().max() <= 4 * 2**-7 * want.abs().max()
    lay.impl = "dense"
    lay.update_grid(x.bfloat16())  # refit in float32: lstsq has no bfloat16 kernel
    assert lay.grid.dtype == lay.spline_weight.dtype == torch.bfloat16 and torch.isfinite(lay(x.bfloat16())).all()


@pytest.mark.parametrize("impl", ["reference", "dense", "sparse", pytest.param("fused", marks=needs_fused)])
def test_every_path_returns_the_autocast_dtype(impl):
    torch.manual_seed(0)
    lay = KANLinear(5, 3, grid_size=7, impl=impl)
    x = torch.rand(64, 5) * 2 - 1
    want = _reference_of(lay, x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = lay(x)
    assert y.dtype == torch.bfloat16
    assert (y.float() - want).abs().max() <= 4 * 2**-7 * want.abs().max()


def test_extend_grid_keeps_the_parameters_optimizers_hold():
    torch.manual_seed(0)
    lay = KANLinear(3, 2, grid_size=5)
    held = dict(lay.named_parameters())
    opt = torch.optim.SGD(lay.parameters(), lr=0.1)
    x = torch.rand(50, 3) * 2 - 1
    lay(x).sum().backward()
    with warnings.catch_warnings():
        warnings.simplefilter("error", GridResizeWarning)  # plain SGD keeps no state: nothing to warn of
        lay.extend_grid(10)
    assert dict(lay.named_parameters()) == held  # the same objects: the optimizer still trains them
    assert lay.spline_weight.grad is None
    before = lay.spline_weight.detach().clone()
    lay(x).sum().backward()
    opt.step()
    assert not torch.equal(lay.spline_weight, before)


def test_regularization_loss_is_kept_by_update_grid():
    """update_grid refits spline_weight = scaled fit / scaler: tiny scalers used to blow the loss up."""
    torch.manual_seed(0)
    lay = KANLinear(4, 3, grid_size=5, spline_order=5)
    with torch.no_grad():
        lay.spline_scaler.mul_(0.01)
    x = torch.randn(400, 4)
    before = lay.regularization_loss().item()
    lay.update_grid(x)
    after = lay.regularization_loss().item()
    print(f"regularization_loss before/after update_grid: {before:.4g} / {after:.4g}")  # was 2.46 / 12.5
    assert after == pytest.approx(before, rel=0.25)


def _state(module):
    return {k: v.clone() for k, v in module.state_dict().items()}


def _unchanged(module, state):
    now = module.state_dict()
    return now.keys() == state.keys() and all(torch.equal(now[k], v) for k, v in state.items())


def test_update_grid_rejects_bad_data_and_leaves_the_layer_unchanged():
    torch.manual_seed(0)
    lay = KANLinear(3, 2, grid_size=5)
    x = torch.rand(100, 3) * 2 - 1
    state = _state(lay)
    for bad in (float("nan"), float("inf"), -float("inf")):
        xb = x.clone()
        xb[7, 1] = bad
        with pytest.raises(ValueError, match="x"):
            lay.update_grid(xb)
        assert _unchanged(lay, state)
    with pytest.raises(ValueError, match="margin"):
        lay.update_grid(x, margin=float("nan"))
    flat = KANLinear(3, 2, grid_size=5, grid_eps=0.0)
    state_flat = _state(flat)
    with pytest.raises(ValueError, match="x"):
        flat.update_grid(torch.ones(100, 3))  # all quantiles equal: the knots would repeat
    assert _unchanged(lay, state) and _unchanged(flat, state_flat)
    assert torch.isfinite(lay(x)).all()


def test_kan_grid_updates_and_extensions_are_all_or_nothing():
    torch.manual_seed(0)
    model = KAN([2, 3, 2], grid_size=4)
    state = _state(model)
    with pytest.raises(ValueError, match="new_grid_size"):
        model.extend_grid(0)
    with pytest.raises(ValueError, match="x"):
        model(torch.tensor([[0.1, float("nan")]]), update_grid=True)
    assert _unchanged(model, state)
    x = torch.rand(200, 2) * 2 - 1
    before = model(x)
    err = model.extend_grid(8)  # the warning, where an optimizer keeps state: tests/test_extend_grid.py
    assert model.grid_size == 8 and all(m.grid_size == 8 for m in model.layers)
    assert err < 1e-4 and (model(x) - before).abs().max() < 1e-4  # 4 -> 8 intervals: nested splines
    y = model(x, update_grid=True)
    assert torch.equal(y, model(x))  # the output comes from the updated layers
