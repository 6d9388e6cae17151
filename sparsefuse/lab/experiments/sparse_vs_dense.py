"""Sparse-vs-dense contraction: where does exploiting the B-spline's sparsity start to pay?

Why: the basis matrix ``B [N, in·(G+k)]`` of a KAN layer has density
``(k+1)/(G+k)``: 57 % at G=4, 4 % at G=100 for cubic splines. A dense GEMM wastes
the zeros but runs on tensor cores; generic sparse formats (CSR, BSR) skip them
but pay for indices and irregular access; a padded gather reads a fixed tile of
coefficients per input; the fused kernels either stream the basis chunk by chunk
into cuBLAS (dense) or gather the active coefficients (sparse). Two sweeps locate
the crossover:

* ``spline`` — the real contraction from x, over G (so over the B-spline density):
  every method evaluates the local basis, builds its format and multiplies;
* ``synthetic`` — pre-built random matrices of a chosen density, so only the
  multiply ``B @ table`` is timed: dense GEMM vs CSR vs BSR, and CSR with the
  non-zeros in one contiguous run (B-spline-like) vs scattered.
"""
from __future__ import annotations

import functools

import torch

from sparsefuse import status as S
from . import _guard as guard
from . import _pick as pick
from . import _plotting as viz
from . import _problems as prob
from . import _sweep as sw
from . import check_choices, recorded
from ._page import not_run, page_figure, panels, with_note
from ..words import faster, joined, where_wins

NAME = "sparse_vs_dense"

# Methods of the spline sweep; "fused-dense"/"fused-sparse" force one strategy of the fused kernel.
SPLINE_METHODS = ("dense", "gather", "fused", "fused-dense", "fused-sparse", "padded", "csr", "bsr")
SYNTHETIC_METHODS = ("dense", "csr", "csr-scattered", "bsr")
# Autograd through torch.sparse CSR/BSR products is not supported by sparse_formats.
NO_BACKWARD = ("csr", "bsr")

PROFILES = {
    "smoke": dict(n=32, in_features=4, out_features=8, spline_order=3, grid_sizes=[3, 20],
                  methods=list(SPLINE_METHODS), padded_tile=8, bsr_block=4, modes=["forward"],
                  synthetic_rows=64, synthetic_cols=256, synthetic_out=32, densities=[0.02, 0.2, 1.0],
                  synthetic_bsr_max_nnz=None, warmup=1, rep=2, fused_work_limit=32 * 4 * 8 * 24,
                  time_budget_s=None, max_point_s=None, max_call_ms=None),
    # Measured on the H100: converting CSR to BSR (a CPU-only kernel in torch) costs 0.16 s per
    # call at G=1 and 1.2 s at G=10, so max_call_ms drops BSR after its first slow points, and
    # the synthetic BSR matrix is only built up to synthetic_bsr_max_nnz non-zeros.
    "quick": dict(n=4096, in_features=128, out_features=128, spline_order=3,
                  grid_sizes=[1, 3, 10, 30, 100, 300],
                  methods=list(SPLINE_METHODS), padded_tile=8, bsr_block=4, modes=["forward"],
                  synthetic_rows=4096, synthetic_cols=8192, synthetic_out=128,
                  densities=[0.001, 0.01, 0.1, 0.5, 1.0], synthetic_bsr_max_nnz=1_000_000,
                  warmup=5, rep=20, fused_work_limit=None, time_budget_s=70, max_point_s=10, max_call_ms=200),
    "paper": dict(n=8192, in_features=512, out_features=512, spline_order=3,
                  grid_sizes=[1, 2, 3, 5, 8, 10, 15, 20, 30, 50, 70, 100, 150, 200, 500, 1000],
                  methods=list(SPLINE_METHODS), padded_tile=8, bsr_block=4, modes=["forward", "forward+backward"],
                  synthetic_rows=8192, synthetic_cols=32768, synthetic_out=512,
                  densities=[0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0],
                  synthetic_bsr_max_nnz=20_000_000, warmup=25, rep=100, fused_work_limit=None,
                  time_budget_s=None, max_point_s=120, max_call_ms=5000),
}

COLUMNS = ["sweep", "method", "mode", "grid_size", "density", "n", "in_features", "out_features", "spline_order",
           "median_ms", "q20_ms", "q80_ms", "peak_mib", "status", "note"]


