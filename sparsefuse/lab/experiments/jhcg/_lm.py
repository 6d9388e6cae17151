"""Shared plumbing of the JHCG Transformer chapters: FFN variants by name and one memoized training run each.

Why one place: the controlled audit, the attribution and the adaptation
diagnostics must read the *same* trained models (same data, seeds, steps and
optimizer), and in one notebook kernel each (variant, seed, settings) should
train once. Every run is MiniGPT with only its FFN changed; the JHCG blocks are
probed on a fixed validation batch every ``probe_every`` steps (gate statistics,
KAN inputs outside the spline grid, coefficient drift), and that probing time is
left out of tokens/s.
"""
from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field

import pandas as pd
import torch

from sparsefuse import jhcg as J
from sparsefuse.lab import text_data
from sparsefuse import status as S
from sparsefuse.lab.experiments import _guard as guard
from sparsefuse.lab.experiments import _sweep as sw
from sparsefuse.lab.experiments import minigpt as LM
from sparsefuse.lab.experiments._transformer_runs import lr_at, resolved_impl
from sparsefuse.lab.models import minigpt as M
from sparsefuse.lab.measure import count_parameters, one_thread_on_cpu, PeakMemory, seed_everything
from sparsefuse.training import synchronize, train_loop

#: Training settings shared by every JHCG Transformer experiment, per profile.
TRAIN = {
    "smoke": dict(config="tiny", block_size=32, batch_size=4, steps=10, lr=3e-3, eval_batches=2, probe_every=5,
                  grid_size=5, max_chars=60_000),
    "quick": dict(config="scale-a", block_size=128, batch_size=32, steps=150, lr=2e-3, eval_batches=8,
                  probe_every=25, grid_size=5, max_chars=2_000_000),
    "paper": dict(config="scale-a", block_size=256, batch_size=64, steps=3000, lr=1e-3, eval_batches=50,
                  probe_every=150, grid_size=5, max_chars=None),
}

ROW_COLUMNS = ["variant", "label", "ffn", "jhcg_variant", "rho", "ffn_hidden", "params", "seed", "steps",
               "resolved_impl", "tokens_per_s", "peak_mib", "final_loss", "val_loss", "status", "note"]


# ------------------------------------------------------------------ variants by name

def describe(name: str) -> dict:
    """``mlp`` | ``kan`` | ``jhcg-<compact|expanded>-<rho>`` | ``mlp-matched-<compact|expanded>-<rho>``."""
    parts = name.split("-")
    if name in ("mlp", "kan"):
        return dict(variant=name, label={"mlp": "MLP", "kan": "KAN"}[name], ffn=name, jhcg_variant="", rho=float("nan"))
    if len(parts) == 3 and parts[0] == "jhcg" or len(parts) == 4 and parts[:2] == ["mlp", "matched"]:
        jv, rho_text = parts[-2], parts[-1]
        try:
            rho = float(rho_text)
            J.kan_width(8, rho, jv)  # validates rho and the variant
        except ValueError as exc:
            raise ValueError(f"variant {name!r}: {exc}") from None
        if parts[0] == "jhcg":
            return dict(variant=name, label=f"JHCG {jv} ρ={rho:g}", ffn="jhcg", jhcg_variant=jv, rho=rho)
        return dict(variant=name, label=f"MLP, params of JHCG {jv} ρ={rho:g}", ffn="mlp", jhcg_variant=jv, rho=rho)
    raise ValueError(f"variant {name!r}: expected mlp, kan, jhcg-<compact|expanded>-<rho> or "
                     "mlp-matched-<compact|expanded>-<rho>")


def jhcg_names(pairs) -> list[str]:
    """``[("expanded", 0.25)]`` -> ``["jhcg-expanded-0.25"]``."""
    return [f"jhcg-{v}-{r:g}" for v, r in pairs]


def audited_runs(cfg: dict, device, progress: bool, desc: str):
    """(variant, seed) of every JHCG run the audit trained, with the run itself (memoized, not retrained)."""
    dev = sw.check_device(device)
    plan = [(n, s) for s in cfg["seeds"] for n in jhcg_names(cfg["jhcg"])]
    for name, seed in sw.progress_bar(plan, progress=progress, desc=desc):
        yield name, seed, train_run(name, seed, cfg["train"], dev), dev


def matched_name(jhcg_name: str) -> str:
    return jhcg_name.replace("jhcg-", "mlp-matched-", 1)


