"""What every measured run of the lab sets and records: its seed, its CPU threads, its size, its peak memory.

Every chapter trains or times something and reports the same things beside its
result, so that a run can be repeated (the seed), a smoke run on two CPU cores is
not slowed by thread synchronisation, and parameter-matched comparisons and
memory columns are counted alike in every table.
"""

from __future__ import annotations

import contextlib
import random

import numpy as np
import torch

from sparsefuse.checks import check_int

__all__ = ["seed_everything", "cpu_threads", "one_thread_on_cpu", "count_parameters", "PeakMemory"]


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch so a run can be repeated; returns a CPU generator."""
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


@contextlib.contextmanager
def cpu_threads(n: int | None):
    """Temporarily run torch's CPU ops on ``n`` threads (``None``: leave as is).

    The smoke profiles train models of a few hundred parameters: there, extra
    intra-op threads only add synchronisation, and on a busy two-core machine
    they make a run several times slower.
    """
    if n is None:
        yield
        return
    n = check_int("n", n)
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def one_thread_on_cpu(device, when: bool = True):
    """:func:`cpu_threads` (1) on a CPU device when ``when`` holds; unchanged elsewhere."""
    return cpu_threads(1 if when and torch.device(device).type == "cpu" else None)


def count_parameters(model: torch.nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable) scalar parameters: the x-axis of every parameter-matched comparison."""
    return int(sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only))


class PeakMemory:
    """Context manager measuring peak allocated device memory in MiB.

    CUDA only: on CPU the allocator keeps no peak statistic, so ``mib`` is NaN
    rather than a misleading number.
    """

    def __init__(self, device):
        self.device = torch.device(device)
        self.mib = float("nan")

    def __enter__(self) -> "PeakMemory":
        if self.device.type == "cuda" and torch.cuda.is_available():
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
        return self

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda" and torch.cuda.is_available():
            torch.cuda.synchronize(self.device)
            self.mib = torch.cuda.max_memory_allocated(self.device) / 2**20
