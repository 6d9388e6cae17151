"""Speedup and memory-ratio heatmaps over (batch, width) and (G, width).

Why: one workload says little about where a kernel wins. These two planes show
the fused path against a baseline (the efficient-kan algorithm by default)
across problem shapes, so a reader can find their own layer size and read off
the expected gain — and see where the gain shrinks (tiny problems are launch
bound; wide ones are GEMM bound).
"""
from __future__ import annotations

import math

import numpy as np

from . import _guard as guard
from . import _sweep as sw
from . import recorded
from ._page import page_figure, panels
from ..words import joined

NAME = "heatmaps"

PROFILES = {
    "smoke": dict(batches=[16, 32], widths=[4, 8], grid_sizes=[5, 10], fixed_grid=5, fixed_batch=16,
                  spline_order=3, target="fused", baseline="reference", mode="forward+backward",
                  warmup=1, rep=2, fused_work_limit=64 * 8 * 8 * 8, time_budget_s=None, max_point_s=None),
    "quick": dict(batches=[512, 2048, 8192], widths=[64, 256, 1024], grid_sizes=[5, 20, 100],
                  fixed_grid=5, fixed_batch=4096, spline_order=3, target="fused", baseline="reference",
                  mode="forward+backward", warmup=5, rep=20, fused_work_limit=None, time_budget_s=60,
                  max_point_s=None),
    "paper": dict(batches=[256, 1024, 4096, 16384, 65536], widths=[32, 64, 128, 256, 512, 1024, 2048],
                  grid_sizes=[3, 5, 10, 20, 50, 100, 200], fixed_grid=5, fixed_batch=8192, spline_order=3,
                  target="fused", baseline="reference", mode="forward+backward", warmup=25, rep=100,
                  fused_work_limit=None, time_budget_s=None, max_point_s=None),
}

COLUMNS = ["plane", "impl", "n", "width", "grid_size", "spline_order", "mode",
           "median_ms", "q20_ms", "q80_ms", "peak_mib", "status", "note"]


def _points(cfg):
    for n in cfg["batches"]:
        for w in cfg["widths"]:
            yield "batch×width", n, w, cfg["fixed_grid"]
    for g in cfg["grid_sizes"]:
        for w in cfg["widths"]:
            yield "G×width", cfg["fixed_batch"], w, g


@recorded(PROFILES)
def run(cfg: dict, device="cpu", progress: bool = True):
    """Long table: one row per (plane, impl, shape); :func:`ratios` turns it into the heatmap values."""
    dev = sw.check_device(device)
    if cfg["target"] == cfg["baseline"]:
        raise ValueError("target and baseline must differ")
    points = [(p, impl) for p in _points(cfg) for impl in (cfg["baseline"], cfg["target"])]
    rows = []
    budget, slow = sw.Budget(cfg["time_budget_s"]), sw.SlowGuard(cfg["max_point_s"])
    for (plane, n, w, g), impl in sw.progress_bar(points, progress=progress, desc="heatmaps"):
        res = sw.capped(budget, slow, None, "", lambda: guard.layer_point(
            impl, cfg["mode"], n=n, in_features=w, out_features=w, grid_size=g, spline_order=cfg["spline_order"],
            device=dev, warmup=cfg["warmup"], rep=cfg["rep"], fused_work_limit=cfg["fused_work_limit"]))
        rows.append(dict(plane=plane, impl=impl, n=n, width=w, grid_size=g, spline_order=cfg["spline_order"],
                         mode=cfg["mode"], **res))
    df = sw.finish(rows, COLUMNS)
    df.attrs.update(target=cfg["target"], baseline=cfg["baseline"])
    return df