def spline_method(method: str, device, *, padded_tile: int = 8, bsr_block: int = 4):
    """``f(x, grid, coeff, k) -> y`` for one method of the spline sweep (``Unavailable`` if it cannot run)."""
    from sparsefuse.lab import sparse_formats as SF

    if method in ("dense", "csr"):
        return SF.CONTRACTIONS[method]
    if method == "bsr":
        return functools.partial(SF.contract_bsr, blocksize=bsr_block)
    if method == "padded":
        return functools.partial(SF.contract_padded, tile=padded_tile)
    if method == "gather":
        return pick.contract_path("sparse", device)
    if method.startswith("fused"):
        fused = pick.contract_path("fused", device)
        if method == "fused":
            return fused
        from sparsefuse.kernels import force_strategy
        strategy = method.split("-")[1]

        def forced(x, grid, coeff, k):
            with force_strategy(strategy):
                return fused(x, grid, coeff, k)
        return forced
    raise ValueError(f"method must be one of {SPLINE_METHODS}, got {method!r}")


def _spline_point(cfg, method, mode, g, dev) -> dict:
    k = cfg["spline_order"]
    if mode == "forward+backward" and method in NO_BACKWARD:
        return dict(guard.EMPTY, status=S.UNSUPPORTED, note="no autograd through torch.sparse CSR/BSR products")
    if method == "padded" and cfg["padded_tile"] < k + 1:
        return dict(guard.EMPTY, status=S.UNSUPPORTED, note=f"tile {cfg['padded_tile']} < k+1")
    if method.startswith("fused") and cfg["fused_work_limit"] is not None:
        work = prob.fused_work(cfg["n"], cfg["in_features"], cfg["out_features"], g, k)
        ok, why = pick.interpreter_budget_ok(dev, work, cfg["fused_work_limit"])
        if not ok:
            return dict(guard.EMPTY, status=S.SKIPPED, note=why)
    fn, bad = guard.guarded(lambda: spline_method(method, dev, padded_tile=cfg["padded_tile"],
                                              bsr_block=cfg["bsr_block"]), dev)
    if bad:
        return bad
    problem, bad = guard.guarded(lambda: prob.make_problem(cfg["n"], cfg["in_features"], cfg["out_features"], g, k,
                                                           device=dev, requires_grad=mode != "forward"), dev)
    if bad:
        return bad
    x, grid, coeff = problem
    if mode == "forward":
        def step():
            with torch.no_grad():
                return fn(x, grid, coeff, k)
    else:
        def step():
            x.grad = coeff.grad = None
            fn(x, grid, coeff, k).sum().backward()
    return guard.measure(step, dev, warmup=cfg["warmup"], reps=cfg["rep"])


def _synthetic_point(cfg, method, density, dev) -> dict:
    from sparsefuse.lab import sparse_formats as SF

    rows, cols, out = cfg["synthetic_rows"], cfg["synthetic_cols"], cfg["synthetic_out"]
    nnz = rows * max(1, round(density * cols))
    if method == "bsr" and cfg["synthetic_bsr_max_nnz"] is not None and nnz > cfg["synthetic_bsr_max_nnz"]:
        return dict(guard.EMPTY, status=S.SKIPPED,
                    note=f"not built: {nnz} non-zeros > synthetic_bsr_max_nnz (CSR→BSR conversion runs on the CPU)")

    def build():
        layout = "dense" if method == "dense" else "csr"
        m = SF.synthetic_sparse(rows, cols, density, structured=method != "csr-scattered", layout=layout,
                                device=dev)
        if method == "bsr":
            b = cfg["bsr_block"]
            if rows % b or cols % b:
                raise S.Unavailable(S.UNSUPPORTED, f"BSR needs sizes divisible by {b}")
            m = SF.to_bsr(m, b)
        table = torch.randn(cols, out, generator=torch.Generator().manual_seed(1)).to(dev)
        return m, table

    built, bad = guard.guarded(build, dev)
    if bad:
        return bad
    m, table = built
    op = (lambda: m @ table) if method in ("dense", "bsr") else (lambda: torch.sparse.mm(m, table))

    def step():
        with torch.no_grad():
            return op()
    return guard.measure(step, dev, warmup=cfg["warmup"], reps=cfg["rep"])


@recorded(PROFILES)
def run(cfg: dict, device="cpu", progress: bool = True):
    """Rows of sweep ``spline`` (method × mode × G) and ``synthetic`` (method × density, forward)."""
    dev = sw.check_device(device)
    check_choices(cfg, "methods", SPLINE_METHODS)
    k = cfg["spline_order"]
    jobs = [("spline", m, mode, g) for m in cfg["methods"] for mode in cfg["modes"] for g in cfg["grid_sizes"]]
    jobs += [("synthetic", m, "forward", d) for m in SYNTHETIC_METHODS for d in cfg["densities"]]
    rows = []
    budget, slow = sw.Budget(cfg["time_budget_s"]), sw.SlowGuard(cfg["max_point_s"], cfg["max_call_ms"])
    for sweep, method, mode, v in sw.progress_bar(jobs, progress=progress, desc="sparse vs dense"):
        if sweep == "spline":
            base = dict(sweep=sweep, method=method, mode=mode, grid_size=v, density=prob.basis_density(v, k),
                        n=cfg["n"], in_features=cfg["in_features"], out_features=cfg["out_features"],
                        spline_order=k)
            res = sw.capped(budget, slow, (sweep, method, mode), f"G={v}",
                           lambda: _spline_point(cfg, method, mode, v, dev))
        else:
            base = dict(sweep=sweep, method=method, mode=mode, grid_size=float("nan"), density=v,
                        n=cfg["synthetic_rows"], in_features=cfg["synthetic_cols"],
                        out_features=cfg["synthetic_out"], spline_order=float("nan"))
            res = sw.capped(budget, slow, (sweep, method), f"density {v}",
                           lambda: _synthetic_point(cfg, method, v, dev))
        rows.append(dict(base, **res))
    return sw.finish(rows, COLUMNS)


