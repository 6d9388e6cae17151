"""What the MiniGPT and ViT chapters share: the FFN variants they compare and one guarded training run.

Both chapters train the same four FFN variants under the same schedule and report
the same columns (parameters, the path ``impl="auto"`` chose, throughput, peak
memory, final loss, status); keeping that here means an OOM, a divergence or the
first steps' compilation time is treated alike in both tables.
"""
from __future__ import annotations

import math
from typing import Callable

import torch

from sparsefuse import status as S
from sparsefuse.lab.measure import count_parameters, PeakMemory, seed_everything
from sparsefuse.training import TrainResult

from . import _guard as guard

#: (label, ffn kind, KANLinear impl) — the rows every table compares.
VARIANTS = {
    "mlp": ("MLP-FFN", "mlp", "auto"),
    "kan-auto": ("KAN-FFN fused (auto)", "kan", "auto"),
    "kan-reference": ("KAN-FFN reference", "kan", "reference"),
    "gated-kan-auto": ("Gated KAN-FFN (auto)", "gated_kan", "auto"),
}


def resolved_impl(model, device) -> str:
    """The path the first KAN layer really runs for this device (``impl="auto"`` resolved), or ``"-"``."""
    for m in model.modules():
        if hasattr(m, "resolve_impl") and hasattr(m, "in_features"):
            return m.resolve_impl(torch.zeros(1, m.in_features, device=device))
    return "-"


def variant_row(section: str, variant: str, config: str, **fields) -> dict:
    """A result row naming the variant (label, FFN kind, path) plus ``fields``."""
    label, ffn, impl = VARIANTS[variant]
    return dict(section=section, variant=variant, label=label, ffn=ffn, impl=impl, config=config, **fields)


def lr_at(step: int, steps: int, lr: float) -> float:
    """Linear warm-up over 5% of the steps, then cosine decay to 10% of ``lr``."""
    warm = max(1, steps // 20)
    if step < warm:
        return lr * (step + 1) / warm
    t = (step - warm) / max(1, steps - warm)
    return lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * t)))


def steady_rate(res, items_per_step: float) -> float:
    """Items/s over the logged steps, leaving out the first one or two (compilation, autotuning)."""
    curve = res.curve
    warm = 2 if res.steps > 3 else (1 if res.steps > 1 else 0)
    if res.status != "ok" or res.steps <= warm or len(curve) != res.steps:
        return float("nan")
    t = curve["time_s"].to_numpy()
    dt = t[-1] - (t[warm - 1] if warm else 0.0)
    return (res.steps - warm) * items_per_step / dt if dt > 0 else float("nan")


def curve_table_rows(res, variant: str, config: str, **keys) -> list[dict]:
    """The loss curve of one training run as rows of section ``curve``."""
    return [variant_row("curve", variant, config, step=int(r.step), loss=float(r.loss), status=S.OK, **keys)
            for r in res.curve.itertuples(index=False)]


def train_variant(row: dict, build: Callable[[], torch.nn.Module],
                  train: Callable[[torch.nn.Module, torch.Generator], tuple[TrainResult, float]], *,
                  seed: int, device, rate: str, evaluate: Callable[[torch.nn.Module], dict] | None = None,
                  curve: dict | None = None) -> tuple[dict, list[dict]]:
    """Seed, build on ``device``, train under :class:`PeakMemory`, evaluate; returns ``(row, curve rows)``.

    ``row`` (from :func:`variant_row`) gets the parameter count, the resolved path,
    ``rate`` (the items/s ``train`` returns beside its result), peak memory, final
    loss and steps, then what ``evaluate`` returns unless the run diverged.
    ``curve``: the keys of the loss-curve rows (``None``: none). Any exception, an
    out-of-memory one included, becomes the row's status; the model is freed either way.
    """
    curve_rows, model = [], None
    try:
        gen = seed_everything(seed)
        with PeakMemory(device) as mem:
            with torch.device(device):  # build in place: a 600M-parameter KAN init on the CPU takes minutes
                model = build()
            row.update(params=count_parameters(model), resolved_impl=resolved_impl(model, device))
            res, per_s = train(model, gen)
        row.update({rate: per_s}, peak_mib=mem.mib, final_loss=res.final_loss, steps=res.steps)
        if res.status != S.OK:
            row.update(status=S.DIVERGED, note=res.note)
        elif evaluate is not None:
            row.update(evaluate(model))
        if curve is not None:
            curve_rows = curve_table_rows(res, row["variant"], row["config"], **curve)
    except Exception as exc:  # noqa: BLE001 - OOM and failures are results here
        row["status"], row["note"] = S.failure(exc)
    del model
    guard.free_memory(device)
    return row, curve_rows


def oom_words(rows, key: str, where: str) -> str:
    """The out-of-memory half of a feasibility claim: did the reference path run out of memory where the fused one
    trained, and if not, does the memory ratio the claim rests on still hold?"""
    ok = rows[rows["status"] == S.OK].set_index(key)
    ref = next((v for v in ok.index if "reference" in str(v)), None)
    fused = next((v for v in ok.index if str(v) in ("kan-auto", "kan")), None)
    if (rows["status"] == S.OOM).any() and ref is None:
        return (f"The reference path ran out of memory {where} where the fused model trained: the out-of-memory "
                "part of the claim holds on this GPU.")
    if ref is None or fused is None:
        return f"The out-of-memory part of the claim was not tested {where}."
    r, f = float(ok.loc[ref, "peak_mib"]), float(ok.loc[fused, "peak_mib"])
    return (f"The out-of-memory part of the claim does not reproduce on this GPU: {where} the reference path "
            f"trained too, at a peak of {r:,.0f} MiB against the fused model's {f:,.0f} MiB. What holds is the "
            f"memory ratio behind it ({r / f:.3g}× less for the fused model): a GPU with less memory than the "
            "reference's peak would run out where the fused model fits.")