def model_config(name: str, train: dict, vocab_size: int) -> M.GPTConfig:
    """The MiniGPT config of variant ``name``: only the FFN fields differ between variants."""
    info = describe(name)
    base = M.CONFIGS[train["config"]]
    cfg = dict(vocab_size=vocab_size, block_size=max(train["block_size"], base.block_size), ffn=info["ffn"],
               grid_size=train["grid_size"], impl="auto")
    if info["ffn"] == "jhcg":
        cfg.update(jhcg_rho=info["rho"], jhcg_variant=info["jhcg_variant"])
    elif name.startswith("mlp-matched"):
        cfg["ffn_hidden"] = J.matched_mlp_hidden(base.d_model, info["rho"], train["grid_size"], info["jhcg_variant"],
                                                 base.spline_order, hidden=base.ffn_mult * base.d_model)
    return M.make_config(train["config"], **cfg)


def jhcg_blocks(model) -> list[J.SparseFuseJHCG]:
    return [m for m in model.modules() if isinstance(m, J.SparseFuseJHCG)]


@contextlib.contextmanager
def intervene(model, gate: float | None = None, ablate: str | None = None):
    """Apply :meth:`SparseFuseJHCG.intervene` to every JHCG block of ``model`` at once."""
    with contextlib.ExitStack() as stack:
        for block in jhcg_blocks(model):
            stack.enter_context(block.intervene(gate=gate, ablate=ablate))
        yield model


# ------------------------------------------------------------------ data

_CORPORA: dict = {}


def corpus(max_chars: int | None):
    """``(vocab_size, train_ids, val_ids, provenance)`` of the MiniGPT chapter's text corpus (memoized)."""
    if max_chars not in _CORPORA:
        text, prov = text_data.load_corpus(max_chars=max_chars)
        tok = text_data.CharTokenizer.from_text(text)
        train_ids, val_ids = text_data.split(tok.encode(text), 0.1)
        _CORPORA[max_chars] = (tok.vocab_size, train_ids, val_ids, prov)
    return _CORPORA[max_chars]


def probe_batch(train: dict, device) -> torch.Tensor:
    """The fixed validation windows every probe of every run looks at."""
    _, _, val_ids, _ = corpus(train["max_chars"])
    x, _ = LM.global_batch(val_ids, 0, seed=424242, batch_size=min(8, train["batch_size"]),
                           block_size=train["block_size"], device=device)
    return x


# ------------------------------------------------------------------ probing the JHCG blocks

@torch.no_grad()
def snapshot(model, x: torch.Tensor, coeff0: list[torch.Tensor]) -> list[dict]:
    """Per JHCG block: gate statistics, KAN inputs outside the grid, each path's share, coefficient drift."""
    blocks = jhcg_blocks(model)
    inputs: dict[int, torch.Tensor] = {}
    hooks = [b.register_forward_pre_hook(lambda mod, args, i=i: inputs.__setitem__(i, args[0]))
             for i, b in enumerate(blocks)]
    was = model.training
    try:
        model.eval()
        model(x)
    finally:
        model.train(was)
        for h in hooks:
            h.remove()
    rows = []
    for i, block in enumerate(blocks):
        p = block.parts(inputs[i])
        g, u = p["g"].float(), p["u"].float()
        lo, hi = block.grid_bounds()
        kan_mag, mlp_mag = (g * p["k"]).abs().mean(), ((1 - g) * p["m"]).abs().mean()
        coeff = block.kan._scaled().float()
        if len(coeff0) <= i:
            coeff0.append(coeff.clone())
        c0 = coeff0[i]
        rows.append(dict(layer=i, gate_mean=g.mean().item(), gate_std=g.std().item(),
                         gate_open=(g > 0.9).float().mean().item(), gate_closed=(g < 0.1).float().mean().item(),
                         outside_grid=((u < lo) | (u > hi)).float().mean().item(),
                         kan_share=(kan_mag / (kan_mag + mlp_mag).clamp_min(1e-30)).item(),
                         coeff_drift=((coeff - c0).norm() / c0.norm().clamp_min(1e-30)).item()))
    return rows


# ------------------------------------------------------------------ one training run

@dataclass
class Run:
    """One trained variant: its result row, loss curve, probe trace and (JHCG only) the model itself."""

    row: dict
    curve: pd.DataFrame
    trace: list = field(default_factory=list)
    model: torch.nn.Module | None = None


_RUNS: dict = {}


def clear() -> None:
    """Forget every memoized run (and free its model)."""
    _RUNS.clear()
    _CORPORA.clear()


def _steady_tokens_per_s(curve: pd.DataFrame, tokens_per_step: int) -> float:
    """Tokens/s after the first two steps (compilation, autotuning), probe time left out."""
    if len(curve) < 4:
        return float("nan")
    t = curve["time_s"].to_numpy()
    probe = curve["probe_s"].to_numpy()
    dt = t[-1] - t[1] - probe[2:].sum()
    return (len(curve) - 2) * tokens_per_step / dt if dt > 0 else float("nan")


