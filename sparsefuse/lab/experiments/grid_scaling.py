"""Grid-size scaling: how time and memory of each path grow with G.

Why: every peer materializes an N·in·(G+k) basis, so its cost grows linearly
with G and it runs out of memory first; the sparse and fused paths touch only
k+1 bases per input, so their cost should be nearly flat in G. This sweep shows
where each implementation stands and records the point where it drops out
(OOM rows, and the larger grids skipped after it).
"""
from __future__ import annotations

from sparsefuse import status as S
from . import _guard as guard
from . import _pick as pick
from . import _plotting as viz
from . import _problems as prob
from . import _sweep as sw
from . import recorded
from ._page import not_run, page_figure, panels, with_note
from ..words import faster, flat_in_g, joined, less, times, where_wins

NAME = "grid_scaling"

PROFILES = {
    "smoke": dict(n=64, in_features=8, out_features=8, spline_order=3, grid_sizes=[3, 40],
                  impls=list(pick.PATHS) + list(pick.PEERS), modes=["forward", "forward+backward"],
                  skip_impls={}, warmup=1, rep=2, fused_work_limit=64 * 8 * 8 * 8, time_budget_s=None,
                  max_point_s=None),
    # Measured on the H100: flashkan recompiles (torch.compile) for every new G, 61 s at G=30,
    # and pykan's layer initialization (a least-squares fit) takes 21 s at G=300. Both stay in
    # the paper profile; quick records them as skipped with that reason.
    "quick": dict(n=4096, in_features=128, out_features=128, spline_order=3,
                  grid_sizes=[3, 10, 30, 100, 300, 1000],
                  impls=list(pick.PATHS) + list(pick.PEERS), modes=["forward+backward"],
                  skip_impls={"flashkan": "paper profile only: recompiles for every G (about 1 min each)",
                              "pykan": "paper profile only: initialization takes ~20 s per layer at G=300"},
                  warmup=5, rep=20, fused_work_limit=None, time_budget_s=60, max_point_s=15),
    "paper": dict(n=8192, in_features=512, out_features=512, spline_order=3,
                  grid_sizes=[3, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000],
                  impls=list(pick.PATHS) + ["inkan", "kanditioned", "pykan", "flashkan", "linear"],
                  modes=["forward", "forward+backward"],
                  skip_impls={}, warmup=25, rep=100, fused_work_limit=None, time_budget_s=None, max_point_s=300),
}

COLUMNS = ["impl", "mode", "grid_size", "density", "n", "in_features", "out_features", "spline_order",
           "median_ms", "q20_ms", "q80_ms", "peak_mib", "status", "note"]


@recorded(PROFILES)
def run(cfg: dict, device="cpu", progress: bool = True):
    """One row per (impl, mode, G); after an OOM the larger grids of that impl are recorded, not tried."""
    dev = sw.check_device(device)
    rows = []
    points = [(impl, mode, g) for impl in cfg["impls"] for mode in cfg["modes"] for g in sorted(cfg["grid_sizes"])]
    dropped: dict[tuple[str, str], int] = {}
    budget, slow = sw.Budget(cfg["time_budget_s"]), sw.SlowGuard(cfg["max_point_s"])
    for impl, mode, g in sw.progress_bar(points, progress=progress, desc="grid scaling"):
        base = dict(impl=impl, mode=mode, grid_size=g, density=prob.basis_density(g, cfg["spline_order"]),
                    n=cfg["n"], in_features=cfg["in_features"], out_features=cfg["out_features"],
                    spline_order=cfg["spline_order"])
        if impl in cfg["skip_impls"]:
            rows.append(dict(base, **guard.EMPTY, status=S.SKIPPED, note=cfg["skip_impls"][impl]))
            continue
        if (impl, mode) in dropped:
            rows.append(dict(base, **guard.EMPTY, status=S.OOM, note=f"not tried: OOM at G={dropped[impl, mode]}"))
            continue
        res = sw.capped(budget, slow, (impl, mode), f"G={g}", lambda: guard.layer_point(
            impl, mode, n=cfg["n"], in_features=cfg["in_features"], out_features=cfg["out_features"], grid_size=g,
            spline_order=cfg["spline_order"], device=dev, warmup=cfg["warmup"], rep=cfg["rep"],
            fused_work_limit=cfg["fused_work_limit"]))
        if res["status"] == S.OOM:
            dropped[impl, mode] = g
        rows.append(dict(base, **res))
    return sw.finish(rows, COLUMNS)


