"""The status vocabulary of every results table: experiments, ``bench`` and ``training``.

A sweep must survive its largest point and say what happened there, in the
same words in every table, so that an OOM reads ``oom`` wherever it occurs.
"""
from __future__ import annotations

import torch

OK = "ok"
OOM = "oom"
UNSUPPORTED = "unsupported"  # this path, peer or configuration cannot run here
PEER_MISSING = "peer-missing"  # the peer package is not installed
SKIPPED = "skipped"  # not tried: a budget, a slower series, an interpreter limit
ERROR = "error"
DIVERGED = "diverged"  # training: a non-finite or exploding loss
TIME_BUDGET = "time budget"  # training: stopped by its wall-clock budget
TIMEOUT = "timeout"  # a subprocess (a notebook, a torchrun) stopped at its time limit


class Unavailable(Exception):
    """A path, peer or configuration that cannot run here; ``status`` says which kind."""

    def __init__(self, status: str, note: str):
        super().__init__(note)
        self.status = status
        self.note = note


def is_oom(exc: BaseException) -> bool:
    """True for an out-of-memory error from any backend (CUDA, Python, or the CPU allocator's message)."""
    if isinstance(exc, (torch.cuda.OutOfMemoryError, MemoryError)):
        return True
    msg = str(exc).lower()
    return isinstance(exc, RuntimeError) and ("out of memory" in msg or "can't allocate memory" in msg)


def _first_line(exc: BaseException) -> str:
    lines = str(exc).splitlines()
    return lines[0][:200] if lines else ""


def failure(exc: BaseException) -> tuple[str, str]:
    """``(status, note)`` for a step that raised: unavailable, unsupported, ``oom`` or ``error``."""
    if isinstance(exc, Unavailable):
        return exc.status, exc.note
    if isinstance(exc, NotImplementedError):
        return UNSUPPORTED, f"not implemented: {_first_line(exc)}"
    return (OOM if is_oom(exc) else ERROR), f"{type(exc).__name__}: {_first_line(exc)}"
