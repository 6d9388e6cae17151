"""torch.compile of the fused layer: one registered op, no graph break, no recompile per batch size.

On CPU the compiled graphs run through ``aot_eager`` (Inductor's C++ build is slow there) with
the kernels under the Triton interpreter; on CUDA through Inductor, and CUDA graphs too.
"""

import operator

import pytest
import torch

pytest.importorskip("triton")  # (conftest chose the interpreter on CPU before anything imported it)

from conftest import make_problem  # noqa: E402
from torch._dynamo.utils import counters  # noqa: E402

from sparsefuse import KANLinear  # noqa: E402
from sparsefuse import kernels as sk  # noqa: E402
from sparsefuse.kernels import naive  # noqa: E402
from sparsefuse.kernels.geometry import geometry  # noqa: E402
from sparsefuse.kernels.naive import rel_err  # noqa: E402

DEV = "cuda" if torch.cuda.is_available() else "cpu"
BACKEND = "inductor" if DEV == "cuda" else "aot_eager"
pytestmark = [pytest.mark.skipif(not sk.available(DEV), reason="fused kernels unavailable here"),
              pytest.mark.usefixtures("poisoned")]


def _layers(grid_kind, dtype=torch.float32):
    torch.manual_seed(0)
    lay = KANLinear(5, 4, grid_size=6, impl="fused", dtype=dtype).to(DEV)
    if grid_kind == "adaptive":
        lay.update_grid(torch.randn(200, 5, dtype=dtype, device=DEV) ** 3)
    ref = KANLinear(5, 4, grid_size=6, impl="reference", dtype=torch.float64).to(DEV)
    ref.load_state_dict({k: v.double() for k, v in lay.state_dict().items()})
    return lay, ref


def _step(fn, lay, x, mark_dynamic=False):
    """y and the gradients of x and every parameter for a squared loss."""
    lay.zero_grad()
    xx = x.clone().requires_grad_()
    if mark_dynamic:  # (a clone does not inherit the mark)
        torch._dynamo.mark_dynamic(xx, 0)
    y = fn(xx)
    y.square().sum().backward()
    return [y, xx.grad] + [p.grad.clone() for p in lay.parameters()]


@pytest.mark.parametrize("grid_kind", ["uniform", "adaptive"])
def test_compiled_layer_is_one_registered_op(grid_kind):
    lay, _ = _layers(grid_kind)
    graphs = []

    def capture(gm, inputs):
        graphs.append(gm)
        return gm.forward

    torch._dynamo.reset()
    y = torch.compile(lay, fullgraph=True, backend=capture)(torch.rand(9, 5, device=DEV) * 2 - 1)
    calls = [n.target for n in graphs[0].graph.nodes if n.op == "call_function"]
    # the op, and y picked from its outputs (the other two are kept for its backward)
    assert len(graphs) == 1 and calls == [torch.ops.sparsefuse.kan_linear, operator.getitem], calls
    assert y.shape == (9, 4)


@pytest.mark.parametrize("how", ["dynamic=True", "mark_dynamic"])
@pytest.mark.parametrize("grid_kind", ["uniform", "adaptive"])
def test_compiled_layer_with_gradients_and_a_changing_batch_never_recompiles(grid_kind, how):
    lay, ref = _layers(grid_kind)
    torch._dynamo.reset()
    counters.clear()
    compiled = torch.compile(lay, fullgraph=True, backend=BACKEND, dynamic=True if how == "dynamic=True" else None)
    gen = torch.Generator().manual_seed(1)
    for i, n in enumerate((7, 11, 23, 2)):
        x = (torch.rand(n, 5, generator=gen) * 2.4 - 1.2).to(DEV)
        with torch._dynamo.config.patch(error_on_recompile=i > 0):
            got = _step(compiled, lay, x, mark_dynamic=how == "mark_dynamic")
        want = _step(ref, ref, x.double())
        for a, b in zip(got, want):
            assert rel_err(a, b) < 1e-5
    assert counters["stats"]["unique_graphs"] == 1


