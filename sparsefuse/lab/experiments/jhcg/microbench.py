"""JHCG module-boundary microbenchmark: what one feed-forward block costs, JHCG against the MLP and KAN FFNs.

Why at the module boundary: a Transformer sees the FFN as one call ``(N, d) -> (N, d)``,
so the fair comparison times that call, with everything the block does inside it
(the merged input GEMM, both paths, the gate), not the KAN layer alone. Every block
runs at the same model width ``d``, hidden width ``h = mult * d``, token count ``N``
and grid size ``G``; JHCG runs for both variants and every ``rho``. Each is timed
forward (no gradients) and forward+backward, eagerly and under ``torch.compile``,
with its KAN path on ``impl="auto"`` (the fused kernels on CUDA) and on the
``reference`` (efficient-kan) path. The blocks stay in training mode: the cached
inference path has its own experiment (:mod:`.fastpath`).
"""
from __future__ import annotations

import math

import torch

from sparsefuse import jhcg as J
from sparsefuse.lab.models.ffn import KANFFN, MLPFFN

from sparsefuse import status as S
from .. import _guard as guard
from . import words as W
from .. import _plotting as viz
from .._page import legend_on_top, log_ticks, page_figure, panels
from .. import _sweep as sw
from .. import check_choices, recorded
from ..compile_checkpoint import compile_and_count
from ...words import faster, less

NAME = "jhcg_microbench"

PASSES = ("forward", "forward+backward")
MODES = ("eager", "compiled")

PROFILES = {
    # CPU, seconds: proves every code path (aot_eager traces like inductor without generating code).
    "smoke": dict(d=16, mult=4, tokens=64, grid_size=5, variants=list(J.VARIANTS), rhos=[0.25, 1.0],
                  impls=["auto", "reference"], modes=list(MODES), compile_modules=["mlp", "jhcg-expanded-0.25"],
                  compile_impls=["auto"], backend="aot_eager", warmup=3, rep=5, time_budget_s=None),
    # One H200: the full rho sweep eagerly; inductor compiles (~5-10 s each) for rho = 0.25 and the baselines.
    "quick": dict(d=512, mult=4, tokens=8192, grid_size=5, variants=list(J.VARIANTS), rhos=[0.125, 0.25, 0.5, 1.0],
                  impls=["auto", "reference"], modes=list(MODES),
                  compile_modules=["mlp", "kan", "jhcg-compact-0.25", "jhcg-expanded-0.25"], compile_impls=["auto"],
                  backend="inductor", warmup=10, rep=50, time_budget_s=150),
    "paper": dict(d=768, mult=4, tokens=16384, grid_size=5, variants=list(J.VARIANTS),
                  rhos=[0.125, 0.25, 0.5, 1.0], impls=["auto", "reference"], modes=list(MODES),
                  compile_modules=None, compile_impls=["auto", "reference"], backend="inductor",
                  warmup=25, rep=100, time_budget_s=None),
}

COLUMNS = ["module", "label", "family", "variant", "rho", "impl", "resolved_impl", "mode", "pass", "d", "hidden",
           "tokens", "grid_size", "params", "median_ms", "q20_ms", "q80_ms", "peak_mib", "compile_s",
           "graph_breaks", "status", "note"]


def modules(cfg) -> list[str]:
    """Block names in table order: the two baselines, then JHCG per variant and rho."""
    return ["mlp", "kan"] + [f"jhcg-{v}-{r:g}" for v in cfg["variants"] for r in cfg["rhos"]]


def describe(module: str) -> dict:
    if module in ("mlp", "kan"):
        return dict(label=f"{module.upper()} FFN", family=module, variant="", rho=float("nan"))
    _, variant, rho = module.split("-")
    return dict(label=f"JHCG {variant} ρ={float(rho):g}", family="jhcg", variant=variant, rho=float(rho))


def build(module: str, impl: str, cfg: dict, device) -> torch.nn.Module:
    """One FFN block of the sweep, on ``device``; seeded so every run times the same weights."""
    torch.manual_seed(0)
    d, h, g = cfg["d"], cfg["mult"] * cfg["d"], cfg["grid_size"]
    info = describe(module)
    if module == "mlp":
        block = MLPFFN(d, h)
    elif module == "kan":
        block = KANFFN(d, h, grid_size=g, impl=impl)
    else:
        block = J.SparseFuseJHCG(d, info["rho"], g, info["variant"], hidden=h, impl=impl)
    return block.to(device)


