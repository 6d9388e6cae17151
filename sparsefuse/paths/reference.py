"""Reference path: efficient-kan's algorithm, full Cox–de Boor bases and one GEMM. The oracle."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..basis.bspline import cox_de_boor
from ._checks import check_inputs


def spline_contract(x: torch.Tensor, grid: torch.Tensor, coeff: torch.Tensor, spline_order: int,
                    uniform: bool | None = None) -> torch.Tensor:
    """``y[n, o] = sum_{i, j} B_j(x[n, i]; grid[i]) * coeff[o, i, j]``; ``uniform`` is ignored."""
    check_inputs(x, grid, coeff, spline_order)
    bases = cox_de_boor(x, grid.to(x.dtype), spline_order)  # [N, in, G+k]
    n_cols = coeff.shape[1] * coeff.shape[2]
    return F.linear(bases.reshape(x.shape[0], n_cols), coeff.reshape(coeff.shape[0], n_cols))
