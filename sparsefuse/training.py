"""The training loop :func:`sparsefuse.fit` runs, and what it says about a run.

A run ends one of three ways, in the words of :mod:`sparsefuse.status`: ``ok``,
``diverged`` (a non-finite or exploding loss, where the curve up to it is kept)
or ``time budget``; a NaN is a result, not a crash.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable, Mapping

import pandas as pd
import torch

from .checks import check_int
from .status import DIVERGED, OK, TIME_BUDGET

__all__ = ["synchronize", "TrainResult", "train_loop"]


def synchronize(device) -> None:
    """Wait for queued GPU work so wall-clock timings mean something."""
    dev = torch.device(device)
    if dev.type == "cuda" and torch.cuda.is_available():
        torch.cuda.synchronize(dev)


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
