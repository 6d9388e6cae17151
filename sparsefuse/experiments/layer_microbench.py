"""Layer microbenchmark: ``torch.nn.Linear`` against KAN layers over grid size G.

The first question of the book: what does a KAN layer cost next to the
linear layer it replaces, and how does that cost grow with the grid size G?
Only k+1 of the G+k basis functions are non-zero at any input, so the share
of useful work in the dense formulation is the density (k+1)/(G+k); the
sparse and fused paths exist to stop paying for the zeros.

Each path of ``sparsefuse.KANLinear`` (``reference``, ``dense``, ``sparse``,
``fused``) is timed when the library provides it; until then a plain PyTorch
layer with the efficient-kan algorithm (dense Cox-de Boor basis + matmul) is
timed as ``plain``.
"""
from __future__ import annotations

import math

import pandas as pd
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .. import bench
from . import resolve_profile
from ._common import basis_density, fused_available

NAME = "layer_microbench"

PROFILES = {
    # CPU, a few seconds: proves the code path, measures nothing.
    "smoke": dict(N=64, in_features=8, out_features=8, grid_sizes=[3, 5, 10, 20],
                  spline_order=3, passes=["fwd", "fwd+bwd"], warmup=1, rep=2,
                  paths=["linear", "reference", "dense", "sparse", "fused"]),
    # One H100, about a minute.
    "quick": dict(N=8192, in_features=512, out_features=512, grid_sizes=[3, 5, 10, 20, 50, 100],
                  spline_order=3, passes=["fwd", "fwd+bwd"], warmup=25, rep=100,
                  paths=["linear", "reference", "dense", "sparse", "fused"]),
    "paper": dict(N=8192, in_features=512, out_features=512,
                  grid_sizes=[1, 2, 3, 5, 8, 10, 15, 20, 30, 50, 70, 100, 150, 200],
                  spline_order=3, passes=["fwd", "fwd+bwd"], warmup=100, rep=500,
                  paths=["linear", "reference", "dense", "sparse", "fused"]),
}

KAN_PATHS = ("reference", "dense", "sparse", "fused")
# Under TRITON_INTERPRET=1 a Triton kernel runs in numpy, one program at a
# time: only tiny problems finish in seconds.
_INTERPRET_MAX_WORK = 64 * 8 * 8 * 8

COLUMNS = ["path", "G", "k", "N", "in", "out", "pass", "density",
           "median_ms", "q20_ms", "q80_ms", "peak_mib", "status"]


density = basis_density  # share of non-zero B-spline bases at one input: (k+1)/(G+k)


class PlainKANLinear(torch.nn.Module):
    """Naive KAN layer in plain PyTorch: dense Cox-de Boor basis, then one matmul.

    The efficient-kan algorithm, kept as the stand-in when the library's
    ``KANLinear`` is not importable.
    """

    def __init__(self, in_features: int, out_features: int, grid_size: int = 5,
                 spline_order: int = 3, grid_range=(-1.0, 1.0)):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.spline_order = spline_order
        lo, hi = grid_range
        h = (hi - lo) / grid_size
        knots = torch.arange(-spline_order, grid_size + spline_order + 1) * h + lo
        self.register_buffer("grid", knots.expand(in_features, -1).contiguous())
        self.base_weight = torch.nn.Parameter(torch.randn(out_features, in_features) / in_features**0.5)
        self.spline_weight = torch.nn.Parameter(
            0.1 * torch.randn(out_features, in_features, grid_size + spline_order) / in_features**0.5)

    def b_splines(self, x: torch.Tensor) -> torch.Tensor:
        grid = self.grid
        x = x.unsqueeze(-1)
        bases = ((x >= grid[:, :-1]) & (x < grid[:, 1:])).to(x.dtype)
        for p in range(1, self.spline_order + 1):
            bases = (x - grid[:, : -(p + 1)]) / (grid[:, p:-1] - grid[:, : -(p + 1)]) * bases[..., :-1] + (
                grid[:, p + 1:] - x) / (grid[:, p + 1:] - grid[:, 1:-p]) * bases[..., 1:]
        return bases

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        base = F.linear(F.silu(x), self.base_weight)
        spline = F.linear(self.b_splines(x).flatten(1), self.spline_weight.flatten(1))
        return base + spline


def _library_layer():
    try:
        from ..kan_linear import KANLinear
    except ImportError:
        return None
    return KANLinear


def _fused_possible(device: str, work: int) -> tuple[bool, str]:
    if not fused_available(device)[0]:
        return False, "unsupported"
    if torch.device(device).type == "cpu" and work > _INTERPRET_MAX_WORK:
        return False, "skipped"
    return True, "ok"