def ratios(df, target: str | None = None, baseline: str | None = None):
    """Per shape: speedup = baseline time / target time, memory ratio = baseline peak / target peak.

    A shape where either side did not run keeps NaN ratios and both statuses, so
    a blank heatmap cell always has a reason in the table.
    """
    import pandas as pd

    impls = list(dict.fromkeys(df["impl"]))
    target = target or df.attrs.get("target") or (impls[1] if len(impls) > 1 else impls[0])
    baseline = baseline or df.attrs.get("baseline") or impls[0]
    key = ["plane", "n", "width", "grid_size"]
    t = df[df["impl"] == target]
    b = df[df["impl"] == baseline]
    both = t.merge(b, on=key, how="outer", suffixes=("_t", "_b")).set_index(key)
    out = pd.DataFrame({
        "speedup": both["median_ms_b"] / both["median_ms_t"],
        "memory_ratio": both["peak_mib_b"] / both["peak_mib_t"],
        f"{baseline}_ms": both["median_ms_b"], f"{target}_ms": both["median_ms_t"],
        f"{baseline}_mib": both["peak_mib_b"], f"{target}_mib": both["peak_mib_t"],
        f"{baseline}_status": both["status_b"], f"{target}_status": both["status_t"],
    }).reset_index()
    out.attrs.update(target=target, baseline=baseline)
    return out


def headline(df):
    """The ratio table behind the heatmaps, one row per shape."""
    r = ratios(df)
    base, tgt = r.attrs.get("baseline", "baseline"), r.attrs.get("target", "target")
    return r[["plane", "n", "width", "grid_size", "speedup", "memory_ratio"]].rename(columns={
        "n": "N", "grid_size": "G", "speedup": f"time: {base} ÷ {tgt}", "memory_ratio": f"memory: {base} ÷ {tgt}"})


def _heat(ax, table, row, col, value, title, fig):
    piv = table.pivot(index=row, columns=col, values=value).sort_index().sort_index(axis=1)
    data = piv.to_numpy(dtype=float)
    finite = data[np.isfinite(data) & (data > 0)]
    if finite.size == 0:
        ax.text(0.5, 0.5, "not measured here\n(CPU has no peak-memory figure,\nor a side did not run)",
                ha="center", va="center", transform=ax.transAxes)
        ax.set_xticks([]), ax.set_yticks([])
        ax.set_title(title)
        return
    # Log colour scale centred on 1 (no gain): red = target faster/smaller, blue = slower/larger.
    span = max(abs(math.log10(finite.min())), abs(math.log10(finite.max())), 0.05)
    ax.imshow(np.log10(np.where(data > 0, data, np.nan)), cmap="RdBu_r", vmin=-span, vmax=span,
              origin="lower", aspect="auto")
    for (i, j), v in np.ndenumerate(data):
        dark = np.isfinite(v) and v > 0 and abs(math.log10(v)) > 0.6 * span
        ax.text(j, i, "—" if not np.isfinite(v) else f"{v:.2g}×", ha="center", va="center",
                color="white" if dark else "black")
    ax.set_xticks(range(len(piv.columns)), [str(c) for c in piv.columns])
    ax.set_yticks(range(len(piv.index)), [str(r) for r in piv.index])
    ax.set_xlabel(col.replace("width", "width (in = out)"))
    ax.set_ylabel({"n": "batch N", "grid_size": "grid size G"}[row])
    ax.set_title(title)


@page_figure
def plot(df):
    """2×2 heatmaps: speedup and memory ratio, on the (batch, width) and (G, width) planes."""
    r = ratios(df)
    tgt, base = r.attrs["target"], r.attrs["baseline"]
    fig, axes = panels(4, ncols=2, height=3.0)
    bw = r[r["plane"] == "batch×width"]
    gw = r[r["plane"] == "G×width"]
    g0 = bw["grid_size"].iloc[0] if len(bw) else "?"
    n0 = gw["n"].iloc[0] if len(gw) else "?"
    _heat(axes[0], bw, "n", "width", "speedup", f"time: {base} ÷ {tgt} (G={g0})", fig)
    _heat(axes[1], bw, "n", "width", "memory_ratio", f"memory: {base} ÷ {tgt} (G={g0})", fig)
    _heat(axes[2], gw, "grid_size", "width", "speedup", f"time: {base} ÷ {tgt} (N={n0})", fig)
    _heat(axes[3], gw, "grid_size", "width", "memory_ratio", f"memory: {base} ÷ {tgt} (N={n0})", fig)
    mode = df["mode"].iloc[0] if len(df) else ""
    fig.suptitle(f"{tgt} against {base}, {mode}; above 1× (red): {tgt} faster or smaller", x=0.02, ha="left")
    return fig


