"""nanochat portability scout: swap an external nanochat model's MLPs for JHCG blocks and measure a short run.

Why: the controlled audit uses this repository's MiniGPT; a block that only works
there is not portable. nanochat (Karpathy) is a small, widely read GPT codebase
whose blocks hold ``mlp.c_fc`` / ``mlp.c_proj`` (``relu²`` MLP, no biases, bf16
autocast, RMSNorm without parameters). :func:`swap_mlps` replaces every such MLP
by a :class:`NanochatJHCG` with the same model and hidden width, and :func:`run`
trains the original and the swapped model from the same seed on the same batches
for a few steps (AdamW, not nanochat's Muon setup: the scout checks that the swap
runs, fits and learns, not nanochat's recipe). nanochat is not a dependency:
set ``NANOCHAT_ROOT`` to a checkout; without it the table holds ``skipped`` rows.
"""
from __future__ import annotations

import dataclasses
import importlib
import os
import subprocess
import sys
import time
from pathlib import Path

import torch
from torch import nn

from sparsefuse import jhcg as J

from sparsefuse import status as S
from sparsefuse.lab.measure import count_parameters, PeakMemory, seed_everything
from sparsefuse.training import synchronize
from .. import _guard as guard
from . import _lm as L
from . import words as W
from .. import _sweep as sw
from .. import minigpt as LM
from .. import recorded
from ...words import faster

NAME = "jhcg_nanochat"
ENV = "NANOCHAT_ROOT"

PROFILES = {
    "smoke": dict(n_layer=2, n_embd=64, n_head=2, sequence_len=32, batch_size=4, steps=4, lr=3e-3, rho=0.25,
                  variant="expanded", grid_size=5, eval_batches=2, max_chars=60_000),
    "quick": dict(n_layer=6, n_embd=384, n_head=6, sequence_len=256, batch_size=16, steps=30, lr=1e-3, rho=0.25,
                  variant="expanded", grid_size=5, eval_batches=4, max_chars=2_000_000),
    "paper": dict(n_layer=12, n_embd=768, n_head=6, sequence_len=1024, batch_size=8, steps=300, lr=6e-4, rho=0.25,
                  variant="expanded", grid_size=5, eval_batches=20, max_chars=None),
}

COLUMNS = ["variant", "label", "mlps_swapped", "params", "steps", "tokens_per_s", "peak_mib", "final_loss",
           "val_loss", "nanochat_commit", "status", "note"]


class NanochatJHCG(nn.Module):
    """A JHCG block with nanochat's MLP interface; float32 parameters, any input dtype (bf16 outside autocast too)."""

    def __init__(self, d: int, hidden: int, *, rho: float, grid_size: int, variant: str, impl: str = "auto"):
        super().__init__()
        self.block = J.SparseFuseJHCG(d, rho, grid_size, variant, hidden=hidden, impl=impl)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.block.gate_weight
        if x.dtype == w.dtype or torch.is_autocast_enabled(x.device.type):
            return self.block(x)
        return self.block(x.to(w.dtype)).to(x.dtype)


def swap_mlps(model: nn.Module, *, rho: float, grid_size: int, variant: str, impl: str = "auto") -> int:
    """Replace every ``<module>.mlp`` that has ``c_fc``/``c_proj`` linear layers; returns how many were swapped."""
    owners = [m for m in model.modules() if isinstance(getattr(m, "mlp", None), nn.Module)]
    swapped = 0
    for owner in owners:
        mlp = owner.mlp
        fc, proj = getattr(mlp, "c_fc", None), getattr(mlp, "c_proj", None)
        if not (isinstance(fc, nn.Linear) and isinstance(proj, nn.Linear)):
            continue
        d, hidden = fc.in_features, fc.out_features
        if proj.in_features != hidden or proj.out_features != d:
            raise ValueError(f"mlp: c_fc {d}->{hidden} and c_proj {proj.in_features}->{proj.out_features} "
                             "do not form a d -> h -> d block")
        new = NanochatJHCG(d, hidden, rho=rho, grid_size=grid_size, variant=variant, impl=impl)
        owner.mlp = new.to(fc.weight.device)
        swapped += 1
    return swapped


def load_gpt(root: str | os.PathLike):
    """``nanochat.gpt`` imported from the checkout at ``root`` (an earlier import from elsewhere is dropped)."""
    root = Path(root).resolve()
    if not (root / "nanochat" / "gpt.py").is_file():
        raise FileNotFoundError(f"{ENV}={str(root)!r} holds no nanochat/gpt.py")
    for name in [n for n in sys.modules if n == "nanochat" or n.startswith("nanochat.")]:
        mod_file = getattr(sys.modules[name], "__file__", None) or ""
        if not mod_file.startswith(str(root)):
            del sys.modules[name]
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    return importlib.import_module("nanochat.gpt")


def _commit(root) -> str:
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "--short=10", "HEAD"], capture_output=True,
                             text=True, timeout=10)
        return out.stdout.strip() if out.returncode == 0 else "unknown"
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"


def build(gpt, cfg: dict, vocab_size: int, device) -> nn.Module:
    """nanochat's GPT at the profile's size; only the config fields this checkout knows are passed."""
    known = {f.name for f in dataclasses.fields(gpt.GPTConfig)}
    kw = dict(sequence_len=cfg["sequence_len"], vocab_size=vocab_size, n_layer=cfg["n_layer"], n_head=cfg["n_head"],
              n_kv_head=cfg["n_head"], n_embd=cfg["n_embd"])
    with torch.device(device):
        model = gpt.GPT(gpt.GPTConfig(**{k: v for k, v in kw.items() if k in known}))
        if hasattr(model, "init_weights"):
            model.init_weights()
    return model


