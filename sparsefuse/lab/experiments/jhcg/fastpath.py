"""JHCG cached fast path: inference speedup from reusing the merged weights and scaled spline coefficients.

Why: in ``eval()`` a JHCG block's weights do not change between calls, yet the
uncached forward rebuilds the merged input projection (a concatenation of three
matrices) and the scaled spline coefficients ``spline_weight * spline_scaler``
on every call. That costs little next to a large batch but dominates when few
tokens pass (autoregressive decoding). For each variant and ``rho`` this times a
gradient-free forward uncached, cached, and on a cache miss (invalidate, then
call), and checks two things the speedup must not cost: the cached output is
bitwise equal to the uncached one, and an in-place parameter change is seen.
"""
from __future__ import annotations

import torch

from sparsefuse import jhcg as J

from sparsefuse import status as S
from .. import _guard as guard
from . import words as W
from .._page import PAGE_WIDTH_IN, legend_on_top, page_figure
from .. import _sweep as sw
from .. import check_choices, recorded
from ...words import faster

NAME = "jhcg_fastpath"

PROFILES = {
    "smoke": dict(d=16, mult=4, grid_size=5, variants=list(J.VARIANTS), rhos=[0.25, 1.0], tokens=[1, 64],
                  impl="auto", warmup=1, rep=3, rounds=1),
    # decoding-sized (8 tokens) and prefill-sized (8192 tokens) batches on one H200: ~30 s
    "quick": dict(d=512, mult=4, grid_size=5, variants=list(J.VARIANTS), rhos=[0.125, 0.25, 0.5, 1.0],
                  tokens=[8, 8192], impl="auto", warmup=10, rep=50, rounds=3),
    "paper": dict(d=768, mult=4, grid_size=5, variants=list(J.VARIANTS), rhos=[0.125, 0.25, 0.5, 1.0],
                  tokens=[1, 8, 64, 512, 8192], impl="auto", warmup=25, rep=100, rounds=5),
}

COLUMNS = ["variant", "rho", "tokens", "d", "hidden", "grid_size", "params", "resolved_impl", "uncached_ms",
           "cached_ms", "miss_ms", "speedup", "max_abs_diff", "bitwise_equal", "invalidation_ok", "status", "note"]


def _forward(block, x):
    def fn():
        with torch.no_grad():
            return block(x)
    return fn


def _miss(block, x):
    def fn():
        block.invalidate()
        with torch.no_grad():
            return block(x)
    return fn


def point(cfg, variant: str, rho: float, tokens: int, device) -> dict:
    """Time one block at one batch size uncached, cached and on a miss; check equality and invalidation."""
    d, h = cfg["d"], cfg["mult"] * cfg["d"]

    def build():
        torch.manual_seed(0)
        return J.SparseFuseJHCG(d, rho, cfg["grid_size"], variant, hidden=h, impl=cfg["impl"]).to(device).eval()

    block, bad = guard.guarded(build, device)
    if bad:
        return bad
    x = torch.randn(tokens, d, device=device)
    out = dict(params=sum(p.numel() for p in block.parameters()))
    with torch.no_grad():
        out["resolved_impl"] = block.kan.resolve_impl(torch.zeros(1, block.kan.in_features, device=device))
    # uncached and cached alternate and each keeps its best median: a few-token call is launch-bound,
    # and host-side jitter during one measurement must not decide the ratio
    best: dict[str, dict] = {}
    for _ in range(cfg["rounds"]):
        for label, enabled, fn in (("unc", False, _forward), ("cached", True, _forward), ("miss", True, _miss)):
            block.cache_enabled = enabled
            res = guard.measure(fn(block, x), device, warmup=cfg["warmup"], reps=cfg["rep"])
            if res["status"] != S.OK:
                return dict(out, **{k: res[k] for k in ("status", "note")})
            if label not in best or res["median_ms"] < best[label]["median_ms"]:
                best[label] = res
    unc, cached, miss = best["unc"], best["cached"], best["miss"]
    block.cache_enabled = False
    with torch.no_grad():
        ref = block(x)
    block.cache_enabled = True
    with torch.no_grad():
        y = block(x)
        diff = (y - ref).abs().max().item() if y.numel() else 0.0
        equal = bool(torch.equal(y, ref))
        block.kan.spline_scaler.mul_(1.5)  # an in-place change, as an optimizer step makes
        block.gate_bias.add_(0.25)
        after = block(x)
        block.cache_enabled = False
        fresh = block(x)
    out.update(uncached_ms=unc["median_ms"], cached_ms=cached["median_ms"], miss_ms=miss["median_ms"],
               speedup=unc["median_ms"] / cached["median_ms"], max_abs_diff=diff, bitwise_equal=equal,
               invalidation_ok=bool(torch.equal(after, fresh)) and not bool(torch.equal(after, ref)),
               status=S.OK, note="")
    del block
    guard.free_memory(device)
    return out


