"""The synthetic problems the kernel chapters time: inputs, grid and coefficients of one layer."""
from __future__ import annotations

import math

import torch

from sparsefuse.grid import uniform_grid


def make_problem(n: int, in_features: int, out_features: int, grid_size: int, spline_order: int, *,
                 device="cpu", dtype=torch.float32, seed: int = 0, requires_grad: bool = False):
    """Random inputs in the grid range, the grid, and coefficients scaled like a trained layer."""
    gen = torch.Generator(device="cpu").manual_seed(seed)
    x = (torch.rand(n, in_features, generator=gen, dtype=torch.float32) * 2 - 1).to(device, dtype)
    nb = grid_size + spline_order
    coeff = (torch.randn(out_features, in_features, nb, generator=gen) / math.sqrt(in_features * (spline_order + 1)))
    coeff = coeff.to(device, dtype)
    grid = uniform_grid(in_features, grid_size, spline_order, (-1.0, 1.0), device=device, dtype=dtype)
    if requires_grad:
        x.requires_grad_(True)
        coeff.requires_grad_(True)
    return x, grid, coeff


def fused_work(n: int, in_features: int, out_features: int, grid_size: int, spline_order: int) -> int:
    """Size measure for the interpreter budget: the dense-tile work N·in·out·(G+k)."""
    return n * in_features * out_features * (grid_size + spline_order)


def basis_density(grid_size: int, spline_order: int) -> float:
    """Fraction of the G+k B-spline bases that are nonzero at one input: (k+1)/(G+k)."""
    return (spline_order + 1) / (grid_size + spline_order)
