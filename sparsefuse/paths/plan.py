"""The one decision of a KANLinear call: which route computes it, checked once.

``plan(layer, x2)`` returns a :class:`Route`: the fused whole-layer op (SiLU base branch and
spline branch in one registered op, any grid), the fused spline branch beside another base
activation, or one PyTorch path composed with the base branch.  ``impl="auto"`` takes the
fused op on CUDA whenever the kernels can run (uniform or adaptive grid alike); elsewhere
the PyTorch path the CPU rule picks.  The dtype rule of every route is checked here too:
``x`` must have the layer's dtype (autocast may mix 16- and 32-bit floats, never float64).
"""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F

from .names import get_path

IMPLS = ("auto", "reference", "dense", "sparse", "fused")

# CPU rule for impl="auto", from benchmarks/cpu_paths.py (2-core shared CPU, float32,
# N=1024, 64->64, k=3, best-of timings in ms, dense vs sparse):
#   forward only:   G=5  12.7 vs 8.0 | G=10 11.7 vs 3.4 | G=50 18.9 vs 2.6 | G=100 29.1 vs 4.7
#   forward+backward: G=5 88 vs 68 (noisy) | G=50 19.4 vs 29.0 | G=100 36.3 vs 23.5 | G=200 601 vs 337
#   (4096, 128->128, G=100: 2284 vs 1532; G=5: 549 vs 1887)
# embedding_bag makes the sparse forward cheapest at every G measured, but its weight
# gradient sorts all N*in*(k+1) indices, so with gradients dense wins until G+k ~ 64.
AUTO_TRAIN_SPARSE_MIN_BASES = 64


class Route:
    """``run(layer, x2) -> y`` for 2-D ``x2``; ``impl`` names the path (what ``resolve_impl`` says)."""

    __slots__ = ("impl", "run")

    def __init__(self, impl, run):
        self.impl, self.run = impl, run

    def __repr__(self):
        return f"Route({self.impl!r})"


def auto_without_fused(device_type: str, needs_grad: bool, num_bases: int) -> str:
    """The PyTorch path ``impl="auto"`` takes where the fused kernels cannot run.

    On CUDA (no triton, or bfloat16 on a GPU older than sm80) the dense path: measured on an
    H100 at N=8192, 512->512, fp32 (results/gpu/h100_v1/layer_bench.csv) it took 6.0 / 10.2 ms
    forward+backward at G=5 / 20 against 66.8 / 69.0 ms for the embedding_bag sparse path,
    and 3.2 / 4.8 ms forward against 18.5 / 19.2 ms. On CPU the rule measured above.
    """
    if device_type == "cuda":
        return "dense"
    if needs_grad and num_bases < AUTO_TRAIN_SPARSE_MIN_BASES:
        return "dense"
    return "sparse"


def check_impl(impl):
    if impl not in IMPLS:
        raise ValueError(f"impl: expected one of {IMPLS}, got {impl!r}")
    return impl


def _scaler(layer):
    return layer.spline_scaler if layer.enable_standalone_scale_spline else None


def compute_dtype(layer, x2):
    """Autocast's dtype under autocast (x of float64 excepted), else the layer's."""
    dev = x2.device.type
    if x2.dtype != torch.float64 and torch.is_autocast_enabled(dev):
        return torch.get_autocast_dtype(dev)
    return layer.spline_weight.dtype


def check_dtype(layer, x2):
    """ValueError naming ``x`` unless its dtype is the layer's (under autocast: any float but float64)."""
    want = layer.spline_weight.dtype
    if x2.dtype == want:
        return
    if torch.is_autocast_enabled(x2.device.type) and torch.float64 not in (x2.dtype, want):
        return  # autocast casts both sides of every contraction to its dtype
    raise ValueError(f"x: expected dtype {want} (the layer's), got {x2.dtype}: convert x, "
                     f"or the layer (layer.to({x2.dtype}))")


def _fused_layer(layer, x2):
    from ..kernels import fused_layer

    return fused_layer(x2, layer.grid, layer.base_weight, layer.spline_weight, _scaler(layer),
                       layer.spline_order, compute_dtype(layer, x2))


def _composed(impl):
    def run(layer, x2):
        contract = get_path(impl)
        return (F.linear(layer.base_activation(x2), layer.base_weight)
                + contract(x2, layer.grid, layer.scaled_spline_weight, layer.spline_order))
    return Route(impl, run)


FUSED_LAYER = Route("fused", _fused_layer)
ROUTES = {name: _composed(name) for name in ("reference", "dense", "sparse", "fused")}  # "fused": spline only


def _fused_unavailable(device, dtype):
    try:
        from .. import kernels
    except Exception as e:  # missing triton, partial install, ...
        return f"sparsefuse.kernels could not be imported ({type(e).__name__}: {e})"
    return kernels.unavailable(device, dtype)


def plan(layer, x2: torch.Tensor) -> Route:
    """The route of ``layer(x2)`` for 2-D ``x2`` (checked: impl, dtype, fused availability)."""
    impl = check_impl(layer.impl)
    check_dtype(layer, x2)
    if impl in ("fused", "auto") and (impl == "fused" or x2.is_cuda):
        why = _fused_unavailable(x2.device, compute_dtype(layer, x2) if x2.is_cuda else None)
        if why is None:
            return FUSED_LAYER if type(layer.base_activation) is torch.nn.SiLU else ROUTES["fused"]
        if impl == "fused":
            raise ValueError(f"impl: 'fused' cannot run here: {why}")
        warnings.warn(f"KANLinear(impl='auto'): the fused kernels cannot run ({why}); using the PyTorch dense path",
                      RuntimeWarning, stacklevel=3)
    if impl == "auto":
        needs_grad = torch.is_grad_enabled() and (x2.requires_grad or layer.spline_weight.requires_grad)
        impl = auto_without_fused(x2.device.type, needs_grad, layer.grid_size + layer.spline_order)
    return ROUTES[impl]
