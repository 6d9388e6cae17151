"""Fused Triton kernels for KAN layers on any knot grid (uniform, per-feature, adaptive).

``kan_linear(x, grid, base_weight, spline_weight, spline_scaler, spline_order)`` is a whole
KANLinear (SiLU base branch + spline branch) in a few launches; ``spline_contract(x, grid,
coeff, spline_order)`` the spline branch alone, ``y = sum_i sum_t B_t(x_i) coeff[:, i, t]``.
Neither writes the N*in*(G+k) basis tensor; both are differentiable to any order and
captured whole by torch.compile (registered ops, :mod:`.ops`).  ``naive`` holds the plain
float64 reference the kernels are tested against; ``settings`` the process-wide switches.

Triton kernels run on CUDA tensors, or on CPU tensors when ``TRITON_INTERPRET=1`` was set
before this package was imported.
"""

import os

import torch

from .dispatch import MAX_ORDER
from .settings import chunk_budget, force_strategy, poison_outputs, settings

try:  # triton is an optional dependency
    import triton  # noqa: F401

    _HAVE_TRITON = True
except ImportError:  # pragma: no cover - exercised only without triton
    _HAVE_TRITON = False

if _HAVE_TRITON:
    from . import ops  # registers torch.ops.sparsefuse.*
    from .autograd import LayerFn
    from .geometry import compute_dtype_of, geometry as _geometry
    from .layer import compute_dtype, plan

__all__ = ["spline_contract", "kan_linear", "available", "unavailable", "MAX_ORDER", "settings",
           "poison_outputs", "force_strategy", "chunk_budget"]

_CUDA_OK = {}  # device index -> compute capability, once CUDA was found usable there (it cannot stop being)


@torch.compiler.assume_constant_result
def _capability(index) -> tuple[int, int]:
    """The device's compute capability, a constant to ``torch.compile``: traced as a call it became a node
    of the compiled graph beside the layer's one op (seen on the H200 with torch 2.11)."""
    return tuple(torch.cuda.get_device_capability(index))


def available(device) -> bool:
    """True when the fused kernels can run on ``device`` (CUDA, or the Triton CPU interpreter)."""
    if not _HAVE_TRITON:
        return False
    dev = device if isinstance(device, torch.device) else torch.device(device)
    if dev.type == "cuda":
        if dev.index in _CUDA_OK:  # the hot path: one dict lookup per forward
            return True
        ok = torch.cuda.is_available()
        if ok:
            _CUDA_OK[dev.index] = _capability(dev.index if dev.index is not None else torch.cuda.current_device())
        return ok
    return dev.type == "cpu" and os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def unavailable(device, dtype=None) -> str | None:
    """Why the kernels cannot run on ``device`` computing in ``dtype``, or None when they can."""
    if not _HAVE_TRITON:
        return "triton is not installed"
    if not available(device):
        return f"sparsefuse.kernels is not available on device {device} (needs CUDA, or TRITON_INTERPRET=1)"
    dev = device if isinstance(device, torch.device) else torch.device(device)
    if dtype == torch.bfloat16 and dev.type == "cuda" and _CUDA_OK[dev.index][0] < 8:
        return (f"bfloat16 needs a GPU of compute capability 8.0 or newer (this one is sm"
                f"{''.join(map(str, _CUDA_OK[dev.index]))}): use float16 autocast, or float32")
    return None


