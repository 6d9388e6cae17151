"""The argument checks every path shares, apart from the package so the paths need not import it."""

from __future__ import annotations

import torch


def check_inputs(x: torch.Tensor, grid: torch.Tensor, coeff: torch.Tensor, spline_order: int) -> None:
    """Shape and dtype checks shared by all paths (no device sync)."""
    if spline_order < 1:
        raise ValueError(f"spline_order: expected >= 1, got {spline_order}")
    if not torch.is_tensor(x) or x.dim() != 2:
        raise ValueError(f"x: expected a 2-D tensor [N, in], got shape {tuple(getattr(x, 'shape', ()))}")
    if not x.is_floating_point():
        raise ValueError(f"x: expected a floating dtype, got {x.dtype}")
    n_in = x.shape[1]
    if grid.dim() != 2 or grid.shape[0] != n_in or grid.shape[1] < 2 * spline_order + 2:
        raise ValueError(f"grid: expected [{n_in}, G+2k+1] with G >= 1 and k={spline_order}, got {tuple(grid.shape)}")
    nb = grid.shape[1] - 1 - spline_order
    if coeff.dim() != 3 or coeff.shape[1] != n_in or coeff.shape[2] != nb:
        raise ValueError(f"coeff: expected [out, {n_in}, {nb}], got {tuple(coeff.shape)}")
