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
    ("dw", "bf16"): 51,
    ("dw", "ieee"): 15,
    ("dw", "tf32"): 31,
    ("dx", "bf16"): 31,
    ("dx", "ieee"): 15,
    ("dx", "tf32"): 31,
    ("fwd", "bf16"): 31,
    ("fwd", "ieee"): 15,
    ("fwd", "tf32"): 31,
}

# The dense tile keeps a [rows, next_pow2(G + k)] tile in registers; beyond this many
# padded bases it is never used, whatever the thresholds say.
DENSE_TILE_LIMIT = 128

# Launch configurations (fixed at run time: predictable compiles, no tuning runs inside
# a benchmark).  BLOCK_K is the width of the dense (feature, basis) tile: it holds
# max(1, BLOCK_K // next_pow2(G+k)) features.  num_stages is optional (absent: Triton's
# default).  ``python benchmarks/gpu_tune.py --write`` on the target GPU sweeps these and
# rewrites the table below, with the GPU and date in its comment.
# Tuned: benchmarks/gpu_tune.py --write, N=8192, 512->512, k=3, G in (5, 20, 100),
#   fp32-ieee, tf32, bf16: a tuned entry minimises the summed median ms over those (GPU, date above it).
CONFIGS = {
    # NVIDIA H100 80GB HBM3, 2026-11-24: 10.216 ms summed (was 15.886)
    ("fwd", "dense"): dict(BLOCK_N=32, BLOCK_O=128, BLOCK_K=32, num_warps=4, num_stages=2),
    # NVIDIA H100 80GB HBM3, 2026-11-24: 20.817 ms summed (was 24.472)
    ("fwd", "sparse"): dict(BLOCK_N=128, BLOCK_O=64, num_warps=4, num_stages=4),
    # NVIDIA H100 80GB HBM3, 2026-11-24: 7.514 ms summed (was 7.717)
    ("dx", "dense"): dict(BLOCK_N=128, BLOCK_O=64, BLOCK_K=64, num_warps=4),
    # NVIDIA H100 80GB HBM3, 2026-11-24: 21.822 ms summed (was 33.254)
    ("dx", "sparse"): dict(BLOCK_N=32, BLOCK_I=4, BLOCK_O=32, num_warps=4, num_stages=4),
    # NVIDIA H100 80GB HBM3, 2026-11-24: 23.827 ms summed (was 24.506)
    ("dw", "dense"): dict(BLOCK_N=32, BLOCK_O=64, BLOCK_K=64, num_warps=4, num_stages=2),
    # NVIDIA H100 80GB HBM3, 2026-11-24: 47.904 ms summed (was 48.741)
    ("dw", "sparse"): dict(BLOCK_N=64, BLOCK_O=64, WINDOW=16, num_warps=4, num_stages=3),
}

