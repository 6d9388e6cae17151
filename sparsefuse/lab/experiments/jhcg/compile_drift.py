"""JHCG compile drift: does ``torch.compile`` change what a JHCG Transformer learns?

Why: the compiler fuses and reorders floating-point work, so a compiled model's
loss is never bitwise the eager one; what matters is whether the difference stays
at rounding level or grows through training. Each variant trains twice from the
same seed on the same batches, once eagerly and once through ``torch.compile``;
the table gives the largest and the final absolute difference of the training
loss curves, both validation losses and the throughput of each. The MLP row
calibrates: it shows the drift the compiler causes in a model without KAN layers.
"""
from __future__ import annotations

import math
import warnings

import numpy as np
import torch

from sparsefuse import status as S
from . import _lm as L
from . import words as W
from .._page import legend_on_top, log_ticks, page_figure, panels
from .. import _sweep as sw
from .. import recorded
from ...words import faster

NAME = "jhcg_compile_drift"

PROFILES = {
    # aot_eager traces like inductor without generating code: smoke checks the plumbing, not the numerics
    "smoke": dict(train=L.TRAIN["smoke"], seed=0, variants=["mlp", "jhcg-expanded-0.25"], backend="aot_eager"),
    "quick": dict(train=dict(L.TRAIN["quick"], steps=100), seed=0, variants=["mlp", "jhcg-expanded-0.25"],
                  backend="inductor"),
    "paper": dict(train=dict(L.TRAIN["paper"], steps=1000), seed=0,
                  variants=["mlp", "kan", "jhcg-compact-0.25", "jhcg-expanded-0.25"], backend="inductor"),
}

COLUMNS = ["section", "variant", "label", "backend", "seed", "steps", "max_abs_diff", "max_rel_diff", "step_of_max",
           "final_abs_diff", "val_loss_eager", "val_loss_compiled", "tokens_per_s_eager", "tokens_per_s_compiled",
           "compile_speedup", "step", "loss_eager", "loss_compiled", "status", "note"]


@recorded(PROFILES)
def run(cfg: dict, device="cpu", progress: bool = True):
    """A ``summary`` row per variant and the paired loss curves (``section == "curve"``)."""
    dev = sw.check_device(device)
    for name in cfg["variants"]:
        L.describe(name)
    rows = []
    for name in sw.progress_bar(cfg["variants"], progress=progress, desc=NAME):
        eager = L.train_run(name, cfg["seed"], cfg["train"], dev, keep_model=False)
        with warnings.catch_warnings():  # Dynamo's note on the basis module's lru_cache, once per trace
            warnings.filterwarnings("ignore", message=".*functools.lru_cache", category=UserWarning)
            comp = L.train_run(name, cfg["seed"], cfg["train"], dev, compiled=cfg["backend"], keep_model=False)
        torch._dynamo.reset()
        base = dict(variant=name, label=eager.row["label"], backend=cfg["backend"], seed=cfg["seed"])
        bad = next((r.row for r in (eager, comp) if r.row["status"] != S.OK), None)
        if bad is not None:
            rows.append(dict(base, section="summary", status=bad["status"], note=bad["note"]))
            continue
        a = eager.curve.set_index("step")["loss"]
        b = comp.curve.set_index("step")["loss"].reindex(a.index)
        diff = (a - b).abs()
        at = int(diff.idxmax()) if diff.notna().any() else -1
        rows.append(dict(base, section="summary", steps=len(a), max_abs_diff=diff.max(),
                         max_rel_diff=(diff / a.abs()).max(), step_of_max=at, final_abs_diff=diff.iloc[-1],
                         val_loss_eager=eager.row["val_loss"], val_loss_compiled=comp.row["val_loss"],
                         tokens_per_s_eager=eager.row["tokens_per_s"], tokens_per_s_compiled=comp.row["tokens_per_s"],
                         compile_speedup=comp.row["tokens_per_s"] / eager.row["tokens_per_s"], status=S.OK, note=""))
        rows += [dict(base, section="curve", step=int(s), loss_eager=float(x), loss_compiled=float(y), status=S.OK)
                 for s, x, y in zip(a.index, a.to_numpy(), b.to_numpy())]
    return sw.finish(rows, COLUMNS)


def summary(df):
    cols = ["label", "backend", "steps", "max_abs_diff", "max_rel_diff", "step_of_max", "final_abs_diff",
            "val_loss_eager", "val_loss_compiled", "tokens_per_s_eager", "tokens_per_s_compiled", "compile_speedup",
            "status", "note"]
    return df[df["section"] == "summary"][cols].reset_index(drop=True)


