"""Grid maintenance of a KANLinear: new knots and the refit spline, computed before anything is written.

``update_grid`` and ``extend_grid`` (of a layer, or of a whole ``KAN``) first get the
new ``(grid, spline_weight)`` of every layer from here, which validates its arguments
and never touches the layer, and only then write: a call that raises leaves the model
as it was.
"""

from __future__ import annotations

import math
import warnings

import torch

from .basis.bspline import cox_de_boor
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


def check_positive_int(name: str, v) -> None:
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise ValueError(f"{name}: expected an integer >= 1, got {v!r}")


@torch.no_grad()
def updated(layer, x: torch.Tensor, margin: float):
    """``(grid, spline_weight)`` of ``layer.update_grid(x, margin)``."""
    layer._check_x(x)
    if isinstance(margin, bool) or not isinstance(margin, (int, float)) or not 0 <= margin < math.inf:
        raise ValueError(f"margin: expected a finite number >= 0, got {margin!r}")
    old_grid, coeff = _work(layer)
    x = x.reshape(-1, layer.in_features).to(old_grid.dtype)
    if x.shape[0] == 0:
        raise ValueError("x: update_grid needs at least one sample")
    if not bool(torch.isfinite(x).all()):
        raise ValueError("x: update_grid needs finite samples, got NaN or Inf")
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


@torch.no_grad()
def extended(layer, new_grid_size: int, num_samples: int | None):
    """``(grid, spline_weight, max fit error)`` of ``layer.extend_grid(new_grid_size, num_samples)``."""
    check_positive_int("new_grid_size", new_grid_size)
    if num_samples is not None:
        check_positive_int("num_samples", num_samples)
    k = layer.spline_order
    g, old_coeff = _work(layer)
    s = num_samples if num_samples is not None else max(8 * (new_grid_size + k), 256)
    frac = torch.linspace(0, 1, s, dtype=g.dtype, device=g.device).unsqueeze(1)
    xs = g[:, k] + (g[:, -k - 1] - g[:, k]) * frac  # [S, in] over [t_k, t_{G+k}]
    old = edge_values(cox_de_boor(xs, g, k), old_coeff)
    grid = refined_grid(g, k, new_grid_size).to(layer.grid.dtype)
    bases = cox_de_boor(xs, grid.to(g.dtype), k)
    coeff = fit(bases, old)
    err = float((edge_values(bases, coeff) - old).abs().max()) if old.numel() else 0.0
    return grid, layer._unscale(coeff).to(layer.spline_weight.dtype), err


def warn_resized(changes: list[str]) -> None:
    """One warning for all the ``spline_weight`` that changed shape (``changes``: "name [old] -> [new]")."""
    if changes:
        warnings.warn("extend_grid resized in place (same Parameter objects, so optimizers still hold them): "
                      + "; ".join(changes) + ". Optimizer state kept for them (momentum, Adam moments, "
                      "L-BFGS history) no longer fits: build the optimizer again from model.parameters()",
                      GridResizeWarning, stacklevel=3)