def headline(df, mode: str = "forward+backward"):
    """Time (ms) per implementation and G for one mode; cells that did not run show their status."""
    sub = df[df["mode"] == mode] if mode in set(df["mode"]) else df
    return viz.status_pivot(sub, "grid_size", "impl", "median_ms").rename_axis("G")


def explorer(df):
    """The book's grid-size explorer over this sweep: time per implementation at each G, against ``reference``.

    The pass selector lists the passes the table holds (forward, forward+backward).
    """
    from ..book.explorer import Explorer

    sub = df.copy()
    sub["G"] = sub["grid_size"].astype(int)
    if "density" not in sub.columns or sub["density"].isna().any():
        sub["density"] = (sub["spline_order"] + 1) / (sub["G"] + sub["spline_order"])
    return Explorer(sub, title="Grid scaling: time per call (ms) of each implementation", x="G", y="median_ms",
                    series="impl", facet="mode",
                    baseline="reference" if "reference" in set(sub["impl"]) else None)


@page_figure
def plot(df):
    """Time (top) and peak memory (bottom) against G, log-log; one line per implementation, dashed for forward only."""
    fig, axes = panels(2, height=3.4)
    ok = sw.ok_rows(df)
    n, i, o = (df[c].iloc[0] for c in ("n", "in_features", "out_features")) if len(df) else (0, 0, 0)
    for (impl, mode), grp in ok.groupby(["impl", "mode"], sort=False):
        grp = grp.sort_values("grid_size")
        style = dict(viz.STYLE.get(impl, {}), linestyle="--" if mode == "forward" else "-")
        label = f"{impl} ({mode})" if df["mode"].nunique() > 1 else impl
        axes[0].plot(grp["grid_size"], grp["median_ms"], label=label, **style)
        axes[0].fill_between(grp["grid_size"], grp["q20_ms"], grp["q80_ms"], color=style.get("color"), alpha=0.12)
        if grp["peak_mib"].notna().any():
            axes[1].plot(grp["grid_size"], grp["peak_mib"], label=label, **style)
    # Mark where an implementation dropped out.
    for impl, grp in df[df["status"] == S.OOM].groupby("impl"):
        g0 = grp["grid_size"].min()
        for ax in axes:
            ax.axvline(g0, color=viz.STYLE.get(impl, {}).get("color", "k"), alpha=0.4, linestyle=":")
    for ax in axes:
        ax.set_xscale("log")
        viz.plain_ticks(ax)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_yscale("log")
    axes[0].set_xlabel("grid size G (intervals)")
    axes[0].set_ylabel("time per call (ms)")
    axes[0].set_title(f"time vs G (N={n}, {i}→{o}; band: q20–q80 of the repetitions)")
    axes[1].set_title("peak extra memory vs G")
    axes[1].set_ylabel("peak extra memory (MiB)")
    axes[1].set_xlabel(with_note("grid size G (intervals)", not_run(df, ["impl"])))
    if ok["peak_mib"].notna().any():
        axes[1].set_yscale("log")
    else:
        axes[1].text(0.5, 0.5, "peak memory is not measured on CPU", ha="center", va="center",
                     transform=axes[1].transAxes)
    if not ok.empty:
        axes[0].legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return fig


def _peers_vs_fused(t) -> str:
    """Which other implementation beat the fused path where, point by point (ratio range in brackets)."""
    if "fused" not in t.columns:
        return "the fused path did not run"
    parts = []
    for impl in [c for c in t.columns if c != "fused"]:
        both = t[["fused", impl]].dropna()
        won = {g: bool(r[impl] < r["fused"]) for g, r in both.iterrows()}
        if not any(won.values()):
            continue
        ratios = [r["fused"] / r[impl] for g, r in both.iterrows() if won[g]]
        parts.append(f"{impl} {where_wins(won, 'G')} (by {min(ratios):.2f}–{max(ratios):.2f}×)"
                     if len(ratios) > 1 else f"{impl} {where_wins(won, 'G')} (by {ratios[0]:.2f}×)")
    if not parts:
        return "No other implementation was faster than the fused path at any G measured"
    return "The fused path is not the fastest layer at this shape: faster than it were " + joined(parts)


def _not_run(df) -> str:
    """Implementations that were not measured at any G, with the table's reason."""
    out = []
    for impl, rows in df.groupby("impl", sort=True):
        if not (rows["status"] == S.OK).any():
            note = rows["note"].dropna().astype(str)
            out.append(f"{impl} ({rows['status'].iloc[0]}: {note.iloc[0]})" if len(note) else
                       f"{impl} ({rows['status'].iloc[0]})")
    return ("not measured at any G in this run: " + "; ".join(out)) if out else "every implementation was measured"


