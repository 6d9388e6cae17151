"""Which GPUs the runner may pin notebooks to: counted without importing torch.

With several GPUs, notebooks run side by side, each pinned to one GPU through
``CUDA_VISIBLE_DEVICES``, so no two of them share a device or time one another.
"""
from __future__ import annotations

import os
import subprocess

from .layout import DEVICES


def _visible_gpus() -> list[str] | None:
    """The parent's ``CUDA_VISIBLE_DEVICES`` entries, or None when it does not restrict them."""
    text = os.environ.get("CUDA_VISIBLE_DEVICES")
    if text is None:
        return None
    return [part.strip() for part in text.split(",") if part.strip()]


def gpu_count() -> int:
    """GPUs this process may use, counted with ``nvidia-smi -L`` so the runner need not import torch."""
    try:
        done = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=60)
    except FileNotFoundError:  # no driver tools: ask torch, which honours CUDA_VISIBLE_DEVICES itself
        import torch

        return torch.cuda.device_count()
    except (OSError, subprocess.TimeoutExpired):
        return 0
    # MIG instances are listed indented below their GPU; one notebook per physical GPU
    count = sum(line.startswith("GPU ") for line in done.stdout.splitlines()) if done.returncode == 0 else 0
    visible = _visible_gpus()
    return count if visible is None else min(count, len(visible))


def resolve_gpus(gpus, device: str = "auto") -> int:
    """How many notebooks run at once, one per GPU; 0 = one after the other, unpinned.

    ``"auto"`` counts the GPUs (none, or ``device="cpu"``: 0). An explicit count is
    trusted as given, so the parallel path can be exercised without a GPU.
    """
    if device not in DEVICES:
        raise ValueError(f"device must be one of {DEVICES}, got {device!r}")
    if gpus is None:
        return 0
    if gpus == "auto":
        return 0 if device == "cpu" else gpu_count()
    try:
        count = int(gpus)
    except (TypeError, ValueError):
        raise ValueError(f"gpus must be a non-negative integer or 'auto', got {gpus!r}") from None
    if isinstance(gpus, float) or isinstance(gpus, bool) or count < 0:
        raise ValueError(f"gpus must be a non-negative integer or 'auto', got {gpus!r}")
    if count and device == "cpu":
        raise ValueError(f"gpus={gpus!r} pins notebooks to GPUs; it needs device 'cuda' or 'auto', not 'cpu'")
    return count


def gpu_ids(count: int) -> list[str]:
    """The ``CUDA_VISIBLE_DEVICES`` value of each slot: indices, or the parent's own list when it sets one."""
    visible = _visible_gpus()
    if visible is None:
        return [str(i) for i in range(count)]
    if len(visible) < count:
        raise ValueError(f"gpus={count} but CUDA_VISIBLE_DEVICES={os.environ['CUDA_VISIBLE_DEVICES']!r} "
                         f"names {len(visible)}")
    return visible[:count]
