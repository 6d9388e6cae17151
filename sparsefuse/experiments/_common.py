"""Shared plumbing for the kernel chapters (sparse-vs-dense, grid scaling, compile, heatmaps, bases, MatrixKAN).

Why one module: every chapter needs the same three things done the same way —
find a contraction path or peer layer (and say *why* when it is missing), time a
closure without letting an out-of-memory error end the sweep, and turn each
measurement into a row with a ``status`` column. Keeping them here keeps the
chapters' tables comparable.
"""
from __future__ import annotations

import gc
import importlib
import math
import os
import time
from typing import Callable, Iterable

import torch

from .. import bench
from ..grid import uniform_grid
from . import resolve_profile  # noqa: F401 - the chapters call it as C.resolve_profile

PATHS = ("reference", "dense", "sparse", "fused")
PEERS = ("inkan", "flashkan", "kanditioned", "pykan")

# Status vocabulary used in every table of these chapters.
OK, OOM, UNSUPPORTED, PEER_MISSING, SKIPPED, ERROR = (
    "ok", "oom", "unsupported", "peer-missing", "skipped", "error")

# One colour per implementation so every figure of the book reads the same way.
STYLE = {
    "reference": dict(color="#7f7f7f", marker="s"),
    "dense": dict(color="#1f77b4", marker="o"),
    "sparse": dict(color="#2ca02c", marker="^"),
    "fused": dict(color="#d62728", marker="*"),
    "csr": dict(color="#9467bd", marker="v"),
    "bsr": dict(color="#8c564b", marker="D"),
    "padded": dict(color="#e377c2", marker="P"),
    "inkan": dict(color="#bcbd22", marker="x"),
    "flashkan": dict(color="#17becf", marker="+"),
    "kanditioned": dict(color="#ff7f0e", marker="1"),
    "pykan": dict(color="#000000", marker="2"),
    "linear": dict(color="#aaaaaa", marker="."),
}


class Unavailable(Exception):
    """A path, peer or configuration that cannot run here; ``status`` says which kind."""

    def __init__(self, status: str, note: str):
        super().__init__(note)
        self.status = status
        self.note = note


# --------------------------------------------------------------------------- devices

def check_device(device) -> torch.device:
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} but CUDA is not available")
    return dev


def progress_bar(iterable: Iterable, *, progress: bool, desc: str, total: int | None = None):
    from tqdm.auto import tqdm
    return tqdm(iterable, desc=desc, disable=not progress, total=total, leave=False)


# --------------------------------------------------------------------------- problems

def make_grid(in_features: int, grid_size: int, spline_order: int, *, lo: float = -1.0, hi: float = 1.0,
              device="cpu", dtype=torch.float32) -> torch.Tensor:
    """efficient-kan's extended uniform grid, shape [in, G+2k+1]."""
    return uniform_grid(in_features, grid_size, spline_order, (lo, hi), device=device, dtype=dtype)


def make_problem(n: int, in_features: int, out_features: int, grid_size: int, spline_order: int, *,
                 device="cpu", dtype=torch.float32, seed: int = 0, requires_grad: bool = False):
    """Random inputs in the grid range, the grid, and coefficients scaled like a trained layer."""
    gen = torch.Generator(device="cpu").manual_seed(seed)
    x = (torch.rand(n, in_features, generator=gen, dtype=torch.float32) * 2 - 1).to(device, dtype)
    nb = grid_size + spline_order
    coeff = (torch.randn(out_features, in_features, nb, generator=gen) / math.sqrt(in_features * (spline_order + 1)))
    coeff = coeff.to(device, dtype)
    grid = make_grid(in_features, grid_size, spline_order, device=device, dtype=dtype)
    if requires_grad:
        x.requires_grad_(True)
        coeff.requires_grad_(True)
    return x, grid, coeff


# --------------------------------------------------------------------------- paths and layers

def fused_available(device) -> tuple[bool, str]:
    """Whether the fused Triton path can run on ``device``, and why not."""
    try:
        kernels = importlib.import_module("sparsefuse.kernels")
    except Exception as exc:  # noqa: BLE001 - any import failure means "not here"
        return False, f"sparsefuse.kernels not importable: {type(exc).__name__}: {exc}"
    try:
        ok = bool(kernels.available(torch.device(device)))
    except Exception as exc:  # noqa: BLE001
        return False, f"kernels.available failed: {exc}"
    if not ok:
        return False, "fused kernels need CUDA or TRITON_INTERPRET=1"
    return True, ""


