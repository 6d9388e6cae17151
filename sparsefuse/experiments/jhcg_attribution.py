"""JHCG attribution: which path carries a trained JHCG model, and is the gain the KAN path's or the parameters'?

Why interventions at evaluation: the audit compares whole models; here each
trained JHCG MiniGPT (the audit's own runs, same seeds) is evaluated on the same
validation windows with every JHCG block changed in one way at a time: the gate
forced open (KAN path only) or closed (MLP path only), or one path zeroed with
the learned gate kept. A large loss increase when the KAN path is removed says
the model relies on it. The control is the MLP FFN widened to the same parameter
count, trained from the same seed: ``gain_vs_matched`` is its validation loss
minus the JHCG model's, so a positive value is a gain that added parameters alone
do not explain.
"""
from __future__ import annotations

import math

import pandas as pd

from .. import status as S
from . import _jhcg_lm as L
from ._page import page_figure, panels
from . import _sweep as sw
from . import recorded
from .jhcg_audit import PROFILES as AUDIT

NAME = "jhcg_attribution"

#: (name, gate override, ablated path)
INTERVENTIONS = [
    ("as trained", None, None),
    ("gate open: KAN path only", 1.0, None),
    ("gate closed: MLP path only", 0.0, None),
    ("KAN path ablated", None, "kan"),
    ("MLP path ablated", None, "mlp"),
]

PROFILES = {p: dict(train=AUDIT[p]["train"], seeds=AUDIT[p]["seeds"], jhcg=AUDIT[p]["jhcg"]) for p in AUDIT}

COLUMNS = ["variant", "label", "seed", "intervention", "gate", "ablate", "val_loss", "delta", "matched_val_loss",
           "gain_vs_matched", "status", "note"]


@recorded(PROFILES)
def run(cfg: dict, device="cpu", progress: bool = True):
    """One row per (JHCG variant, seed, intervention); models come from the audit's memoized runs."""
    rows = []
    for name, seed, run_, dev in L.audited_runs(cfg, device, progress, NAME):
        ctrl = L.train_run(L.matched_name(name), seed, cfg["train"], dev)
        base = dict(variant=name, label=run_.row["label"], seed=seed, matched_val_loss=ctrl.row.get("val_loss"))
        if run_.model is None:
            rows += [dict(base, intervention=i, gate=g, ablate=a, status=run_.row["status"] if run_.row["status"]
                          != S.OK else S.ERROR, note=run_.row["note"] or "no trained model")
                     for i, g, a in INTERVENTIONS]
            continue
        ref = float("nan")
        for label, gate, ablate in INTERVENTIONS:
            with L.intervene(run_.model, gate=gate, ablate=ablate):
                loss = L.eval_loss(run_.model, cfg["train"], seed, dev)
            if ablate is None and gate is None:
                ref = loss
            rows.append(dict(base, intervention=label, gate=gate, ablate=ablate or "", val_loss=loss,
                             delta=loss - ref, status=S.OK if math.isfinite(loss) else S.ERROR, note=""))
    df = sw.finish(rows, COLUMNS)
    trained = df[df["intervention"] == "as trained"].set_index(["variant", "seed"])["val_loss"]
    df["gain_vs_matched"] = [r.matched_val_loss - trained.get((r.variant, r.seed), math.nan)
                             if r.intervention == "as trained" else math.nan for r in df.itertuples()]
    return df


def summary(df) -> pd.DataFrame:
    """Mean loss change per intervention (columns) and JHCG variant (rows), plus the gain over the matched MLP."""
    ok = sw.ok_rows(df)
    piv = ok.pivot_table(index="label", columns="intervention", values="delta", aggfunc="mean")
    piv = piv.reindex(columns=[i for i, _, _ in INTERVENTIONS if i in piv.columns and i != "as trained"])
    piv.columns = [f"Δ loss: {c}" for c in piv.columns]
    trained = ok[ok["intervention"] == "as trained"].groupby("label")
    piv.insert(0, "val loss as trained", trained["val_loss"].mean())
    piv["gain vs matched MLP (mean)"] = trained["gain_vs_matched"].mean()
    piv["gain vs matched MLP (std)"] = trained["gain_vs_matched"].std(ddof=1)
    return piv


@page_figure
def plot(df):
    """Loss change per intervention, one group of bars per JHCG variant (error bars: std over seeds), then the gain."""
    import numpy as np

    ok = sw.ok_rows(df)
    names = [i for i, _, _ in INTERVENTIONS if i != "as trained"]
    labels = list(dict.fromkeys(ok["label"]))
    fig, axes = panels(2, height=3.0)
    width = 0.8 / max(1, len(names))
    xs = np.arange(len(labels))
    for k, name in enumerate(names):
        sub = ok[ok["intervention"] == name].groupby("label")["delta"]
        mean, std = sub.mean().reindex(labels), sub.std(ddof=1).reindex(labels).fillna(0)
        axes[0].bar(xs + (k - (len(names) - 1) / 2) * width, mean, width, yerr=std, capsize=2, label=name)
    axes[0].axhline(0, color="#444444", lw=0.8)
    axes[0].set_xticks(xs, labels)
    axes[0].set_ylabel("Δ loss (nats/char)")
    axes[0].set_yscale("symlog", linthresh=0.01)
    axes[0].set_title("validation-loss change under each intervention (all JHCG blocks at once)")
    axes[0].legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    axes[0].grid(True, axis="y", alpha=0.3)
    gain = ok[ok["intervention"] == "as trained"].groupby("label")["gain_vs_matched"]
    axes[1].bar(xs, gain.mean().reindex(labels), yerr=gain.std(ddof=1).reindex(labels).fillna(0), capsize=3,
                color="#1f77b4", width=0.5)
    axes[1].axhline(0, color="#444444", lw=0.8)
    axes[1].set_xticks(xs, labels)
    axes[1].set_ylabel("nats/char")
    axes[1].set_title("gain over the parameter-matched MLP (matched loss − JHCG loss)")
    axes[1].grid(True, axis="y", alpha=0.3)
    return fig


def key_numbers(df, variant: str = "jhcg-expanded-0.25") -> dict:
    """Mean loss change of each intervention for ``variant``, and its mean gain over the matched MLP."""
    ok = sw.ok_rows(df)
    sub = ok[ok["variant"] == variant]
    delta = sub.groupby("intervention")["delta"].mean()
    keys = dict(at_open="gate open: KAN path only", at_closed="gate closed: MLP path only",
                at_no_kan="KAN path ablated", at_no_mlp="MLP path ablated")
    out = {k: float(delta.get(v, math.nan)) for k, v in keys.items()}
    out["at_gain"] = float(sub["gain_vs_matched"].mean()) if len(sub) else math.nan
    return out
