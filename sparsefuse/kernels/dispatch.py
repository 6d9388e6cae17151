"""Which strategy each primitive uses: dense basis tile on tensor cores, or sparse gather.

The dense tile costs O(G+k) per (row, feature) but runs on tensor cores; the sparse
strategies cost O(k+1) per (row, feature) on CUDA cores.  The rule below compares
the number of bases ``G + k`` against a per-(primitive, precision) threshold.

The thresholds are measured, not guessed: ``python benchmarks/gpu_layer_bench.py
--crossover --write-dispatch`` on the target GPU times each primitive with each
strategy forced over a G sweep and rewrites the table below with the largest
``G + k`` where the dense tile still won, with the GPU and date in its comment.
The sweep itself is kept under results/gpu/.
"""

import contextlib
import os

MAX_ORDER = 7  # the on-chip triangle holds k + 1 <= 8 values

# Largest number of bases (G + k) for which the dense tile is used.
# Measured: benchmarks/gpu_layer_bench.py --crossover --write-dispatch, NVIDIA H100 80GB HBM3,
# 2026-11-24, N=8192, 512->512, k=3, median ms per primitive.
DENSE_MAX_BASES = {
    ("dw", "bf16"): 15,
    ("dw", "ieee"): 15,
    ("dw", "tf32"): 15,
    ("dx", "bf16"): 51,
    ("dx", "ieee"): 31,
    ("dx", "tf32"): 51,
    ("fwd", "bf16"): 15,
    ("fwd", "ieee"): 8,
    ("fwd", "tf32"): 15,
}

# The dense tile keeps a [rows, next_pow2(G + k)] tile in registers; beyond this many
# padded bases it is never used, whatever the thresholds say.
DENSE_TILE_LIMIT = 128

# Fixed launch configurations (no autotuning: predictable compile, no benchmark-time
# tuning runs).  BLOCK_K is the width of the dense (feature, basis) tile: it holds
# max(1, BLOCK_K // next_pow2(G+k)) features.  Tune on the GPU and edit here.
CONFIGS = {
    ("fwd", "dense"): dict(BLOCK_N=64, BLOCK_O=64, BLOCK_K=64, num_warps=4),
    ("fwd", "sparse"): dict(BLOCK_N=64, BLOCK_O=64, num_warps=4),
    ("dx", "dense"): dict(BLOCK_N=64, BLOCK_O=32, BLOCK_K=64, num_warps=4),
    ("dx", "sparse"): dict(BLOCK_N=32, BLOCK_I=8, BLOCK_O=32, num_warps=4),
    ("dw", "dense"): dict(BLOCK_N=32, BLOCK_O=64, BLOCK_K=64, num_warps=4),
    ("dw", "sparse"): dict(BLOCK_N=64, BLOCK_O=64, WINDOW=16, num_warps=4),
}

STRATEGIES = ("auto", "dense", "sparse")
_forced = {"value": os.environ.get("SPARSEFUSE_STRATEGY", "auto")}


@contextlib.contextmanager
def force_strategy(name: str):
    """Force every primitive to one strategy (benchmarks and tests)."""
    if name not in STRATEGIES:
        raise ValueError(f"name: expected one of {STRATEGIES}, got {name!r}")
    old = _forced["value"]
    _forced["value"] = name
    try:
        yield
    finally:
        _forced["value"] = old


def precision_class(dot_dtype, precision: str) -> str:
    import torch

    if dot_dtype in (torch.bfloat16, torch.float16):
        return "bf16"
    if dot_dtype == torch.float32 and precision == "tf32":
        return "tf32"
    return "ieee"


def choose(primitive: str, num_bases: int, padded_bases: int, dot_dtype, precision: str) -> str:
    """'dense' or 'sparse' for one launch."""
    forced = _forced["value"]
    if padded_bases > DENSE_TILE_LIMIT:
        return "sparse"
    if forced in ("dense", "sparse"):
        return forced
    limit = DENSE_MAX_BASES[(primitive, precision_class(dot_dtype, precision))]
    return "dense" if num_bases <= limit else "sparse"
