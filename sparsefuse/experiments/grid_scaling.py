"""Grid-size scaling: how time and memory of each path grow with G.

Why: every peer materializes an N·in·(G+k) basis, so its cost grows linearly
with G and it runs out of memory first; the sparse and fused paths touch only
k+1 bases per input, so their cost should be nearly flat in G. This sweep shows
where each implementation stands and records the point where it drops out
(OOM rows, and the larger grids skipped after it).
"""
from __future__ import annotations

from . import _common as C

NAME = "grid_scaling"

PROFILES = {
    "smoke": dict(n=64, in_features=8, out_features=8, spline_order=3, grid_sizes=[3, 40],
                  impls=list(C.PATHS) + list(C.PEERS), modes=["forward", "forward+backward"],
                  skip_impls={}, warmup=1, rep=2, fused_work_limit=64 * 8 * 8 * 8, time_budget_s=None,
                  max_point_s=None),
    # Measured on the H100: flashkan recompiles (torch.compile) for every new G, 61 s at G=30,
    # and pykan's layer initialization (a least-squares fit) takes 21 s at G=300. Both stay in
    # the paper profile; quick records them as skipped with that reason.
    "quick": dict(n=4096, in_features=128, out_features=128, spline_order=3,
                  grid_sizes=[3, 10, 30, 100, 300, 1000],
                  impls=list(C.PATHS) + list(C.PEERS), modes=["forward+backward"],
                  skip_impls={"flashkan": "paper profile only: recompiles for every G (about 1 min each)",
                              "pykan": "paper profile only: initialization takes ~20 s per layer at G=300"},
                  warmup=5, rep=20, fused_work_limit=None, time_budget_s=60, max_point_s=15),
    "paper": dict(n=8192, in_features=512, out_features=512, spline_order=3,
                  grid_sizes=[3, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000],
                  impls=list(C.PATHS) + ["inkan", "kanditioned", "pykan", "flashkan", "linear"],
                  modes=["forward", "forward+backward"],
                  skip_impls={}, warmup=25, rep=100, fused_work_limit=None, time_budget_s=None, max_point_s=300),
}

COLUMNS = ["impl", "mode", "grid_size", "density", "n", "in_features", "out_features", "spline_order",
           "median_ms", "q20_ms", "q80_ms", "peak_mib", "status", "note"]


def run(profile: str = "smoke", device="cpu", progress: bool = True, **overrides):
    """One row per (impl, mode, G); after an OOM the larger grids of that impl are recorded, not tried."""
    cfg = C.resolve_profile(PROFILES, profile, overrides)
    dev = C.check_device(device)
    rows = []
    points = [(impl, mode, g) for impl in cfg["impls"] for mode in cfg["modes"] for g in sorted(cfg["grid_sizes"])]
    dropped: dict[tuple[str, str], int] = {}
    budget, slow = C.Budget(cfg["time_budget_s"]), C.SlowGuard(cfg["max_point_s"])
    for impl, mode, g in C.progress_bar(points, progress=progress, desc="grid scaling"):
        base = dict(impl=impl, mode=mode, grid_size=g, density=C.basis_density(g, cfg["spline_order"]),
                    n=cfg["n"], in_features=cfg["in_features"], out_features=cfg["out_features"],
                    spline_order=cfg["spline_order"])
        if impl in cfg["skip_impls"]:
            rows.append(dict(base, **C.EMPTY, status=C.SKIPPED, note=cfg["skip_impls"][impl]))
            continue
        if (impl, mode) in dropped:
            rows.append(dict(base, **C.EMPTY, status=C.OOM, note=f"not tried: OOM at G={dropped[impl, mode]}"))
            continue
        res = C.capped(budget, slow, (impl, mode), f"G={g}", lambda: C.layer_point(
            impl, mode, n=cfg["n"], in_features=cfg["in_features"], out_features=cfg["out_features"], grid_size=g,
            spline_order=cfg["spline_order"], device=dev, warmup=cfg["warmup"], rep=cfg["rep"],
            fused_work_limit=cfg["fused_work_limit"]))
        if res["status"] == C.OOM:
            dropped[impl, mode] = g
        rows.append(dict(base, **res))
    return C.finish(rows, COLUMNS)


def headline(df, mode: str = "forward+backward"):
    """Time (ms) per implementation and G for one mode; cells that did not run show their status."""
    sub = df[df["mode"] == mode] if mode in set(df["mode"]) else df
    return C.status_pivot(sub, "grid_size", "impl", "median_ms")


def plot(df):
    """Time and peak memory against G, log-log; one line per implementation, dashed for forward only."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), constrained_layout=True)
    ok = C.ok_rows(df)
    for (impl, mode), grp in ok.groupby(["impl", "mode"], sort=False):
        grp = grp.sort_values("grid_size")
        style = dict(C.STYLE.get(impl, {}), linestyle="--" if mode == "forward" else "-")
        label = f"{impl} ({mode})" if df["mode"].nunique() > 1 else impl
        axes[0].plot(grp["grid_size"], grp["median_ms"], label=label, **style)
        axes[0].fill_between(grp["grid_size"], grp["q20_ms"], grp["q80_ms"], color=style.get("color"), alpha=0.12)
        if grp["peak_mib"].notna().any():
            axes[1].plot(grp["grid_size"], grp["peak_mib"], label=label, **style)
    # Mark where an implementation dropped out.
    for impl, grp in df[df["status"] == C.OOM].groupby("impl"):
        g0 = grp["grid_size"].min()
        axes[0].axvline(g0, color=C.STYLE.get(impl, {}).get("color", "k"), alpha=0.3, linestyle=":")
    for ax in axes:
        ax.set_xscale("log")
        C.plain_ticks(ax)
        ax.set_xlabel("grid size G (intervals)")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_yscale("log")
    axes[0].set_ylabel("time per call (ms, median; band = q20–q80)")
    axes[0].set_title("time vs G")
    axes[1].set_title("peak extra memory vs G")
    axes[1].set_ylabel("peak extra memory (MiB)")
    if ok["peak_mib"].notna().any():
        axes[1].set_yscale("log")
    else:
        axes[1].text(0.5, 0.5, "peak memory is not measured on CPU", ha="center", va="center",
                     transform=axes[1].transAxes)
    if not ok.empty:
        axes[0].legend(fontsize=7, ncol=2)
    C.annotate_missing(axes[0], df, ["impl"])
    n, i, o = (df[c].iloc[0] for c in ("n", "in_features", "out_features")) if len(df) else (0, 0, 0)
    fig.suptitle(f"Grid-size scaling: N={n}, {i}→{o}, spline order {df['spline_order'].iloc[0] if len(df) else ''}")
    return fig
