"""Layer microbenchmark: ``torch.nn.Linear`` against KAN layers over grid size G.

The first question of the book: what does a KAN layer cost next to the
linear layer it replaces, and how does that cost grow with the grid size G?
Only k+1 of the G+k basis functions are non-zero at any input, so the share
of useful work in the dense formulation is the density (k+1)/(G+k); the
sparse and fused paths exist to stop paying for the zeros. Each path of
``sparsefuse.KANLinear`` (``reference``, ``dense``, ``sparse``, ``fused``) is timed.
"""
from __future__ import annotations

import pandas as pd
from tqdm.auto import tqdm

from sparsefuse import status as S
from . import _guard as guard
from . import check_choices, recorded
from ._pick import PATHS
from ._page import legend_on_top, page_figure, panels
from ._problems import basis_density
from ..words import faster, flat_in_g, times

NAME = "layer_microbench"

PROFILES = {
    # CPU, a few seconds: proves the code path, measures nothing.
    "smoke": dict(N=64, in_features=8, out_features=8, grid_sizes=[3, 5, 10, 20],
                  spline_order=3, passes=list(guard.MODES), warmup=1, rep=2,
                  paths=["linear", "reference", "dense", "sparse", "fused"]),
    # One H100, about a minute.
    "quick": dict(N=8192, in_features=512, out_features=512, grid_sizes=[3, 5, 10, 20, 50, 100],
                  spline_order=3, passes=list(guard.MODES), warmup=25, rep=100,
                  paths=["linear", "reference", "dense", "sparse", "fused"]),
    "paper": dict(N=8192, in_features=512, out_features=512,
                  grid_sizes=[1, 2, 3, 5, 8, 10, 15, 20, 30, 50, 70, 100, 150, 200],
                  spline_order=3, passes=list(guard.MODES), warmup=100, rep=500,
                  paths=["linear", "reference", "dense", "sparse", "fused"]),
}

# Under TRITON_INTERPRET=1 a Triton kernel runs in numpy, one program at a
# time: only tiny problems finish in seconds (the smoke profile's largest is 64·8·8·23).
_INTERPRET_MAX_WORK = 64 * 8 * 8 * 24

COLUMNS = ["path", "G", "k", "N", "in", "out", "pass", "density",
           "median_ms", "q20_ms", "q80_ms", "peak_mib", "status", "note"]


density = basis_density  # share of non-zero B-spline bases at one input: (k+1)/(G+k)


@recorded(PROFILES)
def run(cfg: dict, device="cpu", progress: bool = True) -> pd.DataFrame:
    """Time every path at every G; one row per (path, G, pass)."""
    check_choices(cfg, "paths", ("linear", *PATHS))
    check_choices(cfg, "passes", guard.MODES)
    N, k = cfg["N"], cfg["spline_order"]
    points = [(path, G, pass_) for G in cfg["grid_sizes"] for path in cfg["paths"] for pass_ in cfg["passes"]]
    rows = []
    for path, G, pass_ in tqdm(points, desc=NAME, disable=not progress, leave=False):
        row = guard.layer_point(path, pass_, n=N, in_features=cfg["in_features"], out_features=cfg["out_features"],
                                grid_size=G, spline_order=k, device=device, warmup=cfg["warmup"], rep=cfg["rep"],
                                fused_work_limit=_INTERPRET_MAX_WORK)
        rows.append({"path": path, "G": G, "k": k, "N": N, "in": cfg["in_features"], "out": cfg["out_features"],
                     "pass": pass_, "density": density(G, k), **row})
    return pd.DataFrame(rows, columns=COLUMNS)


@page_figure
def plot(df: pd.DataFrame):
    """Median time against G, one line per path; inference (forward) above, training (forward+backward) below."""
    from ._plotting import STYLE

    passes = list(dict.fromkeys(df["pass"]))
    fig, axes = panels(len(passes), height=3.3)
    ok = df[df["status"] == S.OK]
    first = df.iloc[0] if len(df) else None
    shape = f"N={first['N']}, {first['in']}→{first['out']}" if first is not None else ""
    for ax, pass_ in zip(axes, passes):
        sub = ok[ok["pass"] == pass_]
        for path, grp in sub.groupby("path", sort=False):
            grp = grp.sort_values("G")
            ax.plot(grp["G"], grp["median_ms"], label=path, **STYLE.get(path, {"marker": "o"}))
        ax.set_xscale("log")
        ax.set_yscale("log")
        ticks = sorted(df["G"].unique())
        ax.set_xticks(ticks, [str(t) for t in ticks])
        ax.minorticks_off()
        ax.set_xlabel("grid size G")
        ax.set_ylabel("time per call (ms)")
        ax.set_title(f"{pass_} ({shape})")
        ax.grid(True, which="both", alpha=0.3)
    if len(axes):
        legend_on_top(fig, axes, ncols=5)
    return fig


def explorer(df: pd.DataFrame):
    """The book's G / density explorer over this sweep."""
    from ..book.explorer import Explorer

    return Explorer(df, title="Layer microbenchmark", baseline="linear")



def verdict_numbers(df: pd.DataFrame) -> dict:
    """The chapter's verdict: how the training-step time of ``fused`` and ``reference`` grows with G."""
    out = dict(lm_g_lo=float("nan"), lm_g_hi=float("nan"), lm_fused_growth=float("nan"),
               lm_ref_growth=float("nan"), lm_speedup_lo=float("nan"), lm_speedup_hi=float("nan"),
               lm_vs_linear_hi=float("nan"))
    ok = df[df["status"] == S.OK]
    train = [p for p in ("forward+backward", "fwd+bwd") if p in set(ok["pass"])]
    t = ok[ok["pass"] == train[0]].pivot_table(index="G", columns="path", values="median_ms") if train else None
    if t is not None and {"fused", "reference"} <= set(t.columns):
        both = t[["fused", "reference"]].dropna()
        if len(both) >= 2:
            g0, g1 = both.index.min(), both.index.max()
            out.update(lm_g_lo=g0, lm_g_hi=g1,
                       lm_fused_growth=both.loc[g1, "fused"] / both.loc[g0, "fused"],
                       lm_ref_growth=both.loc[g1, "reference"] / both.loc[g0, "reference"],
                       lm_speedup_lo=both.loc[g0, "reference"] / both.loc[g0, "fused"],
                       lm_speedup_hi=both.loc[g1, "reference"] / both.loc[g1, "fused"])
            if "linear" in t.columns and t.loc[g1, "linear"] == t.loc[g1, "linear"]:
                out["lm_vs_linear_hi"] = both.loc[g1, "fused"] / t.loc[g1, "linear"]
    out["lm_cmp_lo"] = faster(out["lm_speedup_lo"], "the reference")
    out["lm_cmp_hi"] = faster(out["lm_speedup_hi"], "the reference")
    out["lm_vs_linear_text"] = times(out["lm_vs_linear_hi"])
    out["lm_flat"] = flat_in_g(out["lm_fused_growth"], out["lm_ref_growth"], "training-step time")
    return out