def verdict_numbers(df) -> dict:
    """The chapter's verdict: growth of time and memory from the smallest to the largest G, per implementation."""
    nan = float("nan")
    mode = "forward+backward" if "forward+backward" in set(df["mode"]) else (df["mode"].iloc[0] if len(df) else "")
    ok = sw.ok_rows(df[df["mode"] == mode])
    t = ok.pivot_table(index="grid_size", columns="impl", values="median_ms")
    m = ok.pivot_table(index="grid_size", columns="impl", values="peak_mib")
    out = dict(gs_g_lo=nan, gs_g_hi=nan, gs_fused_growth=nan, gs_ref_growth=nan, gs_fused_ms_hi=nan,
               gs_ref_ms_hi=nan, gs_fused_mib_hi=nan, gs_speedup_hi=nan, gs_mem_ratio_hi=nan)
    fastest_hi, fastest_ms, lowest_mem = "—", nan, "—"
    if "fused" in t.columns and t["fused"].notna().sum() >= 2:
        f = t["fused"].dropna()
        g0, g1 = f.index.min(), f.index.max()
        out.update(gs_g_lo=g0, gs_g_hi=g1, gs_fused_growth=f[g1] / f[g0], gs_fused_ms_hi=f[g1])
        if "reference" in t.columns:
            r = t["reference"]
            if r.get(g0) == r.get(g0) and r.get(g1) == r.get(g1):
                out.update(gs_ref_growth=r[g1] / r[g0], gs_ref_ms_hi=r[g1], gs_speedup_hi=r[g1] / f[g1])
            if "fused" in m.columns and "reference" in m.columns and g1 in m.index:
                out["gs_fused_mib_hi"] = m.loc[g1, "fused"]
                out["gs_mem_ratio_hi"] = m.loc[g1, "reference"] / m.loc[g1, "fused"]
        row = t.loc[g1].dropna()
        if len(row):
            fastest_hi, fastest_ms = str(row.idxmin()), float(row.min())
        if g1 in m.index and m.loc[g1].notna().any():
            lowest_mem = str(m.loc[g1].dropna().idxmin())
    out["gs_mode"] = mode
    out["gs_fastest_hi"] = fastest_hi
    out["gs_fastest_ms_hi"] = fastest_ms
    out["gs_lowest_mem_hi"] = lowest_mem
    out["gs_cmp_hi"] = faster(out["gs_speedup_hi"], "the reference")
    out["gs_mem_hi"] = less(out["gs_mem_ratio_hi"], "memory", "the reference")
    out["gs_growth_text"] = times(out["gs_fused_growth"])
    out["gs_ref_growth_text"] = times(out["gs_ref_growth"])
    out["gs_flat"] = flat_in_g(out["gs_fused_growth"], out["gs_ref_growth"], "time")
    mem_growth = nan
    if "fused" in m.columns and m["fused"].notna().sum() >= 2:
        fm = m["fused"].dropna()
        mem_growth = fm[fm.index.max()] / fm[fm.index.min()]
    out["gs_fused_mem_growth"] = mem_growth
    out["gs_mem_flat"] = flat_in_g(mem_growth, nan, "peak memory")
    out["gs_peers_text"] = _peers_vs_fused(t)
    out["gs_not_run_text"] = _not_run(df)
    out["gs_fastest_text"] = ("the fused path itself" if fastest_hi == "fused" else
                              f"{fastest_hi} ({fastest_ms:.3g} ms against fused's {out['gs_fused_ms_hi']:.3g} ms): "
                              "on this shape the fused path is not the fastest layer" if fastest_hi != "—" else "—")
    out["gs_lowest_mem_text"] = ("the fused path" if lowest_mem == "fused" else
                                 f"{lowest_mem}, not the fused path" if lowest_mem != "—" else
                                 "not measured (no peak memory on CPU)")
    dropped = sorted(set(df[df["status"] == S.OOM]["impl"]))
    out["gs_oom"] = ", ".join(dropped) if dropped else "none"
    ref_mib = m.loc[out["gs_g_hi"], "reference"] if "reference" in m.columns and out["gs_g_hi"] in m.index else nan
    out["gs_oom_text"] = (", ".join(dropped) if dropped else
                          "none, so the out-of-memory part of the claim is not reached in this sweep"
                          + (f" (the reference peaked at {ref_mib:,.0f} MiB at G = {out['gs_g_hi']:g})"
                             if ref_mib == ref_mib else ""))
    return out