def _loss(model, x, y):
    out = model(x.contiguous(), targets=y.contiguous())  # nanochat flattens the targets with .view
    return out[-1] if isinstance(out, (tuple, list)) else out


def measure(model, cfg: dict, seed: int, device) -> dict:
    """A few AdamW steps under bf16 autocast on the corpus; tokens/s after the first step, then validation loss."""
    _, train_ids, val_ids, _ = L.corpus(cfg["max_chars"])
    bs, t = cfg["batch_size"], cfg["sequence_len"]
    opt = torch.optim.AdamW(model.parameters(), lr=cfg["lr"], betas=(0.9, 0.95), weight_decay=0.0)
    amp = torch.autocast(torch.device(device).type, dtype=torch.bfloat16)
    model.train()
    times, loss = [], float("nan")
    with PeakMemory(device) as mem:
        for step in range(cfg["steps"]):
            x, y = LM.global_batch(train_ids, step, seed=seed, batch_size=bs, block_size=t, device=device)
            with amp:
                out = _loss(model, x, y)
            opt.zero_grad(set_to_none=True)
            out.backward()
            opt.step()
            loss = out.item()
            synchronize(device)
            times.append(time.perf_counter())
    tps = (len(times) - 1) * bs * t / (times[-1] - times[0]) if len(times) > 2 else float("nan")
    model.eval()
    with torch.no_grad(), amp:
        vals = [_loss(model, *LM.global_batch(val_ids, b, seed=seed + 7919, batch_size=bs, block_size=t,
                                              device=device)).item() for b in range(cfg["eval_batches"])]
    return dict(params=count_parameters(model), steps=len(times), tokens_per_s=tps, peak_mib=mem.mib,
                final_loss=loss, val_loss=sum(vals) / len(vals) if vals else float("nan"))


@recorded(PROFILES)
def run(cfg: dict, device="cpu", progress: bool = True, root: str | None = None):
    """Rows for nanochat's own MLP and for JHCG swapped in; ``skipped`` rows when no checkout is given."""
    root = root or os.environ.get(ENV)
    df = _rows(cfg, sw.check_device(device), root, progress)
    df.attrs["parameters"] = dict(nanochat_root=root or "")
    return df


def _rows(cfg: dict, dev, root: str | None, progress: bool):
    J.kan_width(cfg["n_embd"], cfg["rho"], cfg["variant"])  # bad settings fail before anything runs
    jname = f"jhcg-{cfg['variant']}-{cfg['rho']:g}"
    plan = [("mlp", "nanochat MLP (relu²)"), (jname, f"nanochat + JHCG {cfg['variant']} ρ={cfg['rho']:g}")]
    if not root:
        why = f"skipped: set {ENV} to a nanochat checkout (git clone https://github.com/karpathy/nanochat) to run it"
        return sw.finish([dict(variant=v, label=lab, status=S.SKIPPED, note=why) for v, lab in plan], COLUMNS)
    try:
        gpt = load_gpt(root)
    except Exception as exc:  # noqa: BLE001 - a broken checkout is this table's result
        status, note = S.failure(exc)
        return sw.finish([dict(variant=v, label=lab, status=status, note=note) for v, lab in plan], COLUMNS)
    vocab_size = L.corpus(cfg["max_chars"])[0]
    rows = []
    for variant, label in sw.progress_bar(plan, progress=progress, desc=NAME):
        row = dict(variant=variant, label=label, nanochat_commit=_commit(root), status=S.OK, note="")
        try:
            seed_everything(0)
            model = build(gpt, cfg, vocab_size, dev)
            row["mlps_swapped"] = 0 if variant == "mlp" else swap_mlps(
                model, rho=cfg["rho"], grid_size=cfg["grid_size"], variant=cfg["variant"])
            if variant != "mlp" and not row["mlps_swapped"]:
                raise ValueError("no mlp.c_fc/mlp.c_proj block found in this nanochat version")
            row.update(measure(model, cfg, 0, dev))
            del model
        except Exception as exc:  # noqa: BLE001
            row["status"], row["note"] = S.failure(exc)
        guard.free_memory(dev, collect=True)
        rows.append(row)
    return sw.finish(rows, COLUMNS)


def verdict_numbers(df) -> dict:
    """Words for the chapter's verdict: did the scout run, and how did the swapped model fare (words from ratios)?"""
    ok = df[df["status"] == S.OK] if "status" in df.columns else df.iloc[0:0]
    if ok.empty:
        note = str(df["note"].iloc[0]) if len(df) and "note" in df.columns else ""
        return dict(jv_nc_text="did not run here" + (f" ({note})" if note and note != "nan" else ""))
    rows = {r.variant: r for r in ok.itertuples()}
    base, swap = rows.get("mlp"), next((r for v, r in rows.items() if v != "mlp"), None)
    if base is None or swap is None:
        return dict(jv_nc_text="ran for only one of the two models")
    diff = swap.val_loss - base.val_loss
    return dict(jv_nc_text=(f"ran: with {int(swap.mlps_swapped)} MLP blocks swapped for JHCG the model trained "
                            f"{faster(swap.tokens_per_s / base.tokens_per_s, 'with nanochat’s own MLP')} and "
                            f"reached a validation loss of {swap.val_loss:.4f} against {base.val_loss:.4f} "
                            f"({W.signed(diff)}, {W.higher_lower(diff)})"))
