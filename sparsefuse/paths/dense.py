"""Dense path: local closed-form bases scattered into the dense ``[N, in*(G+k)]`` matrix, then one GEMM.

Wins when ``G + k`` is small: the GEMM is dense-efficient and the basis costs
O(k^2) per entry instead of the reference's O((G+k) k).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..basis.bspline import local, scatter_dense
from ._checks import check_inputs


def spline_contract(x: torch.Tensor, grid: torch.Tensor, coeff: torch.Tensor, spline_order: int,
                    uniform: bool | None = None) -> torch.Tensor:
    check_inputs(x, grid, coeff, spline_order)
    first, values = local(x, grid.to(x.dtype), spline_order, uniform=uniform)
    bases = scatter_dense(first, values, coeff.shape[2])
    n_cols = coeff.shape[1] * coeff.shape[2]
    return F.linear(bases.reshape(x.shape[0], n_cols), coeff.reshape(coeff.shape[0], n_cols))
