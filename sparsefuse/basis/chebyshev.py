"""Chebyshev polynomials of ``tanh(x)`` (ChebyKAN-style): global, bounded, smooth."""

from __future__ import annotations

import torch


def evaluate(x: torch.Tensor, degree: int) -> torch.Tensor:
    """``[..., degree + 1]`` values ``T_n(tanh x)`` by the three-term recurrence.

    tanh maps any real x into (-1, 1), where the polynomials are bounded by 1;
    the recurrence (not ``cos(n acos z)``) keeps derivatives finite everywhere.
    """
    if degree < 0:
        raise ValueError(f"degree: expected >= 0, got {degree}")
    z = torch.tanh(x)
    out = [torch.ones_like(z) + 0 * z]
    if degree >= 1:
        out.append(z)
    for _ in range(2, degree + 1):
        out.append(2 * z * out[-1] - out[-2])
    return torch.stack(out, dim=-1)
