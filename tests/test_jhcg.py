"""SparseFuseJHCG: shapes, the parameter formula, gradients, the cached fast path, compile, bad arguments."""
import os

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch.autograd import gradcheck  # noqa: E402

from sparsefuse import KANLinear  # noqa: E402
from sparsefuse import jhcg as J  # noqa: E402
from sparsefuse.jhcg import SparseFuseJHCG  # noqa: E402
from sparsefuse.lab.models.ffn import MLPFFN  # noqa: E402


def n_params(m):
    return sum(p.numel() for p in m.parameters())


def test_quick_start_verbatim():
    jhcg = SparseFuseJHCG(d=16, rho=0.25, grid_size=5, variant="expanded")
    assert jhcg(torch.randn(2, 8, 16)).shape == torch.Size([2, 8, 16])


@pytest.mark.parametrize("variant", J.VARIANTS)
@pytest.mark.parametrize("shape", [(16,), (5, 16), (2, 3, 4, 16), (0, 16)])
def test_shapes(variant, shape):
    m = SparseFuseJHCG(16, 0.5, 5, variant)
    assert m(torch.randn(*shape)).shape == shape
    assert isinstance(m.kan, KANLinear) and m.kan.impl == "auto"


@pytest.mark.parametrize("variant", J.VARIANTS)
@pytest.mark.parametrize("rho", [0.125, 0.25, 0.5, 1.0])
@pytest.mark.parametrize("d,hidden,grid_size,k", [(16, None, 5, 3), (24, 40, 8, 2), (7, 7, 1, 1)])
def test_param_count_formula(variant, rho, d, hidden, grid_size, k):
    m = SparseFuseJHCG(d, rho, grid_size, variant, hidden=hidden, spline_order=k)
    h = 4 * d if hidden is None else hidden
    r = max(1, min(h, int(rho * h + 0.5)))
    assert (m.hidden, m.kan_width, m.mlp_width) == (h, r, h - r)
    formula = (h + d) * (d + 1) + d * (h + 1) + r * d * (grid_size + k + 1) - (r if variant == "compact" else 0)
    assert n_params(m) == J.param_count(d, rho, grid_size, variant, k, hidden) == formula
    kan = (m.kan.in_features, m.kan.out_features)
    assert kan == ((d, r) if variant == "compact" else (r, d))  # the splines read x (compact) or U x (expanded)


@pytest.mark.parametrize("variant", J.VARIANTS)
@pytest.mark.parametrize("rho", [0.125, 0.25, 1.0])
def test_matched_mlp_has_the_same_parameter_count(variant, rho):
    d = 32
    target = J.param_count(d, rho, 5, variant)
    width = J.matched_mlp_hidden(d, rho, 5, variant)
    mlp = MLPFFN(d, width)
    assert n_params(mlp) == J.mlp_param_count(d, width)
    assert abs(n_params(mlp) - target) <= (2 * d + 1) // 2 + 1  # nearest width: within half a hidden unit
    assert abs(J.mlp_param_count(d, width + 1) - target) >= abs(n_params(mlp) - target)


@pytest.mark.parametrize("variant", J.VARIANTS)
def test_forward_is_the_documented_equations(variant):
    torch.manual_seed(0)
    m = SparseFuseJHCG(6, 0.5, 4, variant, hidden=10, impl="reference")
    x = torch.randn(7, 6)
    a = F.linear(x, m.mlp_in_weight, m.mlp_in_bias)
    g = torch.sigmoid(F.linear(x, m.gate_weight, m.gate_bias))
    mlp = F.linear(F.gelu(a), m.mlp_out_weight)
    if variant == "compact":
        u = x
        kan = F.linear(m.kan(x), m.kan_out_weight)
    else:
        u = F.linear(x, m.kan_in_weight, m.kan_in_bias)
        kan = m.kan(u)
    torch.testing.assert_close(m(x), (1 - g) * mlp + g * kan + m.out_bias)
    with m.intervene(gate=0.0):
        torch.testing.assert_close(m(x), mlp + m.out_bias)
    with m.intervene(gate=1.0):
        torch.testing.assert_close(m(x), kan + m.out_bias)
    with m.intervene(ablate="kan"):
        torch.testing.assert_close(m(x), (1 - g) * mlp + m.out_bias)
    with m.intervene(ablate="mlp"):
        torch.testing.assert_close(m(x), g * kan + m.out_bias)
    assert m.gate_override is None and m.ablate is None  # restored on exit
    parts = m.parts(x)
    torch.testing.assert_close(parts["u"], u)
    torch.testing.assert_close(parts["g"], g)


