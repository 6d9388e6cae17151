"""Knot grids: construction and the uniformity test that picks an evaluator.

A grid is a tensor ``[in_features, G + 2k + 1]`` of increasing knots per feature
(efficient-kan layout: ``k`` extra knots on each side of the ``G`` intervals that
cover ``grid_range``). Closed-form evaluators need every row to be evenly spaced;
rows may differ in origin and spacing.
"""

from __future__ import annotations

import operator

import torch


def _is_int(v) -> bool:
    """Python and NumPy integers, not bools."""
    if isinstance(v, bool):
        return False
    try:
        operator.index(v)
    except TypeError:
        return False
    return True


def uniform_grid(in_features: int, grid_size: int, spline_order: int, grid_range=(-1.0, 1.0),
                 *, dtype=None, device=None) -> torch.Tensor:
    """Extended uniform grid ``lo + h * j`` for ``j = -k .. G + k`` (efficient-kan's)."""
    for name, v, least in (("in_features", in_features, 0), ("grid_size", grid_size, 1),
                           ("spline_order", spline_order, 0)):
        if not _is_int(v) or v < least:
            raise ValueError(f"{name}: expected an integer >= {least}, got {v!r}")
    lo, hi = float(grid_range[0]), float(grid_range[1])
    if not lo < hi:
        raise ValueError(f"grid_range: expected lo < hi, got {tuple(grid_range)!r}")
    h = (hi - lo) / grid_size
    j = torch.arange(-spline_order, grid_size + spline_order + 1, dtype=dtype, device=device)
    return (j * h + lo).expand(in_features, -1).contiguous()


def uniform_params(grid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-feature origin ``t_0`` and spacing ``h`` assuming each row is uniform."""
    t0 = grid[:, 0]
    h = (grid[:, -1] - grid[:, 0]) / (grid.shape[1] - 1)
    return t0, h


def is_uniform(grid: torch.Tensor) -> bool:
    """True when each row is evenly spaced up to floating-point rounding.

    The tolerance is a few ulps of the largest knot, so a grid built by
    ``arange * h + lo`` passes in any dtype, while a quantile grid from
    ``update_grid`` fails. Costs one device sync on CUDA: cache the answer.
    """
    if grid.dim() != 2 or grid.shape[1] < 2:
        raise ValueError(f"grid: expected [in, G+2k+1] with at least 2 knots, got {tuple(grid.shape)}")
    if grid.numel() == 0:
        return True
    g = grid.detach()
    t0, h = uniform_params(g)
    if not bool((h > 0).all()):
        return False
    j = torch.arange(g.shape[1], dtype=g.dtype, device=g.device)
    ideal = t0[:, None] + j * h[:, None]
    eps = torch.finfo(g.dtype).eps
    scale = g.abs().amax(dim=1, keepdim=True) + h[:, None]
    return bool(((g - ideal).abs() <= 32 * eps * scale).all())
