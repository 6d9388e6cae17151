"""torch.compile and activation checkpointing: is the fused speedup kept?

Why: users wrap models in ``torch.compile`` and checkpoint activations to fit
memory. A kernel that breaks the graph, or whose backward re-runs a slow path
under checkpointing, loses its advantage exactly there. For each path this
records forward+backward time and peak memory in four variants (eager,
compiled, checkpointed, both), the compile time (first call), and the graph
breaks Dynamo reports.
"""
from __future__ import annotations

import logging
import time
import warnings

import torch
from torch.utils.checkpoint import checkpoint

from sparsefuse import status as S
from . import _guard as guard
from . import _pick as pick
from . import _plotting as viz
from . import _problems as prob
from . import _sweep as sw
from . import check_choices, recorded
from ._page import legend_on_top, log_ticks, page_figure, panels
from ..words import faster, speed_change

NAME = "compile_checkpoint"

VARIANTS = ("eager", "compile", "checkpoint", "compile+checkpoint")

PROFILES = {
    # aot_eager traces forward and backward like inductor does (custom-op fake
    # kernels, autograd) without generating C++/Triton code, so smoke stays fast.
    "smoke": dict(n=16, width=4, depth=2, grid_size=5, spline_order=3, impls=["reference", "sparse", "fused"],
                  variants=list(VARIANTS), backend="aot_eager", warmup=1, rep=2, fused_work_limit=16 * 4 * 4 * 8,
                  time_budget_s=None),
    # inductor compiles take ~10 s per path on the H100: quick keeps the baseline and the two local paths.
    "quick": dict(n=4096, width=256, depth=2, grid_size=10, spline_order=3, impls=["reference", "sparse", "fused"],
                  variants=list(VARIANTS), backend="inductor", warmup=5, rep=20, fused_work_limit=None,
                  time_budget_s=75),
    "paper": dict(n=8192, width=512, depth=3, grid_size=20, spline_order=3, impls=list(pick.PATHS),
                  variants=list(VARIANTS), backend="inductor", warmup=25, rep=100, fused_work_limit=None,
                  time_budget_s=None),
}

COLUMNS = ["impl", "variant", "backend", "n", "width", "depth", "grid_size", "spline_order",
           "median_ms", "q20_ms", "q80_ms", "peak_mib", "compile_s", "graph_count", "graph_breaks",
           "break_reasons", "status", "note"]


class Stack(torch.nn.Module):
    """``depth`` KAN layers of equal width; ``checkpointed`` recomputes each layer in backward."""

    def __init__(self, layers, checkpointed: bool):
        super().__init__()
        self.layers = torch.nn.ModuleList(layers)
        self.checkpointed = checkpointed

    def forward(self, x):
        for layer in self.layers:
            x = checkpoint(layer, x, use_reentrant=False) if self.checkpointed else layer(x)
        return x


def _build(cfg, impl, checkpointed, device):
    layers = [pick.make_layer(impl, cfg["width"], cfg["width"], cfg["grid_size"], cfg["spline_order"],
                           device=device, seed=i) for i in range(cfg["depth"])]
    return Stack(layers, checkpointed)


def compile_and_count(step, device) -> dict:
    """Run the first compiled call and read Dynamo's counters: compile time, graphs, breaks and why.

    Counting from the real compile (rather than a separate ``torch._dynamo.explain``
    pass) traces the model once, and sees exactly what the timed run uses.
    """
    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    counters.clear()
    log = logging.getLogger("torch._dynamo")
    level = log.level
    log.setLevel(logging.ERROR)  # the reasons go to the table, not to the notebook's output
    try:
        if torch.device(device).type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            step()
        if torch.device(device).type == "cuda":
            torch.cuda.synchronize()
        elapsed = time.perf_counter() - t0
    finally:
        log.setLevel(level)
    breaks = counters["graph_break"]
    graphs = int(counters["stats"].get("unique_graphs", 0))
    reasons = sorted({str(r).splitlines()[0][:120] for r in breaks})
    note = "" if graphs else "no graph captured: Dynamo ran this model eagerly"
    return dict(compile_s=elapsed, graph_count=graphs, graph_breaks=int(sum(breaks.values())),
                break_reasons=" | ".join(reasons), note=note)