@pytest.mark.parametrize("variant", J.VARIANTS)
def test_rho_one_has_no_mlp_path_and_still_trains(variant):
    m = SparseFuseJHCG(8, 1.0, 5, variant)
    assert m.mlp_width == 0 and m.kan_width == 32
    x = torch.randn(4, 8, requires_grad=True)
    m(x).sum().backward()
    assert x.grad is not None and m.kan.spline_weight.grad.abs().sum() > 0


def test_kan_inputs_are_unit_scale_inside_the_grid():
    torch.manual_seed(0)
    m = SparseFuseJHCG(64, 0.5, 5, "expanded")
    u = m.parts(torch.randn(4096, 64))["u"]
    lo, hi = m.grid_bounds()
    assert 0.8 < u.std().item() < 1.2
    assert ((u >= lo) & (u <= hi)).float().mean().item() > 0.9


@pytest.mark.parametrize("variant", J.VARIANTS)
@pytest.mark.parametrize("impl", ["reference", "auto"])
def test_gradcheck_float64(variant, impl):
    torch.manual_seed(0)
    m = SparseFuseJHCG(3, 0.5, 3, variant, hidden=6, impl=impl, dtype=torch.float64)
    with torch.no_grad():
        m.gate_bias.normal_()
    x = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    params = tuple(m.parameters())
    assert gradcheck(lambda x, *p: torch.func.functional_call(m, dict(zip([n for n, _ in m.named_parameters()], p)),
                                                              (x,)), (x, *params), eps=1e-6, atol=1e-5)


def test_fused_kan_path_matches_reference():
    from sparsefuse.kernels import available

    if not available(torch.device("cpu")) and not torch.cuda.is_available():
        pytest.skip("fused kernels need CUDA or TRITON_INTERPRET=1")
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(0)
    ref = SparseFuseJHCG(8, 0.25, 5, "expanded", hidden=16, impl="reference", device=dev)
    fused = SparseFuseJHCG(8, 0.25, 5, "expanded", hidden=16, impl="fused", device=dev)
    fused.load_state_dict(ref.state_dict())
    x = torch.randn(6, 8, device=dev)
    torch.testing.assert_close(fused(x), ref(x), atol=1e-5, rtol=1e-4)


# ----------------------------------------------------------------------------- the cached fast path

def _block(variant="expanded", **kw):
    torch.manual_seed(0)
    return SparseFuseJHCG(8, 0.5, 5, variant, hidden=24, **kw)


@pytest.mark.parametrize("variant", J.VARIANTS)
def test_eval_cache_is_bitwise_equal_and_reused(variant):
    m = _block(variant)
    x = torch.randn(3, 5, 8)
    with torch.no_grad():
        eager = m(x)
    m.eval()
    with torch.no_grad():
        first = m(x)
        built = m._cache
        second = m(x)
    assert built is not None and m._cache is built  # built once, then reused
    assert torch.equal(first, eager) and torch.equal(second, eager)
    with torch.inference_mode():
        assert torch.equal(m(x), eager)
    m.train()
    assert m._cache is None and not m.cache_enabled


