"""MiniGPT-KAN: does a KAN FFN make a trainable Transformer on one GPU, and at what cost?

Three measurements, each for an MLP FFN, a KAN FFN on the default path
(``impl="auto"``: the fused kernel on CUDA) and a KAN FFN on the reference
(efficient-kan) path:

* ``budget``    — Scale-A trained for a fixed number of steps: tokens/s, peak
  memory, final train and validation loss (plus the loss curves);
* ``seq_sweep`` — tokens/s and peak memory as the sequence length grows;
* ``scale_b``   — a few steps at Scale-B, the feasibility point: does it fit?

An out-of-memory run is a row with ``status="oom"``, a diverging one
``status="diverged"``; neither stops the sweep.
"""
from __future__ import annotations

import textwrap

import torch

from sparsefuse import status as S
from sparsefuse.lab import text_data
from sparsefuse.lab.models import minigpt as M
from sparsefuse.lab.measure import one_thread_on_cpu
from sparsefuse.training import train_loop

from . import _sweep as sw
from . import check_choices, recorded
from ._page import page_figure, with_note
from ._transformer_runs import VARIANTS, lr_at, oom_words, steady_rate, train_variant, variant_row
from ..words import faster, joined, less

NAME = "minigpt_kan"

PROFILES = {
    "smoke": dict(variants=["mlp", "kan-auto", "kan-reference"], seed=0, max_chars=200_000,
                  budget_config="tiny", budget_steps=20, batch_size=4, block_size=32, lr=3e-3, eval_batches=2,
                  sweep_variants=["mlp", "kan-auto", "kan-reference"], sweep_config="tiny", sweep_lengths=[16, 32],
                  sweep_batch_size=2, sweep_steps=3,
                  scale_b=False, scale_b_steps=3, scale_b_batch_size=8),
    "quick": dict(variants=["mlp", "kan-auto", "kan-reference", "gated-kan-auto"], seed=0, max_chars=None,
                  budget_config="scale-a", budget_steps=100, batch_size=32, block_size=256, lr=1e-3,
                  eval_batches=10,
                  sweep_variants=["mlp", "kan-auto", "kan-reference"],
                  sweep_config="scale-a", sweep_lengths=[512, 2048, 8192], sweep_batch_size=8,
                  sweep_steps=5,
                  scale_b=True, scale_b_steps=4, scale_b_batch_size=8),
    "paper": dict(variants=["mlp", "kan-auto", "kan-reference", "gated-kan-auto"], seed=0, max_chars=None,
                  budget_config="scale-a", budget_steps=3000, batch_size=64, block_size=256, lr=1e-3,
                  eval_batches=50,
                  sweep_variants=["mlp", "kan-auto", "kan-reference", "gated-kan-auto"],
                  sweep_config="scale-a", sweep_lengths=[128, 256, 512, 1024, 2048, 4096, 8192, 16384],
                  sweep_batch_size=8, sweep_steps=20,
                  scale_b=True, scale_b_steps=30, scale_b_batch_size=8),
}

COLUMNS = ["section", "variant", "label", "ffn", "impl", "resolved_impl", "config", "block_size", "batch_size",
           "params", "steps", "tokens_per_s", "peak_mib", "final_loss", "val_loss", "status", "note", "seed",
           "step", "loss"]


def global_batch(ids, step: int, *, seed: int, batch_size: int, block_size: int, rank: int = 0,
                 world_size: int = 1, device="cpu"):
    """This rank's slice of the step's global batch.

    Every rank draws the same ``world_size * batch_size`` windows from a
    generator seeded by (seed, step) and keeps its own slice, so N ranks see
    exactly the batch one process would see with N times the batch size.
    """
    gen = torch.Generator().manual_seed(seed * 1_000_003 + step)
    x, y = text_data.get_batch(ids, world_size * batch_size, block_size, gen)
    sl = slice(rank * batch_size, (rank + 1) * batch_size)
    return x[sl].to(device, non_blocking=True), y[sl].to(device, non_blocking=True)


