"""Which strategy each primitive uses, and with which launch settings: data, not source.

Two strategies compute every primitive (fwd / dx / dw):
  streamed -- the dense formulation on cuBLAS: a Triton kernel writes the basis of a chunk
              of rows, ``torch.mm`` contracts it; work grows with G + k but runs on tensor
              cores (bf16 / fp16 / TF32) or SGEMM (fp32-IEEE);
  gather   -- gathers only the k + 1 active coefficients per (row, feature) on CUDA cores;
              work independent of G.
The rule compares the number of bases ``G + k`` with a per-(primitive, precision class)
threshold ``streamed_max_bases``.

Everything measured lives in JSON under ``kernels/configs/``: ``default.json`` and one
file per GPU (``<name>.json``, name from ``torch.cuda.get_device_name`` with spaces as
``_``).  Launch entries are ``"fwd/gather"``, ``"dx/gather"``, ``"dw/gather"`` and
``"all/streamed"`` (the streamed settings every primitive shares), each optionally
``/<precision class>``.  Lookup order, per key: a run-time override (tuning, tests,
``settings.overrides``), the GPU's file, ``default.json``.  ``benchmarks/gpu_layer_bench.py --crossover --write`` and
``benchmarks/gpu_tune.py --write`` rewrite the GPU's file (atomically), with the GPU,
date and command in its ``_measured`` field.
"""

import contextlib
import functools
import json
import os

from .settings import settings, strategy_name
from .spec import SPECS

MAX_ORDER = 7  # the on-chip triangle holds k + 1 <= 8 values
PRIMITIVES = ("fwd", "dx", "dw")
PRECISION_CLASSES = ("ieee", "tf32", "bf16")
CONFIG_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs")

# Keys each launch understands (num_stages may be absent from any entry): from the launch specs.
CONFIG_KEYS = {key: spec.keys for key, spec in SPECS.items()}
_OPTIONAL_KEYS = ("num_stages",)
_NOT_POW2 = ("num_stages", "chunk_mib", "dw_accumulate_ratio", "min_tile_elems", "save_basis_mib")


def gpu_file_name(device_name: str) -> str:
    return device_name.strip().replace(" ", "_").replace("/", "_") + ".json"


def _check_config(primitive: str, strategy: str, cfg: dict, partial: bool = False) -> None:
    """ValueError naming the offending key unless ``cfg`` is a valid launch config."""
    if (primitive, strategy) not in CONFIG_KEYS:
        if primitive not in PRIMITIVES + ("all",):
            raise ValueError(f"primitive: expected one of {PRIMITIVES + ('all',)}, got {primitive!r}")
        raise ValueError(f"strategy: no launch config for ({primitive!r}, {strategy!r})")
    allowed = CONFIG_KEYS[(primitive, strategy)]
    for key, value in cfg.items():
        if key not in allowed:
            raise ValueError(f"{key}: not a launch parameter of ({primitive!r}, {strategy!r}); "
                             f"expected one of {allowed}")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise ValueError(f"{key}: expected a positive number, got {value!r}")
        if key not in _NOT_POW2 and (not isinstance(value, int) or value & (value - 1)):
            raise ValueError(f"{key}: expected a power of two, got {value}")
    if not partial:
        missing = [k for k in allowed if k not in cfg and k not in _OPTIONAL_KEYS]
        if missing:
            raise ValueError(f"{missing[0]}: missing from the ({primitive!r}, {strategy!r}) config")


def _parse(table: dict, where: str) -> dict:
    """{"launch": {"fwd/gather/bf16": cfg}, "streamed_max_bases": {"fwd/bf16": n}} -> checked dicts."""
    launch, bases = {}, {}
    for key, cfg in table.get("launch", {}).items():
        parts = tuple(key.split("/"))
        if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] not in PRECISION_CLASSES):
            raise ValueError(f"{where}: launch key {key!r} is not 'primitive/strategy[/class]'")
        _check_config(parts[0], parts[1], cfg, partial=True)  # default.json's are checked whole below
        launch[parts] = cfg
    for key, n in table.get("streamed_max_bases", {}).items():
        prim, _, cls = key.partition("/")
        if prim not in PRIMITIVES or cls not in PRECISION_CLASSES or not isinstance(n, int):
            raise ValueError(f"{where}: streamed_max_bases key {key!r} / value {n!r} is invalid")
        bases[(prim, cls)] = n
    narrow = table.get("narrow")
    if narrow is not None:
        if (set(narrow) != {"out_below", "streamed_max_bases"}
                or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in narrow.values())):
            raise ValueError(f"{where}: narrow {narrow!r} is not {{'out_below': int, 'streamed_max_bases': int}}")
        narrow = (narrow["out_below"], narrow["streamed_max_bases"])
    return dict(launch=launch, bases=bases, narrow=narrow, measured=table.get("_measured"))


@functools.lru_cache(maxsize=None)
def load_table(file_name: str = "default.json") -> dict:
    """One config file, parsed and checked (empty when the GPU has no file of its own)."""
    path = os.path.join(CONFIG_DIR, file_name)
    if not os.path.exists(path):
        return dict(launch={}, bases={}, narrow=None, measured=None)
    with open(path) as fh:
        return _parse(json.load(fh), path)


_DEFAULT = load_table()
for _prim in PRIMITIVES:
    _check_config(_prim, "gather", _DEFAULT["launch"][(_prim, "gather")])
    for _cls in PRECISION_CLASSES:
        if (_prim, _cls) not in _DEFAULT["bases"]:
            raise ValueError(f"default.json: streamed_max_bases lacks {_prim}/{_cls}")
if _DEFAULT["narrow"] is None:
    raise ValueError("default.json: lacks the narrow-layer rule")
