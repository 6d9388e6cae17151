"""Shared fixtures: seeded generators and small float64 spline problems."""

import os

import pytest
import torch

# On CPU the fused kernels run only through Triton's interpreter, which is chosen when triton
# is first imported: set it before any test module can import the kernels.
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

from sparsefuse.grid import uniform_grid


@pytest.fixture
def poisoned():
    """Kernel outputs allocated NaN-filled: an element a kernel forgets to write then fails the
    comparison instead of passing by luck (kernel test modules use it for every test)."""
    from sparsefuse import kernels as sk

    with sk.poison_outputs():
        yield


@pytest.fixture
def gen():
    return torch.Generator().manual_seed(1234)


def make_problem(n, n_in, n_out, grid_size, k, *, seed=0, kind="uniform", spread=1.4, dtype=torch.float64):
    """``(x, grid, coeff)`` with x partly outside the grid; ``kind``: uniform | per_feature | random |
    adaptive (random steps, some 1000x shorter than the rest: close but distinct knots, and a
    few x exactly on knots)."""
    g = torch.Generator().manual_seed(seed)
    if kind == "uniform":
        grid = uniform_grid(n_in, grid_size, k, (-1.0, 1.0), dtype=dtype)
    elif kind == "per_feature":  # uniform rows with different origin and spacing
        lo = torch.rand(n_in, 1, generator=g, dtype=dtype) - 1.5
        h = torch.rand(n_in, 1, generator=g, dtype=dtype) * 0.5 + 0.1
        grid = lo + h * torch.arange(-k, grid_size + k + 1, dtype=dtype)
    elif kind in ("random", "adaptive"):
        steps = torch.rand(n_in, grid_size + 2 * k + 1, generator=g, dtype=dtype) + 0.05
        if kind == "adaptive":
            steps[:, 1::3] *= 1e-3
        grid = torch.cumsum(steps, 1) - steps.sum(1, keepdim=True) / 2
        grid = grid / grid.abs().amax(1, keepdim=True) * 1.2
    else:
        raise ValueError(kind)
    x = (torch.rand(n, n_in, generator=g, dtype=dtype) * 2 - 1) * spread * grid.abs().amax()
    if kind == "adaptive" and n > 2:  # exactly on knots, the last one included
        idx = torch.randint(0, grid.shape[1], (n_in,), generator=g)
        x[0] = grid[torch.arange(n_in), idx]
        x[1] = grid[:, -1]
    coeff = torch.randn(n_out, n_in, grid_size + k, generator=g, dtype=dtype)
    return x, grid.contiguous(), coeff


@pytest.fixture
def problem():
    return make_problem
