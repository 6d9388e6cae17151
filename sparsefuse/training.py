"""Small training utilities shared by the model chapters.

Every chapter trains something for a fixed budget and reports the same things:
the seed, the loss curve, the wall time, the peak memory, and whether the run
finished or diverged.  Keeping that bookkeeping here means a NaN in one run is
recorded as ``status="diverged"`` (:mod:`sparsefuse.status`) instead of crashing a notebook batch.
"""

from __future__ import annotations

import contextlib
import math
import random
import time
from dataclasses import dataclass, field
from typing import Callable, Mapping

import numpy as np
import pandas as pd
import torch

from .checks import check_int
from .status import DIVERGED, OK, TIME_BUDGET

__all__ = [
    "seed_everything",
    "count_parameters",
    "synchronize",
    "PeakMemory",
    "TrainResult",
    "train_loop",
    "curves_to_frame",
    "attach_tables",
    "cpu_threads",
    "one_thread_on_cpu",
    "attached_table",
]


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


def synchronize(device) -> None:
    """Wait for queued GPU work so wall-clock timings mean something."""
    dev = torch.device(device)
    if dev.type == "cuda" and torch.cuda.is_available():
        torch.cuda.synchronize(dev)


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


@dataclass
class TrainResult:
    """Outcome of :func:`train_loop`.  ``curve`` has one row per logged step."""

    status: str  # OK | DIVERGED | TIME_BUDGET
    steps: int
    final_loss: float
    wall_s: float
    curve: pd.DataFrame
    diverged_at: int | None = None
    extra: dict = field(default_factory=dict)
    n_steps: int | None = None  # steps asked for
    time_budget_s: float | None = None

    @property
    def note(self) -> str:
        """Why the run ended early, for a results table ("" when it did all its steps)."""
        if self.status == DIVERGED:
            return f"non-finite or exploding loss at step {self.diverged_at}"
        if self.status == TIME_BUDGET:
            return f"stopped by its {self.time_budget_s:g} s budget after {self.steps} of {self.n_steps} steps"
        return ""


def _as_metrics(out) -> dict:
    if isinstance(out, Mapping):
        if "loss" not in out:
            raise ValueError("step_fn must return a float or a mapping with a 'loss' key")
        return {k: float(v) for k, v in out.items()}
    return {"loss": float(out)}


def train_loop(
    step_fn: Callable[[int], float | Mapping[str, float]],
    n_steps: int,
    *,
    desc: str = "train",
    progress: bool = True,
    log_every: int = 1,
    divergence_threshold: float = 1e12,
    device="cpu",
    time_budget_s: float | None = None,
) -> TrainResult:
    """Run ``step_fn(step)`` for ``n_steps`` and log its loss.

    ``step_fn`` does one optimisation step and returns the loss (or a dict of
    metrics containing ``"loss"``).  A non-finite loss, or one above
    ``divergence_threshold``, stops the run and marks it ``"diverged"``; the
    curve up to that point is kept.  Wall time excludes nothing but includes a
    device synchronisation at the end.  With ``time_budget_s`` the run also stops
    once that many seconds have passed and is marked ``"time budget"`` (the steps
    done are in the result).
    """
    n_steps, log_every = check_int("n_steps", n_steps, 0), check_int("log_every", log_every)
    if time_budget_s is not None and not time_budget_s > 0:
        raise ValueError(f"time_budget_s must be None or a positive number of seconds, got {time_budget_s!r}")
    from tqdm.auto import tqdm

    rows: list[dict] = []
    status, diverged_at, last, done = OK, None, float("nan"), 0
    synchronize(device)
    t0 = time.perf_counter()
    bar = tqdm(total=n_steps, desc=desc, disable=not progress, leave=False)
    for step in range(n_steps):
        bar.update(1)
        metrics = _as_metrics(step_fn(step))
        last, done = metrics["loss"], step + 1
        bad = not math.isfinite(last) or abs(last) > divergence_threshold
        if bad or step % log_every == 0 or step == n_steps - 1:
            rows.append({"step": step, "time_s": time.perf_counter() - t0, **metrics})
        if bad:
            status, diverged_at = DIVERGED, step
            break
        if progress and step % max(1, n_steps // 50) == 0:
            bar.set_postfix(loss=f"{last:.3e}")
        if time_budget_s is not None and done < n_steps and time.perf_counter() - t0 > time_budget_s:
            status = TIME_BUDGET
            if not rows or rows[-1]["step"] != step:
                rows.append({"step": step, "time_s": time.perf_counter() - t0, **metrics})
            break
    if bar.total and bar.n < bar.total:
        bar.total = bar.n  # a budget or divergence stop is a result, not an error: no red bar left behind
    bar.close()
    synchronize(device)
    wall = time.perf_counter() - t0
    curve = pd.DataFrame(rows, columns=None if rows else ["step", "time_s", "loss"])
    return TrainResult(status, done, last, wall, curve, diverged_at, n_steps=n_steps, time_budget_s=time_budget_s)


def curves_to_frame(curves: Mapping[str, pd.DataFrame] | list[tuple[dict, pd.DataFrame]]) -> pd.DataFrame:
    """Stack per-run loss curves into one long table, tagging each with its run keys."""
    parts = []
    items = curves.items() if isinstance(curves, Mapping) else curves
    for key, curve in items:
        tags = key if isinstance(key, Mapping) else {"run": key}
        parts.append(curve.assign(**tags))
    if not parts:
        return pd.DataFrame(columns=["step", "time_s", "loss"])
    return pd.concat(parts, ignore_index=True)


class _Tables(dict):
    """Side tables riding in ``DataFrame.attrs``.

    pandas deep-copies ``attrs`` on nearly every operation; this holder copies
    as itself (the tables are never mutated) so a results frame with long loss
    curves attached stays as fast as one without.
    """

    def __deepcopy__(self, memo):
        return self

    def __copy__(self):
        return self

    def __eq__(self, other):
        return self is other

    __hash__ = object.__hash__


def attach_tables(df: pd.DataFrame, **tables: pd.DataFrame) -> pd.DataFrame:
    """Attach named side tables (loss curves, predicted fields) to a results frame; returns ``df``."""
    held = dict(df.attrs.get("tables", {}))
    held.update(tables)
    df.attrs["tables"] = _Tables(held)
    return df


def attached_table(df: pd.DataFrame, name: str) -> pd.DataFrame:
    """A side table attached by :func:`attach_tables`, or an empty frame when there is none."""
    t = df.attrs.get("tables", {}).get(name)
    return t.copy() if t is not None else pd.DataFrame()