def _check(x, grid, coeff, spline_order):
    if not isinstance(spline_order, int) or isinstance(spline_order, bool):
        raise ValueError(f"spline_order: expected an int, got {type(spline_order).__name__}")
    if not 0 <= spline_order <= MAX_ORDER:
        raise ValueError(f"spline_order: expected 0..{MAX_ORDER}, got {spline_order}")
    if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.dim() < 1:
        raise ValueError("x: expected a floating-point tensor of shape (..., in)")
    if not isinstance(grid, torch.Tensor) or grid.dim() != 2 or not grid.is_floating_point():
        raise ValueError("grid: expected a floating-point tensor of shape [in, G + 2k + 1]")
    if not isinstance(coeff, torch.Tensor) or coeff.dim() != 3 or not coeff.is_floating_point():
        raise ValueError("coeff: expected a floating-point tensor of shape [out, in, G + k]")
    n_in = x.shape[-1]
    if grid.shape[0] != n_in:
        raise ValueError(f"grid: expected {n_in} rows (x has in={n_in}), got {grid.shape[0]}")
    n_bases = grid.shape[1] - 1 - spline_order
    if n_bases < 1:
        raise ValueError(f"grid: {grid.shape[1]} knots are too few for spline_order={spline_order}")
    if coeff.shape[1] != n_in or coeff.shape[2] != n_bases:
        raise ValueError(f"coeff: expected shape [out, {n_in}, {n_bases}], got {list(coeff.shape)}")
    if x.device != coeff.device or x.device != grid.device:
        raise ValueError(f"coeff: expected device {x.device}, got {coeff.device} (grid on {grid.device})")
    why = unavailable(x.device)
    if why is not None:
        raise ValueError(f"x: {why}")


def spline_contract(x, grid, coeff, spline_order):
    """Fused ``y = sum_i sum_t B_t(x_i) coeff[:, i, t]`` for x of shape (..., in) -> (..., out).

    Any increasing knots per row.  Under autocast the coefficients are cast to the autocast
    dtype and the result comes back in it, like a linear layer; the basis is still
    evaluated from x in float32 (float64 for float64 x).
    """
    _check(x, grid, coeff, spline_order)
    dev = x.device.type
    if torch.is_autocast_enabled(dev) and x.dtype != torch.float64:
        coeff = coeff.to(torch.get_autocast_dtype(dev))
    P = ops.primitives()
    x2 = x.reshape(-1, x.shape[-1])
    geo = _grid_geometry(grid, compute_dtype_of(x.dtype), coeff.dtype)
    return P.fwd(x2, grid, geo, coeff, None, spline_order, 0).reshape(*x.shape[:-1], coeff.shape[0])


def _grid_geometry(grid, dtype, dot_dtype=None):
    """The per-feature geometry the kernels read (:mod:`.geometry`): a registered op under compile."""
    dot_dtype = dot_dtype or dtype
    if torch.compiler.is_compiling():
        return torch.ops.sparsefuse.geometry(grid, dtype, dot_dtype)
    return _geometry(grid if grid.stride(-1) == 1 else grid.contiguous(), dtype, dot_dtype)


def kan_linear(x, grid, base_weight, spline_weight, spline_scaler, spline_order, dtype=None):
    """A whole KANLinear with the SiLU base branch, ``(..., in) -> (..., out)``, fused.

    ``silu(x) @ base_weight^T + spline_contract(x, grid, spline_weight * spline_scaler[..., None])``
    in the compute ``dtype`` (default: autocast's under autocast, else x's and the weights'
    promoted).  Eager code runs the autograd Function, compiled code the registered op
    ``torch.ops.sparsefuse.kan_linear``; both any derivative order.
    """
    _check(x, grid, spline_weight, spline_order)
    if dtype is None:
        dtype = compute_dtype(x.dtype, spline_weight.dtype, x.device.type)
    x2 = x if x.dim() == 2 else x.reshape(-1, x.shape[-1])
    y = fused_layer(x2, grid, base_weight, spline_weight, spline_scaler, spline_order, dtype)
    return y if x.dim() == 2 else y.reshape(*x.shape[:-1], spline_weight.shape[0])


def fused_layer(x2, grid, base_weight, spline_weight, spline_scaler, k, dtype):
    """:func:`kan_linear` on checked 2-D ``x2``, no checks: the call KANLinear makes per forward."""
    if torch.compiler.is_compiling():
        return torch.ops.sparsefuse.kan_linear(x2, grid, base_weight, spline_weight, spline_scaler, k, dtype)[0]
    if not x2.is_contiguous():
        x2 = x2.contiguous()
    if grid.stride(-1) != 1:
        grid = grid.contiguous()
    p = plan(dtype, x2.device, spline_weight.shape[2], spline_weight.shape[0])
    return LayerFn.apply(x2, grid, base_weight, spline_weight, spline_scaler, k, p)