@page_figure
def plot(df):
    """Eager and compiled loss curves per variant (top), and their absolute difference per step (bottom)."""
    curves = df[df["section"] == "curve"]
    fig, axes = panels(2, height=3.0)
    for name, g in curves.groupby("variant", sort=False):
        line, = axes[0].plot(g["step"], g["loss_eager"], lw=1, label=f"{g['label'].iloc[0]} eager")
        axes[0].plot(g["step"], g["loss_compiled"], "--", lw=1, color=line.get_color(),
                     label=f"{g['label'].iloc[0]} compiled")
        d = (g["loss_eager"] - g["loss_compiled"]).abs().to_numpy()
        axes[1].plot(g["step"], np.where(d > 0, d, np.nan), lw=1, color=line.get_color())
    axes[0].set_yscale("log")
    log_ticks(axes[0], "y")
    axes[0].set_ylabel("training loss")
    backend = next((b for b in df["backend"] if isinstance(b, str) and b), "")
    axes[0].set_title(f"torch.compile (backend {backend}) against eager, same seed and batches")
    axes[1].set_ylabel("|eager − compiled|")
    axes[1].set_title("difference per step, colours as above (steps where they agree exactly are not drawn)")
    if curves[["loss_eager", "loss_compiled"]].sub(0).abs().pipe(lambda x: (x > 0).any().any()):
        axes[1].set_yscale("log")
    for ax in axes:
        ax.set_xlabel("step")
        ax.grid(True, alpha=0.3)
    legend_on_top(fig, axes[:1], ncols=2)
    return fig


def max_divergence(df) -> float:
    """The largest absolute loss difference over every variant (NaN when nothing ran)."""
    s = df.loc[df["section"] == "summary", "max_abs_diff"].astype(float)
    return float(s.max()) if s.notna().any() else math.nan


def key_numbers(df, variant: str = "jhcg-expanded-0.25") -> dict:
    """Largest and final loss difference for ``variant`` and for the MLP, and the compiled speedup."""
    s = df[df["section"] == "summary"].set_index("variant")

    def get(name, col):
        return float(s.loc[name, col]) if name in s.index else math.nan

    return dict(cd_max=get(variant, "max_abs_diff"), cd_final=get(variant, "final_abs_diff"),
                cd_step=get(variant, "step_of_max"), cd_mlp_max=get("mlp", "max_abs_diff"),
                cd_speedup=get(variant, "compile_speedup"), cd_steps=get(variant, "steps"),
                cd_val_eager=get(variant, "val_loss_eager"), cd_val_compiled=get(variant, "val_loss_compiled"))


def verdict_numbers(df, variant: str = "jhcg-expanded-0.25") -> dict:
    """Words for the chapter's verdict, from the numbers: the JHCG model's largest compile drift against the MLP
    model's as a ratio (:func:`~.words.order`, "of the same order" only within a factor of ten), what the
    backend can show, and each variant's compiled throughput against eager."""
    k = key_numbers(df, variant)
    j, m = k["cd_max"], k["cd_mlp_max"]
    cmp = W.order(j, m, "JHCG", "the MLP model's largest difference")
    if cmp["kind"] == "missing":
        text, claim = "could not be compared with the MLP model's", "could not be tested"
    elif cmp["kind"] == "larger":
        text = f"{cmp['words']}: the JHCG model drifts more than the compiler makes a plain MLP model drift"
        claim = "does not hold here: JHCG adds drift beyond the MLP model's"
    elif cmp["kind"] == "smaller":
        text = cmp["words"]
        claim = ("holds here: the JHCG model drifts less than the compiler makes a plain MLP model drift, "
                 "so its KAN path adds no drift beyond that")
    else:
        text = f"{cmp['words']}"
        claim = "holds here: the JHCG model's drift is of the MLP model's order"
    s = df[df["section"] == "summary"]
    backend = next((b for b in s.get("backend", []) if isinstance(b, str) and b), "")
    if backend == "aot_eager":
        backend_words = ("The backend was aot_eager, which traces the model but runs the eager kernels: the "
                         "difference is at rounding level by construction, and only the plumbing is tested.")
    elif backend:
        backend_words = f"The backend was {backend}, which generates its own kernels."
    else:
        backend_words = ""
    speed = [f"{r.label} model {faster(r.compile_speedup, 'eager')}" for r in s.itertuples()
             if W.finite(getattr(r, "compile_speedup", float("nan")))]
    return dict(jv_cd_text=text, jv_cd_claim=claim, cd_ratio=cmp["ratio"], cd_order_factor=W.ORDER_FACTOR,
                jv_cd_backend=backend_words,
                jv_cd_speed="; ".join(speed) if speed else "throughput was not measured",
                jv_cd_jhcg_speed=faster(k["cd_speedup"], "eager"))
