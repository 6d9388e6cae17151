"""Timing harness shared by every experiment.

One function, one result type, so every table in the book is measured the same
way: the median of many repetitions after a warm-up, plus the peak extra memory
the measured call needs. On CUDA the timing comes from
``triton.testing.do_bench`` (CUDA events around each call, caches flushed);
without triton, from CUDA events directly. On CPU it is the wall clock
(``time.perf_counter``) and ``peak_mib`` is NaN: the CPU allocator gives no
cheap, reliable peak figure, and the CPU runs are smoke tests of the code
path, not measurements.
"""
from __future__ import annotations

import contextlib
import math
import statistics
import time
from dataclasses import asdict, dataclass
from typing import Callable

import torch

from sparsefuse.checks import check_int
from sparsefuse.status import OK, OOM, is_oom

__all__ = ["BenchResult", "benchmark", "try_benchmark", "is_oom", "PRECISIONS", "precision", "autocast"]

# The three precision settings every side-by-side table is measured in.
PRECISIONS = ("fp32-ieee", "tf32", "bf16")


@contextlib.contextmanager
def precision(mode: str):
    """Matmul precision for everything run inside (a backward reads it when it runs):
    fp32-ieee: IEEE float32 everywhere; tf32: TF32 matmuls and convolutions; bf16: TF32
    for whatever float32 matmul autocast leaves (pair it with :func:`autocast`)."""
    if mode not in PRECISIONS:
        raise ValueError(f"mode: expected one of {PRECISIONS}, got {mode!r}")
    old, old_cudnn = torch.get_float32_matmul_precision(), torch.backends.cudnn.allow_tf32
    torch.set_float32_matmul_precision("highest" if mode == "fp32-ieee" else "high")
    torch.backends.cudnn.allow_tf32 = mode == "tf32"
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(old)
        torch.backends.cudnn.allow_tf32 = old_cudnn


def autocast(mode: str, device_type: str = "cuda"):
    """bfloat16 autocast for mode bf16, nothing otherwise."""
    if mode == "bf16":
        return torch.autocast(device_type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


@dataclass(frozen=True)
class BenchResult:
    """Median and 20th/80th percentile times in ms, peak extra memory in MiB."""

    median_ms: float
    q20_ms: float
    q80_ms: float
    peak_mib: float
    status: str = OK

    def as_dict(self) -> dict:
        return asdict(self)


def _quantile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return math.nan
    pos = q * (len(sorted_values) - 1)
    lo, hi = math.floor(pos), math.ceil(pos)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def _cpu_times(fn: Callable[[], object], warmup: int, rep: int) -> list[float]:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(rep):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return times


def _cuda_event_times(fn: Callable[[], object], warmup: int, rep: int) -> list[float]:
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    starts = [torch.cuda.Event(enable_timing=True) for _ in range(rep)]
    ends = [torch.cuda.Event(enable_timing=True) for _ in range(rep)]
    for s, e in zip(starts, ends):
        s.record()
        fn()
        e.record()
    torch.cuda.synchronize()
    return [s.elapsed_time(e) for s, e in zip(starts, ends)]


def _cuda_peak_mib(fn: Callable[[], object]) -> float:
    """Peak memory one call allocates beyond what was live before it."""
    torch.cuda.synchronize()
    baseline = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    fn()
    torch.cuda.synchronize()
    return (torch.cuda.max_memory_allocated() - baseline) / 2**20


def benchmark(
    fn: Callable[[], object],
    *,
    device: str | torch.device,
    warmup: int = 5,
    rep: int = 20,
) -> BenchResult:
    """Time ``fn()`` on ``device`` ("cpu" or "cuda[:i]").

    ``warmup``/``rep`` are call counts on CPU and with CUDA events; with
    ``triton.testing.do_bench`` they are passed as its time budgets in ms
    (warm-up 25 ms / 100 ms at the least), which is how that function works.
    """
    warmup, rep = check_int("warmup", warmup, 0), check_int("rep", rep)
    dev = torch.device(device)
    if dev.type == "cpu":
        times = sorted(_cpu_times(fn, warmup, rep))
        return BenchResult(
            statistics.median(times), _quantile(times, 0.2), _quantile(times, 0.8), math.nan
        )
    if dev.type != "cuda":
        raise ValueError(f"device must be 'cpu' or 'cuda', got {device!r}")
    if not torch.cuda.is_available():
        raise ValueError("device is 'cuda' but torch.cuda.is_available() is False")
    with torch.cuda.device(dev):
        fn()  # compile / autotune outside the measurement and the memory probe
        peak = _cuda_peak_mib(fn)
        try:
            from triton.testing import do_bench
        except ImportError:  # plain CUDA events when triton is missing
            times = sorted(_cuda_event_times(fn, warmup, rep))
            return BenchResult(
                statistics.median(times), _quantile(times, 0.2), _quantile(times, 0.8), peak
            )
        med, q20, q80 = do_bench(
            fn, warmup=max(25, warmup), rep=max(100, rep), quantiles=[0.5, 0.2, 0.8]
        )
        return BenchResult(float(med), float(q20), float(q80), peak)


def try_benchmark(fn: Callable[[], object], *, device, **kwargs) -> BenchResult:
    """Like :func:`benchmark`, but an out-of-memory error becomes a row.

    A sweep must survive its largest point: the result then has NaN numbers
    and ``status="oom"``; any other error still raises.
    """
    try:
        return benchmark(fn, device=device, **kwargs)
    except Exception as exc:  # noqa: BLE001 - filtered just below
        if not is_oom(exc):
            raise
        if torch.device(device).type == "cuda":
            torch.cuda.empty_cache()
        return BenchResult(math.nan, math.nan, math.nan, math.nan, status=OOM)
