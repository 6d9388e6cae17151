"""Spline contraction paths, one signature: ``spline_contract(x, grid, coeff, spline_order) -> [N, out]``.

``x [N, in]``, ``grid [in, G+2k+1]``, ``coeff [out, in, G+k]``. All paths share the
B-spline semantics of :mod:`sparsefuse.basis.bspline` and are differentiable to any
order in ``x`` and ``coeff``. ``reference`` is the oracle; ``dense`` and ``sparse``
take an optional ``uniform``: a bool from callers that cache the grid check (no sync),
or a device flag (:func:`sparsefuse.grid.uniform_flag`) that selects the evaluator with
``torch.cond``, as compiled code does when it is left out.
"""

from __future__ import annotations

from ._checks import check_inputs

__all__ = ["PATH_NAMES", "check_inputs", "get_path"]

PATH_NAMES = ("reference", "dense", "sparse")  # the PyTorch paths; "fused" (the kernels) needs triton


def get_path(name: str):
    """The ``spline_contract`` function of a path by name."""
    if name == "reference":
        from .reference import spline_contract
    elif name == "dense":
        from .dense import spline_contract
    elif name == "sparse":
        from .sparse import spline_contract
    elif name == "fused":
        from .fused import spline_contract
    else:
        raise ValueError(f"name: unknown path {name!r}; expected one of {PATH_NAMES + ('fused',)}")
    return spline_contract
