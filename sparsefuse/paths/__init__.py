"""How a KAN layer computes: the PyTorch spline paths, the fused kernels, and the one decision per call.

Spline paths, one signature: ``spline_contract(x, grid, coeff, spline_order) -> [N, out]``
with ``x [N, in]``, ``grid [in, G+2k+1]``, ``coeff [out, in, G+k]``.  All share the B-spline
semantics of :mod:`sparsefuse.basis.bspline` and are differentiable to any order in ``x``
and ``coeff``.  ``reference`` is the oracle; ``dense`` and ``sparse`` take an optional
``uniform`` (closed-form evaluator or knot search; derived from the grid when left out).
``fused`` is the Triton kernels (:mod:`sparsefuse.kernels`), any grid.

:func:`plan` (:mod:`.plan`) is what ``KANLinear.forward`` asks once per call: the fused
whole-layer op, or one composition of base branch and spline path.
"""

from __future__ import annotations

from ._checks import check_inputs
from .names import PATH_NAMES, get_path
from .plan import Route, plan

__all__ = ["PATH_NAMES", "check_inputs", "get_path", "plan", "Route"]