# Per precision class ("ieee", "tf32", "bf16") the best launch differs (tensor-core dots
# want wider output tiles than FMA dots): an entry here wins over CONFIGS for that class.
# Values: the "Best per (primitive, strategy, precision class)" of the same gpu_tune.py run
# (results/gpu/gpu_tune.csv); ``gpu_tune.py --write`` rewrites this block too.
# Tuned per precision class: benchmarks/gpu_tune.py --write, N=8192, 512->512, k=3, G in (5, 20, 100).
PRECISION_CONFIGS = {
    # NVIDIA H100 80GB HBM3, 2026-11-24: 5.433 ms summed over G (5, 20) (was 6.961)
    ("fwd", "dense", "ieee"): dict(BLOCK_N=32, BLOCK_O=128, BLOCK_K=32, num_warps=4, num_stages=3),
    # NVIDIA H100 80GB HBM3, 2026-11-24: 2.488 ms summed over G (5, 20) (was 5.834)
    ("fwd", "dense", "tf32"): dict(BLOCK_N=32, BLOCK_O=256, BLOCK_K=64, num_warps=4, num_stages=2),
    # NVIDIA H100 80GB HBM3, 2026-11-24: 1.607 ms summed over G (5, 20) (was 3.091)
    ("fwd", "dense", "bf16"): dict(BLOCK_N=32, BLOCK_O=256, BLOCK_K=64, num_warps=4, num_stages=2),
    # NVIDIA H100 80GB HBM3, 2026-11-24: 6.940 ms summed over G (5, 20, 100) (was 9.196)
    ("fwd", "sparse", "ieee"): dict(BLOCK_N=128, BLOCK_O=64, num_warps=4, num_stages=4),
    # NVIDIA H100 80GB HBM3, 2026-11-24: 6.951 ms summed over G (5, 20, 100) (was 9.245)
    ("fwd", "sparse", "tf32"): dict(BLOCK_N=128, BLOCK_O=64, num_warps=4),
    # NVIDIA H100 80GB HBM3, 2026-11-24: 4.881 ms summed over G (5, 20, 100) (was 6.032)
    ("fwd", "sparse", "bf16"): dict(BLOCK_N=128, BLOCK_O=128, num_warps=4, num_stages=2),
    # NVIDIA H100 80GB HBM3, 2026-11-24: 4.529 ms summed over G (5, 20) (was 4.541)
    ("dx", "dense", "ieee"): dict(BLOCK_N=64, BLOCK_O=32, BLOCK_K=64, num_warps=4, num_stages=2),
    # NVIDIA H100 80GB HBM3, 2026-11-24: 1.776 ms summed over G (5, 20) (was 1.911)
    ("dx", "dense", "tf32"): dict(BLOCK_N=128, BLOCK_O=64, BLOCK_K=64, num_warps=4),
    # NVIDIA H100 80GB HBM3, 2026-11-24: 1.139 ms summed over G (5, 20) (was 1.265)
    ("dx", "dense", "bf16"): dict(BLOCK_N=128, BLOCK_O=64, BLOCK_K=64, num_warps=4),
    # NVIDIA H100 80GB HBM3, 2026-11-24: 7.912 ms summed over G (5, 20, 100) (was 13.380)
    ("dx", "sparse", "ieee"): dict(BLOCK_N=32, BLOCK_I=4, BLOCK_O=32, num_warps=8, num_stages=4),
    # NVIDIA H100 80GB HBM3, 2026-11-24: 7.909 ms summed over G (5, 20, 100) (was 13.284)
    ("dx", "sparse", "tf32"): dict(BLOCK_N=32, BLOCK_I=4, BLOCK_O=32, num_warps=8, num_stages=4),
    # NVIDIA H100 80GB HBM3, 2026-11-24: 5.049 ms summed over G (5, 20, 100) (was 6.591)
    ("dx", "sparse", "bf16"): dict(BLOCK_N=32, BLOCK_I=4, BLOCK_O=32, num_warps=4, num_stages=4),
    # NVIDIA H100 80GB HBM3, 2026-11-24: 11.834 ms summed over G (5, 20) (was 12.150)
    ("dw", "dense", "ieee"): dict(BLOCK_N=32, BLOCK_O=64, BLOCK_K=64, num_warps=4, num_stages=2),
    # NVIDIA H100 80GB HBM3, 2026-11-24: 3.889 ms summed over G (5, 20) (was 7.510)
    ("dw", "dense", "tf32"): dict(BLOCK_N=32, BLOCK_O=64, BLOCK_K=128, num_warps=4, num_stages=3),
    # NVIDIA H100 80GB HBM3, 2026-11-24: 1.481 ms summed over G (5, 20) (was 4.847)
    ("dw", "dense", "bf16"): dict(BLOCK_N=32, BLOCK_O=256, BLOCK_K=32, num_warps=4, num_stages=3),
    # NVIDIA H100 80GB HBM3, 2026-11-24: 17.303 ms summed over G (5, 20, 100) (was 17.675)
    ("dw", "sparse", "ieee"): dict(BLOCK_N=64, BLOCK_O=64, WINDOW=16, num_warps=4, num_stages=3),
    # NVIDIA H100 80GB HBM3, 2026-11-24: 16.769 ms summed over G (5, 20, 100) (was 19.110)
    ("dw", "sparse", "tf32"): dict(BLOCK_N=128, BLOCK_O=32, WINDOW=16, num_warps=4),
    # NVIDIA H100 80GB HBM3, 2026-11-24: 11.758 ms summed over G (5, 20, 100) (was 11.957)
    ("dw", "sparse", "bf16"): dict(BLOCK_N=64, BLOCK_O=64, WINDOW=16, num_warps=4, num_stages=3),
}

# Keys each launch understands; num_stages may be absent from any entry.
CONFIG_KEYS = {
    ("fwd", "dense"): ("BLOCK_N", "BLOCK_O", "BLOCK_K", "num_warps", "num_stages"),
    ("fwd", "sparse"): ("BLOCK_N", "BLOCK_O", "num_warps", "num_stages"),
    ("dx", "dense"): ("BLOCK_N", "BLOCK_O", "BLOCK_K", "num_warps", "num_stages"),
    ("dx", "sparse"): ("BLOCK_N", "BLOCK_I", "BLOCK_O", "num_warps", "num_stages"),
    ("dw", "dense"): ("BLOCK_N", "BLOCK_O", "BLOCK_K", "num_warps", "num_stages"),
    ("dw", "sparse"): ("BLOCK_N", "BLOCK_O", "WINDOW", "num_warps", "num_stages"),
}
PRIMITIVES = ("fwd", "dx", "dw")
_OPTIONAL_KEYS = ("num_stages",)
_overrides = {}


