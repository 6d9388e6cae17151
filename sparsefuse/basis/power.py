"""MatrixKAN power-basis form of uniform B-splines: ``B(u) = [1, u, ..., u^k] @ M_k``.

On a uniform grid every knot interval carries the same ``k + 1`` polynomial
pieces, so one constant ``(k+1) x (k+1)`` matrix turns the local coordinate
``u in [0, 1)`` into the values of the active bases. ``M_k`` is derived here
from the uniform Cox–de Boor recursion in exact rational arithmetic, for any k.
"""

from __future__ import annotations

import functools
import math
import operator
from fractions import Fraction

import torch


@functools.lru_cache(maxsize=None)
def _scaled_matrix(k: int) -> tuple[tuple[int, ...], ...]:
    """``k! * M_k`` in integers (``M_k`` below): plain int arithmetic, so ``torch.compile`` can trace it.

    Uniform Cox–de Boor in local form: with ``x = t_m + u h``,
    ``v_d[r] = ((u + d - r) v_{d-1}[r-1] + (r + 1 - u) v_{d-1}[r]) / d``; ``w_d = d! v_d``
    drops the division. Polynomials are lists of ints, lowest power first.
    """
    if k < 0:
        raise ValueError(f"spline_order: expected >= 0, got {k}")
    w = [[1]]
    for d in range(1, k + 1):
        new = []
        for r in range(d + 1):
            poly = [0] * (d + 1)
            if r - 1 >= 0:  # (u + d - r) * w[r-1]
                for p, c in enumerate(w[r - 1]):
                    poly[p] = poly[p] + c * (d - r)
                    poly[p + 1] = poly[p + 1] + c
            if r < d:  # (r + 1 - u) * w[r]
                for p, c in enumerate(w[r]):
                    poly[p] = poly[p] + c * (r + 1)
                    poly[p + 1] = poly[p + 1] - c
            new.append(poly)
        w = new
    return tuple(tuple(w[r][p] for r in range(k + 1)) for p in range(k + 1))


def bspline_matrix_exact(k: int) -> tuple[tuple[Fraction, ...], ...]:
    """``M_k[p][r]``: coefficient of ``u^p`` in the r-th active basis ``B_{m-k+r}``, as exact fractions."""
    scale = math.factorial(k) if k >= 0 else 1
    return tuple(tuple(Fraction(c, scale) for c in row) for row in _scaled_matrix(k))


@functools.lru_cache(maxsize=64)
def _matrix_cached(k: int, dtype: torch.dtype, device: str) -> torch.Tensor:
    # int / int is rounded once, exactly as float(Fraction) would be.
    scale = math.factorial(k)
    return torch.tensor([[c / scale for c in row] for row in _scaled_matrix(k)], dtype=dtype, device=device)


def bspline_matrix(k: int, dtype=torch.float64, device="cpu") -> torch.Tensor:
    """``M_k`` as a tensor ``[k+1 (power p), k+1 (active basis r)]``."""
    return _matrix_cached(int(k), dtype, str(torch.device(device)))


def check_derivative(derivative) -> int:
    """``derivative`` as an int >= 0 (a negative order has no meaning for these bases)."""
    if isinstance(derivative, bool):
        raise ValueError(f"derivative: expected an integer >= 0, got {derivative!r}")
    try:
        d = operator.index(derivative)
    except TypeError:
        raise ValueError(f"derivative: expected an integer >= 0, got {derivative!r}") from None
    if d < 0:
        raise ValueError(f"derivative: expected an integer >= 0, got {derivative!r}")
    return d


def power_vector(u: torch.Tensor, k: int, derivative: int = 0) -> torch.Tensor:
    """``d^n/du^n [1, u, ..., u^k]`` stacked on a new last dim (``n = derivative``)."""
    check_derivative(derivative)
    powers = [torch.ones_like(u)]
    for _ in range(k - derivative):
        powers.append(powers[-1] * u if len(powers) > 1 else u)
    cols = [torch.zeros_like(u)] * min(derivative, k + 1)
    for p in range(derivative, k + 1):
        c = math.factorial(p) // math.factorial(p - derivative)
        cols.append(powers[p - derivative] if c == 1 else c * powers[p - derivative])
    return torch.stack(cols, dim=-1)


def evaluate(x: torch.Tensor, grid: torch.Tensor, spline_order: int, derivative: int = 0) -> torch.Tensor:
    """Dense ``[N, in, G+k]`` B-spline bases (or d^n/dx^n) in MatrixKAN form, uniform grids only.

    Naive on purpose: every basis ``j`` reads piece ``r = j - (m - k)`` of the
    interval ``m`` that holds x; no windowing tricks.
    """
    from ..grid import uniform_params

    k = spline_order
    t0, h = uniform_params(grid)
    n_int = grid.shape[1] - 1
    t = (x - t0) / h
    m = torch.floor(t).nan_to_num(0.0).clamp(0, n_int - 1)
    inside = ((t >= 0) & (t < n_int)).to(x.dtype)
    u = torch.where(inside > 0, t - m, torch.zeros_like(t)) + (x - x)
    pieces = power_vector(u, k, derivative) @ bspline_matrix(k, x.dtype, x.device)  # [N, in, k+1]
    pieces = pieces / h.unsqueeze(-1) ** derivative
    nb = n_int - k
    j = torch.arange(nb, device=x.device)
    r = j - (m.long()[..., None] - k)  # [N, in, nb]
    valid = (r >= 0) & (r <= k)
    vals = torch.gather(pieces, -1, r.clamp(0, k))
    return vals * valid.to(x.dtype) * inside[..., None]