def test_compiled_double_backward():
    # the registered ops are differentiable to any order: a compiled graph run by Dynamo alone
    # (backend="eager") gives PINN losses their second derivatives; AOTAutograd (Inductor,
    # aot_eager) refuses double backward through any compiled graph, a PyTorch limit
    lay, ref = _layers("adaptive", torch.float64)
    x = (torch.rand(9, 5, dtype=torch.float64, device=DEV) * 2 - 1)
    outs = []
    for fn, layer in ((torch.compile(lay, fullgraph=True, backend="eager", dynamic=True), lay), (ref, ref)):
        xx = x.clone().requires_grad_()
        (gx,) = torch.autograd.grad(fn(xx).sum(), xx, create_graph=True)
        outs.append([gx] + list(torch.autograd.grad((gx ** 2).sum(), [xx, layer.spline_weight, layer.base_weight])))
    for a, b in zip(*outs):
        assert rel_err(a, b) < 1e-12
    torch._dynamo.reset()
    xx = x.clone().requires_grad_()
    (gx,) = torch.autograd.grad(torch.compile(lay, backend="aot_eager")(xx).sum(), xx, create_graph=True)
    with pytest.raises(RuntimeError, match="double backward"):
        torch.autograd.grad(gx.sum(), xx)


def test_compiled_layer_under_autocast_returns_the_autocast_dtype():
    lay, ref = _layers("uniform")
    x = torch.rand(16, 5, device=DEV) * 2 - 1
    torch._dynamo.reset()
    with torch.autocast(DEV, dtype=torch.bfloat16):
        y = torch.compile(lay, fullgraph=True, backend=BACKEND)(x)
    assert y.dtype == torch.bfloat16 and rel_err(y, ref(x.double())) < 2e-2


def test_compiled_spline_contract_has_no_graph_break():
    x, grid, C = (t.float().to(DEV) for t in make_problem(7, 4, 3, 5, 3, kind="adaptive", seed=9))

    def f(a, b):
        return (sk.spline_contract(torch.tanh(a), grid, b, 3) ** 2).sum()

    a1, b1 = x.clone().requires_grad_(), C.clone().requires_grad_()
    a2, b2 = x.clone().requires_grad_(), C.clone().requires_grad_()
    torch._dynamo.reset()
    loss = torch.compile(f, fullgraph=True, backend=BACKEND)(a1, b1)
    loss.backward()
    ref = f(a2, b2)
    ref.backward()
    assert rel_err(loss, ref) < 1e-6 and rel_err(a1.grad, a2.grad) < 1e-5 and rel_err(b1.grad, b2.grad) < 1e-5


def test_registered_ops_pass_opcheck():
    # schema, fake tensors, autograd registration, AOT dispatch with dynamic shapes
    x, grid, C = (t.float().to(DEV) for t in make_problem(5, 3, 2, 3, 2, kind="adaptive", seed=16))
    g, s = torch.randn(5, 2, device=DEV), torch.randn(5, 3, device=DEV)
    geo = geometry(grid, torch.float32)
    bw, sc = torch.randn(2, 3, device=DEV), torch.randn(2, 3, device=DEV)
    x, C, bw = x.requires_grad_(), C.requires_grad_(), bw.requires_grad_()
    ops = torch.ops.sparsefuse
    _, geo_l, wdx = ops.kan_linear.default(x, grid, bw, C, sc, 2, torch.float32)
    for op, args in ((ops.fwd.default, (x, grid, geo, C, s, 2, 0)),
                     (ops.dx.default, (x, grid, geo, C, g, 2, 1)),
                     (ops.dw.default, (x, grid, geo, g, s, 2, 0, 5)),
                     (ops.geometry.default, (grid, torch.float32, torch.float32)),
                     (ops.kan_linear.default, (x, grid, bw, C, sc, 2, torch.float32)),
                     (ops.kan_linear_bwd.default, (x, grid, bw, C, sc, geo_l, wdx, g, 2, torch.float32, True, True))):
        torch.library.opcheck(op, args)


@pytest.mark.skipif(DEV != "cuda", reason="CUDA graphs need a CUDA device")
def test_cuda_graphs_capture_the_layer():
    # mode="reduce-overhead": the whole step replays as one CUDA graph, the host cost of a small
    # layer gone; the results of the replays equal eager
    lay, ref = _layers("adaptive")
    torch._dynamo.reset()
    compiled = torch.compile(lay, mode="reduce-overhead", fullgraph=True)
    x = torch.rand(64, 5, device=DEV) * 2 - 1
    for _ in range(3):  # warm-up, record, replay
        torch.compiler.cudagraph_mark_step_begin()
        got = _step(compiled, lay, x)
    want = _step(ref, ref, x.double())
    for a, b in zip(got, want):
        assert rel_err(a, b) < 1e-5
    assert naive.rel_err(got[0], lay(x)) < 1e-6