def resolved_impl(block, device, needs_grad: bool) -> str:
    """The path the block's first KAN layer takes for this pass (``auto`` resolved), ``-`` for the MLP."""
    for m in block.modules():
        if hasattr(m, "resolve_impl") and hasattr(m, "in_features"):
            with torch.set_grad_enabled(needs_grad):
                return m.resolve_impl(torch.zeros(1, m.in_features, device=device))
    return "-"


def plan(cfg) -> list[tuple[str, str, str, str]]:
    """(module, impl, mode, pass) points; eager first, so a spent time budget cuts compiled points first.

    ``compile_modules`` (None: all) and ``compile_impls`` limit the compiled points: each costs a compile.
    """
    check_choices(cfg, "variants", J.VARIANTS)
    check_choices(cfg, "impls", ("auto", "reference", "dense", "sparse", "fused"))
    check_choices(cfg, "modes", MODES)
    points = []
    for mode in [m for m in MODES if m in cfg["modes"]]:
        for module in modules(cfg):
            if mode == "compiled" and cfg["compile_modules"] is not None and module not in cfg["compile_modules"]:
                continue
            impls = ["-"] if module == "mlp" else [
                i for i in cfg["impls"] if mode == "eager" or i in cfg["compile_impls"]]
            points += [(module, impl, mode, p) for impl in impls for p in PASSES]
    return points


def _point(cfg, module, impl, mode, pass_, device) -> dict:
    block, bad = guard.guarded(lambda: build(module, "auto" if impl == "-" else impl, cfg, device), device)
    if bad:
        return bad
    x = torch.randn(cfg["tokens"], cfg["d"], device=device)
    extra = dict(params=sum(p.numel() for p in block.parameters()),
                 resolved_impl=resolved_impl(block, device, pass_ != "forward"))
    fn_block = torch.compile(block, backend=cfg["backend"]) if mode == "compiled" else block
    # the compiled wrapper holds the block as a submodule, so zeroing its grads zeroes the block's
    step = guard.forward_fn(fn_block, x) if pass_ == "forward" else guard.forward_backward_fn(fn_block, x)
    if mode == "compiled":
        counted, bad = guard.guarded(lambda: compile_and_count(step, device), device)
        if bad:
            torch._dynamo.reset()
            return dict(bad, **extra)
        extra.update(compile_s=counted["compile_s"], graph_breaks=counted["graph_breaks"])
    out = guard.measure(step, device, warmup=cfg["warmup"], reps=cfg["rep"])
    out.update(extra)
    if mode == "compiled":
        torch._dynamo.reset()
    del block, fn_block
    guard.free_memory(device)
    return out


@recorded(PROFILES)
def run(cfg: dict, device="cpu", progress: bool = True):
    """One row per (block, KAN path, eager/compiled, pass)."""
    dev = sw.check_device(device)
    budget = sw.Budget(cfg["time_budget_s"])
    rows = []
    for module, impl, mode, pass_ in sw.progress_bar(plan(cfg), progress=progress, desc=NAME):
        base = dict(module=module, **describe(module), impl=impl, mode=mode, pass_=pass_, d=cfg["d"],
                    hidden=cfg["mult"] * cfg["d"], tokens=cfg["tokens"], grid_size=cfg["grid_size"])
        base["pass"] = base.pop("pass_")
        res = budget.row() if budget.spent() else _point(cfg, module, impl, mode, pass_, dev)
        rows.append(dict(base, **res))
    df = sw.finish(rows, COLUMNS)
    df["params"] = df.groupby("module")["params"].transform("max")  # also on rows that did not run
    return df


def headline(df):
    """Median ms per block (rows) and pass / KAN path / mode (columns); cells that did not run show their status.

    The MLP has no KAN path, so its numbers repeat under every path; a column in which only the MLP ran
    (a path that was not compiled, say) is left out instead of showing one number and a column of dashes.
    """
    import pandas as pd

    impls = [i for i in dict.fromkeys(df["impl"]) if i != "-"] or ["-"]
    mlp = df[df["impl"] == "-"]  # the MLP has no KAN path: the same number under every path's column
    kan = df[df["impl"] != "-"]
    d = pd.concat([kan] + [mlp.assign(impl=i) for i in impls], ignore_index=True)
    d = d.assign(column=d["pass"] + " · " + d["impl"] + " · " + d["mode"])
    piv = viz.status_pivot(d, "label", "column", "median_ms")
    planned = set(kan["pass"] + " · " + kan["impl"] + " · " + kan["mode"]) if len(kan) else set(piv.columns)
    piv = piv[[c for c in piv.columns if c in planned]]
    order = list(dict.fromkeys(df["label"]))
    piv = piv.reindex(order)
    piv.insert(0, "params", df.groupby("label")["params"].max().reindex(order).astype("Int64"))
    return piv