def interpreted(device) -> bool:
    """True when a fused run would go through the (slow) Triton interpreter."""
    return torch.device(device).type == "cpu"


def contract_path(name: str, device) -> Callable:
    """``spline_contract(x, grid, coeff, spline_order)`` of one path, or ``Unavailable``."""
    if name == "fused":
        ok, why = fused_available(device)
        if not ok:
            raise Unavailable(UNSUPPORTED, why)
        return importlib.import_module("sparsefuse.kernels").spline_contract
    if name not in ("reference", "dense", "sparse"):
        raise ValueError(f"path must be one of {PATHS}, got {name!r}")
    try:
        return importlib.import_module(f"sparsefuse.paths.{name}").spline_contract
    except (ImportError, AttributeError) as exc:
        raise Unavailable(UNSUPPORTED, f"sparsefuse.paths.{name} missing: {exc}") from None


def make_layer(impl: str, in_features: int, out_features: int, grid_size: int, spline_order: int = 3, *,
               device="cpu", dtype=torch.float32, seed: int = 0) -> torch.nn.Module:
    """Our ``KANLinear`` with a forced path, ``nn.Linear``, or a peer layer; ``Unavailable`` when it can't run."""
    torch.manual_seed(seed)
    if impl == "linear":
        return torch.nn.Linear(in_features, out_features).to(device, dtype)
    if impl in PEERS:
        return peer_layer(impl, in_features, out_features, grid_size, spline_order, device=device, dtype=dtype)
    if impl not in PATHS:
        raise ValueError(f"impl must be one of {PATHS + PEERS + ('linear',)}, got {impl!r}")
    if impl == "fused":
        ok, why = fused_available(device)
        if not ok:
            raise Unavailable(UNSUPPORTED, why)
    try:
        from sparsefuse.kan_linear import KANLinear
    except ImportError as exc:
        raise Unavailable(UNSUPPORTED, f"sparsefuse.kan_linear missing: {exc}") from None
    layer = KANLinear(in_features, out_features, grid_size=grid_size, spline_order=spline_order, impl=impl)
    return layer.to(device, dtype)


def peer_layer(name: str, in_features: int, out_features: int, grid_size: int, spline_order: int = 3, *,
               device="cpu", dtype=torch.float32) -> torch.nn.Module:
    """A peer layer from ``sparsefuse.peers`` with its absence or limits turned into ``Unavailable``."""
    try:
        from sparsefuse import peers
    except ImportError as exc:
        raise Unavailable(PEER_MISSING, f"sparsefuse.peers missing: {exc}") from None
    try:
        return peers.make_peer(name, in_features, out_features, grid_size, spline_order, device=device, dtype=dtype)
    except peers.PeerUnavailable as exc:
        raise Unavailable(PEER_MISSING, str(exc)) from None
    except peers.PeerUnsupported as exc:
        raise Unavailable(UNSUPPORTED, str(exc)) from None


# --------------------------------------------------------------------------- measuring

is_oom = bench.is_oom


def free_memory(device, collect: bool = False) -> None:
    """Return cached blocks to the device; a full ``gc`` pass only after a failure (it costs ~0.1 s)."""
    if collect:
        gc.collect()
    if torch.device(device).type == "cuda":
        torch.cuda.empty_cache()


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


def _benchmark(fn, device, warmup: int, reps: int) -> dict:
    res = bench.benchmark(fn, device=device, warmup=warmup, rep=reps)
    return dict(median_ms=float(res.median_ms), q20_ms=float(res.q20_ms), q80_ms=float(res.q80_ms),
                peak_mib=float(res.peak_mib))


EMPTY = dict(median_ms=float("nan"), q20_ms=float("nan"), q80_ms=float("nan"), peak_mib=float("nan"))


