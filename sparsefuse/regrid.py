"""Grid maintenance of a KANLinear: new knots and the refit spline, computed before anything is written.

``update_grid`` and ``extend_grid`` (of a layer, or of a whole ``KAN``) first get the
new ``(grid, spline_weight)`` of every layer from here, which validates its arguments
and never touches the layer, and only then write: a call that raises leaves the model
as it was.
"""

from __future__ import annotations

import math
import warnings
import weakref

import torch
from torch.optim.optimizer import register_optimizer_step_post_hook

from .basis.bspline import cox_de_boor
from .checks import check_int, check_samples
from .grid import adaptive_grid, refined_grid


class GridResizeWarning(UserWarning):
    """``spline_weight`` changed shape in place: optimizer state kept for it no longer fits."""


def fit(bases: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Least-squares coefficients ``[out, in, G+k]`` from bases ``[N, in, G+k]`` and targets ``[N, in, out]``."""
    sol = torch.linalg.lstsq(bases.transpose(0, 1), y.transpose(0, 1)).solution  # [in, G+k, out]
    return sol.permute(2, 0, 1).contiguous()


def edge_values(bases: torch.Tensor, coeff: torch.Tensor) -> torch.Tensor:
    """Spline value of every edge ``[N, in, out]`` from bases ``[N, in, G+k]`` and ``coeff [out, in, G+k]``."""
    return torch.bmm(bases.transpose(0, 1), coeff.permute(1, 2, 0)).transpose(0, 1)


def _work(layer):
    """``(grid, scaled coefficients)`` in at least float32: lstsq has no half-precision kernels."""
    dtype = torch.promote_types(layer.grid.dtype, torch.float32)
    return layer.grid.to(dtype), layer.scaled_spline_weight.detach().to(dtype)


@torch.no_grad()
def updated(layer, x: torch.Tensor, margin: float):
    """``(grid, spline_weight)`` of ``layer.update_grid(x, margin)``."""
    x = check_samples(layer, x, "update_grid")
    if isinstance(margin, bool) or not isinstance(margin, (int, float)) or not 0 <= margin < math.inf:
        raise ValueError(f"margin: expected a finite number >= 0, got {margin!r}")
    old_grid, coeff = _work(layer)
    x = x.to(old_grid.dtype)
    k = layer.spline_order
    grid = adaptive_grid(x, layer.grid_size, k, layer.grid_eps, margin).to(layer.grid.dtype)
    if not bool((grid[:, 1:] > grid[:, :-1]).all()):
        raise ValueError(f"x: too few distinct values in a feature for {layer.grid_size} grid intervals "
                         f"with grid_eps={layer.grid_eps} (knots would repeat)")
    target = edge_values(cox_de_boor(x, old_grid, k), coeff)
    weight = layer._unscale(fit(cox_de_boor(x, grid.to(x.dtype), k), target)).to(layer.spline_weight.dtype)
    if not bool(torch.isfinite(weight).all()):
        raise ValueError("x: the least-squares refit of the spline on x is not finite")
    return grid, weight


def support_samples(old: torch.Tensor, new: torch.Tensor, per_interval: int) -> torch.Tensor:
    """``[S, in]``: every knot of both grids and ``per_interval - 1`` more points evenly inside each
    interval of ``new``; with the two grids' outer knots equal these cover the whole support."""
    left, width = new[:, :-1].unsqueeze(-1), new.diff(dim=1).unsqueeze(-1)
    frac = torch.arange(per_interval, dtype=new.dtype, device=new.device) / per_interval
    return torch.cat([(left + width * frac).flatten(1), new[:, -1:], old], dim=1).T.contiguous()


@torch.no_grad()
def extended(layer, new_grid_size: int, num_samples: int | None):
    """``(grid, spline_weight, error)`` of ``layer.extend_grid(new_grid_size, num_samples)``.

    The new grid keeps the outer knots (:func:`refined_grid`), so both splines vanish beyond
    ``[t_0, t_{G+2k}]``; fit and error are taken over all of it, and ``error`` is the largest
    change of any edge function anywhere, sampled at about ``num_samples`` points per feature
    (every knot among them; default 8 per interval of the new grid, at least 256).
    """
    new_grid_size = check_int("new_grid_size", new_grid_size)
    if num_samples is not None:
        num_samples = check_int("num_samples", num_samples)
    k = layer.spline_order
    g, old_coeff = _work(layer)
    grid = refined_grid(g, k, new_grid_size).to(layer.grid.dtype)
    intervals = new_grid_size + 2 * k
    s = num_samples if num_samples is not None else max(8 * intervals, 256)
    xs = support_samples(g, grid.to(g.dtype), max(1, math.ceil(s / intervals)))
    old = edge_values(cox_de_boor(xs, g, k), old_coeff)
    bases = cox_de_boor(xs, grid.to(g.dtype), k)
    coeff = fit(bases, old)
    err = float((edge_values(bases, coeff) - old).abs().max()) if old.numel() else 0.0
    return grid, layer._unscale(coeff).to(layer.spline_weight.dtype), err


# Optimizers that have taken a step: only their state can stop fitting a resized weight. Weak,
# so an optimizer that is gone no longer counts; a global hook, since a parameter does not
# know which optimizers hold it.
_STEPPED = weakref.WeakSet()
register_optimizer_step_post_hook(lambda opt, args, kwargs: _STEPPED.add(opt))


def has_optimizer_state(p: torch.Tensor) -> bool:
    """Whether a live optimizer holds ``p`` and keeps state (per parameter, or L-BFGS's history)."""
    return any(opt.state and any(q is p for group in opt.param_groups for q in group["params"])
               for opt in list(_STEPPED))


def warn_resized(changes: list[str]) -> None:
    """One warning for all the ``spline_weight`` that changed shape (``changes``: "name [old] -> [new]")."""
    if changes:
        warnings.warn("extend_grid resized in place (same Parameter objects, so optimizers still hold them): "
                      + "; ".join(changes) + ". Optimizer state kept for them (momentum, Adam moments, "
                      "L-BFGS history) no longer fits: build the optimizer again from model.parameters()",
                      GridResizeWarning, stacklevel=3)
