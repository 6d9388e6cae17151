"""KANLinear on the fused path after kernel v3 (issue 20), and the dtype rule it shares with every path.

The fused layer runs on any grid (update_grid's too), sees every write to ``grid`` (no cache),
computes float64 end to end for ``.double()`` layers, and every impl refuses an input whose
dtype is not the layer's with the same ``ValueError`` (issue 22 item 5).
"""

import os

import pytest
import torch
from torch.autograd import gradcheck, gradgradcheck

if not torch.cuda.is_available():  # the fused path runs on CPU under the Triton interpreter
    os.environ.setdefault("TRITON_INTERPRET", "1")

from sparsefuse.grid import uniform_grid  # noqa: E402
from sparsefuse.kan_linear import KANLinear  # noqa: E402
from test_kan_linear import CPU_IMPLS, D, _fused_ok, _quantile_grid, _reference_layer, needs_fused  # noqa: E402


@needs_fused
@pytest.mark.parametrize("write", ["copy_ under no_grad", "through .data"])
def test_fused_follows_every_in_place_grid_change(write):
    # no uniformity cache any more: an adaptive grid runs fused too, and a write that bypasses
    # the version counter is seen on the next call (issue 22 item 4)
    torch.manual_seed(0)
    lay = KANLinear(3, 2, grid_size=5, impl="fused")
    x = torch.rand(40, 3) * 2.4 - 1.2
    lay(x)
    for new in (uniform_grid(3, 5, 3, (-2.0, 0.5)), _quantile_grid(3, 5, 3), uniform_grid(3, 5, 3)):
        if write == "copy_ under no_grad":
            with torch.no_grad():
                lay.grid.copy_(new)
        else:
            lay.grid.data.copy_(new)
        torch.testing.assert_close(lay(x), _reference_layer(lay)(x), rtol=1e-5, atol=1e-6)


@needs_fused
@pytest.mark.parametrize("grid", ["uniform", "adaptive"])
def test_fused_double_layer_is_exact_and_passes_gradcheck(grid):
    # issue 20: KANLinear(impl="fused").double() used to raise (the float32 grid is not uniform at
    # float64 precision); now it runs on the actual knots: float64 to 1e-12 of the float64
    # reference, first and second derivatives checked numerically
    torch.manual_seed(0)
    lay = KANLinear(3, 2, grid_size=4, impl="fused")
    if grid == "adaptive":
        lay.update_grid(torch.randn(300, 3) ** 3)
    lay = lay.double()
    ref = _reference_layer(lay)
    x = (torch.rand(17, 3, dtype=D) * 3 - 1.5).requires_grad_()
    y, want = lay(x), ref(x)
    assert ((y - want).abs().max() / want.abs().max()).item() <= 1e-12
    g, gr = (torch.autograd.grad(out.square().sum(), [x] + list(m.parameters())) for out, m in ((y, lay), (want, ref)))
    assert all(((a - b).abs().max() / b.abs().max()).item() <= 1e-12 for a, b in zip(g, gr))
    names = ["base_weight", "spline_weight", "spline_scaler"]
    xs = x.detach()[:5].requires_grad_()

    def f(x, *ps):
        return torch.func.functional_call(lay, dict(zip(names, ps)), (x,))

    assert gradcheck(f, (xs, *[getattr(lay, n) for n in names]), fast_mode=True)
    assert gradgradcheck(f, (xs, *[getattr(lay, n) for n in names]), fast_mode=True)


def test_one_dtype_rule_for_every_impl():
    # issue 22 item 5: x must have the layer's dtype (autocast may mix 16- and 32-bit floats,
    # never float64); every impl raises the same ValueError, naming x, and stays unchanged
    impls = CPU_IMPLS + (("fused",) if _fused_ok() else ())
    for impl in impls:
        lay32 = KANLinear(3, 2, impl=impl)
        lay64 = KANLinear(3, 2, impl=impl, dtype=D)
        for lay, x in ((lay32, torch.rand(4, 3, dtype=D)), (lay32, torch.rand(4, 3).half()),
                       (lay64, torch.rand(4, 3)), (lay32, torch.rand(4, 3).bfloat16())):
            with pytest.raises(ValueError, match=rf"^x: expected dtype {lay.spline_weight.dtype}"):
                lay(x)
        assert lay32(torch.rand(4, 3)).dtype == torch.float32 and lay64(torch.rand(4, 3, dtype=D)).dtype == D
        half = KANLinear(3, 2, impl=impl).to(torch.bfloat16)
        assert half(torch.rand(4, 3).bfloat16()).dtype == torch.bfloat16
        with torch.autocast("cpu", dtype=torch.bfloat16):
            assert lay32(torch.rand(4, 3)).dtype == torch.bfloat16
            assert lay32(torch.rand(4, 3).bfloat16()).dtype == torch.bfloat16
            with pytest.raises(ValueError, match="^x: expected dtype"):
                lay32(torch.rand(4, 3, dtype=D))