@pytest.mark.parametrize("change", ["optimizer", "inplace", "load_state_dict", "init", "replace", "to_double"])
def test_cache_invalidated_when_a_parameter_changes(change):
    m = _block().eval()
    x = torch.randn(4, 8)
    with torch.no_grad():
        before = m(x)
    if change == "optimizer":
        m.train()
        opt = torch.optim.SGD(m.parameters(), lr=0.5)
        m(x).square().sum().backward()
        opt.step()
        m.eval()
        m.cache()  # turned on again, built for the new weights
    elif change == "inplace":
        with torch.no_grad():
            m.kan.spline_scaler.mul_(3.0)
    elif change == "load_state_dict":
        other = SparseFuseJHCG(8, 0.5, 5, "expanded", hidden=24)
        m.load_state_dict(other.state_dict())
    elif change == "init":
        torch.nn.init.normal_(m.gate_weight)
    elif change == "replace":
        m.kan.spline_weight = torch.nn.Parameter(m.kan.spline_weight.detach() * 2)
    elif change == "to_double":
        m.double()
        x = x.double()
    with torch.no_grad():
        cached = m(x)
        m.cache_enabled = False
        uncached = m(x)
    if change == "to_double":  # same values, new storage and dtype: the cache must follow
        assert cached.dtype == torch.float64 and m._cache[2][None][0].dtype == torch.float64
    else:
        assert not torch.allclose(cached, before)
    assert torch.equal(cached, uncached)


@pytest.mark.parametrize("write", ["extend_grid", "update_grid", "vector_to_parameters"])
def test_library_writes_never_leave_the_cache_stale(write):
    """Issue 22.1: extend_grid wrote spline_weight through .data (no version bump), so the next
    cached forward raised ``coeff: expected [out, 16, 13], got (16, 16, 8)``; torch's own
    ``.data`` writes (``vector_to_parameters``) bypass the counter too."""
    m = _block().eval()
    x = torch.randn(4, 8)
    with torch.no_grad():
        m(x)
        if write == "extend_grid":
            m.kan.extend_grid(10)
            assert m.grid_size == 10 and n_params(m) == J.param_count(8, 0.5, 10, "expanded", hidden=24)
        elif write == "update_grid":
            m.kan.update_grid(torch.randn(64, m.kan.in_features) * 3)
        else:
            vec = torch.nn.utils.parameters_to_vector(m.parameters())
            torch.nn.utils.vector_to_parameters(vec * 1.5, m.parameters())
        cached = m(x)
        m.cache_enabled = False
        fresh = m(x)
    assert torch.equal(cached, fresh)


def test_optimizer_step_in_eval_mode_invalidates_without_asking():
    m = _block().eval()
    x = torch.randn(4, 8)
    with torch.no_grad():
        before = m(x)
    opt = torch.optim.Adam(m.parameters(), lr=0.1)
    m(x).sum().backward()  # grad enabled: the uncached path, gradients reach every parameter
    assert all(p.grad is not None for p in m.parameters())
    opt.step()
    with torch.no_grad():
        after = m(x)
        m.cache_enabled = False
        fresh = m(x)
    assert torch.equal(after, fresh) and not torch.allclose(after, before)


def test_explicit_cache_in_train_mode_serves_only_gradient_free_calls():
    m = _block().cache()
    assert m.training and m._cache is not None
    x = torch.randn(4, 8, requires_grad=True)
    m(x).sum().backward()
    assert m.gate_weight.grad is not None  # with gradients: uncached, the parameters stay in the graph
    with torch.no_grad():
        m.cache_enabled = True
        a = m(x)
        m.cache_enabled = False
        b = m(x)
    assert torch.equal(a, b)


def test_autocast_cache_is_bitwise_equal():
    m = _block().eval()
    x = torch.randn(4, 8)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        a = m(x)
        assert torch.bfloat16 in m._cache[2]  # the low-precision copies are kept beside the float32 ones
        b = m(x)
        m.cache_enabled = False
        c = m(x)
    assert torch.equal(a, c) and torch.equal(b, c)


def test_kan_path_scales_its_coefficients_like_kanlinear():
    m = _block()
    assert torch.equal(m.kan.scaled_spline_weight, KANLinear.scaled_spline_weight.fget(m.kan))


def test_data_writes_need_invalidate():
    m = _block().eval()
    x = torch.randn(4, 8)
    with torch.no_grad():
        m(x)
        m.gate_bias.data.add_(1.0)  # bypasses the version counter: documented
        m.invalidate()
        a = m(x)
        m.cache_enabled = False
        assert torch.equal(a, m(x))


# ----------------------------------------------------------------------------- compile, autocast, checkpoint

