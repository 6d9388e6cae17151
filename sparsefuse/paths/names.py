"""The spline paths by name: what ``impl`` strings and the benchmarks look paths up with."""

from __future__ import annotations

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
        from ..kernels import spline_contract
    else:
        raise ValueError(f"name: unknown path {name!r}; expected one of {PATH_NAMES + ('fused',)}")
    return spline_contract
