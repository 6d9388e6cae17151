"""MatrixKAN comparison: three ways to evaluate the same B-spline bases, by spline degree.

Why: MatrixKAN replaces the Cox–de Boor recursion by one small matrix product
``[1, u, …, u^k] · M_k`` on a uniform grid. Whether that pays off depends on
what is produced: the dense ``[N, in, G+k]`` tensor (as MatrixKAN and every
peer do) or only the ``k+1`` active values (what the sparse and fused paths
consume). Methods:

* ``cox-de-boor`` — the full recursion over all G+k bases (efficient-kan's);
* ``power-dense`` — MatrixKAN: power basis times ``M_k``, scattered to all G+k bases;
* ``local`` — the same matrix form evaluated only for the k+1 active bases
  (``sparsefuse.basis.bspline.uniform_local``).

Each is timed forward and forward+backward (gradient to x), with its peak
memory, and its float32 error against a float64 Cox–de Boor.
"""
from __future__ import annotations

import torch

from sparsefuse.grid import uniform_grid
from . import _guard as guard
from . import _plotting as viz
from . import _sweep as sw
from . import recorded
from ._page import legend_on_top, log_ticks, not_run, page_figure, panels
from ..words import faster, joined, where_wins

NAME = "matrixkan"

METHODS = ("cox-de-boor", "power-dense", "local")

PROFILES = {
    "smoke": dict(degrees=[1, 2, 3, 5], n=256, in_features=16, grid_size=10, modes=["forward", "forward+backward"],
                  warmup=1, rep=3, time_budget_s=None),
    "quick": dict(degrees=[1, 2, 3, 4, 5, 7], n=8192, in_features=256, grid_size=20,
                  modes=["forward", "forward+backward"], warmup=5, rep=20, time_budget_s=60),
    "paper": dict(degrees=[1, 2, 3, 4, 5, 6, 7, 9], n=16384, in_features=512, grid_size=50,
                  modes=["forward", "forward+backward"], warmup=25, rep=100, time_budget_s=None),
}

COLUMNS = ["method", "degree", "mode", "n", "in_features", "grid_size", "values_per_input",
           "median_ms", "q20_ms", "q80_ms", "peak_mib", "max_abs_err", "status", "note"]


def evaluator(method: str):
    """``f(x, grid, k) -> tensor`` for one method; ``local`` returns only the k+1 values (indices are integers)."""
    from sparsefuse.basis import bspline, power

    if method == "cox-de-boor":
        return bspline.cox_de_boor
    if method == "power-dense":
        return power.evaluate
    if method == "local":
        return lambda x, grid, k: bspline.uniform_local(x, grid, k)[1]
    raise ValueError(f"method must be one of {METHODS}, got {method!r}")


def max_error(method: str, k: int, grid_size: int, n: int = 4096) -> float:
    """Largest |float32 value − float64 Cox–de Boor| over inputs covering the whole extended grid."""
    from sparsefuse.basis import bspline

    grid64 = uniform_grid(1, grid_size, k, (-1.0, 1.0), dtype=torch.float64)
    lo, hi = grid64[0, 0].item(), grid64[0, -1].item()
    x64 = torch.linspace(lo, hi, n + 1, dtype=torch.float64)[:-1].unsqueeze(1)
    ref = bspline.cox_de_boor(x64, grid64, k)
    x32, grid32 = x64.float(), grid64.float()
    if method == "local":
        first, vals = bspline.uniform_local(x32, grid32, k)
        got = bspline.scatter_dense(first, vals, grid_size + k).double()
    else:
        got = evaluator(method)(x32, grid32, k).double()
    return (got - ref).abs().max().item()


def _step(method, mode, x, grid, k):
    fn = evaluator(method)
    if mode == "forward":
        def step():
            with torch.no_grad():
                return fn(x, grid, k)
        return step
    xg = x.detach().clone().requires_grad_(True)
    w = torch.randn_like(fn(x, grid, k))  # a fixed cotangent so the whole output is used

    def step():
        xg.grad = None
        (fn(xg, grid, k) * w).sum().backward()
    return step


