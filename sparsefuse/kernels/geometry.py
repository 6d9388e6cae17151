"""Per-feature geometry of a knot grid, derived on the device from the knots at every call.

``GEO`` [4, in] in the compute dtype: the first knot ``t_0``, the last knot ``t_end``,
``1/h`` of the line through them, and 1.0 where every knot of the row lies within
``tol * h`` of that line (:func:`sparsefuse.grid.closed_form_ok`'s test, run in float64 on
the device; ``tol`` from the contraction's working precision), else 0.0.  The kernels take
the closed form on such rows and evaluate on the actual knots otherwise (:mod:`._basis`),
so their error does not grow with G.  Nothing is cached: a grid written in place, through
``.data`` or not, is seen by the next call, and no host sync is needed.

The fused layer gets ``GEO`` from its pack launch (``feature_geometry`` there), so it costs
no launch of its own; everything else calls :func:`geometry`.
"""

import torch
import triton
import triton.language as tl

from ..grid import closed_form_tolerance
from . import _runtime as rt
from .launch import launch


@triton.jit
def feature_geometry(T, GEO, offs_i, mask_i, NK, stk, sgeo, TOL, BLOCK_K: tl.constexpr):
    """Write GEO[:, offs_i] for the features ``offs_i`` (int64) of the knot rows ``T``; a knot is
    on the line when within ``TOL`` spacings of it."""
    row = T + offs_i * stk
    t0 = tl.load(row, mask=mask_i, other=0.0).to(tl.float64)
    tend = tl.load(row + NK - 1, mask=mask_i, other=1.0).to(tl.float64)
    h = (tend - t0) / (NK - 1)
    tol = TOL * h
    bad = tl.zeros_like(t0)  # count of knots off the line (NaN counts: the compare is False)
    for c in range(0, NK, BLOCK_K):
        kk = c + tl.arange(0, BLOCK_K)
        mk = kk < NK
        v = tl.load(row[:, None] + kk[None, :], mask=mask_i[:, None] & mk[None, :], other=0.0).to(tl.float64)
        on_line = tl.abs(v - (t0[:, None] + kk[None, :].to(tl.float64) * h[:, None])) <= tol[:, None]
        bad += tl.sum(tl.where(mk[None, :] & ~on_line, 1.0, 0.0), axis=1)
    uniform = (bad == 0.0) & (h > 0.0)
    dt = GEO.dtype.element_ty
    tl.store(GEO + offs_i, t0.to(dt), mask=mask_i)
    tl.store(GEO + sgeo + offs_i, tend.to(dt), mask=mask_i)
    tl.store(GEO + 2 * sgeo + offs_i, (1.0 / tl.where(h > 0.0, h, 1.0)).to(dt), mask=mask_i)
    tl.store(GEO + 3 * sgeo + offs_i, tl.where(uniform, 1.0, 0.0).to(dt), mask=mask_i)


@triton.jit
def _geometry_kernel(T, GEO, IN, NK, stk, sgeo, TOL, BLOCK_I: tl.constexpr, BLOCK_K: tl.constexpr):
    offs_i = (tl.program_id(0) * BLOCK_I + tl.arange(0, BLOCK_I)).to(tl.int64)
    feature_geometry(T, GEO, offs_i, offs_i < IN, NK, stk, sgeo, TOL, BLOCK_K)


def tolerance(dot_dtype: torch.dtype) -> float:
    """Distance from the line (in spacings) up to which a row takes the closed form, for a
    contraction with ``dot_dtype`` operands (float32: TF32 when torch's setting allows it)."""
    return closed_form_tolerance(dot_dtype, rt.dot_precision(dot_dtype) == "tf32")


def compute_dtype_of(x_dtype: torch.dtype) -> torch.dtype:
    """The dtype the basis is evaluated in: float64 for float64 inputs, float32 otherwise."""
    return torch.float64 if x_dtype == torch.float64 else torch.float32


def alloc_geometry(grid: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    return rt.alloc((4, grid.shape[0]), dtype, grid.device)


def geometry(grid: torch.Tensor, dtype: torch.dtype, dot_dtype: torch.dtype = None) -> torch.Tensor:
    """``GEO`` [4, in] of ``grid`` [in, G + 2k + 1] for kernels evaluating the basis in ``dtype``
    and contracting in ``dot_dtype`` (default ``dtype``): one launch."""
    if grid.stride(1) != 1:
        grid = grid.contiguous()
    geo = alloc_geometry(grid, dtype)
    IN, NK = grid.shape
    if IN == 0:
        return geo
    BLOCK_I, BLOCK_K = 32, 16
    with rt.device_guard(grid):
        launch(_geometry_kernel, (rt.cdiv(IN, BLOCK_I),), grid, geo, IN, NK, grid.stride(0), geo.stride(0),
                                                  tolerance(dot_dtype or dtype),
                                                  BLOCK_I=BLOCK_I, BLOCK_K=BLOCK_K, num_warps=1)
    return geo