def _point(cfg, impl, variant, device) -> dict:
    compiled = variant.startswith("compile")
    model, bad = guard.guarded(lambda: _build(cfg, impl, "checkpoint" in variant, device), device)
    if bad:
        return bad
    x = (torch.rand(cfg["n"], cfg["width"], device=device) * 2 - 1).requires_grad_(True)
    extra = dict(compile_s=float("nan"), graph_count=float("nan"), graph_breaks=float("nan"), break_reasons="")
    fn_model = torch.compile(model, backend=cfg["backend"]) if compiled else model

    def step():
        x.grad = None
        model.zero_grad(set_to_none=True)
        fn_model(x).sum().backward()

    note = ""
    if compiled:
        counted, bad = guard.guarded(lambda: compile_and_count(step, device), device)
        if bad:
            torch._dynamo.reset()
            return dict(bad, **extra)
        note = counted.pop("note")
        extra.update(counted)
    out = guard.measure(step, device, warmup=cfg["warmup"], reps=cfg["rep"])
    out.update(extra)
    if note and out["status"] == S.OK:
        out["note"] = note
    if compiled:
        torch._dynamo.reset()
    return out


@recorded(PROFILES)
def run(cfg: dict, device="cpu", progress: bool = True):
    """One row per (impl, variant)."""
    check_choices(cfg, "variants", VARIANTS)
    dev = sw.check_device(device)
    rows = []
    budget = sw.Budget(cfg["time_budget_s"])
    points = [(impl, v) for impl in cfg["impls"] for v in cfg["variants"]]
    for impl, variant in sw.progress_bar(points, progress=progress, desc="compile/checkpoint"):
        base = dict(impl=impl, variant=variant, backend=cfg["backend"] if variant.startswith("compile") else "",
                    n=cfg["n"], width=cfg["width"], depth=cfg["depth"], grid_size=cfg["grid_size"],
                    spline_order=cfg["spline_order"])
        if impl == "fused" and cfg["fused_work_limit"] is not None:
            work = prob.fused_work(cfg["n"], cfg["width"], cfg["width"], cfg["grid_size"], cfg["spline_order"])
            ok, why = pick.interpreter_budget_ok(dev, work, cfg["fused_work_limit"])
            if not ok:
                rows.append(dict(base, **guard.EMPTY, status=S.SKIPPED, note=why))
                continue
        rows.append(dict(base, **(budget.row() if budget.spent() else _point(cfg, impl, variant, dev))))
    return sw.finish(rows, COLUMNS)


def headline(df):
    """Time (ms) per path and variant; cells that did not run show their status."""
    return viz.status_pivot(df, "impl", "variant", "median_ms").rename_axis("path")


def summary(df):
    """Speedup of every path over the reference path within the same variant, and each variant's time / eager."""
    import pandas as pd

    ok = sw.ok_rows(df)
    t = ok.pivot_table(index="impl", columns="variant", values="median_ms")
    t = t[[v for v in VARIANTS if v in t.columns]]
    out = pd.DataFrame(index=t.index.rename("path"))  # the times themselves are in headline()
    if "reference" in t.index:
        for v in t.columns:
            out[f"speedup vs reference ({v})"] = t.loc["reference", v] / t[v]
    if "eager" in t.columns:
        for v in t.columns:
            if v != "eager":
                out[f"{v} / eager"] = t[v] / t["eager"]
    return out