@recorded(PROFILES)
def run(cfg: dict, device="cpu", progress: bool = True):
    """One row per (method, degree, mode)."""
    dev = sw.check_device(device)
    jobs = [(m, k, mode) for k in cfg["degrees"] for m in METHODS for mode in cfg["modes"]]
    errors: dict[tuple[str, int], float] = {}
    rows = []
    gen = torch.Generator().manual_seed(0)
    budget = sw.Budget(cfg["time_budget_s"])
    for method, k, mode in sw.progress_bar(jobs, progress=progress, desc="MatrixKAN"):
        g = cfg["grid_size"]
        base = dict(method=method, degree=k, mode=mode, n=cfg["n"], in_features=cfg["in_features"], grid_size=g,
                    values_per_input=(k + 1) if method == "local" else g + k)
        if (method, k) not in errors:
            errors[method, k] = max_error(method, k, g)
        if budget.spent():
            rows.append(dict(base, **budget.row(), max_abs_err=errors[method, k]))
            continue
        x, bad = guard.guarded(lambda: (torch.rand(cfg["n"], cfg["in_features"], generator=gen) * 2 - 1).to(dev), dev)
        if bad:
            rows.append(dict(base, **bad, max_abs_err=errors[method, k]))
            continue
        grid = uniform_grid(cfg["in_features"], g, k, (-1.0, 1.0), device=dev)
        step, bad = guard.guarded(lambda: _step(method, mode, x, grid, k), dev)
        res = bad or guard.measure(step, dev, warmup=cfg["warmup"], reps=cfg["rep"])
        rows.append(dict(base, **res, max_abs_err=errors[method, k]))
        del x, grid, step
    return sw.finish(rows, COLUMNS)


def headline(df, mode: str = "forward+backward"):
    """Time (ms) per method and degree for one mode, with the float32 error of each method."""
    sub = df[df["mode"] == mode] if mode in set(df["mode"]) else df
    t = viz.status_pivot(sub, "degree", "method", "median_ms")
    e = sub.drop_duplicates(["method", "degree"]).pivot(index="degree", columns="method", values="max_abs_err")
    t.columns = [f"{c} (ms)" for c in t.columns]
    e.columns = [f"{c} max error" for c in e.columns]
    return t.join(e).rename_axis("degree k")


@page_figure
def plot(df):
    """Time (forward, forward+backward), peak memory and float32 error against spline degree: a 2×2 grid."""
    fig, axes = panels(4, ncols=2, height=2.9)
    style = {"cox-de-boor": dict(color="#7f7f7f", marker="s"), "power-dense": dict(color="#9467bd", marker="o"),
             "local": dict(color="#d62728", marker="*")}
    ok = sw.ok_rows(df)
    for i, mode in enumerate(["forward", "forward+backward"]):
        sub = ok[ok["mode"] == mode]
        for method, grp in sub.groupby("method", sort=False):
            grp = grp.sort_values("degree")
            axes[i].plot(grp["degree"], grp["median_ms"], label=method, **style.get(method, {}))
        axes[i].set_title(f"{mode} time")
        axes[i].set_ylabel("time (ms)")
        axes[i].set_yscale("log")
        log_ticks(axes[i], "y")
    fb = ok[ok["mode"] == "forward+backward"]
    if fb["peak_mib"].notna().any():
        for method, grp in fb.groupby("method", sort=False):
            grp = grp.sort_values("degree")
            axes[2].plot(grp["degree"], grp["peak_mib"], label=method, **style.get(method, {}))
        axes[2].set_yscale("log")
        log_ticks(axes[2], "y")
    else:
        axes[2].text(0.5, 0.5, "peak memory is not\nmeasured on CPU", ha="center", va="center",
                     transform=axes[2].transAxes)
    axes[2].set_title("peak memory, fwd+bwd")
    axes[2].set_ylabel("MiB")
    err = df.drop_duplicates(["method", "degree"])
    for method, grp in err.groupby("method", sort=False):
        grp = grp.sort_values("degree")
        axes[3].plot(grp["degree"], grp["max_abs_err"].clip(lower=1e-12), label=method, **style.get(method, {}))
    axes[3].set_yscale("log")
    axes[3].set_title("float32 error vs float64")
    axes[3].set_ylabel("max |error|")
    for ax in axes:
        ax.grid(True, which="both", alpha=0.3)
    for ax in axes:
        ax.set_xlabel("spline degree k")
    legend_on_top(fig, axes, ncols=3, where="lower")
    if len(df):
        r = df.iloc[0]
        fig.suptitle(f"B-spline basis by degree: N={r['n']}, in={r['in_features']}, G={r['grid_size']}",
                     x=0.02, ha="left")
    note = not_run(df, ["method"])
    if note:
        axes[2].set_xlabel(f"spline degree k\n{note}")
    return fig


