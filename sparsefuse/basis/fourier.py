"""Fourier features ``cos(j x), sin(j x)`` for ``j = 1..gridsize`` (FourierKAN-style)."""

from __future__ import annotations

import torch


def evaluate(x: torch.Tensor, gridsize: int) -> torch.Tensor:
    """``[..., 2 * gridsize]``: all cosines first, then all sines (FourierKAN's coefficient layout)."""
    if gridsize < 1:
        raise ValueError(f"gridsize: expected >= 1, got {gridsize}")
    j = torch.arange(1, gridsize + 1, dtype=x.dtype, device=x.device)
    a = x.unsqueeze(-1) * j
    return torch.cat([torch.cos(a), torch.sin(a)], dim=-1)