def relative(df, pass_: str = "forward+backward", impl: str = "auto", mode: str = "eager"):
    """Each block's time and peak memory relative to the MLP FFN at the same pass/mode (KAN path ``impl``)."""
    ok = sw.ok_rows(df)
    sub = ok[(ok["pass"] == pass_) & (ok["mode"] == mode) & (ok["impl"].isin([impl, "-"]))]
    mlp = sub[sub["module"] == "mlp"]
    if mlp.empty:
        return sub.iloc[0:0][["label"]]
    t0, m0 = mlp["median_ms"].iloc[0], mlp["peak_mib"].iloc[0]
    out = sub[["label", "params", "median_ms", "peak_mib"]].copy()
    out["time_vs_mlp"] = out["median_ms"] / t0
    out["memory_vs_mlp"] = out["peak_mib"] / m0 if m0 and math.isfinite(m0) else float("nan")
    return out.reset_index(drop=True)


@page_figure
def plot(df):
    """Time and peak memory per block, one panel each per pass; one bar per (KAN path, mode)."""
    import numpy as np

    passes = [p for p in PASSES if p in set(df["pass"])]
    fig, flat = panels(2 * len(passes), height=2.9)
    axes = [flat[2 * i: 2 * i + 2] for i in range(len(passes))]
    labels = list(dict.fromkeys(df["label"]))
    series = [(i, m) for m in MODES for i in ("auto", "reference") if ((df["impl"].isin([i, "-"])) &
                                                                        (df["mode"] == m)).any()]
    width = 0.8 / max(1, len(series))
    xs = np.arange(len(labels))
    colors = {("auto", "eager"): "#d62728", ("reference", "eager"): "#7f7f7f",
              ("auto", "compiled"): "#ff9896", ("reference", "compiled"): "#c7c7c7"}
    for row, pass_ in zip(axes, passes):
        for k, (impl, mode) in enumerate(series):
            sub = df[(df["pass"] == pass_) & (df["mode"] == mode) & (df["impl"].isin([impl, "-"]))]
            sub = sub.drop_duplicates("label").set_index("label").reindex(labels)
            ok = sub["status"] == S.OK
            pos = xs + (k - (len(series) - 1) / 2) * width
            name = f"KAN path {impl}, {mode}" if impl == "auto" else f"KAN path reference, {mode}"
            for ax, col in zip(row, ("median_ms", "peak_mib")):
                ax.bar(pos, sub[col].where(ok), width, label=name, color=colors[(impl, mode)])
        for ax, ylabel, what in zip(row, ("time (ms)", "memory (MiB)"), ("time", "peak extra memory")):
            ax.set_xticks(xs, labels, rotation=30, ha="right")
            ax.set_ylabel(ylabel)
            ax.set_title(f"{pass_}: {what}")
            ax.grid(True, axis="y", alpha=0.3)
        row[0].set_yscale("log")
        log_ticks(row[0], "y")
        if not df["peak_mib"].notna().any():
            row[1].text(0.5, 0.5, "peak memory is not measured on CPU", ha="center", va="center",
                        transform=row[1].transAxes)
    legend_on_top(fig, flat[:1], ncols=2)
    if len(df):
        r = df.iloc[0]
        flat[-1].set_xlabel(f"FFN block at d={r['d']}, hidden={r['hidden']}, N={r['tokens']} tokens, "
                            f"G={r['grid_size']}\n(the MLP has no KAN path: its bar repeats in every series)")
    return fig