def wins(df, fast: str, slow: str = "dense", sweep: str = "spline", mode: str = "forward",
         by: str = "grid_size") -> dict:
    """``{point: fast beat slow}`` at each ``by`` point where both ran (a point-by-point list, not a
    crossover: on a real GPU the winner can change more than once along the sweep)."""
    sub = sw.ok_rows(df[(df["sweep"] == sweep) & (df["mode"] == mode)])
    a = sub[sub["method"] == fast].groupby(by)["median_ms"].min()
    b = sub[sub["method"] == slow].groupby(by)["median_ms"].min()
    both = a.to_frame("fast").join(b.to_frame("slow"), how="inner")
    return {float(p): bool(r.fast < r.slow) for p, r in both.iterrows()}


def headline(df, mode: str = "forward"):
    """Spline sweep: time (ms) per method and G for one mode, plus the grid sizes where each method beat dense."""
    sub = df[(df["sweep"] == "spline") & (df["mode"] == mode)]
    t = viz.status_pivot(sub, "grid_size", "method", "median_ms")
    t.index = [f"G={int(g)} (density {prob.basis_density(int(g), int(sub['spline_order'].iloc[0])):.3f})"
               for g in t.index] if len(sub) else t.index
    row = []
    for m in t.columns:
        w = {} if m == "dense" else wins(df, m, mode=mode)
        row.append("—" if m == "dense" else
                   ("every G" if w and all(w.values()) else
                    ", ".join(f"{g:g}" for g, won in sorted(w.items()) if won) or "none"))
    t.loc["G where it beat dense"] = row
    t.index.name = "grid size (basis density)"
    return t


