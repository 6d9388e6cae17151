"""Fused Triton spline contraction for KAN layers on uniform grids.

``spline_contract(x, grid, coeff, spline_order)`` computes
``y[n,o] = sum_i sum_t B_t(x[n,i]) coeff[o,i,t]`` without writing the N*in*(G+k)
basis tensor, and is differentiable to any order in ``x`` and ``coeff`` through the
custom ops in :mod:`sparsefuse.kernels.ops`.  ``naive`` holds the plain PyTorch
reference the kernels are tested against.

Triton kernels run on CUDA tensors, or on CPU tensors when ``TRITON_INTERPRET=1``
was set before this package was imported.
"""

import os
import weakref

import torch

try:  # triton is an optional dependency
    import triton  # noqa: F401

    _HAVE_TRITON = True
except ImportError:  # pragma: no cover - exercised only without triton
    _HAVE_TRITON = False

if _HAVE_TRITON:
    from . import ops  # registers torch.ops.sparsefuse.*
    from ._runtime import poison_outputs
    from .dispatch import force_strategy
else:  # pragma: no cover
    ops = None

from ..grid import is_uniform  # the library's one uniformity test
from .dispatch import MAX_ORDER

__all__ = ["spline_contract", "kan_linear", "available", "MAX_ORDER",
           "poison_outputs", "force_strategy"]


_CUDA_OK = {}  # device index -> True once CUDA was found usable there (it cannot stop being)


def available(device) -> bool:
    """True when the fused kernels can run on ``device`` (CUDA, or the Triton CPU interpreter)."""
    if not _HAVE_TRITON:
        return False
    dev = device if isinstance(device, torch.device) else torch.device(device)
    if dev.type == "cuda":
        if _CUDA_OK.get(dev.index):  # the hot path: one dict lookup per forward
            return True
        ok = torch.cuda.is_available()
        if ok:
            _CUDA_OK[dev.index] = True
        return ok
    return dev.type == "cpu" and os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def geometry(grid: torch.Tensor, dtype: torch.dtype):
    """Per-feature first knot and inverse spacing of a uniform grid."""
    g = grid.detach()
    t0 = g[:, 0].to(dtype).contiguous()
    h = (g[:, -1].to(torch.float64) - g[:, 0].to(torch.float64)) / (g.shape[1] - 1)
    return t0, (1.0 / h).to(dtype).contiguous()


def _check(x, grid, coeff, spline_order):
    if not isinstance(spline_order, int) or isinstance(spline_order, bool):
        raise ValueError(f"spline_order: expected an int, got {type(spline_order).__name__}")
    if not 0 <= spline_order <= MAX_ORDER:
        raise ValueError(f"spline_order: expected 0..{MAX_ORDER}, got {spline_order}")
    if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.dim() < 1:
        raise ValueError("x: expected a floating-point tensor of shape (..., in)")
    if not isinstance(grid, torch.Tensor) or grid.dim() != 2:
        raise ValueError("grid: expected a tensor of shape [in, G + 2k + 1]")
    if not isinstance(coeff, torch.Tensor) or coeff.dim() != 3 or not coeff.is_floating_point():
        raise ValueError("coeff: expected a floating-point tensor of shape [out, in, G + k]")
    n_in = x.shape[-1]
    if grid.shape[0] != n_in:
        raise ValueError(f"grid: expected {n_in} rows (x has in={n_in}), got {grid.shape[0]}")
    n_bases = grid.shape[1] - 1 - spline_order
    if n_bases < 1:
        raise ValueError(f"grid: {grid.shape[1]} knots are too few for spline_order={spline_order}")
    if coeff.shape[1] != n_in or coeff.shape[2] != n_bases:
        raise ValueError(
            f"coeff: expected shape [out, {n_in}, {n_bases}], got {list(coeff.shape)}")
    if x.device != coeff.device or x.device != grid.device:
        raise ValueError(f"coeff: expected device {x.device}, got {coeff.device} (grid on {grid.device})")
    if not available(x.device):
        raise ValueError(f"x: fused kernels are not available on device {x.device} "
                         "(need CUDA, or TRITON_INTERPRET=1 for CPU)")


