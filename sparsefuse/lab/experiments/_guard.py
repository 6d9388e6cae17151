"""Guarded measurement: time a closure, or build what it needs, and never let a failure end the sweep.

One ladder turns any exception into a status row (:func:`sparsefuse.status.failure`),
for the set-up step (:func:`guarded`) and the timing (:func:`measure`) alike.
"""
from __future__ import annotations

import gc
from typing import Callable

import torch

from .. import bench
from sparsefuse.status import OK, SKIPPED, failure
from ._pick import interpreter_budget_ok, make_layer
from ._problems import fused_work

EMPTY = dict(median_ms=float("nan"), q20_ms=float("nan"), q80_ms=float("nan"), peak_mib=float("nan"))
MODES = ("forward", "forward+backward")


def free_memory(device, collect: bool = False) -> None:
    """Return cached blocks to the device; a full ``gc`` pass only after a failure (it costs ~0.1 s)."""
    if collect:
        gc.collect()
    if torch.device(device).type == "cuda":
        torch.cuda.empty_cache()


def guarded(build: Callable[[], object], device) -> tuple[object | None, dict | None]:
    """Run a step; return (value, None), or (None, the status row fields) when it raised."""
    try:
        return build(), None
    except Exception as exc:  # noqa: BLE001 - OOM and the rest are data here, reported as a status row
        status, note = failure(exc)
        free_memory(device, collect=True)
        return None, dict(EMPTY, status=status, note=note)


def measure(fn: Callable[[], object], device, *, warmup: int = 2, reps: int = 10) -> dict:
    """Time ``fn`` with :func:`sparsefuse.lab.bench.benchmark`; a failure becomes a status, never an exception."""
    res, bad = guarded(lambda: bench.benchmark(fn, device=device, warmup=warmup, rep=reps), device)
    if bad:
        return bad
    free_memory(device)
    return dict(median_ms=float(res.median_ms), q20_ms=float(res.q20_ms), q80_ms=float(res.q80_ms),
                peak_mib=float(res.peak_mib), status=OK, note="")


def forward_fn(module: torch.nn.Module, x: torch.Tensor) -> Callable[[], object]:
    def step():
        with torch.no_grad():
            return module(x)
    return step


def forward_backward_fn(module: torch.nn.Module, x: torch.Tensor) -> Callable[[], object]:
    """One training step's worth of work: forward, then backward to x and every parameter."""
    x = x.detach().requires_grad_(True)

    def step():
        module.zero_grad(set_to_none=True)
        x.grad = None
        module(x).sum().backward()
    return step


def layer_point(impl: str, mode: str, *, n: int, in_features: int, out_features: int, grid_size: int,
                spline_order: int = 3, device="cpu", dtype=torch.float32, warmup: int = 2, rep: int = 10,
                fused_work_limit: int | None = None, seed: int = 0) -> dict:
    """Time one layer (ours with a forced path, a peer, or ``nn.Linear``) at one shape; always returns a row."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if impl == "fused" and fused_work_limit is not None:
        ok, why = interpreter_budget_ok(device, fused_work(n, in_features, out_features, grid_size, spline_order),
                                        fused_work_limit)
        if not ok:
            return dict(EMPTY, status=SKIPPED, note=why)
    layer, bad = guarded(lambda: make_layer(impl, in_features, out_features, grid_size, spline_order,
                                            device=device, dtype=dtype, seed=seed), device)
    if bad:
        return bad
    x, bad = guarded(lambda: (torch.rand(n, in_features, device=device, dtype=dtype) * 2 - 1), device)
    if bad:
        return bad
    fn = forward_fn(layer, x) if mode == "forward" else forward_backward_fn(layer, x)
    out = measure(fn, device, warmup=warmup, reps=rep)
    del layer, x, fn
    free_memory(device)
    return out
