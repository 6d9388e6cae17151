"""JHCG attribution: which path carries a trained JHCG model, and is the gain the KAN path's or the parameters'?

Why interventions at evaluation: the audit compares whole models; here each
trained JHCG MiniGPT (the audit's own runs, same seeds) is evaluated on the same
validation windows with every JHCG block changed in one way at a time: the gate
forced open (KAN path only) or closed (MLP path only), or one path zeroed with
the learned gate kept. A large loss increase when the KAN path is removed says
the model relies on it. The control is the MLP FFN widened to the same parameter
count, trained from the same seed: ``gain_vs_matched`` is its validation loss
minus the JHCG model's (positive: JHCG lower), the sign of the audit's
``gain_vs_matched_mlp``.
"""
from __future__ import annotations

import math

import pandas as pd

from sparsefuse import status as S
from . import _lm as L
from . import words as W
from .._page import legend_on_top, page_figure, panels
from .. import _sweep as sw
from .. import recorded
from .audit import PROFILES as AUDIT

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
    """Mean loss change per intervention (columns) and JHCG variant (rows), and the gain over the matched MLP.

    A loss change is the intervened loss minus the loss as trained (positive: the loss rose); the gain is the
    matched MLP's validation loss minus the JHCG model's (positive: JHCG lower), per seed, as in the audit's
    matrix table; ``seeds with JHCG lower`` counts the seeds with a positive gain.
    """
    ok = sw.ok_rows(df)
    piv = ok.pivot_table(index="label", columns="intervention", values="delta", aggfunc="mean")
    piv = piv.reindex(columns=[i for i, _, _ in INTERVENTIONS if i in piv.columns and i != "as trained"])
    piv.columns = [f"Δ loss, {_words(c)}" for c in piv.columns]
    trained = ok[ok["intervention"] == "as trained"].groupby("label")
    piv.insert(0, "val loss as trained", trained["val_loss"].mean())
    piv["gain vs matched MLP (mean)"] = trained["gain_vs_matched"].mean()
    piv["gain vs matched MLP (std)"] = trained["gain_vs_matched"].std(ddof=1)
    piv["seeds with JHCG lower"] = trained["gain_vs_matched"].apply(
        lambda g: f"{int((g > 0).sum())} of {int(g.notna().sum())}")
    return piv


@page_figure
def plot(df):
    """Loss change per intervention, one group of bars per JHCG variant (error bars: std over seeds), then the
    gain over the parameter-matched MLP (matched loss − JHCG loss), with one dot per seed."""
    import numpy as np
    from matplotlib.ticker import FuncFormatter

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
    top = ok.loc[ok["intervention"] != "as trained", "delta"].max() if len(ok) else float("nan")
    if top == top and top > 0:
        axes[0].set_ylim(top=2.0 * top)  # room above the tallest bar and its error bar on the log part
    axes[0].yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axes[0].set_title("validation-loss change under each intervention (all JHCG blocks at once)")
    legend_on_top(fig, axes[:1], ncols=2)
    axes[0].grid(True, axis="y", alpha=0.3)
    trained = ok[ok["intervention"] == "as trained"]
    gain = trained.groupby("label")["gain_vs_matched"]
    axes[1].bar(xs, gain.mean().reindex(labels), yerr=gain.std(ddof=1).reindex(labels).fillna(0), capsize=3,
                color="#1f77b4", width=0.5, label="mean ± std over seeds")
    for i, lab in enumerate(labels):
        pts = trained.loc[trained["label"] == lab, "gain_vs_matched"]
        axes[1].plot(np.full(len(pts), i + 0.3), pts, "o", color="#444444", ms=4,
                     label="one seed" if i == 0 else None)
    axes[1].axhline(0, color="#444444", lw=0.8)
    axes[1].set_xticks(xs, labels)
    axes[1].set_ylabel("nats/char")
    axes[1].set_title("gain over the parameter-matched MLP (matched loss − JHCG loss; above 0: JHCG lower)")
    axes[1].legend(loc="best", frameon=False)
    axes[1].grid(True, axis="y", alpha=0.3)
    return fig


def key_numbers(df, variant: str = "jhcg-expanded-0.25") -> dict:
    """Mean loss change of each intervention for ``variant``, and its mean gain over the matched MLP
    (``at_gain`` = matched − JHCG, positive: JHCG lower, the audit table's sign)."""
    ok = sw.ok_rows(df)
    sub = ok[ok["variant"] == variant]
    delta = sub.groupby("intervention")["delta"].mean()
    out = {k: float(delta.get(v, math.nan)) for k, v in KEYS.items()}
    gain = sub["gain_vs_matched"].dropna()
    out["at_gain"] = float(gain.mean()) if len(gain) else math.nan
    return out


#: glue names of the interventions' mean loss changes
KEYS = dict(at_open="gate open: KAN path only", at_closed="gate closed: MLP path only",
            at_no_kan="KAN path ablated", at_no_mlp="MLP path ablated")


def _words(intervention: str) -> str:
    """"gate open: KAN path only" -> "gate open (KAN path only)", for a list inside a sentence."""
    head, _, tail = intervention.partition(": ")
    return f"{head} ({tail})" if tail else head


def verdict_numbers(df) -> dict:
    """Words for every JHCG variant: each intervention's mean loss change with the table's sign, whether removing
    the KAN path raised the loss at every seed, and at how many seeds JHCG was below its matched MLP."""
    ok = sw.ok_rows(df)
    parts, rely, not_rely, seeds_words = [], [], [], []
    for variant, sub in ok.groupby("variant", sort=False):
        label = sub["label"].iloc[0]
        delta = sub.groupby("intervention")["delta"].mean()
        changes = ", ".join(f"{_words(name)} {W.signed(delta.get(name, math.nan))}" for name in KEYS.values())
        parts.append(f"{label}: {changes}")
        no_kan = sub.loc[sub["intervention"] == "KAN path ablated", "delta"].dropna()
        (rely if len(no_kan) and (no_kan > 0).all() else not_rely).append(label)
        gain = sub.loc[sub["intervention"] == "as trained", "gain_vs_matched"].dropna()
        seeds_words.append(f"{label} at {int((gain > 0).sum())} of {len(gain)} seeds "
                           f"(mean gain {W.signed(gain.mean()) if len(gain) else '—'})")
    if not parts:
        return dict(jv_at_changes="no JHCG model was evaluated", jv_at_rely="nothing can be said",
                    jv_at_seeds="no seed was measured")
    if not not_rely:
        rely_words = ("zeroing the KAN path raised the validation loss at every seed of every variant, so every "
                      "trained JHCG model relies on its KAN path")
    elif not rely:
        rely_words = "zeroing the KAN path did not raise the validation loss at every seed of any variant"
    else:
        rely_words = (f"zeroing the KAN path raised the validation loss at every seed of {W.joined(rely)}, not of "
                      f"{W.joined(not_rely)}")
    return dict(jv_at_changes="; ".join(parts), jv_at_rely=rely_words, jv_at_seeds="; ".join(seeds_words))