@pytest.mark.parametrize("variant", J.VARIANTS)
@pytest.mark.parametrize("train", [True, False])
def test_compile_fullgraph(train, variant):
    m = _block(variant).train(train)
    ref = _block(variant).train(train)
    compiled = torch.compile(m, fullgraph=True, backend="aot_eager")
    x = torch.randn(2, 3, 8, requires_grad=True)
    x2 = x.detach().clone().requires_grad_(True)
    torch.testing.assert_close(compiled(x), ref(x2))
    compiled(x).sum().backward()
    ref(x2).sum().backward()
    torch.testing.assert_close(x.grad, x2.grad)
    torch.testing.assert_close(m.kan.spline_weight.grad, ref.kan.spline_weight.grad)
    if not train:
        with torch.no_grad():
            torch.testing.assert_close(compiled(x), ref(x2))


def test_autocast_bf16_cpu():
    m = _block()
    x = torch.randn(4, 6, 8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = m(x)
    assert y.shape == x.shape and torch.isfinite(y).all()
    torch.testing.assert_close(y.float(), m(x), atol=0.1, rtol=0.1)


def test_autocast_sets_the_output_dtype_like_nn_linear():
    """Under bf16 autocast the block returned float32 (its float32 output bias was added last)."""
    m = _block()
    x = torch.randn(4, 6, 8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert torch.nn.Linear(8, 8)(x).dtype == torch.bfloat16
        assert m(x).dtype == torch.bfloat16
        m.eval()
        with torch.no_grad():
            assert m(x).dtype == torch.bfloat16  # the cached path too
    assert m(x).dtype == torch.float32
    assert m.double()(x.double()).dtype == torch.float64


def test_activation_checkpointing_gives_the_same_gradients():
    from torch.utils.checkpoint import checkpoint

    a, b = _block(), _block()
    x = torch.randn(4, 8)
    checkpoint(a, x, use_reentrant=False).square().sum().backward()
    b(x).square().sum().backward()
    for (name, pa), pb in zip(a.named_parameters(), b.parameters()):
        torch.testing.assert_close(pa.grad, pb.grad, msg=name)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_fused_forward_backward_and_cache():
    m = SparseFuseJHCG(64, 0.25, 5, "expanded", device="cuda")
    x = torch.randn(4, 32, 64, device="cuda", requires_grad=True)
    m(x).sum().backward()
    assert m.kan.resolve_impl(torch.zeros(1, m.kan.in_features, device="cuda")) == "fused"
    m.eval()
    with torch.no_grad():
        a = m(x)
        m.cache_enabled = False
        assert torch.equal(a, m(x))


# ----------------------------------------------------------------------------- bad arguments

@pytest.mark.parametrize("kwargs,name", [
    (dict(d=0), "d"), (dict(d=2.5), "d"), (dict(d=True), "d"),
    (dict(rho=0), "rho"), (dict(rho=1.5), "rho"), (dict(rho=float("nan")), "rho"), (dict(rho="0.5"), "rho"),
    (dict(grid_size=0), "grid_size"), (dict(grid_size=2.0), "grid_size"),
    (dict(variant="wide"), "variant"), (dict(variant=None), "variant"),
    (dict(hidden=0), "hidden"), (dict(spline_order=0), "spline_order"), (dict(impl="cuda"), "impl"),
    (dict(dropout=1.0), "dropout"),
])
def test_bad_arguments_name_the_argument(kwargs, name):
    args = dict(d=8, rho=0.25, grid_size=5, variant="compact", **{})
    args.update(kwargs)
    with pytest.raises(ValueError, match=rf"^{name}:"):
        SparseFuseJHCG(**args)
    if name in ("d", "rho", "grid_size", "variant"):
        with pytest.raises(ValueError, match=rf"^{name}:"):
            J.param_count(**{k: args[k] for k in ("d", "rho", "grid_size", "variant")})


def test_bad_input_and_interventions():
    m = _block()
    with pytest.raises(ValueError, match="^x:"):
        m(torch.randn(3, 7))
    with pytest.raises(ValueError, match="^x:"):
        m(torch.ones(3, 8, dtype=torch.long))
    with pytest.raises(ValueError, match="^gate:"):
        with m.intervene(gate=2.0):
            pass
    with pytest.raises(ValueError, match="^ablate:"):
        with m.intervene(ablate="both"):
            pass
