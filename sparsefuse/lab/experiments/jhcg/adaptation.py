"""JHCG adaptation diagnostics: how the gate, the KAN inputs and the spline coefficients move during training.

Why: a loss number does not say whether a hybrid block used its KAN path. The
audit's JHCG runs are probed on fixed validation windows every ``probe_every``
steps (and after the last), per Transformer layer:

* gate statistics — mean, std, and the shares of gate values above 0.9 (KAN path
  dominates) and below 0.1 (MLP path dominates);
* ``kan_share`` — mean |g k| / (mean |g k| + mean |(1 - g) m|), the KAN path's
  share of what reaches the output;
* ``outside_grid`` — share of KAN inputs outside the spline grid, where only the
  SiLU base branch acts (a grid that no longer covers its inputs wastes the splines);
* ``coeff_drift`` — ``||c_t - c_0|| / ||c_0||`` of the scaled spline coefficients.
"""
from __future__ import annotations

import pandas as pd

from sparsefuse import status as S
from . import _lm as L
from . import words as W
from .._page import legend_on_top, page_figure, panels
from .. import _sweep as sw
from .. import recorded
from .audit import PROFILES as AUDIT

NAME = "jhcg_adaptation"

PROFILES = {p: dict(train=AUDIT[p]["train"], seeds=AUDIT[p]["seeds"], jhcg=AUDIT[p]["jhcg"]) for p in AUDIT}

METRICS = ["gate_mean", "gate_std", "gate_open", "gate_closed", "kan_share", "outside_grid", "coeff_drift"]
COLUMNS = ["variant", "label", "seed", "step", "layer"] + METRICS + ["status", "note"]


@recorded(PROFILES)
def run(cfg: dict, device="cpu", progress: bool = True):
    """One row per (JHCG variant, seed, probed step, layer), from the audit's memoized runs."""
    rows = []
    for name, seed, r, _ in L.audited_runs(cfg, device, progress, NAME):
        if not r.trace:
            rows.append(dict(variant=name, label=r.row["label"], seed=seed,
                             status=r.row["status"] if r.row["status"] != S.OK else S.ERROR,
                             note=r.row["note"] or "no probe recorded"))
            continue
        rows += [dict(t, variant=name, label=r.row["label"], seed=seed, status=S.OK, note="") for t in r.trace]
    return sw.finish(rows, COLUMNS)


def summary(df) -> pd.DataFrame:
    """At the first and the last probe: each metric averaged over layers and seeds, per JHCG variant."""
    ok = sw.ok_rows(df)
    if ok.empty:
        return ok
    first, last = ok["step"].min(), ok["step"].max()
    parts = []
    for when, step in (("start", first), ("end", last)):
        s = ok[ok["step"] == step].groupby("label")[METRICS].mean()
        s.columns = [f"{c} ({when})" for c in s.columns]
        parts.append(s)
    out = pd.concat(parts, axis=1)
    order = [f"{m} ({w})" for m in METRICS for w in ("start", "end")]
    return out[[c for c in order if c in out.columns and c != "coeff_drift (start)"]]


@page_figure
def plot(df):
    """Each metric against step, one line per JHCG variant (mean over layers and seeds, band: min-max over layers)."""
    ok = sw.ok_rows(df)
    metrics = [("gate_mean", "gate mean"), ("kan_share", "KAN path's share of the output"),
               ("outside_grid", "KAN inputs outside the grid"), ("coeff_drift", "spline coefficient drift")]
    fig, axes = panels(len(metrics), ncols=2, height=2.8)
    for ax, (col, title) in zip(axes, metrics):
        for label, g in ok.groupby("label", sort=False):
            per_layer = g.groupby(["step", "layer"])[col].mean().unstack("layer")
            mean = per_layer.mean(axis=1)
            line, = ax.plot(mean.index, mean.to_numpy(), marker="o", ms=3, label=label)
            ax.fill_between(mean.index, per_layer.min(axis=1), per_layer.max(axis=1), alpha=0.15,
                            color=line.get_color())
        ax.set_title(title)
        ax.grid(True, alpha=0.3)
    for ax in axes:
        ax.set_xlabel("step")
    legend_on_top(fig, axes[:1], ncols=2)
    return fig


def key_numbers(df, variant: str = "jhcg-expanded-0.25") -> dict:
    """For ``variant``, averaged over layers and seeds: each metric at the first and at the last probe."""
    ok = sw.ok_rows(df)
    sub = ok[ok["variant"] == variant]
    out = {}
    for when, step in (("start", sub["step"].min()), ("end", sub["step"].max())):
        means = sub[sub["step"] == step][METRICS].mean()
        out.update({f"ad_{m}_{when}": float(means.get(m, float("nan"))) for m in METRICS})
    return out


def verdict_numbers(df) -> dict:
    """Words for every JHCG variant, from the first to the last probe (means over layers and seeds): which way the
    gate mean, the KAN path's share and the share of KAN inputs outside the grid moved, and the final drift."""
    ok = sw.ok_rows(df)
    parts = []
    for _, sub in ok.groupby("variant", sort=False):
        first, last = sub["step"].min(), sub["step"].max()
        a, b = sub[sub["step"] == first][METRICS].mean(), sub[sub["step"] == last][METRICS].mean()
        parts.append(f"{sub['label'].iloc[0]}: the gate mean {W.moved(a['gate_mean'], b['gate_mean'])}, the KAN "
                     f"path's share of the output {W.moved(a['kan_share'], b['kan_share'], '{:.1%}')}, the share of "
                     f"KAN inputs outside the grid {W.moved(a['outside_grid'], b['outside_grid'], '{:.1%}')}, and the "
                     f"spline coefficients ended {b['coeff_drift']:.2f} (relative norm) from their initialisation")
    outside = {sub["label"].iloc[0]: (sub[sub["step"] == sub["step"].max()]["outside_grid"].mean()
                                      - sub[sub["step"] == sub["step"].min()]["outside_grid"].mean())
               for _, sub in ok.groupby("variant", sort=False)}
    rose = [lab for lab, d in outside.items() if d > 0]
    return dict(jv_ad_variants="; ".join(parts) if parts else "no JHCG model was probed",
                jv_ad_outside=("was not measured" if not outside else
                               f"rose for every variant ({W.joined(rose)})" if len(rose) == len(outside) else
                               f"rose for {W.joined(rose)} only" if rose else "rose for no variant"))
