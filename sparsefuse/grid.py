"""Knot grids: construction, the uniformity test, and when a closed form may stand in for the knots.

A grid is a tensor ``[in_features, G + 2k + 1]`` of increasing knots per feature
(efficient-kan layout: ``k`` extra knots on each side of the ``G`` intervals that
cover ``grid_range``). Closed-form evaluators need every row to be evenly spaced;
rows may differ in origin and spacing.

Two questions, two tests.  :func:`is_uniform`: is the grid uniform up to the rounding of
its own dtype (the grid as intended)?  :func:`closed_form_ok`: does the closed form
reproduce Cox–de Boor on these very knots to a given working precision?  The knots of a
float32 grid sit up to half an ulp of its largest knot off the line, which is G / 4
ulps of the spacing h: a closed form that assumes exact spacing then errs by ~G eps
(float32 at G = 3000: 2e-4 against 2e-7 for Cox–de Boor on the knots).  The second test
asks for every knot within ``closed_form_tolerance(dtype) * h`` of the line instead, so the
closed form's error stays below that bound at every G, and the evaluators search the
knots where it does not hold.
"""

from __future__ import annotations

import operator

import torch

# Tolerance of the uniformity test in epsilons of the grid's dtype (relative to the row's
# largest knot). Measured worst cases: 0.92 for a grid rounded to bfloat16 / float16 from
# float32, 1.6 / 3.0 for float32 / float64 grids of G=1000 built by ``arange * h + lo``.
UNIFORM_ULPS = 4

# Distance from the line, relative to the spacing, below which the closed form stands in for
# the knots, per working precision: under the rounding of 16-bit and TF32 operands (2^-11 and
# coarser), 2^-17 for float32 (G <= ~250 on [-1, 1] in float32 keeps it; its error is then at
# most ~1e-5 of the output scale), near float64's own rounding for float64 (exact to 1e-12).
CLOSED_FORM_TOLERANCE = {"16bit": 2.0**-12, "float32": 2.0**-17, "float64": 2.0**-46}


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


def uniform_flag(grid: torch.Tensor) -> torch.Tensor:
    """0-dim bool tensor on ``grid``'s device: every row evenly spaced and increasing.

    No host sync (a tensor on the grid's device). A row is
    uniform when each knot is within ``UNIFORM_ULPS`` epsilons (of the grid's own
    dtype, relative to the row's largest knot) of the line through its end knots:
    rounding a uniform grid to any dtype, bfloat16 included, stays within that, while
    a quantile grid from ``update_grid`` is off by a sizeable part of a spacing.
    The test runs in float64 so it adds no rounding of its own.
    """
    g = grid.detach().to(torch.float64)
    n = g.shape[1]
    h = (g[:, -1] - g[:, 0]) / (n - 1)
    ideal = g[:, :1] + torch.arange(n, dtype=g.dtype, device=g.device) * h.unsqueeze(1)
    tol = UNIFORM_ULPS * torch.finfo(grid.dtype).eps * g.abs().amax(dim=1, keepdim=True)
    return ((g - ideal).abs() <= tol).all() & (h > 0).all()


def is_uniform(grid: torch.Tensor) -> bool:
    """:func:`uniform_flag` as a Python bool (one device sync on CUDA: cache the answer).

    The one uniformity test of the library: the closed-form evaluators and the fused
    kernels may be used exactly when it holds.
    """
    if grid.dim() != 2 or grid.shape[1] < 2:
        raise ValueError(f"grid: expected [in, G+2k+1] with at least 2 knots, got {tuple(grid.shape)}")
    if not grid.is_floating_point():
        raise ValueError(f"grid: expected a floating dtype, got {grid.dtype}")
    return bool(uniform_flag(grid))


def closed_form_tolerance(dtype: torch.dtype, tf32: bool = False) -> float:
    """:data:`CLOSED_FORM_TOLERANCE` of a working dtype (float32 with ``tf32``: its 10-bit operands)."""
    if dtype == torch.float64:
        return CLOSED_FORM_TOLERANCE["float64"]
    if dtype == torch.float32 and not tf32:
        return CLOSED_FORM_TOLERANCE["float32"]
    return CLOSED_FORM_TOLERANCE["16bit"]


def closed_form_ok(grid: torch.Tensor, dtype: torch.dtype, tf32: bool = False) -> bool:
    """Whether every row's knots lie within ``closed_form_tolerance(dtype) * h`` of the line through
    its end knots (h > 0): then the closed-form evaluators reproduce Cox–de Boor on these
    knots to that precision.  One device sync on CUDA; the kernels run the same test on the
    device (:mod:`sparsefuse.kernels.geometry`)."""
    g = grid.detach().to(torch.float64)
    if g.numel() == 0:
        return True
    n = g.shape[1]
    h = (g[:, -1] - g[:, 0]) / (n - 1)
    ideal = g[:, :1] + torch.arange(n, dtype=g.dtype, device=g.device) * h.unsqueeze(1)
    tol = closed_form_tolerance(dtype, tf32) * h.unsqueeze(1)
    return bool(((g - ideal).abs() <= tol).all() & (h > 0).all())


def adaptive_grid(x: torch.Tensor, grid_size: int, spline_order: int, grid_eps: float,
                  margin: float) -> torch.Tensor:
    """efficient-kan's ``update_grid`` knots ``[in, G+2k+1]`` for samples ``x [N, in]``.

    ``G + 1`` data quantiles blended with a uniform grid over the data range (weight
    ``grid_eps``), extended by ``k`` knots of the uniform step on each side.
    """
    n, g, k = x.shape[0], grid_size, spline_order
    xs = torch.sort(x, dim=0)[0]
    idx = torch.linspace(0, n - 1, g + 1, dtype=torch.int64, device=x.device)
    step = (xs[-1] - xs[0] + 2 * margin) / g
    steps = torch.arange(g + 1, dtype=x.dtype, device=x.device).unsqueeze(1)
    knots = grid_eps * (steps * step + xs[0] - margin) + (1 - grid_eps) * xs[idx]
    ext = torch.arange(1, k + 1, dtype=x.dtype, device=x.device).unsqueeze(1)
    return torch.cat([knots[:1] - step * ext.flip(0), knots, knots[-1:] + step * ext], dim=0).T.contiguous()


def refined_grid(grid: torch.Tensor, spline_order: int, new_grid_size: int) -> torch.Tensor:
    """``new_grid_size`` uniform intervals over each row's ``[t_k, t_{G+k}]``; the ``k`` outer knots
    on each side are kept.

    With them the finer spline spans the same support ``[t_0, t_{G+2k}]`` as the coarser one, so it
    can keep the layer's function outside ``[t_k, t_{G+k}]`` too (outer knots at the finer spacing
    would end the support at ``t_k - k h'``, and hidden layers are used there). The grid is then
    uniform only when ``new_grid_size`` is the old size of a uniform grid.
    """
    k, n = spline_order, grid.shape[1]
    lo, hi = grid[:, k : k + 1], grid[:, n - k - 1 : n - k]
    w = torch.arange(new_grid_size + 1, dtype=grid.dtype, device=grid.device) / new_grid_size
    return torch.cat([grid[:, :k], torch.lerp(lo, hi, w), grid[:, n - k :]], dim=1).contiguous()