_check_config("all", "streamed", _DEFAULT["launch"][("all", "streamed")])


@functools.lru_cache(maxsize=16)
def _gpu_table(device_index: int) -> dict:
    import torch

    return load_table(gpu_file_name(torch.cuda.get_device_name(device_index)))


_DEFAULT_ONLY = (_DEFAULT,)
_merged = {}  # id(tables tuple) -> {(primitive, strategy, class): merged config}


@functools.lru_cache(maxsize=16)
def _gpu_tables(device_index: int) -> tuple:
    return (_gpu_table(device_index), _DEFAULT)


def tables(device=None):
    """The config tables in lookup order for ``device`` (GPU file first, then default)."""
    if device is not None and getattr(device, "type", None) == "cuda":
        return _gpu_tables(device.index if device.index is not None else 0)
    return _DEFAULT_ONLY


def config(primitive: str, strategy: str, precision: str = None, device=None) -> dict:
    """The launch config in force: an override, else default.json's entry (plain, then its
    precision class) with the GPU file's entries merged over it key by key (read-only:
    cached, no copy on the launch path)."""
    hit = settings.overrides.get((primitive, strategy))
    if hit is not None:
        return hit
    key = (primitive, strategy, precision, tables(device))
    hit = _merged.get(id(key[3]), {}).get(key[:3])
    if hit is not None:
        return hit
    ts = key[3]
    if not any((primitive, strategy) in t["launch"] for t in ts):
        raise KeyError((primitive, strategy))
    merged = {}
    for t in reversed(ts):  # default first, the GPU's file last: later entries win key by key
        merged.update(t["launch"].get((primitive, strategy), {}))
        merged.update(t["launch"].get((primitive, strategy, precision), {}))
    _merged.setdefault(id(ts), {})[key[:3]] = merged
    return merged


def launch_options(cfg: dict) -> dict:
    """Triton launch keywords of a config; num_stages only when the config sets it."""
    opts = dict(num_warps=cfg["num_warps"])
    if cfg.get("num_stages") is not None:
        opts["num_stages"] = cfg["num_stages"]
    return opts


@contextlib.contextmanager
def override_config(primitive: str, strategy: str, **cfg):
    """Launch one (primitive, strategy) with ``cfg`` merged over its default entry (tuning).

    ``num_stages=None`` removes a num_stages the entry carries (Triton's default).
    """
    drop = [k for k, v in cfg.items() if v is None and k in _OPTIONAL_KEYS]
    given = {k: v for k, v in cfg.items() if k not in drop}
    _check_config(primitive, strategy, given, partial=True)
    merged = {k: v for k, v in _DEFAULT["launch"][(primitive, strategy)].items() if k not in drop}
    merged.update(given)
    _check_config(primitive, strategy, merged)
    with settings.changed(overrides={**settings.overrides, (primitive, strategy): merged}):
        yield merged


def precision_class(dot_dtype, precision: str) -> str:
    import torch

    if dot_dtype in (torch.bfloat16, torch.float16):
        return "bf16"
    if dot_dtype == torch.float32 and precision == "tf32":
        return "tf32"
    return "ieee"


def streamed_max_bases(primitive: str, cls: str, device=None) -> int:
    for table in tables(device):
        hit = table["bases"].get((primitive, cls))
        if hit is not None:
            return hit
    raise KeyError((primitive, cls))


def narrow_rule(device=None):
    """(out_below, streamed_max_bases) for narrow layers: below that many outputs the streamed
    GEMM does too few FLOPs per basis element it writes and reads to hide the writer's bytes,
    so the gather strategy takes over at a smaller G+k (H200: N=65536, 64->64, G=100 ran 2.2 ms
    gathered against 5.6 ms streamed in TF32 while 512->512 streamed faster at every G swept)."""
    for table in tables(device):
        if table["narrow"] is not None:
            return table["narrow"]
    raise KeyError("narrow")


def choose(primitive: str, num_bases: int, cls: str, device=None, out: int = None) -> str:
    """'streamed' or 'gather' for one launch of precision class ``cls`` with ``out`` outputs."""
    if settings.strategy != "auto":
        return settings.strategy
    limit = streamed_max_bases(primitive, cls, device)
    if out is not None:
        below, narrow = narrow_rule(device)
        if out < below:
            limit = min(limit, narrow)
    return "streamed" if num_bases <= limit else "gather"


def plan(primitive: str, num_bases: int, dot_dtype, precision: str, strategy: str = None, device=None,
         out: int = None):
    """(strategy, launch config) of one launch; ``strategy`` given by the caller is kept."""
    cls = precision_class(dot_dtype, precision)
    strategy = strategy_name(strategy) if strategy else choose(primitive, num_bases, cls, device, out)
    if strategy == "streamed":
        return strategy, config("all", "streamed", cls, device)
    return strategy, config(primitive, strategy, cls, device)


def write_gpu_table(device_name: str, update: dict, measured: str) -> str:
    """Merge ``update`` ({"launch": ..., "streamed_max_bases": ...}) into the GPU's file, atomically."""
    path = os.path.join(CONFIG_DIR, gpu_file_name(device_name))
    table = {}
    if os.path.exists(path):
        with open(path) as fh:
            table = json.load(fh)
    for section in ("launch", "streamed_max_bases"):
        if section in update:
            table.setdefault(section, {}).update(update[section])
    table["_measured"] = measured
    _parse(table, path)  # never write a file the loader would reject
    tmp = path + ".tmp"
    with open(tmp, "w") as fh:
        json.dump(table, fh, indent=1, sort_keys=True)
        fh.write("\n")
    os.replace(tmp, path)
    load_table.cache_clear()
    _gpu_table.cache_clear()
    _gpu_tables.cache_clear()
    _merged.clear()
    settings.touch()
    return path
