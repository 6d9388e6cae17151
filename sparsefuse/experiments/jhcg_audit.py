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

from .. import status as S
from . import _jhcg_lm as L
from ._page import page_figure, panels
from . import _sweep as sw
from . import recorded

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
    """One row per variant: parameters, validation loss mean ± std over seeds, tokens/s, peak memory, deltas."""
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
    m["vs_mlp"] = m["val_loss_mean"] - base.get("mlp", math.nan)
    m["vs_matched_mlp"] = [row.val_loss_mean - base.get(L.matched_name(row.variant), math.nan)
                           if row.variant.startswith("jhcg-") else math.nan for row in m.itertuples()]
    return m


@page_figure
def plot(df):
    """Validation loss (mean ± std over seeds), tokens/s, and the mean training-loss curves, one panel each."""
    import numpy as np

    m = matrix(df)
    fig, axes = panels(3, height=3.0)
    xs = np.arange(len(m))
    colors = ["#1f77b4" if v.startswith("jhcg") else "#7f7f7f" if v.startswith("mlp") else "#2ca02c"
              for v in m["variant"]]
    axes[0].bar(xs, m["val_loss_mean"], yerr=m["val_loss_std"].fillna(0), color=colors, capsize=3)
    lo = np.nanmin(m["val_loss_mean"] - m["val_loss_std"].fillna(0)) if len(m) else 0
    hi = np.nanmax(m["val_loss_mean"] + m["val_loss_std"].fillna(0)) if len(m) else 1
    if np.isfinite(lo) and np.isfinite(hi) and hi > lo:
        axes[0].set_ylim(lo - 0.2 * (hi - lo), hi + 0.2 * (hi - lo))
    axes[0].set_ylabel("nats/char")
    runs = df[df["section"] == "run"]
    seeds = f" over {runs['seed'].nunique()} seeds of {int(runs['steps'].max())} steps" if len(runs) else ""
    axes[0].set_title(f"validation loss, mean ± std{seeds} (blue: JHCG, grey: MLPs)")
    axes[1].bar(xs, m["tokens_per_s"], color=colors)
    axes[1].set_ylabel("tokens/s")
    axes[1].set_title("training throughput (mean over seeds)")
    for ax in axes[:2]:
        ax.set_xticks(xs, m["label"], rotation=20, ha="right")
        ax.grid(True, axis="y", alpha=0.3)
    ax = axes[2]
    curves = df[df["section"] == "curve"]
    for name, g in curves.groupby("variant", sort=False):
        mean = g.groupby("step")["loss"].mean()
        ax.plot(mean.index, mean.to_numpy(), label=g["label"].iloc[0], lw=1)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title("training loss (mean over seeds)")
    ax.set_yscale("log")
    ax.grid(True, alpha=0.3)
    if ax.lines:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
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


def verdict_numbers(df, variant: str = "jhcg-expanded-0.25") -> dict:
    """Words for the chapter's verdict: is the gain over the parameter-matched MLP larger than the seeds' spread?"""
    k = key_numbers(df, variant)
    gain, spread = k["au_gain"], max(k["au_jhcg_std"], k["au_matched_std"])
    if gain != gain:
        text = "could not be measured"
    elif spread == spread and abs(gain) <= spread:
        text = "within the spread over seeds, so no gain can be claimed from this run"
    elif gain > 0:
        text = "lower than the control by more than the spread over seeds"
    else:
        text = "higher than the control by more than the spread over seeds"
    return dict(jv_au_text=text)