ERR_SLACK = 2.0  # "no less accurate": float32 error at most this multiple of the recursion's


def _fastest_everywhere(t) -> str:
    """Was the local form faster than both other methods at every degree?"""
    if "local" not in t.columns:
        return "The local form was not measured."
    others = [c for c in ("cox-de-boor", "power-dense") if c in t.columns]
    won = {k: bool(all(t.loc[k, "local"] < t.loc[k, o] for o in others)) for k in t.index
           if t.loc[k, ["local", *others]].notna().all()}
    if won and all(won.values()):
        return "It was the fastest of the three at every degree measured, as the paper claims."
    return f"It was the fastest of the three {where_wins(won, 'degree')}: the speed claim does not hold at every degree."


def _accuracy_words(ok) -> str:
    """The local form's float32 error against the recursion's, degree by degree (the "no less accurate" claim)."""
    err = ok.pivot_table(index="degree", columns="method", values="max_abs_err")
    if not {"local", "cox-de-boor"} <= set(err.columns):
        return "Its accuracy was not compared with the recursion's."
    ratio = (err["local"] / err["cox-de-boor"]).dropna()
    worse = ratio[ratio > ERR_SLACK]
    if worse.empty:
        return (f"Its float32 error stayed within {ERR_SLACK:g}× the recursion's at every degree "
                f"(at most {ratio.max():.2g}×): no less accurate, as the paper claims.")
    return (f"But it is less accurate: its float32 error was {worse.min():.2g}–{worse.max():.2g}× the recursion's "
            f"at degree{'s' if len(worse) > 1 else ''} {joined(f'{k:g}' for k in worse.index)} (more than {ERR_SLACK:g}× counts as less "
            f"accurate), so the 'no less accurate' part of the claim does not hold; every error stayed below "
            f"{err['local'].max():.2g}.")


def verdict_numbers(df) -> dict:
    """The chapter's verdict: the local matrix form against the recursion and the dense power form, at k=3."""
    nan = float("nan")
    ok = sw.ok_rows(df)
    mode = "forward+backward" if "forward+backward" in set(ok["mode"]) else "forward"
    t = ok[ok["mode"] == mode].pivot_table(index="degree", columns="method", values="median_ms")
    k = 3 if 3 in t.index else (t.index.max() if len(t) else nan)
    out = dict(mk_k=k, mk_mode=mode, mk_local_vs_cdb=nan, mk_local_vs_power=nan, mk_err_max=nan, mk_k_hi=nan,
               mk_local_vs_cdb_hi=nan)
    if len(t) and k == k:
        row = t.loc[k]
        if {"local", "cox-de-boor"} <= set(row.dropna().index):
            out["mk_local_vs_cdb"] = row["cox-de-boor"] / row["local"]
        if {"local", "power-dense"} <= set(row.dropna().index):
            out["mk_local_vs_power"] = row["power-dense"] / row["local"]
        khi = t.index.max()
        out["mk_k_hi"] = khi
        if {"local", "cox-de-boor"} <= set(t.loc[khi].dropna().index):
            out["mk_local_vs_cdb_hi"] = t.loc[khi, "cox-de-boor"] / t.loc[khi, "local"]
    if "max_abs_err" in df.columns and df["max_abs_err"].notna().any():
        out["mk_err_max"] = float(df["max_abs_err"].max())
    out["mk_speed_text"] = _fastest_everywhere(t)
    out["mk_acc_text"] = _accuracy_words(ok)
    out["mk_cmp_cdb"] = faster(out["mk_local_vs_cdb"], "the Cox–de Boor recursion")
    out["mk_cmp_power"] = faster(out["mk_local_vs_power"], "the dense power form")
    out["mk_cmp_cdb_hi"] = faster(out["mk_local_vs_cdb_hi"], "the recursion")
    return out