@recorded(PROFILES)
def run(cfg: dict, device="cpu", progress: bool = True):
    """One row per (variant, rho, tokens)."""
    dev = sw.check_device(device)
    check_choices(cfg, "variants", J.VARIANTS)
    points = [(v, r, n) for v in cfg["variants"] for r in cfg["rhos"] for n in cfg["tokens"]]
    rows = []
    for v, r, n in sw.progress_bar(points, progress=progress, desc=NAME):
        base = dict(variant=v, rho=r, tokens=n, d=cfg["d"], hidden=cfg["mult"] * cfg["d"], grid_size=cfg["grid_size"])
        rows.append(dict(base, **point(cfg, v, r, n, dev)))
    return sw.finish(rows, COLUMNS)


def summary(df):
    """Speedup of the cached path per (variant, rho) and batch size, with the worst difference seen."""
    ok = sw.ok_rows(df)
    piv = ok.pivot_table(index=["variant", "rho"], columns="tokens", values="speedup")
    piv.columns = [f"speedup at {n} tokens" for n in piv.columns]
    piv["max |cached - uncached|"] = ok.groupby(["variant", "rho"])["max_abs_diff"].max()
    piv["all bitwise equal"] = ok.groupby(["variant", "rho"])["bitwise_equal"].all()
    piv["invalidation seen"] = ok.groupby(["variant", "rho"])["invalidation_ok"].all()
    return piv


@page_figure
def plot(df):
    """Uncached / cached / miss latency per batch size (top), and the cached speedup against rho (bottom, full width).

    The grey band around 1× is :data:`~.words.RATIO_TOL`: a point inside it is no measurable effect.
    """
    import matplotlib.pyplot as plt

    ok = sw.ok_rows(df)
    tokens = sorted(set(ok["tokens"]))
    top = [f"t{i}" for i in range(max(1, len(tokens)))]
    mosaic = [top[i:i + 2] + ([top[i]] if len(top[i:i + 2]) == 1 else []) for i in range(0, len(top), 2)]
    mosaic.append(["speedup", "speedup"])
    fig = plt.figure(figsize=(PAGE_WIDTH_IN, 2.9 * len(mosaic)), layout="constrained")
    ax_of = fig.subplot_mosaic(mosaic)
    rhos = sorted(set(ok["rho"]))

    def rho_axis(ax):
        ax.set_xscale("log", base=2)
        if rhos:
            ax.set_xticks(rhos, [f"{r:g}" for r in rhos])
        ax.minorticks_off()
        ax.set_xlabel("rho")
        ax.grid(True, alpha=0.3)

    for key, n in zip(top, tokens):
        ax = ax_of[key]
        for variant, g in ok[ok["tokens"] == n].groupby("variant", sort=False):
            g = g.sort_values("rho")
            for col, style in (("uncached_ms", "--"), ("cached_ms", "-"), ("miss_ms", ":")):
                ax.plot(g["rho"], g[col], style, marker="o", label=f"{variant} {col[:-3]}")
        rho_axis(ax)
        ax.set_ylabel("forward (ms)")
        ax.set_title(f"{n} tokens, no grad")
    legend_on_top(fig, [ax_of[top[0]]], ncols=3)
    ax = ax_of["speedup"]
    ax.axhspan(1 - W.RATIO_TOL, 1 + W.RATIO_TOL, color="#dddddd", lw=0,
               label=f"within {W.RATIO_TOL:.0%} of 1×: no measurable effect")
    ax.axhline(1.0, color="#888888", lw=0.8)
    for (variant, n), g in ok.groupby(["variant", "tokens"], sort=False):
        g = g.sort_values("rho")
        ax.plot(g["rho"], g["speedup"], marker="o", label=f"{variant}, {n} tokens")
    rho_axis(ax)
    ax.set_ylabel("uncached / cached")
    ax.set_title("cached speedup (above 1: the cache is faster)")
    legend_on_top(fig, [ax], ncols=2, where="lower")
    if len(df):
        r = df.iloc[0]
        ax.set_xlabel(f"rho\n(JHCG in eval(), d={r['d']}, hidden={r['hidden']}, G={r['grid_size']})")
    return fig