def _check_config(primitive: str, strategy: str, cfg: dict, partial: bool = False) -> None:
    """ValueError naming the offending key unless ``cfg`` is a valid launch config."""
    if primitive not in PRIMITIVES:
        raise ValueError(f"primitive: expected one of {PRIMITIVES}, got {primitive!r}")
    if strategy not in ("dense", "sparse"):
        raise ValueError(f"strategy: expected 'dense' or 'sparse', got {strategy!r}")
    allowed = CONFIG_KEYS[(primitive, strategy)]
    for key, value in cfg.items():
        if key not in allowed:
            raise ValueError(f"{key}: not a launch parameter of ({primitive!r}, {strategy!r}); "
                             f"expected one of {allowed}")
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{key}: expected a positive int, got {value!r}")
        if key != "num_stages" and value & (value - 1):
            raise ValueError(f"{key}: expected a power of two, got {value}")
    if not partial:
        missing = [k for k in allowed if k not in cfg and k not in _OPTIONAL_KEYS]
        if missing:
            raise ValueError(f"{missing[0]}: missing from the ({primitive!r}, {strategy!r}) config")


def config(primitive: str, strategy: str, precision: str = None) -> dict:
    """The launch config in force: an override, else the entry for ``precision`` (a class
    of :func:`precision_class`) in PRECISION_CONFIGS, else CONFIGS.

    Read-only: the dict is the live entry (no copy on the launch path).
    """
    hit = _overrides.get((primitive, strategy))
    if hit is not None:
        return hit
    hit = PRECISION_CONFIGS.get((primitive, strategy, precision))
    return hit if hit is not None else CONFIGS[(primitive, strategy)]


def launch_options(cfg: dict) -> dict:
    """Triton launch keywords of a config; num_stages only when the config sets it."""
    opts = dict(num_warps=cfg["num_warps"])
    if cfg.get("num_stages") is not None:
        opts["num_stages"] = cfg["num_stages"]
    return opts


@contextlib.contextmanager
def override_config(primitive: str, strategy: str, **cfg):
    """Launch one primitive/strategy with ``cfg`` merged over its CONFIGS entry (tuning).

    ``num_stages=None`` removes a num_stages the entry carries (Triton's default).
    """
    drop = [k for k, v in cfg.items() if v is None and k in _OPTIONAL_KEYS]
    given = {k: v for k, v in cfg.items() if k not in drop}
    _check_config(primitive, strategy, given, partial=True)
    merged = {k: v for k, v in CONFIGS[(primitive, strategy)].items() if k not in drop}
    merged.update(given)
    _check_config(primitive, strategy, merged)
    key = (primitive, strategy)
    had, old = key in _overrides, _overrides.get(key)
    _overrides[key] = merged
    try:
        yield merged
    finally:
        if had:
            _overrides[key] = old
        else:
            _overrides.pop(key, None)


PRECISION_CLASSES = ("ieee", "tf32", "bf16")
for _key, _cfg in CONFIGS.items():
    _check_config(*_key, _cfg)
for _key, _cfg in PRECISION_CONFIGS.items():
    if _key[2] not in PRECISION_CLASSES:
        raise ValueError(f"PRECISION_CONFIGS: precision class expected one of {PRECISION_CLASSES}, "
                         f"got {_key[2]!r}")
    _check_config(_key[0], _key[1], _cfg)

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


def choose(primitive: str, num_bases: int, padded_bases: int, cls: str) -> str:
    """'dense' or 'sparse' for one launch of precision class ``cls``."""
    forced = _forced["value"]
    if padded_bases > DENSE_TILE_LIMIT:
        return "sparse"
    if forced in ("dense", "sparse"):
        return forced
    return "dense" if num_bases <= DENSE_MAX_BASES[(primitive, cls)] else "sparse"


def plan(primitive: str, num_bases: int, padded_bases: int, dot_dtype, precision: str,
         strategy: str = None):
    """(strategy, launch config) of one launch; ``strategy`` given by the caller is kept."""
    cls = precision_class(dot_dtype, precision)
    strategy = strategy or choose(primitive, num_bases, padded_bases, cls)
    return strategy, config(primitive, strategy, cls)