_GEOMETRY_CACHE = {}


def _prepared(grid, dtype, uniform):
    """(t0, ih) of ``grid``, checking uniformity once per grid version.

    The check needs a device-to-host sync; caching it (keyed on the tensor's
    identity and in-place version counter) keeps the forward sync-free.
    """
    if torch.compiler.is_compiling():
        return geometry(grid, dtype)
    key = (id(grid), dtype)
    hit = _GEOMETRY_CACHE.get(key)
    if hit is not None and hit[0]() is grid and hit[1] == grid._version:
        return hit[2]
    if uniform is None:
        uniform = is_uniform(grid)
    if not uniform:
        raise ValueError("grid: the fused kernels need a uniform grid in every row")
    out = geometry(grid, dtype)
    if len(_GEOMETRY_CACHE) > 256:
        _GEOMETRY_CACHE.clear()
    _GEOMETRY_CACHE[key] = (weakref.ref(grid), grid._version, out)
    return out


def spline_contract(x, grid, coeff, spline_order, uniform=None):
    """Fused ``y = sum_i sum_t B_t(x_i) coeff[:, i, t]`` for x of shape (..., in) -> (..., out).

    Needs a uniform grid (``ValueError`` otherwise; callers fall back to another
    path).  ``uniform=True`` vouches for the grid and skips the check (it is cached
    per grid version anyway; under torch.compile it is skipped).  Under autocast
    the coefficients are cast to the autocast dtype and the result comes back in
    it, like a linear layer; the basis is still evaluated from x in float32.
    """
    _check(x, grid, coeff, spline_order)
    if uniform is False:
        raise ValueError("grid: the fused kernels need a uniform grid in every row")
    dev = x.device.type
    if torch.is_autocast_enabled(dev) and x.dtype != torch.float64:
        coeff = coeff.to(torch.get_autocast_dtype(dev))
    lead = x.shape[:-1]
    x2 = x.reshape(-1, x.shape[-1])
    t0, ih = _prepared(grid, torch.float64 if x.dtype == torch.float64 else torch.float32, uniform)
    y = ops.primitives().fwd(x2, t0, ih, coeff, None, spline_order, 0)
    return y.reshape(*lead, coeff.shape[0])


def kan_linear(x, grid, base_weight, spline_weight, spline_scaler, spline_order, uniform=None):
    """A whole KANLinear with the SiLU base branch, ``(..., in) -> (..., out)``, fused.

    ``silu(x) @ base_weight^T + spline_contract(x, grid, spline_weight * spline_scaler[..., None])``
    as one GEMM per chunk (:mod:`.layer`), in autocast's dtype under autocast.  Returns None
    where that path does not apply (under torch.compile, or where the dispatch picks the
    sparse strategy): the caller then composes the two branches itself.
    """
    _check(x, grid, spline_weight, spline_order)
    from . import layer

    if uniform is False:
        raise ValueError("grid: the fused kernels need a uniform grid in every row")
    planned = layer.plan(x, spline_weight.shape[2], spline_weight.shape[0], spline_weight.dtype)
    if planned is None:
        return None
    t0, ih = _prepared(grid, torch.float64 if x.dtype == torch.float64 else torch.float32, uniform)
    if x.dim() == 2:  # (a reshape to the same shape would still cost a dispatcher call per layer)
        return layer.kan_linear(x, t0, ih, base_weight, spline_weight, spline_scaler, spline_order, planned)
    y = layer.kan_linear(x.reshape(-1, x.shape[-1]), t0, ih, base_weight, spline_weight, spline_scaler,
                         spline_order, planned)
    return y.reshape(*x.shape[:-1], spline_weight.shape[0])