def fit(model, train: dict, seed: int, device, *, progress: bool = False, desc: str = "train",
        compiled: str | None = None, probe=None):
    """AdamW with the MiniGPT chapter's schedule; returns ``(TrainResult, tokens/s)``.

    ``probe(step)`` runs before the steps that are multiples of ``probe_every`` and once
    after the last; ``compiled`` (a backend name) trains through ``torch.compile(model)``.
    """
    _, train_ids, _, _ = corpus(train["max_chars"])
    opt = torch.optim.AdamW(model.parameters(), lr=train["lr"], betas=(0.9, 0.95), weight_decay=0.1)
    fwd = torch.compile(model, backend=compiled) if compiled else model
    steps, bs, t = train["steps"], train["batch_size"], train["block_size"]
    model.train()

    def step_fn(step):
        probe_s = 0.0
        if probe is not None and step % train["probe_every"] == 0:
            t0 = time.perf_counter()
            probe(step)
            synchronize(device)
            probe_s = time.perf_counter() - t0
        for group in opt.param_groups:
            group["lr"] = lr_at(step, steps, train["lr"])
        x, y = LM.global_batch(train_ids, step, seed=seed, batch_size=bs, block_size=t, device=device)
        _, loss = fwd(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return {"loss": loss.item(), "probe_s": probe_s}

    res = train_loop(step_fn, steps, desc=desc, progress=progress, device=device)
    if probe is not None and res.status == "ok":
        probe(res.steps)
    return res, _steady_tokens_per_s(res.curve, bs * t)


def train_run(name: str, seed: int, train: dict, device, *, progress: bool = False, compiled: str | None = None,
              keep_model: bool | None = None) -> Run:
    """Train variant ``name`` once per (model, settings, seed, device, compile backend); later calls reuse the run.

    Keyed on the model config, not the name: two matched MLPs of the same width train once.
    """
    info = describe(name)
    vocab_size, _, val_ids, _ = corpus(train["max_chars"])
    key = (model_config(name, train, vocab_size), seed, tuple(sorted(train.items())), str(device), compiled)
    if key in _RUNS:
        hit = _RUNS[key]
        return Run(dict(hit.row, **info), hit.curve, hit.trace, hit.model)
    dev = torch.device(device)
    row = dict(info, seed=seed, steps=train["steps"], status=S.OK, note="")
    trace: list[dict] = []
    curve = pd.DataFrame(columns=["step", "time_s", "loss", "probe_s"])
    model = None
    try:
        with one_thread_on_cpu(dev):
            seed_everything(seed)
            cfg = model_config(name, train, vocab_size)
            row["ffn_hidden"] = cfg.ffn_hidden or cfg.ffn_mult * cfg.d_model
            with PeakMemory(dev) as mem:
                with torch.device(dev):
                    model = M.MiniGPT(cfg)
                row.update(params=count_parameters(model), resolved_impl=resolved_impl(model, dev))
                probe = None
                if info["ffn"] == "jhcg" and not compiled:
                    x_probe, coeff0 = probe_batch(train, dev), []

                    def probe(step):
                        trace.extend(dict(step=step, **r) for r in snapshot(model, x_probe, coeff0))
                res, tps = fit(model, train, seed, dev, progress=progress, compiled=compiled, probe=probe,
                               desc=f"{name} seed {seed}")
            curve = res.curve
            row.update(tokens_per_s=tps, peak_mib=mem.mib, final_loss=res.final_loss, steps=res.steps)
            if res.status != "ok":
                row.update(status=S.DIVERGED, note=res.note)
            else:
                row["val_loss"] = LM.eval_lm(model, val_ids, batches=train["eval_batches"],
                                             batch_size=train["batch_size"], block_size=train["block_size"],
                                             seed=seed, device=dev)
    except Exception as exc:  # noqa: BLE001 - an OOM or a failure is this run's result
        row["status"], row["note"] = S.failure(exc)
    keep = info["ffn"] == "jhcg" if keep_model is None else keep_model
    run = Run(row, curve, trace, model if keep and row["status"] == S.OK else None)
    if run.model is None:
        del model
        guard.free_memory(dev)
    _RUNS[key] = run
    return run


def eval_loss(model, train: dict, seed: int, device) -> float:
    """Validation loss on the same windows :func:`train_run` evaluated."""
    _, _, val_ids, _ = corpus(train["max_chars"])
    return LM.eval_lm(model, val_ids, batches=train["eval_batches"], batch_size=train["batch_size"],
                      block_size=train["block_size"], seed=seed, device=device)