def measure(fn: Callable[[], object], device, *, warmup: int = 2, reps: int = 10) -> dict:
    """Time ``fn``; an OOM or ``Unavailable`` becomes a status, never an exception."""
    try:
        out = _benchmark(fn, device, warmup, reps)
        out.update(status=OK, note="")
    except Unavailable as exc:
        out = dict(EMPTY, status=exc.status, note=exc.note)
    except NotImplementedError as exc:
        out = dict(EMPTY, status=UNSUPPORTED, note=f"not implemented: {str(exc).splitlines()[0][:200]}")
    except Exception as exc:  # noqa: BLE001 - OOM is data here; anything else is reported as an error row
        if is_oom(exc):
            out = dict(EMPTY, status=OOM, note=str(exc).splitlines()[0][:200])
        else:
            out = dict(EMPTY, status=ERROR, note=f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
    free_memory(device, collect=out["status"] != OK)
    return out


def guarded(build: Callable[[], object], device) -> tuple[object | None, dict | None]:
    """Run a setup step (building a layer or inputs); return (value, None) or (None, status row fields)."""
    try:
        return build(), None
    except Unavailable as exc:
        return None, dict(EMPTY, status=exc.status, note=exc.note)
    except NotImplementedError as exc:
        return None, dict(EMPTY, status=UNSUPPORTED, note=f"not implemented: {str(exc).splitlines()[0][:200]}")
    except Exception as exc:  # noqa: BLE001
        free_memory(device, collect=True)
        if is_oom(exc):
            return None, dict(EMPTY, status=OOM, note=str(exc).splitlines()[0][:200])
        return None, dict(EMPTY, status=ERROR, note=f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}")


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


def interpreter_budget_ok(device, work: int, limit: int) -> tuple[bool, str]:
    """Under the CPU Triton interpreter only tiny fused problems finish in a smoke run."""
    if not interpreted(device):
        return True, ""
    if os.environ.get("TRITON_INTERPRET") != "1":
        return False, "fused on CPU needs TRITON_INTERPRET=1"
    if work > limit:
        return False, f"skipped under the Triton interpreter (work {work} > smoke limit {limit})"
    return True, ""


def fused_work(n: int, in_features: int, out_features: int, grid_size: int, spline_order: int) -> int:
    """Size measure for the interpreter budget: the dense-tile work N·in·out·(G+k)."""
    return n * in_features * out_features * (grid_size + spline_order)


def basis_density(grid_size: int, spline_order: int) -> float:
    """Fraction of the G+k B-spline bases that are nonzero at one input: (k+1)/(G+k)."""
    return (spline_order + 1) / (grid_size + spline_order)


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


def annotate_missing(ax, df, label_cols: list[str]) -> None:
    """List what did not run (OOM, unsupported, missing peer) under the axes so a gap is never silent."""
    bad = df[df["status"] != OK]
    if bad.empty:
        return
    groups = bad.groupby([*label_cols, "status"], dropna=False).size().reset_index()
    parts = [" ".join(str(v) for v in row[:-1]) for row in groups.itertuples(index=False)]
    text = "not run: " + "; ".join(parts[:6]) + (" …" if len(parts) > 6 else "")
    ax.text(0.0, -0.22, text, transform=ax.transAxes, fontsize=7, color="#666666", va="top", wrap=True)


MODES = ("forward", "forward+backward")


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


def status_pivot(df, index: str, columns: str, value: str, digits: int = 3):
    """A readable pivot: the value where the row ran, its status (``oom``, ``peer-missing``, …) where not."""
    import pandas as pd

    def cell(row):
        if row["status"] == OK and pd.notna(row[value]):
            return f"{row[value]:.{digits}g}"
        return row["status"]

    d = df.assign(_cell=df.apply(cell, axis=1))
    order_c = list(dict.fromkeys(df[columns]))
    piv = d.pivot_table(index=index, columns=columns, values="_cell", aggfunc="first")
    return piv.reindex(columns=[c for c in order_c if c in piv.columns])


def plain_ticks(ax, axis: str = "x") -> None:
    """Label a log axis with plain numbers (3, 30, 300) instead of powers (3×10⁰)."""
    import matplotlib.ticker as mt

    target = ax.xaxis if axis == "x" else ax.yaxis
    target.set_major_formatter(mt.FuncFormatter(lambda v, _: f"{v:g}"))
    target.set_minor_formatter(mt.NullFormatter())
