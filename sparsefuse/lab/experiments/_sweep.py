"""A sweep over many points that always finishes with a table.

Every chapter walks a grid of settings; a point that cannot run becomes a row
with a ``status`` (see :mod:`sparsefuse.status`) instead of an exception, and a
sweep that outgrows its time allowance says which points it left out.
"""
from __future__ import annotations

import time
from typing import Callable, Iterable

import torch

from sparsefuse.status import OK, SKIPPED
from ._guard import EMPTY


def check_device(device) -> torch.device:
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} but CUDA is not available")
    return dev


def progress_bar(iterable: Iterable, *, progress: bool, desc: str, total: int | None = None):
    from tqdm.auto import tqdm
    return tqdm(iterable, desc=desc, disable=not progress, total=total, leave=False)


class Budget:
    """Wall-clock cap for one sweep: once spent, the remaining points become ``skipped`` rows.

    Keeps the ``quick`` profile inside its GPU-time allowance whatever a compiler
    or a slow format does, while the table still says what was left out.
    """

    def __init__(self, seconds: float | None):
        self.seconds = seconds
        self.start = time.perf_counter()

    def spent(self) -> bool:
        return self.seconds is not None and time.perf_counter() - self.start > self.seconds

    def row(self) -> dict:
        return dict(EMPTY, status=SKIPPED, note=f"not tried: the profile's time budget of {self.seconds} s was spent")


class SlowGuard:
    """Drop a series once it gets too slow; its larger sizes would only be slower.

    Two signals: one call's median above ``max_call_ms`` (the method itself is
    slow), or a whole point above ``limit_s`` of wall time (setup such as a format
    conversion or a peer's initialization). A series' first point is exempt from
    the wall-time test, because it carries the one-off compile of a JIT path.
    """

    def __init__(self, limit_s: float | None, max_call_ms: float | None = None):
        self.limit_s = limit_s
        self.max_call_ms = max_call_ms
        self.dropped: dict[object, str] = {}
        self.seen: set = set()

    def check(self, key) -> dict | None:
        if key in self.dropped:
            return dict(EMPTY, status=SKIPPED, note=self.dropped[key])
        return None

    def record(self, key, seconds: float, label: str, median_ms: float = float("nan")) -> None:
        first = key not in self.seen
        self.seen.add(key)
        if self.max_call_ms is not None and median_ms > self.max_call_ms:
            self.dropped[key] = (f"not tried: one call at {label} took {median_ms:.0f} ms "
                                 f"(> {self.max_call_ms:g} ms)")
        elif self.limit_s is not None and seconds > self.limit_s and not first:
            self.dropped[key] = f"not tried: the point at {label} took {seconds:.1f} s (> {self.limit_s} s)"


def capped(budget: Budget, slow: SlowGuard, key, label: str, point: Callable[[], dict]) -> dict:
    """Run ``point()`` unless the sweep's budget is spent or this series was dropped as too slow."""
    if budget.spent():
        return budget.row()
    skip = slow.check(key)
    if skip is not None:
        return skip
    t0 = time.perf_counter()
    res = point()
    slow.record(key, time.perf_counter() - t0, label, res.get("median_ms", float("nan")))
    return res


def finish(rows: list[dict], columns: list[str]):
    """Rows -> DataFrame with a fixed column order (missing fields become NaN)."""
    import pandas as pd
    df = pd.DataFrame(rows)
    for c in columns:
        if c not in df.columns:
            df[c] = float("nan")
    rest = [c for c in df.columns if c not in columns]
    return df[columns + rest]


def ok_rows(df):
    return df[df["status"] == OK]
