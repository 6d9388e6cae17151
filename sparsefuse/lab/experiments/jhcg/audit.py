"""Controlled Transformer audit: MiniGPT with only its FFN changed, over several seeds.

Why controlled: a JHCG block has more parameters than the MLP it replaces, so a
lower loss alone does not show that the KAN path helps. Every row here trains the
same MiniGPT (attention, embeddings, optimizer, schedule, batches and tokens seen
are identical; only the FFN differs) from each of several seeds: the MLP FFN, an
MLP FFN widened to each JHCG block's parameter count (the control), the KAN FFN,
and the JHCG variants. The matrix table gives validation loss as mean ± std over
seeds, throughput and peak memory per variant.
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
from ...words import faster

NAME = "jhcg_audit"

PROFILES = {
    "smoke": dict(train=L.TRAIN["smoke"], seeds=[0, 1], baselines=["mlp", "kan"],
                  jhcg=[("compact", 0.25), ("expanded", 0.25)], matched=True),
    # ~3 minutes on one H200 together with the attribution and adaptation (which reuse these runs)
    "quick": dict(train=L.TRAIN["quick"], seeds=[0, 1, 2], baselines=["mlp", "kan"],
                  jhcg=[("compact", 0.25), ("expanded", 0.25)], matched=True),
    "paper": dict(train=L.TRAIN["paper"], seeds=[0, 1, 2, 3, 4], baselines=["mlp", "kan"],
                  jhcg=[(v, r) for v in ("compact", "expanded") for r in (0.125, 0.25, 0.5, 1.0)], matched=True),
}

COLUMNS = ["section"] + L.ROW_COLUMNS + ["step", "loss"]


def variants(cfg) -> list[str]:
    """Baselines first, then each JHCG variant preceded by its parameter-matched MLP."""
    out = list(cfg["baselines"])
    for name in L.jhcg_names(cfg["jhcg"]):
        out += ([L.matched_name(name)] if cfg["matched"] else []) + [name]
    for name in out:
        L.describe(name)  # a typo fails before any training
    return out


@recorded(PROFILES)
def run(cfg: dict, device="cpu", progress: bool = True):
    """One ``run`` row per (variant, seed) plus the loss curves (``section == "curve"``)."""
    dev = sw.check_device(device)
    names = variants(cfg)
    rows, curves = [], []
    plan = [(n, s) for s in cfg["seeds"] for n in names]
    for name, seed in sw.progress_bar(plan, progress=progress, desc=NAME):
        r = L.train_run(name, seed, cfg["train"], dev)
        rows.append(dict(r.row, section="run"))
        curves += [dict(section="curve", variant=name, label=r.row["label"], seed=seed, step=int(s), loss=float(v),
                        status=S.OK) for s, v in zip(r.curve["step"], r.curve["loss"])]
    df = sw.finish(rows + curves, COLUMNS)
    prov = L.corpus(cfg["train"]["max_chars"])[3]
    df["corpus"] = prov["source"]
    df.attrs["corpus"] = prov
    df.attrs["parameters"] = dict(corpus=prov)
    return df


def matrix(df) -> pd.DataFrame:
    """One row per variant: parameters, validation loss mean ± std over seeds, tokens/s, peak memory, and the gains
    (baseline loss − variant loss, positive: the variant lower) over the MLP and over the matched MLP."""
    runs = df[df["section"] == "run"]
    out = []
    for name, g in runs.groupby("variant", sort=False):
        ok = g[g["status"] == S.OK]
        vl = ok["val_loss"].astype(float)
        out.append(dict(variant=name, label=g["label"].iloc[0], params=g["params"].max(), seeds_ok=len(ok),
                        seeds=len(g), val_loss_mean=vl.mean(), val_loss_std=vl.std(ddof=1) if len(vl) > 1 else math.nan,
                        tokens_per_s=ok["tokens_per_s"].mean(), peak_mib=ok["peak_mib"].mean()))
    m = pd.DataFrame(out)
    if m.empty:
        return m
    m["val_loss"] = [f"{a:.4f} ± {b:.4f}" if math.isfinite(b) else f"{a:.4f}" for a, b in
                     zip(m["val_loss_mean"], m["val_loss_std"])]
    base = m.set_index("variant")["val_loss_mean"]
    # a gain is the baseline's loss minus the variant's (positive: the variant is lower), the sign of the
    # attribution's gain over the matched MLP, so that every table and figure of the page reads one way
    m["gain_vs_mlp"] = base.get("mlp", math.nan) - m["val_loss_mean"]
    m["gain_vs_matched_mlp"] = [base.get(L.matched_name(row.variant), math.nan) - row.val_loss_mean
                                if row.variant.startswith("jhcg-") else math.nan for row in m.itertuples()]
    return m


@page_figure
def plot(df):
    """Validation loss (mean ± std over seeds) and tokens/s as horizontal bars, then the mean training-loss curves."""
    import numpy as np
    from matplotlib.ticker import FuncFormatter

    m = matrix(df)
    fig, axes = panels(3, height=2.9)
    ys = np.arange(len(m))[::-1]  # table order from the top
    colors = ["#1f77b4" if v.startswith("jhcg") else "#7f7f7f" if v.startswith("mlp") else "#2ca02c"
              for v in m["variant"]]
    axes[0].barh(ys, m["val_loss_mean"], xerr=m["val_loss_std"].fillna(0), color=colors, capsize=3)
    lo = np.nanmin(m["val_loss_mean"] - m["val_loss_std"].fillna(0)) if len(m) else 0
    hi = np.nanmax(m["val_loss_mean"] + m["val_loss_std"].fillna(0)) if len(m) else 1
    if np.isfinite(lo) and np.isfinite(hi) and hi > lo:
        axes[0].set_xlim(lo - 0.2 * (hi - lo), hi + 0.2 * (hi - lo))
    axes[0].set_xlabel("validation loss (nats/char)")
    runs = df[df["section"] == "run"]
    seeds = f" over {runs['seed'].nunique()} seeds of {int(runs['steps'].max())} steps" if len(runs) else ""
    axes[0].set_title(f"validation loss, mean ± std{seeds}")
    axes[1].barh(ys, m["tokens_per_s"], color=colors)
    axes[1].set_xlabel("training tokens/s (mean over seeds; blue: JHCG, grey: MLPs, green: KAN)")
    axes[1].set_title("training throughput")
    axes[1].xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v / 1000:g}k" if v else "0"))
    for ax in axes[:2]:
        ax.set_yticks(ys, m["label"])
        ax.grid(True, axis="x", alpha=0.3)
    ax = axes[2]
    curves = df[df["section"] == "curve"]
    for name, g in curves.groupby("variant", sort=False):
        mean = g.groupby("step")["loss"].mean()
        ax.plot(mean.index, mean.to_numpy(), label=g["label"].iloc[0], lw=1)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title("training loss (mean over seeds)")
    ax.grid(True, alpha=0.3)
    legend_on_top(fig, [ax], ncols=2, where="lower")
    return fig


def key_numbers(df, variant: str = "jhcg-expanded-0.25") -> dict:
    """Validation losses (mean, std) of ``variant``, its matched MLP and the MLP, and the seed count."""
    m = matrix(df).set_index("variant") if len(df) else pd.DataFrame()

    def get(name, col):
        return float(m.loc[name, col]) if name in m.index else math.nan

    control = L.matched_name(variant)
    return dict(au_seeds=int(df.loc[df["section"] == "run", "seed"].nunique()),
                au_steps=int(df.loc[df["section"] == "run", "steps"].max()) if len(df) else 0,
                au_jhcg=get(variant, "val_loss_mean"), au_jhcg_std=get(variant, "val_loss_std"),
                au_matched=get(control, "val_loss_mean"), au_matched_std=get(control, "val_loss_std"),
                au_mlp=get("mlp", "val_loss_mean"), au_mlp_std=get("mlp", "val_loss_std"),
                au_kan=get("kan", "val_loss_mean"), au_kan_std=get("kan", "val_loss_std"),
                au_gain=get(control, "val_loss_mean") - get(variant, "val_loss_mean"),
                au_tps_ratio=get(variant, "tokens_per_s") / get("mlp", "tokens_per_s"),
                au_params_jhcg=get(variant, "params"), au_params_mlp=get("mlp", "params"))


def _judge(gain: float, spread: float, control: str = "its parameter-matched MLP") -> str:
    """A gain (control's mean validation loss − JHCG's) against the larger of the two stds over seeds."""
    if not W.finite(gain):
        return "could not be measured"
    if W.finite(spread) and abs(gain) <= spread:
        return "within the spread over seeds, so no difference can be claimed"
    return f"{'lower' if gain > 0 else 'higher'} than {control} by more than the spread over seeds"


def verdict_numbers(df, variant: str = "jhcg-expanded-0.25") -> dict:
    """Words for the chapter's verdict, for every JHCG variant in the table: its validation loss against its
    parameter-matched MLP as the matrix table gives it (``gain_vs_matched_mlp`` = matched − JHCG, positive: JHCG
    lower), judged against the larger of the two standard deviations over seeds."""
    m = matrix(df)
    parts, lower, higher, within = [], [], [], []
    if len(m):
        byname = m.set_index("variant")
        for r in m[m["variant"].str.startswith("jhcg-")].itertuples():
            ctrl = L.matched_name(r.variant)
            if ctrl not in byname.index:
                continue
            c = byname.loc[ctrl]
            gain = c["val_loss_mean"] - r.val_loss_mean
            spread = max(r.val_loss_std, c["val_loss_std"]) if W.finite(r.val_loss_std) and W.finite(
                c["val_loss_std"]) else float("nan")
            judge = _judge(gain, spread)
            (lower if judge.startswith("lower") else higher if judge.startswith("higher") else within).append(r.label)
            parts.append(f"{r.label} reached {r.val_loss_mean:.4f} ± {r.val_loss_std:.4f} nats/char against "
                         f"{c['val_loss_mean']:.4f} ± {c['val_loss_std']:.4f} for its parameter-matched MLP, a "
                         f"gain of {W.signed(gain)} ({W.higher_lower(-gain)}), {judge}")
    n = len(parts)
    if not n:
        overall = "No JHCG variant could be compared with a parameter-matched MLP"
    elif len(within) == n:
        overall = ("No JHCG variant's gain over its parameter-matched MLP exceeds the spread over seeds: "
                   "these numbers show no gain beyond the parameters the block adds")
    else:
        bits = []
        if lower:
            bits.append(f"{W.joined(lower)} lower than {'its' if len(lower) == 1 else 'their'} control beyond the "
                        "spread over seeds")
        if higher:
            bits.append(f"{W.joined(higher)} higher than {'its' if len(higher) == 1 else 'their'} control beyond "
                        "the spread over seeds")
        if within:
            bits.append(f"{W.joined(within)} within it")
        overall = "; ".join(bits)
        overall = overall[0].upper() + overall[1:]
    k = key_numbers(df, variant)
    corpora = [str(c) for c in dict.fromkeys(df["corpus"].dropna())] if "corpus" in df.columns else []
    named = {"python-stdlib": "the Python standard library's source"}
    return dict(jv_au_corpus=W.joined([named.get(c, f"the corpus {c}") for c in corpora]) if corpora
                else "a corpus the table does not name",
                jv_au_variants="; ".join(parts) if parts else "no JHCG variant was measured",
                jv_au_text=overall, jv_au_count=n,
                jv_au_tps=faster(k["au_tps_ratio"], "the MLP model"))