@page_figure
def plot(df):
    """Grouped bars per path, one panel each: time, peak memory, compile time (graph breaks printed on the bars)."""
    import numpy as np

    fig, axes = panels(3, height=2.9)
    impls = list(dict.fromkeys(df["impl"]))
    variants = [v for v in VARIANTS if v in set(df["variant"])]
    width = 0.8 / max(len(variants), 1)
    colors = dict(zip(VARIANTS, ["#4c72b0", "#dd8452", "#55a868", "#c44e52"]))
    xs = np.arange(len(impls))
    for k, v in enumerate(variants):
        sub = df[df["variant"] == v].set_index("impl").reindex(impls)
        ok = sub["status"] == S.OK
        pos = xs + (k - (len(variants) - 1) / 2) * width
        axes[0].bar(pos, sub["median_ms"].where(ok), width, label=v, color=colors[v])
        axes[1].bar(pos, sub["peak_mib"].where(ok), width, label=v, color=colors[v])
        if v.startswith("compile"):
            axes[2].bar(pos, sub["compile_s"], width, label=v, color=colors[v])
            for p, (cs, gb) in zip(pos, zip(sub["compile_s"], sub["graph_breaks"])):
                if np.isfinite(cs):
                    axes[2].text(p, cs, f"{int(gb) if np.isfinite(gb) else '?'} br", ha="center", va="bottom")
        for p, st in zip(pos, sub["status"]):
            if st != S.OK and isinstance(st, str):
                axes[0].text(p, 0.02, st, rotation=90, ha="center", va="bottom",
                             transform=axes[0].get_xaxis_transform())
    for ax in axes:
        ax.set_xticks(xs, impls)
        ax.set_xlabel("contraction path")
        ax.grid(True, axis="y", alpha=0.3)
    axes[0].set_yscale("log")
    log_ticks(axes[0], "y")
    axes[0].set_ylabel("time (ms)")
    title = "forward+backward time per step"
    if len(df):
        r = df.iloc[0]
        backends = [b for b in df["backend"].dropna() if str(b)]
        title += (f"\n{r['depth']}×KANLinear {r['width']}→{r['width']}, N={r['n']}, G={r['grid_size']}; "
                  f"compile backend {backends[0] if backends else '—'}")
    axes[0].set_title(title)
    axes[1].set_ylabel("memory (MiB)")
    axes[1].set_title("peak extra memory")
    if not df["peak_mib"].notna().any():
        axes[1].text(0.5, 0.5, "peak memory is not measured on CPU", ha="center", va="center",
                     transform=axes[1].transAxes)
    axes[2].set_ylabel("first call (s)")
    axes[2].set_title("compile time of the first call (labels: graph breaks)")
    axes[2].set_ylim(0, axes[2].get_ylim()[1] * 1.2)
    legend_on_top(fig, axes[:1])
    return fig


def verdict_numbers(df) -> dict:
    """The chapter's verdict: does ``fused`` keep its lead over ``reference`` once both are compiled?"""
    nan = float("nan")
    ok = sw.ok_rows(df)
    t = ok.pivot_table(index="impl", columns="variant", values="median_ms")
    out = {}
    for v, key in (("eager", "eager"), ("compile", "compile"), ("checkpoint", "ckpt"),
                   ("compile+checkpoint", "both")):
        sp = nan
        if v in t.columns and {"fused", "reference"} <= set(t.index):
            sp = t.loc["reference", v] / t.loc["fused", v]
        out[f"cc_speedup_{key}"] = sp
        out[f"cc_cmp_{key}"] = faster(sp, "the reference")
        col = t[v].dropna() if v in t.columns else None
        out[f"cc_best_{key}"] = str(col.idxmin()) if col is not None and len(col) else "—"
    for impl in ("fused", "reference"):
        out[f"cc_{impl}_eager_ms"] = t.loc[impl, "eager"] if impl in t.index and "eager" in t.columns else nan
        out[f"cc_{impl}_compile_ms"] = t.loc[impl, "compile"] if impl in t.index and "compile" in t.columns else nan
    comp = ok[(ok["impl"] == "fused") & ok["variant"].astype(str).str.startswith("compile")]
    out["cc_fused_breaks"] = float(comp["graph_breaks"].max()) if len(comp) else nan
    out["cc_kept"] = ("keeps its lead" if out["cc_speedup_compile"] > 1 else
                      "does not keep its lead" if out["cc_speedup_compile"] == out["cc_speedup_compile"]
                      else "could not be compared")
    ref_gain = out["cc_reference_eager_ms"] / out["cc_reference_compile_ms"]
    fused_gain = out["cc_fused_eager_ms"] / out["cc_fused_compile_ms"]
    out["cc_ref_compile_gain"], out["cc_fused_compile_gain"] = ref_gain, fused_gain
    out["cc_ref_compile_change"] = speed_change(ref_gain)
    out["cc_fused_compile_change"] = speed_change(fused_gain)
    out["cc_claim"] = (
        "holds in this run" if out["cc_speedup_compile"] > 1 and out["cc_speedup_both"] > 1 else
        f"does not hold in this run: compiling made the reference path {speed_change(ref_gain)} and the fused "
        f"path {speed_change(fused_gain)}, so the compiled reference overtakes the fused kernels"
        if out["cc_speedup_compile"] == out["cc_speedup_compile"] else "could not be checked in this run")
    breaks = out["cc_fused_breaks"]
    out["cc_breaks_text"] = (
        "its compiled graph was not measured" if breaks != breaks else
        f"it compiles with {breaks:.0f} graph breaks, so it does not split the compiled graph"
        + ("; what it loses under compile is speed, not compatibility" if fused_gain < 1 else "")
        if breaks == 0 else f"it compiles with {breaks:.0f} graph breaks (reasons in the table)")
    return out