def _make_layer(path: str, cfg: dict, G: int, device: str):
    """The module for one row, or a status string saying why there is none."""
    n_in, n_out, k = cfg["in_features"], cfg["out_features"], cfg["spline_order"]
    if path == "linear":
        return torch.nn.Linear(n_in, n_out)
    KANLinear = _library_layer()
    if KANLinear is None:
        return PlainKANLinear(n_in, n_out, G, k) if path == "reference" else "unsupported"
    if path == "fused":
        ok, status = _fused_possible(device, cfg["N"] * n_in * n_out * (k + 1))
        if not ok:
            return status
    try:
        return KANLinear(n_in, n_out, grid_size=G, spline_order=k, impl=path)
    except (ValueError, NotImplementedError):
        return "unsupported"


def _path_label(path: str) -> str:
    return "plain" if path == "reference" and _library_layer() is None else path


def run(profile: str = "smoke", device: str = "cpu", progress: bool = True, **overrides) -> pd.DataFrame:
    """Time every path at every G; one row per (path, G, pass)."""
    cfg = resolve_profile(PROFILES, profile, overrides)
    unknown = set(cfg["paths"]) - {"linear", *KAN_PATHS}
    if unknown:
        raise ValueError(f"paths has unknown entries {sorted(unknown)}")
    for p in cfg["passes"]:
        if p not in ("fwd", "fwd+bwd"):
            raise ValueError(f"passes must hold 'fwd' or 'fwd+bwd', got {p!r}")
    torch.manual_seed(0)
    N, k = cfg["N"], cfg["spline_order"]
    x0 = torch.rand(N, cfg["in_features"], device=device) * 2 - 1
    grad_out = torch.randn(N, cfg["out_features"], device=device)
    points = [(path, G) for G in cfg["grid_sizes"] for path in cfg["paths"]]
    rows = []
    for path, G in tqdm(points, desc=NAME, disable=not progress):
        layer = _make_layer(path, cfg, G, device)
        base = {"path": _path_label(path), "G": G, "k": k, "N": N, "in": cfg["in_features"],
                "out": cfg["out_features"], "density": density(G, k)}
        for pass_ in cfg["passes"]:
            if isinstance(layer, str):
                rows.append({**base, "pass": pass_, "median_ms": math.nan, "q20_ms": math.nan,
                             "q80_ms": math.nan, "peak_mib": math.nan, "status": layer})
                continue
            layer = layer.to(device)
            rows.append({**base, "pass": pass_, **_measure(layer, x0, grad_out, pass_, device, cfg)})
        del layer
    return pd.DataFrame(rows, columns=COLUMNS)


def _measure(layer, x0, grad_out, pass_, device, cfg) -> dict:
    if pass_ == "fwd":
        def fn():
            with torch.no_grad():
                return layer(x0)
    else:
        x = x0.detach().clone().requires_grad_(True)

        def fn():
            # fresh gradients every repetition, as in training: accumulation would add a pass
            layer.zero_grad(set_to_none=True)
            x.grad = None
            layer(x).backward(grad_out)
    try:
        res = bench.try_benchmark(fn, device=device, warmup=cfg["warmup"], rep=cfg["rep"])
    except (RuntimeError, NotImplementedError) as exc:  # a path that cannot run here
        return {"median_ms": math.nan, "q20_ms": math.nan, "q80_ms": math.nan,
                "peak_mib": math.nan, "status": f"error: {type(exc).__name__}"}
    return res.as_dict()


def plot(df: pd.DataFrame):
    """Median time against G, one line per path, one panel per pass."""
    import matplotlib.pyplot as plt

    passes = list(dict.fromkeys(df["pass"]))
    fig, axes = plt.subplots(1, len(passes), figsize=(6.0 * len(passes), 3.8), squeeze=False)
    ok = df[df["status"] == "ok"]
    for ax, pass_ in zip(axes[0], passes):
        sub = ok[ok["pass"] == pass_]
        for path, grp in sub.groupby("path", sort=False):
            grp = grp.sort_values("G")
            ax.plot(grp["G"], grp["median_ms"], marker="o", label=path)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ticks = sorted(df["G"].unique())
        ax.set_xticks(ticks, [str(t) for t in ticks])
        ax.minorticks_off()
        ax.set_xlabel("grid size G")
        ax.set_ylabel("median time (ms)")
        first = df.iloc[0] if len(df) else None
        shape = f"N={first['N']}, {first['in']}→{first['out']}" if first is not None else ""
        ax.set_title(f"{pass_}  ({shape})")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    fig.tight_layout()
    return fig


def explorer(df: pd.DataFrame):
    """The book's G / density explorer over this sweep."""
    from ..book.explorer import Explorer

    return Explorer(df, title="Layer microbenchmark", baseline="linear")