def key_numbers(df, variant: str = "expanded", rho: float = 0.25) -> dict:
    """Speedups at the smallest and largest batch for one block, and the worst cached/uncached difference seen."""
    ok = sw.ok_rows(df)
    sub = ok[(ok["variant"] == variant) & (ok["rho"] == rho)].sort_values("tokens")
    nan = float("nan")
    return dict(fp_tokens_small=int(sub["tokens"].iloc[0]) if len(sub) else 0,
                fp_tokens_large=int(sub["tokens"].iloc[-1]) if len(sub) else 0,
                fp_speedup_small=float(sub["speedup"].iloc[0]) if len(sub) else nan,
                fp_speedup_large=float(sub["speedup"].iloc[-1]) if len(sub) else nan,
                fp_speedup_best=float(ok["speedup"].max()) if len(ok) else nan,
                fp_max_diff=float(ok["max_abs_diff"].max()) if len(ok) else nan,
                fp_points=len(ok), fp_equal=int(ok["bitwise_equal"].sum()),
                fp_invalidated=int(ok["invalidation_ok"].sum()))


def verdict_numbers(df, variant: str = "expanded", rho: float = 0.25) -> dict:
    """Words for the chapter's verdict, from every point, not the best one: how the cache's speedups sit around 1×
    at the smallest and the largest batch (:func:`~.words.spread`), is the cache exact, is it seen to go stale.
    """
    k = key_numbers(df, variant, rho)
    ok = sw.ok_rows(df)
    n, eq, inv = k["fp_points"], k["fp_equal"], k["fp_invalidated"]
    out = dict(jv_fp_exact=("bitwise equal at every point" if n and eq == n else
                            f"bitwise equal at {eq} of {n} points (largest difference {k['fp_max_diff']:.3g})"),
               jv_fp_invalidated=("at every point" if n and inv == n else f"at {inv} of {n} points"))
    tokens = sorted(set(ok["tokens"]))
    for key, t in (("small", tokens[0] if tokens else None), ("large", tokens[-1] if tokens else None)):
        sp = W.spread(ok.loc[ok["tokens"] == t, "speedup"] if t is not None else [], what="block")
        out[f"fp_{key}_n"] = sp["n"]
        out[f"fp_{key}_below"] = sp["below"]
        out[f"jv_fp_{key}"] = (f"at {t} tokens the cache's speedup (uncached ÷ cached) ran {sp['words']}"
                               + (" (there the cached call was slower)" if sp["below"] else "")
                               if t is not None else "nothing was measured")
        out[f"jv_fp_{key}_effect"] = W.effect(sp["kind"])
        out[f"fp_{key}_kind"] = sp["kind"]
    if not tokens:
        claim = "could not be tested: no point was measured"
    elif out["fp_small_kind"] == "faster":
        claim = "the claim that the cache makes small-batch inference faster holds here"
    else:
        claim = (f"the claim that the cache makes small-batch inference faster does not reproduce here "
                 f"({out['fp_small_below']} of {out['fp_small_n']} points at {tokens[0]} tokens below 1×)")
    out["jv_fp_claim"] = claim
    out["jv_fp_point"] = (faster(k["fp_speedup_small"], "uncached") if k["fp_points"] else "not measured")
    out["jv_fp_point_large"] = (faster(k["fp_speedup_large"], "uncached") if k["fp_points"] else "not measured")
    out["fp_ratio_tol"] = W.RATIO_TOL
    return out