def _growth_with_g(r) -> str:
    """Does the time ratio grow with G at each width of the G×width plane? Ends, and whether it dipped between."""
    plane = r[(r["plane"] == "G×width") & r["speedup"].notna()]
    if plane.empty or plane["grid_size"].nunique() < 2:
        return "Whether the gain grows with G was not measured (no G×width plane with two grid sizes)."
    ends, dipped, fell = [], [], []
    for width, rows in plane.sort_values("grid_size").groupby("width"):
        sp = rows["speedup"].to_numpy()
        g = rows["grid_size"].to_numpy()
        ends.append(f"width {int(width)}: {sp[0]:.2f}× at G={int(g[0])} → {sp[-1]:.2f}× at G={int(g[-1])}")
        if sp[-1] <= sp[0]:
            fell.append(str(int(width)))
        elif (np.diff(sp) < 0).any():
            dipped.append(str(int(width)))
    if fell:
        head = f"The gain did not grow with G at width{'s' if len(fell) > 1 else ''} {joined(fell)}, so that part of the claim does not hold there"
    elif dipped:
        head = (f"The gain grew with G from the smallest to the largest grid at every width, though not step by "
                f"step at width{'s' if len(dipped) > 1 else ''} {joined(dipped)} (it dipped in between)")
    else:
        head = "The gain grew with G at every width, step by step, as the paper claims"
    return f"{head}: {'; '.join(ends)}."


def verdict_numbers(df) -> dict:
    """The chapter's verdict: over how many shapes the target wins, and by how much at the extremes."""
    r = ratios(df)
    nan = float("nan")
    sp = r["speedup"].replace([np.inf, -np.inf], np.nan).dropna()
    mem = r["memory_ratio"].replace([np.inf, -np.inf], np.nan).dropna()
    out = dict(hm_shapes=int(len(sp)), hm_wins=int((sp > 1).sum()), hm_speedup_min=sp.min() if len(sp) else nan,
               hm_speedup_max=sp.max() if len(sp) else nan, hm_speedup_median=sp.median() if len(sp) else nan,
               hm_mem_min=mem.min() if len(mem) else nan, hm_mem_max=mem.max() if len(mem) else nan,
               hm_target=r.attrs.get("target", "fused"), hm_baseline=r.attrs.get("baseline", "reference"))
    worst, best = "—", "—"
    if len(sp):
        for name, idx in (("worst", sp.idxmin()), ("best", sp.idxmax())):
            row = r.loc[idx]
            text = f"N={int(row['n'])}, width {int(row['width'])}, G={int(row['grid_size'])}"
            worst, best = (text, best) if name == "worst" else (worst, text)
    out.update(hm_worst_shape=worst, hm_best_shape=best)
    out["hm_all_win"] = ("in every shape measured" if len(sp) and out["hm_wins"] == len(sp)
                         else f"in {out['hm_wins']} of {len(sp)} shapes")
    lo, hi = out["hm_mem_min"], out["hm_mem_max"]
    out["hm_mem_text"] = ("peak memory was not measured (CPU)" if lo != lo else
                          f"it needed {lo:.3g}× to {hi:.3g}× less peak memory" if lo >= 1 else
                          f"its peak memory ranged from {1 / lo:.3g}× more to {hi:.3g}× less than the baseline's")
    out["hm_growth_text"] = _growth_with_g(r)
    out["hm_loss_text"] = ("No shape was a loss." if len(sp) and out["hm_wins"] == len(sp) else
                           f"Where the ratio is below 1× the target lost; the worst case was {worst}, "
                           f"at {out['hm_speedup_min']:.2f}×." if len(sp) else "")
    return out