def key_numbers(df, module: str = "jhcg-expanded-0.25") -> dict:
    """The numbers the chapter's prose quotes, for ``module`` against the baselines (NaN where a point is missing)."""
    ok = sw.ok_rows(df)

    def val(mod, col="median_ms", impl="auto", mode="eager", pass_="forward+backward"):
        sel = ok[(ok["module"] == mod) & (ok["mode"] == mode) & (ok["pass"] == pass_)
                 & ok["impl"].isin(["-"] if mod == "mlp" else [impl])]
        return float(sel[col].iloc[0]) if len(sel) else math.nan

    params = df.groupby("module")["params"].max()
    return dict(mb_params_jhcg=params.get(module, math.nan), mb_params_mlp=params.get("mlp", math.nan),
                mb_params_kan=params.get("kan", math.nan),
                mb_time_vs_mlp=val(module) / val("mlp"), mb_time_vs_kan=val(module) / val("kan"),
                mb_fwd_vs_mlp=val(module, pass_="forward") / val("mlp", pass_="forward"),
                mb_mem_vs_kan=val(module, "peak_mib") / val("kan", "peak_mib"),
                mb_mem_vs_mlp=val(module, "peak_mib") / val("mlp", "peak_mib"),
                mb_fused_speedup=val(module, impl="reference") / val(module),
                mb_compile_speedup=val(module) / val(module, mode="compiled"))


#: the claim's "costs far less than a full KAN FFN", as a test: at most this share of the KAN FFN's time
KAN_SHARE = 0.5


def _row(ok, mod, impl="auto", mode="eager", pass_="forward+backward"):
    sel = ok[(ok["module"] == mod) & (ok["mode"] == mode) & (ok["pass"] == pass_)
             & ok["impl"].isin(["-"] if mod == "mlp" else [impl])]
    return sel.iloc[0] if len(sel) else None


def compare(a, b, than: str) -> str:
    """Row ``a`` against row ``b`` (median times) as words: "within noise of" when their q20-q80 ranges overlap."""
    if a is None or b is None:
        return f"not measured against {than}"
    ranges = [a.get("q20_ms"), a.get("q80_ms"), b.get("q20_ms"), b.get("q80_ms")]
    if all(W.finite(v) for v in ranges) and ranges[0] <= ranges[3] and ranges[2] <= ranges[1]:
        return f"within noise of {than} (their q20–q80 time ranges overlap)"
    return faster(float(b["median_ms"]) / float(a["median_ms"]), than)


def verdict_numbers(df, module: str = "jhcg-expanded-0.25") -> dict:
    """Words for the chapter's verdict: speed and memory of ``module`` against the baselines, every JHCG block
    against the KAN FFN (:data:`KAN_SHARE`), the fused path and ``torch.compile``; computed from the numbers."""
    k = key_numbers(df, module)
    ok = sw.ok_rows(df)
    row = _row(ok, module)
    out = dict(jv_mb_vs_mlp=compare(row, _row(ok, "mlp"), "the MLP FFN"),
               jv_mb_vs_kan=compare(row, _row(ok, "kan"), "the KAN FFN"),
               jv_mb_mem_vs_kan=less(1.0 / k["mb_mem_vs_kan"], "peak memory", "the KAN FFN"),
               jv_mb_mem_vs_mlp=less(1.0 / k["mb_mem_vs_mlp"], "peak memory", "the MLP FFN"),
               jv_mb_fused=compare(row, _row(ok, module, impl="reference"), "its reference KAN path"),
               jv_mb_compile=compare(_row(ok, module, mode="compiled"), row, "the eager block"))
    kan = _row(ok, "kan")
    shares = {}
    for mod in dict.fromkeys(ok.loc[ok["family"] == "jhcg", "module"]):
        r = _row(ok, mod)
        if r is not None and kan is not None:
            shares[str(r["label"])] = float(r["median_ms"]) / float(kan["median_ms"])
    if not shares:
        claim = "could not be tested: no JHCG block and KAN FFN were both measured"
    else:
        over = [lab for lab, v in shares.items() if v > KAN_SHARE]
        rng = (f"from {min(shares.values()):.2f}× to {max(shares.values()):.2f}× the KAN FFN's time over the "
               f"{len(shares)} JHCG blocks measured")
        if not over:
            claim = f"holds here: every JHCG block cost at most {KAN_SHARE:g}× the KAN FFN's time ({rng})"
        elif len(over) == len(shares):
            claim = f"does not hold here: every JHCG block cost more than {KAN_SHARE:g}× the KAN FFN's time ({rng})"
        else:
            claim = (f"holds for {len(shares) - len(over)} of {len(shares)} JHCG blocks ({rng}); it does not hold "
                     f"for {W.joined(over)}, which cost more than {KAN_SHARE:g}× the KAN FFN's time")
    out.update(jv_mb_claim=claim, mb_kan_share=KAN_SHARE)
    return out