@page_figure
def plot(df):
    """Crossover plots, one panel each: the spline sweep per mode (time vs density) and the synthetic SpMM sweep."""
    import matplotlib

    modes = [m for m in ("forward", "forward+backward") if m in set(df[df["sweep"] == "spline"]["mode"])]
    fig, axes = panels(len(modes) + 1, height=3.4)
    ok = sw.ok_rows(df)
    for ax in axes:
        ax.set_xscale("log")
        ax.set_yscale("log")
    for ax, mode in zip(axes, modes):
        sub = ok[(ok["sweep"] == "spline") & (ok["mode"] == mode)]
        for method, grp in sub.groupby("method", sort=False):
            grp = grp.sort_values("density")
            style = dict(viz.STYLE.get(method.split("-")[0] if method.startswith("fused-") else method, {}))
            if method == "gather":
                style = dict(viz.STYLE["sparse"])
            ls = {"fused-dense": "--", "fused-sparse": ":"}.get(method, "-")
            ax.plot(grp["density"], grp["median_ms"], label=method, linestyle=ls, **style)
        ax.set_title(f"spline contraction from x, {mode}: below dense = sparsity pays")
        ax.set_xlabel(with_note("basis density (k+1)/(G+k)   (← larger G)",
                                not_run(df[(df["sweep"] == "spline") & (df["mode"] == mode)], ["method"])))
        ax.set_ylabel("time per call (ms)")
        sec = ax.secondary_xaxis("top", functions=(_density_to_g(df), _g_to_density(df)))
        gs = sorted({int(g) for g in sub["grid_size"].dropna()})
        sec.set_xticks(gs, [str(g) for g in gs])
        sec.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        sec.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        sec.set_xlabel("grid size G")
    ax = axes[-1]
    sub = ok[ok["sweep"] == "synthetic"]
    syn_style = {"dense": viz.STYLE["dense"], "csr": viz.STYLE["csr"], "bsr": viz.STYLE["bsr"],
                 "csr-scattered": dict(color="#9467bd", marker="x")}
    for method, grp in sub.groupby("method", sort=False):
        grp = grp.sort_values("density")
        ax.plot(grp["density"], grp["median_ms"], label=method, linestyle="--" if "scattered" in method else "-",
                **syn_style.get(method, {}))
    syn = df[df["sweep"] == "synthetic"]
    if len(syn):
        r = syn.iloc[0]
        ax.set_title(f"synthetic SpMM [{int(r['n'])}×{int(r['in_features'])}] @ [{int(r['in_features'])}×"
                     f"{int(r['out_features'])}], B pre-built")
    ax.set_xlabel(with_note("density of B", not_run(syn, ["method"])))
    ax.set_ylabel("time of the multiply (ms)")
    for ax in axes:
        ax.grid(True, which="both", alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return fig


def _k(df) -> int:
    s = df[df["sweep"] == "spline"]["spline_order"]
    return int(s.iloc[0]) if len(s) else 3


def _density_to_g(df):
    k = _k(df)
    import numpy as np
    return lambda d: (k + 1) / np.clip(d, 1e-9, None) - k


def _g_to_density(df):
    k = _k(df)
    import numpy as np
    return lambda g: (k + 1) / np.clip(np.asarray(g, dtype=float) + k, 1e-9, None)


def explorer(df, mode: str | None = None):
    """The book's grid × density explorer over the spline sweep (slider on G or on density)."""
    from sparsefuse.lab.book.explorer import Explorer

    sub = df[df["sweep"] == "spline"].copy()
    # the explorer labels its slider "grid size <x column>": name the column G, as the text does
    sub["G"] = sub["grid_size"].astype(int)
    if mode is not None:
        sub = sub[sub["mode"] == mode]
    return Explorer(sub, title="Sparse vs dense contraction (time per call, ms)", x="G", y="median_ms",
                    series="method", facet="mode", baseline="dense" if "dense" in set(sub["method"]) else None)



AUTO_SLACK = 1.15  # the automatic choice "found" the faster strategy when within 15% of its time


def verdict_numbers(df) -> dict:
    """The chapter's verdict: where sparsity pays against the dense GEMM, and what the fused kernel chose."""
    ok = sw.ok_rows(df[(df["sweep"] == "spline") & (df["mode"] == "forward")])
    t = ok.pivot_table(index="grid_size", columns="method", values="median_ms")
    nan = float("nan")
    out = dict(sd_g_lo=nan, sd_g_hi=nan, sd_fused_vs_dense_lo=nan, sd_fused_vs_dense_hi=nan, sd_auto_gap=nan,
               sd_auto_text="was not measured against the forced strategies")
    if {"fused", "dense"} <= set(t.columns):
        both = t[["fused", "dense"]].dropna()
        if len(both):
            g0, g1 = both.index.min(), both.index.max()
            out.update(sd_g_lo=g0, sd_g_hi=g1, sd_fused_vs_dense_lo=both.loc[g0, "dense"] / both.loc[g0, "fused"],
                       sd_fused_vs_dense_hi=both.loc[g1, "dense"] / both.loc[g1, "fused"])
    if {"fused", "fused-dense", "fused-sparse"} <= set(t.columns):
        forced = t[["fused-dense", "fused-sparse"]]
        gap = (t["fused"] / forced.min(axis=1)).dropna()
        if len(gap):
            worst = gap.idxmax()
            out["sd_auto_gap"] = gap.max()
            missed = [f"{g:g}" for g, v in gap.items() if v > AUTO_SLACK]
            both_slower = [f"{g:g}" for g in gap.index if t.loc[g, "fused"] > forced.loc[g].max()]
            if not missed:
                out["sd_auto_text"] = (f"was within {AUTO_SLACK - 1:.0%} of the faster forced strategy at every G "
                                       f"(at worst {gap.max():.2f}×), as the paper claims")
            else:
                worst_words = f"at worst {gap.max():.2f}× the faster one's time, at G = {worst:g}"
                if both_slower == missed:
                    what = f"was slower than both forced strategies at G = {joined(missed)} ({worst_words})"
                else:
                    what = (f"took more than {AUTO_SLACK:.2f}× the faster forced strategy's time at "
                            f"G = {joined(missed)} ({worst_words})"
                            + (f", and was slower than both at G = {joined(both_slower)}" if both_slower else ""))
                out["sd_auto_text"] = (what + ": the claim that it finds the faster strategy at every grid size "
                                       "does not hold in this run")
    out["sd_cmp_lo"] = faster(out["sd_fused_vs_dense_lo"], "the dense GEMM")
    out["sd_cmp_hi"] = faster(out["sd_fused_vs_dense_hi"], "the dense GEMM")
    out["sd_gather_text"] = "beat the dense GEMM " + where_wins(wins(df, "gather"), "G")
    out["sd_csr_text"] = "beat the dense GEMM " + where_wins(wins(df, "csr"), "G")
    out["sd_syn_text"] = "beat the dense GEMM " + where_wins(wins(df, "csr", sweep="synthetic", by="density"),
                                                             "density", "{:.3g}")
    out["sd_modes"] = " and ".join(sorted(set(df[df["sweep"] == "spline"]["mode"]))) or "no pass"
    return out
