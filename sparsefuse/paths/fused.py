"""The fused Triton kernels (:mod:`sparsefuse.kernels`) as a path beside reference/dense/sparse.

Same signature as the other paths.  ``uniform`` is a bool in eager code (False raises:
the kernels need a uniform grid) or, in compiled code where nothing may depend on data
on the host, a device flag: ``torch.cond`` then runs the kernels on a uniform grid and
the dense path otherwise.
"""

from __future__ import annotations

import torch


def unavailable(device) -> str | None:
    """Why the kernels cannot run on ``device``, or None when they can."""
    try:
        from .. import kernels
        ok = kernels.available(device)
    except Exception as e:  # missing triton, partial install, ...
        return f"sparsefuse.kernels could not be imported ({type(e).__name__}: {e})"
    if not ok:
        return f"sparsefuse.kernels is not available on device {device} (needs CUDA, or TRITON_INTERPRET=1)"
    return None


def spline_contract(x, grid, coeff, spline_order, uniform=None):
    why = unavailable(x.device)
    if why is not None:
        raise RuntimeError(f"impl='fused': {why}")
    from .. import kernels

    if not torch.is_tensor(uniform):
        return kernels.spline_contract(x, grid, coeff, spline_order, uniform=uniform)
    from .dense import spline_contract as dense

    k = spline_order
    return torch.cond(uniform, lambda x, g, c: kernels.spline_contract(x, g, c, k, uniform=True).contiguous(),
                      lambda x, g, c: dense(x, g, c, k, uniform=False).contiguous(), (x, grid, coeff))