def train_lm(model, train_ids, *, steps: int, batch_size: int, block_size: int, lr: float, seed: int,
             device, rank: int = 0, world_size: int = 1, progress: bool = True, desc: str = "train",
             all_reduce=None):
    """Train ``model`` (plain, DDP or FSDP-wrapped) for ``steps`` AdamW steps.

    Returns ``(TrainResult, tokens_per_s)``; tokens/s counts every rank's tokens
    and leaves out the first step(s), which include compilation and autotuning.
    ``all_reduce`` averages the logged loss over ranks so every rank stops on
    the same step if one diverges.
    """
    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.95), weight_decay=0.1)
    model.train()

    def step_fn(step):
        for g in opt.param_groups:
            g["lr"] = lr_at(step, steps, lr)
        x, y = global_batch(train_ids, step, seed=seed, batch_size=batch_size, block_size=block_size,
                            rank=rank, world_size=world_size, device=device)
        _, loss = model(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        loss = loss.detach()
        if all_reduce is not None:
            loss = all_reduce(loss)
        return loss.item()

    res = train_loop(step_fn, steps, desc=desc, progress=progress and rank == 0, device=device)
    return res, steady_rate(res, batch_size * block_size * world_size)


@torch.no_grad()
def eval_lm(model, val_ids, *, batches: int, batch_size: int, block_size: int, seed: int, device) -> float:
    """Mean validation loss over fixed windows (same windows for every variant)."""
    if batches < 1 or len(val_ids) <= block_size:
        return float("nan")
    model.eval()
    total = 0.0
    for b in range(batches):
        x, y = global_batch(val_ids, b, seed=seed + 7919, batch_size=batch_size, block_size=block_size,
                            device=device)
        total += model(x, y)[1].item()
    model.train()
    return total / batches


def one_run(section: str, variant: str, config: str, *, vocab_size: int, train_ids, val_ids, steps: int,
            batch_size: int, block_size: int, lr: float, seed: int, eval_batches: int, device,
            progress: bool) -> tuple[dict, list[dict]]:
    """Build, train and evaluate one model; OOM or any error becomes the row's status."""
    row = variant_row(section, variant, config, block_size=block_size, batch_size=batch_size, steps=steps,
                      seed=seed, status=S.OK, note="")

    def build():
        return M.MiniGPT(M.make_config(config, ffn=row["ffn"], impl=row["impl"], vocab_size=vocab_size,
                                       block_size=max(block_size, M.CONFIGS[config].block_size)))

    def train(model, _gen):
        return train_lm(model, train_ids, steps=steps, batch_size=batch_size, block_size=block_size, lr=lr,
                        seed=seed, device=device, progress=progress, desc=f"{section} {variant} T={block_size}")

    def evaluate(model):
        return dict(val_loss=eval_lm(model, val_ids, batches=eval_batches, batch_size=batch_size,
                                     block_size=block_size, seed=seed, device=device))

    return train_variant(row, build, train, seed=seed, device=device, rate="tokens_per_s",
                         evaluate=evaluate if eval_batches else None,
                         curve=dict(block_size=block_size, seed=seed))


@recorded(PROFILES)
def run(cfg: dict, device="cpu", progress: bool = True):
    """All three sections for the profile's variants; ``df.attrs["corpus"]`` is the corpus provenance."""
    dev = sw.check_device(device)
    check_choices(cfg, "variants", VARIANTS)
    check_choices(cfg, "sweep_variants", VARIANTS)
    text, prov = text_data.load_corpus(max_chars=cfg["max_chars"])
    tok = text_data.CharTokenizer.from_text(text)
    train_ids, val_ids = text_data.split(tok.encode(text), 0.1)
    common = dict(vocab_size=tok.vocab_size, train_ids=train_ids, val_ids=val_ids, lr=cfg["lr"], seed=cfg["seed"],
                  device=dev, progress=progress)

    plan = [("budget", v, cfg["budget_config"], cfg["budget_steps"], cfg["batch_size"], cfg["block_size"],
             cfg["eval_batches"]) for v in cfg["variants"]]
    plan += [("seq_sweep", v, cfg["sweep_config"], cfg["sweep_steps"], cfg["sweep_batch_size"], t, 0)
             for v in cfg["sweep_variants"] for t in cfg["sweep_lengths"]]
    plan += [("scale_b", v, "scale-b", cfg["scale_b_steps"], cfg["scale_b_batch_size"],
              M.CONFIGS["scale-b"].block_size, 0) for v in cfg["variants"]]

    rows, curves, too_long = [], [], {}
    for section, v, config, steps, bs, t, ev in sw.progress_bar(plan, progress=progress, desc="minigpt"):
        if section == "scale_b" and (not cfg["scale_b"] or dev.type != "cuda"):
            why = "Scale-B needs a GPU" if dev.type != "cuda" else "disabled in this profile"
            rows.append(variant_row(section, v, config, block_size=t, batch_size=bs, seed=cfg["seed"],
                                    status=S.SKIPPED, note=why))
            continue
        if section == "seq_sweep" and v in too_long:
            rows.append(variant_row(section, v, config, block_size=t, batch_size=bs, seed=cfg["seed"],
                                    status=S.OOM, note=f"not tried: OOM at T={too_long[v]}"))
            continue
        with one_thread_on_cpu(dev):
            row, curve = one_run(section, v, config, steps=steps, batch_size=bs, block_size=t, eval_batches=ev,
                                 **common)
        if section == "seq_sweep" and row["status"] == S.OOM:
            too_long[v] = t
        rows.append(row)
        if section == "budget":
            curves.extend(curve)
    df = sw.finish(rows + curves, COLUMNS)
    df["corpus"] = prov["source"]
    df.attrs["corpus"] = prov
    df.attrs["parameters"] = dict(corpus=prov, configs={k: c.as_dict() for k, c in M.CONFIGS.items()})
    return df


def _bar(ax, sub, value, xlabel, title):
    """Horizontal bars (long labels read on the y axis), peak memory written at the end of each bar."""
    import matplotlib.ticker as mt
    import numpy as np

    if sub.empty:
        ax.set_axis_off()
        return
    vals = sub[value].astype(float).fillna(0.0).to_numpy()
    y = np.arange(len(sub))[::-1]
    bars = ax.barh(y, vals, color=["#7f7f7f" if s != S.OK else "#1f77b4" for s in sub["status"]])
    for b, mib, st in zip(bars, sub["peak_mib"].astype(float), sub["status"]):
        text = f" {mib:,.0f} MiB" if np.isfinite(mib) else f" {st}"
        ax.annotate(text, (b.get_width(), b.get_y() + b.get_height() / 2), ha="left", va="center")
    ax.set_yticks(y, ["\n".join(textwrap.wrap(str(lab), 16)) for lab in sub["label"]])
    ax.xaxis.set_major_formatter(mt.FuncFormatter(lambda v, _: f"{v / 1000:g}k" if v else "0"))
    ax.set_xlabel(xlabel)
    ax.set_xlim(0, max(vals.max(), 1e-9) * 1.35)
    ax.set_title(title)


@page_figure
def plot(df):
    """Loss curves, tokens/s at the budget point (Scale-B noted), and the sequence-length sweep."""
    import matplotlib.pyplot as plt
    import matplotlib.ticker as mt

    fig, ax_d = plt.subplot_mosaic([["loss", "loss"], ["tput", "tput"], ["seq_t", "seq_m"]],
                                   figsize=(7.0, 9.0), layout="constrained")
    ax = ax_d["loss"]
    for v, g in df[df["section"] == "curve"].groupby("variant", sort=False):
        ax.plot(g["step"], g["loss"], label=g["label"].iloc[0])
    ax.set_xlabel("step")
    ax.set_ylabel("train loss (nats/char)")
    ax.set_title("fixed budget: training loss")
    if ax.lines:
        ax.legend()
    budget = df[df["section"] == "budget"]
    sb = df[df["section"] == "scale_b"]
    note = ""
    if not sb.empty:
        note = "Scale-B: " + "; ".join(f"{r.label} {r.status}" + (f" ({r.tokens_per_s:,.0f} tok/s)"
                                                                   if r.status == S.OK else "")
                                        for r in sb.itertuples())
        note = "\n".join(textwrap.wrap(note, 80))
    _bar(ax_d["tput"], budget, "tokens_per_s", with_note("training tokens/s", note),
         "fixed budget: throughput (end of bar: peak memory)")
    sweep = df[df["section"] == "seq_sweep"]
    for key, ax, ylabel in (("tokens_per_s", ax_d["seq_t"], "tokens/s"), ("peak_mib", ax_d["seq_m"], "peak MiB")):
        for v, g in sweep.groupby("variant", sort=False):
            ok = g[g["status"] == S.OK]
            line, = ax.plot(ok["block_size"], ok[key], marker="o", label=g["label"].iloc[0])
            bad = g[g["status"] == S.OOM]
            if not bad.empty and not ok.empty:
                ax.plot(bad["block_size"], [ok[key].max()] * len(bad), "x", color=line.get_color(), ms=9)
        ax.set_xscale("log", base=2)
        ts = sorted({int(t) for t in sweep["block_size"].dropna()})
        if ts:
            ax.set_xticks(ts, [str(t) for t in ts])
            ax.minorticks_off()
        if key == "peak_mib" and (sweep[key].astype(float) > 0).any():
            ax.set_yscale("log")
        else:
            ax.yaxis.set_major_formatter(mt.FuncFormatter(lambda v, _: f"{v / 1000:g}k" if v else "0"))
        ax.set_xlabel("sequence length T (×: OOM)")
        ax.set_ylabel(ylabel)
        ax.set_title(f"seq. length: {ylabel} (colours as above)" if key == "tokens_per_s" else f"seq. length: {ylabel}")
    return fig


def verdict_numbers(df) -> dict:
    """The chapter's verdict: throughput and memory at the fixed budget, how far the sweep got, Scale-B."""
    nan = float("nan")
    out: dict = {}
    budget = df[(df["section"] == "budget") & (df["status"] == S.OK)].set_index("variant")

    def get(v, col):
        return float(budget.loc[v, col]) if v in budget.index and col in budget.columns else nan

    for v, k in (("kan-auto", "fused"), ("kan-reference", "ref"), ("mlp", "mlp")):
        out[f"mg_tps_{k}"] = get(v, "tokens_per_s")
        out[f"mg_mib_{k}"] = get(v, "peak_mib")
        out[f"mg_val_{k}"] = get(v, "val_loss")
    out["mg_cmp_ref"] = faster(out["mg_tps_fused"] / out["mg_tps_ref"], "the reference path")
    out["mg_cmp_mlp"] = faster(out["mg_tps_fused"] / out["mg_tps_mlp"], "the MLP model")
    out["mg_mem_ref"] = less(out["mg_mib_ref"] / out["mg_mib_fused"], "memory", "the reference path")
    tf, tm, vf, vm = out["mg_tps_fused"], out["mg_tps_mlp"], out["mg_val_fused"], out["mg_val_mlp"]
    speed = (f"it trains {tm / tf:.3g}× slower than the MLP model" if tf < tm else
             f"it trains {tf / tm:.3g}× faster than the MLP model") if tf == tf and tm == tm else ""
    loss = ("a lower validation loss" if vf < vm - 0.01 else "a higher validation loss" if vf > vm + 0.01
            else "about the same validation loss (within 0.01)") if vf == vf and vm == vm else ""
    out["mg_tradeoff"] = (f"{speed} and reaches {loss} at this budget" if speed and loss else
                          "the MLP comparison was not measured")
    sweep = df[df["section"] == "seq_sweep"]
    for v, k in (("kan-auto", "fused"), ("kan-reference", "ref"), ("mlp", "mlp")):
        ran = sweep[(sweep["variant"] == v) & (sweep["status"] == S.OK)]["block_size"]
        out[f"mg_tmax_{k}"] = float(ran.max()) if len(ran) else nan
    out["mg_seq_text"] = _sequence_words(sweep)
    sb = df[df["section"] == "scale_b"]
    if sb.empty:
        out["mg_scale_b"] = "Scale-B was not run"
    else:
        out["mg_scale_b"] = "; ".join(
            f"{r.label}: " + (f"trained ({r.tokens_per_s:,.0f} tokens/s, {r.peak_mib:,.0f} MiB)"
                              if r.status == S.OK else str(r.status)) for r in sb.itertuples())
    out["mg_oom_text"] = oom_words(sb, "variant", "at Scale-B")
    return out


def _sequence_words(sweep) -> str:
    """How far each variant got in the sequence-length sweep, and whether anything ran out of memory."""
    if sweep.empty:
        return "the sequence-length sweep was not run"
    longest = int(sweep["block_size"].max())
    parts, ooms = [], []
    for v, rows in sweep.groupby("variant", sort=False):
        ran = rows[rows["status"] == S.OK]["block_size"]
        parts.append(f"{v} to T = {int(ran.max())}" if len(ran) else f"{v} at no T")
        bad = rows[rows["status"] == S.OOM]["block_size"]
        if len(bad):
            ooms.append(f"{v} from T = {int(bad.min())}")
    if not ooms:
        at = sweep[(sweep["block_size"] == longest) & (sweep["status"] == S.OK)].set_index("variant")["peak_mib"]
        mem = (f" (at T = {longest} the reference path peaked at {at['kan-reference']:,.0f} MiB, "
               f"{at['kan-reference'] / at['kan-auto']:.3g}× the fused model's {at['kan-auto']:,.0f} MiB)"
               if {"kan-reference", "kan-auto"} <= set(at.index) else "")
        return (f"every variant trained at every length swept, up to T = {longest} ({joined(parts)}): "
                f"nothing ran out of memory, so the long-sequence half of the claim is not tested at these "
                f"lengths{mem}")
    return f"the longest sequences trained were {joined(parts)}; out of memory: {joined(ooms)}"


def summary(df):
    """The headline table: one row per variant at the budget point and at Scale-B."""
    return df[df["section"].isin(["budget", "scale_b"])][
        ["section", "label", "resolved_impl", "config", "params", "tokens_per_s", "peak_mib", "final_loss",
         "val_loss", "status", "note"]]
