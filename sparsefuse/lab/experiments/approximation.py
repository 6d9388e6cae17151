"""Approximation quality: does the KAN error fall like the theory says as the grid grows?

The KAN approximation theorem (Liu et al. 2024) bounds the error of an order-k
spline KAN with grid size G by ``C·G^-(k+1)`` when the target has a smooth
Kolmogorov–Arnold representation.  Two measurements on the KAN paper's toy
functions:

- ``lstsq`` — the *pure rate*: each univariate function of the known
  representation is fitted by least squares (``KANLinear.curve2coeff``) in
  float64 and the composition is evaluated.  No optimiser, so the slope is
  the spline's, not the trainer's.
- ``train`` — the *practical curve*: a KAN of the matching shape trained by
  L-BFGS from random initialisation at each G, with train and test RMSE; at
  large G and few samples the test error turns up (overfitting), which is the
  large-grid quality question.

The loss curves of the trained runs are attached to the table (:func:`curves`).
"""

from __future__ import annotations

import math
import textwrap
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd
import torch

from sparsefuse.kan_linear import KAN, KANLinear
from sparsefuse import status as S
from sparsefuse.lab.measure import count_parameters, PeakMemory, seed_everything
from sparsefuse.lab.side_tables import attach_tables, attached_table, curves_to_frame
from sparsefuse.training import train_loop
from . import check_choices, recorded
from ._page import page_figure, panels, with_note
from ..words import joined

NAME = "approximation"
Tensor = torch.Tensor


@dataclass(frozen=True)
class Target:
    """A toy function on ``[-1, 1]^dim`` with its Kolmogorov–Arnold structure.

    ``inner[i]`` maps input ``i``; ``outer`` is applied to their sum on
    ``outer_range`` (``None`` means the function is the sum itself).
    ``shape`` is the KAN trained on it.
    """

    label: str
    dim: int
    fn: Callable[[Tensor], Tensor]
    shape: tuple[int, ...]
    inner: tuple[Callable[[Tensor], Tensor], ...] | None = None
    outer: Callable[[Tensor], Tensor] | None = None
    outer_range: tuple[float, float] | None = None


TARGETS: dict[str, Target] = {
    "j0": Target("J0(20x)", 1, lambda x: torch.special.bessel_j0(20 * x[:, :1]), (1, 1),
                 inner=(lambda t: torch.special.bessel_j0(20 * t),)),
    "exp_sin": Target("exp(sin(πx))", 1, lambda x: torch.exp(torch.sin(math.pi * x[:, :1])), (1, 1),
                      inner=(lambda t: torch.exp(torch.sin(math.pi * t)),)),
    "exp_sin_sq": Target("exp(sin(πx) + y²)", 2,
                         lambda x: torch.exp(torch.sin(math.pi * x[:, :1]) + x[:, 1:2] ** 2), (2, 1, 1),
                         inner=(lambda t: torch.sin(math.pi * t), lambda t: t**2),
                         outer=torch.exp, outer_range=(-1.0, 2.0)),
    # x·y = ((x+y)² − (x−y)²)/4 is exactly representable by cubic splines: only trained.
    "xy": Target("x·y", 2, lambda x: x[:, :1] * x[:, 1:2], (2, 2, 1)),
}

PROFILES = {
    "smoke": dict(targets=list(TARGETS), lstsq_grids=[3, 5, 10, 20, 40], train_grids=[5, 10],
                  spline_order=3, n_train=128, n_test_per_dim={"1d": 500, "2d": 40}, steps=3, lbfgs_iters=10,
                  grid_update_steps=2, log_every=1, seed=0),
    "quick": dict(targets=list(TARGETS), lstsq_grids=[3, 5, 10, 20, 50, 100, 200, 500, 1000],
                  train_grids=[3, 5, 10, 20, 50, 100, 200], spline_order=3, n_train=1000,
                  n_test_per_dim={"1d": 4000, "2d": 200}, steps=40, lbfgs_iters=10,
                  grid_update_steps=8, log_every=1, seed=0),
    "paper": dict(targets=list(TARGETS), lstsq_grids=[3, 5, 10, 20, 30, 50, 100, 200, 300, 500, 1000, 2000],
                  train_grids=[3, 5, 10, 20, 30, 50, 100, 200, 500, 1000], spline_order=3, n_train=1000,
                  n_test_per_dim={"1d": 10000, "2d": 300}, steps=200, lbfgs_iters=10,
                  grid_update_steps=20, log_every=1, seed=0),
}

COLUMNS = ["target", "method", "G", "k", "status", "test_rmse", "test_rel_l2", "train_rmse", "params", "steps",
           "wall_s", "peak_mib", "impl", "dtype", "seed", "device", "note"]


def _grid_points(dim: int, n: int, device, dtype) -> Tensor:
    axes = [torch.linspace(-1, 1, n, dtype=dtype, device=device)] * dim
    mesh = torch.meshgrid(*axes, indexing="ij")
    return torch.stack([m.reshape(-1) for m in mesh], dim=1)


def spline_lstsq(fn: Callable[[Tensor], Tensor], lo: float, hi: float, grid_size: int, spline_order: int = 3,
                 n_fit: int | None = None, device="cpu", dtype=torch.float64) -> KANLinear:
    """A 1→1 ``KANLinear`` whose spline is the least-squares fit of ``fn`` on ``[lo, hi]`` (base branch off)."""
    n_fit = n_fit or max(20 * (grid_size + spline_order), 2000)
    layer = KANLinear(1, 1, grid_size=grid_size, spline_order=spline_order, grid_range=[lo, hi],
                      impl="reference", device=device, dtype=dtype)
    x = torch.linspace(lo, hi, n_fit, device=device, dtype=dtype).unsqueeze(1)
    with torch.no_grad():
        layer.base_weight.zero_()
        if getattr(layer, "enable_standalone_scale_spline", False):
            layer.spline_scaler.fill_(1.0)
        layer.spline_weight.copy_(layer.curve2coeff(x, fn(x).reshape(-1, 1, 1)))
    return layer


def lstsq_point(name: str, grid_size: int, cfg: dict, device="cpu") -> dict:
    """Pure-rate error of the spline representation of target ``name`` at grid size ``grid_size``."""
    t = TARGETS[name]
    k = cfg["spline_order"]
    dtype = torch.float64
    t0 = time.perf_counter()
    inner = [spline_lstsq(f, -1.0, 1.0, grid_size, k, device=device, dtype=dtype) for f in t.inner]
    outer = spline_lstsq(t.outer, *t.outer_range, grid_size, k, device=device, dtype=dtype) if t.outer else None
    x = _grid_points(t.dim, cfg["n_test_per_dim"]["1d" if t.dim == 1 else "2d"], device, dtype)
    with torch.no_grad():
        s = sum(layer(x[:, i : i + 1]) for i, layer in enumerate(inner))
        pred = outer(s) if outer is not None else s
        ref = t.fn(x)
    err = pred - ref
    rmse = err.pow(2).mean().sqrt().item()
    rel = (torch.linalg.vector_norm(err) / torch.linalg.vector_norm(ref)).item()
    params = sum(count_parameters(layer) for layer in inner) + (count_parameters(outer) if outer else 0)
    return dict(test_rmse=rmse, test_rel_l2=rel, train_rmse=math.nan, params=params, steps=0,
                wall_s=time.perf_counter() - t0, impl="reference", dtype="float64")


def train_point(name: str, grid_size: int, cfg: dict, device="cpu", progress: bool = True):
    """Train a KAN of the target's shape at grid size ``grid_size`` with L-BFGS; returns (fields, curve)."""
    t = TARGETS[name]
    gen = seed_everything(int(cfg["seed"]))
    x_train = (torch.rand(cfg["n_train"], t.dim, generator=gen) * 2 - 1).to(device)
    y_train = t.fn(x_train)
    x_test = _grid_points(t.dim, cfg["n_test_per_dim"]["1d" if t.dim == 1 else "2d"], device, torch.float32)
    y_test = t.fn(x_test)
    model = KAN(list(t.shape), grid_size=grid_size, spline_order=cfg["spline_order"], impl="auto").to(device)
    def make_opt():
        # max_iter > 1: torch's L-BFGS barely moves when each call may take a single iteration
        return torch.optim.LBFGS(model.parameters(), lr=1.0, max_iter=cfg["lbfgs_iters"], history_size=50,
                                 line_search_fn="strong_wolfe", tolerance_grad=1e-12, tolerance_change=1e-14)

    opt = make_opt()
    deep = len(t.shape) > 2

    def closure():
        opt.zero_grad(set_to_none=True)
        loss = (model(x_train) - y_train).pow(2).mean()
        loss.backward()
        return loss

    def step(i):
        nonlocal opt
        if deep and i < cfg["grid_update_steps"] and i % max(1, cfg["grid_update_steps"] // 2) == 0:
            # hidden activations leave [-1, 1]; move the hidden grid onto them (efficient-kan's update_grid)
            with torch.no_grad():
                model(x_train, update_grid=True)
            opt = make_opt()
        return float(opt.step(closure).detach())

    with PeakMemory(device) as mem:
        res = train_loop(step, cfg["steps"], desc=f"{name} G={grid_size}", progress=progress,
                         log_every=cfg["log_every"], device=device)
    with torch.no_grad():
        err = model(x_test) - y_test
        test_rmse = err.pow(2).mean().sqrt().item()
        rel = (torch.linalg.vector_norm(err) / torch.linalg.vector_norm(y_test)).item()
        train_rmse = (model(x_train) - y_train).pow(2).mean().sqrt().item()
    impl = "+".join(dict.fromkeys(layer.resolve_impl(x_train[:1, : layer.in_features]) if hasattr(layer, "resolve_impl")
                                  else layer.impl for layer in model.layers))
    fields = dict(test_rmse=test_rmse, test_rel_l2=rel, train_rmse=train_rmse, params=count_parameters(model),
                  steps=res.steps, wall_s=res.wall_s, peak_mib=mem.mib, impl=impl, dtype="float32",
                  status=res.status, note=res.note)
    return fields, res.curve


@recorded(PROFILES, one_thread_at_smoke=True)
def run(cfg: dict, device="cpu", progress: bool = True) -> pd.DataFrame:
    """Least-squares and trained error against G for every target; loss curves attached (:func:`curves`)."""
    check_choices(cfg, "targets", TARGETS)
    from tqdm.auto import tqdm

    jobs = [(n, "lstsq", G) for n in cfg["targets"] if TARGETS[n].inner for G in cfg["lstsq_grids"]]
    jobs += [(n, "train", G) for n in cfg["targets"] for G in cfg["train_grids"]]
    rows, curve_parts = [], []
    for name, method, G in tqdm(jobs, desc="approximation", disable=not progress, leave=False):
        row = dict(target=name, method=method, G=G, k=cfg["spline_order"], status="ok", seed=cfg["seed"],
                   device=str(device), note="", peak_mib=math.nan)
        try:
            if method == "lstsq":
                row.update(lstsq_point(name, G, cfg, device))
            else:
                fields, curve = train_point(name, G, cfg, device, progress)
                row.update(fields)
                curve_parts.append(({"target": name, "G": G}, curve))
        except Exception as exc:  # noqa: BLE001 - record and go on
            row["status"], row["note"] = S.failure(exc)
            if torch.device(device).type == "cuda":
                torch.cuda.empty_cache()
        rows.append(row)
    df = pd.DataFrame(rows)
    for c in COLUMNS:
        if c not in df.columns:
            df[c] = math.nan
    df = df[COLUMNS]
    return attach_tables(df, curves=curves_to_frame(curve_parts))


def curves(df: pd.DataFrame) -> pd.DataFrame:
    """Training loss against step for each (target, G) of the trained runs."""
    return attached_table(df, "curves")


def fitted_rates(df: pd.DataFrame, min_error: float = 1e-13) -> pd.DataFrame:
    """Least-squares slope of log(test RMSE) against log(G) per target and method, beside the theory's −(k+1).

    Points at the float64 floor (``min_error``) and the pre-asymptotic G < 5 are left out.
    """
    rows = []
    ok = df[(df["status"] == "ok") & (df["test_rmse"] > min_error) & (df["G"] >= 5)]
    for (target, method), sub in ok.groupby(["target", "method"], sort=False):
        if method == "train":
            # the practical curve flattens once optimisation/overfitting dominate: fit up to its minimum
            sub = sub.sort_values("G")
            sub = sub.iloc[: int(np.argmin(sub["test_rmse"].to_numpy())) + 1]
        if len(sub) < 2:
            continue
        slope = np.polyfit(np.log(sub["G"].astype(float)), np.log(sub["test_rmse"].astype(float)), 1)[0]
        rows.append(dict(target=target, method=method, fitted_rate=float(slope),
                         theory_rate=-(int(sub["k"].iloc[0]) + 1), n_points=len(sub)))
    return pd.DataFrame(rows, columns=["target", "method", "fitted_rate", "theory_rate", "n_points"])


@page_figure
def plot(df: pd.DataFrame):
    """log-log error against G with G^-(k+1) reference lines (one panel per method), and the trained loss curves."""
    import matplotlib.pyplot as plt

    cur = curves(df)
    fig, axes = panels(3 if not cur.empty else 2, height=3.3)
    colors = dict(zip(TARGETS, ["#1f77b4", "#2ca02c", "#d62728", "#9467bd"]))
    rates = fitted_rates(df)
    for ax, method, title in ((axes[0], "lstsq", "pure rate: least-squares spline fit (float64)"),
                              (axes[1], "train", "practical: KAN trained by L-BFGS (float32; dashed: train)")):
        sub = df[(df["method"] == method) & (df["status"] == "ok")]
        for name, s in sub.groupby("target", sort=False):
            s = s.sort_values("G")
            r = rates[(rates["target"] == name) & (rates["method"] == method)]
            lab = TARGETS[name].label if name in TARGETS else name
            if len(r):
                lab += f"  (slope {r['fitted_rate'].iloc[0]:.2f})"
            ax.loglog(s["G"], s["test_rmse"], "o-", color=colors.get(name), label=lab)
            if method == "train":
                ax.loglog(s["G"], s["train_rmse"], "x--", color=colors.get(name), alpha=0.5, lw=0.8)
        if len(sub):
            k = int(sub["k"].iloc[0])
            g = np.array(sorted(sub["G"].unique()), dtype=float)
            anchor = float(sub[sub["G"] == g[0]]["test_rmse"].max())
            ax.loglog(g, anchor * (g / g[0]) ** (-(k + 1)), "k:", lw=1.5, label=f"G^-{k + 1} (theory)")
            ax.loglog(g, anchor * (g / g[0]) ** -1.0, color="0.6", ls=(0, (1, 3)), lw=1, label="G^-1")
            ax.set_xticks(g, [str(int(v)) for v in g])
            ax.minorticks_off()
        bad = df[(df["method"] == method) & (df["status"] != "ok")]
        note = ""
        if len(bad):
            note = "not run: " + ", ".join(f"{a} G={b} ({c})" for a, b, c in
                                           bad[["target", "G", "status"]].itertuples(index=False))
            note = "\n".join(textwrap.wrap(note[:240], 80))
        ax.set_xlabel(with_note("grid size G", note))
        ax.set_ylabel("test RMSE")
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    if not cur.empty:
        ax = axes[2]
        name = "exp_sin_sq" if "exp_sin_sq" in set(cur["target"]) else cur["target"].iloc[0]
        c = cur[cur["target"] == name]
        Gs = sorted(c["G"].unique())
        cmap = plt.get_cmap("viridis")
        for i, G in enumerate(Gs):
            s = c[c["G"] == G]
            ax.semilogy(s["step"], s["loss"], color=cmap(i / max(len(Gs) - 1, 1)), label=f"G={G}")
        ax.set_title(f"convergence of the trained KAN: {TARGETS[name].label if name in TARGETS else name}")
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
        ax.set_xlabel("L-BFGS call")
        ax.set_ylabel("train MSE")
        ax.grid(True, which="both", alpha=0.3)
    return fig


def verdict_numbers(df: pd.DataFrame) -> dict:
    """The chapter's verdict: the fitted rates of the least-squares and the trained curves beside −(k+1)."""
    nan = float("nan")
    rates = fitted_rates(df)
    out: dict = {}
    theory = int(rates["theory_rate"].iloc[0]) if len(rates) else nan
    out["ap_theory"] = theory
    for method, key in (("lstsq", "ls"), ("train", "tr")):
        r = rates[rates["method"] == method]
        out[f"ap_{key}_min"] = float(r["fitted_rate"].min()) if len(r) else nan
        out[f"ap_{key}_max"] = float(r["fitted_rate"].max()) if len(r) else nan
        out[f"ap_{key}_n"] = int(len(r))
    for name in TARGETS:
        for method, key in (("lstsq", "ls"), ("train", "tr")):
            r = rates[(rates["method"] == method) & (rates["target"] == name)]
            out[f"ap_{key}_{name}"] = float(r["fitted_rate"].iloc[0]) if len(r) else nan
    ls_max = out["ap_ls_max"]
    out["ap_ls_text"] = ("within 0.5 of the theory for every target" if len(rates) and theory == theory and
                         abs(out["ap_ls_min"] - theory) <= 0.5 and abs(ls_max - theory) <= 0.5 else
                         "not within 0.5 of the theory for every target")
    out["ap_tr_text"] = _trained_rate_words(rates, theory)
    out["ap_collapse_text"] = _collapse_words(df)
    return out


MIN_POINTS = 3  # a slope fitted on fewer points is reported but not counted as evidence
COLLAPSE = 10.0  # a trained KAN "collapses" beyond its best grid when its error grows past this factor


def _trained_rate_words(rates: pd.DataFrame, theory) -> str:
    """The trained curves' slopes, counting only those fitted on enough points, beside the theory."""
    tr = rates[rates["method"] == "train"]
    if tr.empty or theory != theory:
        return "No trained curve had two points to fit a slope to."
    solid = tr[tr["n_points"] >= MIN_POINTS]
    thin = tr[tr["n_points"] < MIN_POINTS]
    head = ""
    if len(solid):
        lo, hi = solid["fitted_rate"].min(), solid["fitted_rate"].max()
        steep = hi <= theory + 0.5
        head = (f"The KANs trained by L-BFGS fell, up to their best grid, with slopes from {lo:.2f} to {hi:.2f} "
                f"({joined(solid['target'])}, fitted on {joined(solid['n_points'].astype(int))} points), "
                + ("as steep as the theory within 0.5" if steep else "shallower than the theory by more than 0.5"))
    if len(thin):
        few = joined(f"{r.target} ({r.fitted_rate:.2f} on {int(r.n_points)} points)" for r in thin.itertuples())
        head += (("; " if head else "") + f"the slope of {few} rests on too few points to count "
                 f"(at least {MIN_POINTS} are needed)")
    return head + "."


def _collapse_words(df: pd.DataFrame) -> str:
    """Trained KANs whose test error grew past COLLAPSE× their best once the grid went beyond the best one."""
    tr = df[(df["method"] == "train") & (df["status"] == "ok")].dropna(subset=["test_rmse"])
    worse = []
    for target, sub in tr.groupby("target", sort=False):
        sub = sub.sort_values("G")
        best = sub.loc[sub["test_rmse"].idxmin()]
        after = sub[sub["G"] > best["G"]]
        if len(after) and after["test_rmse"].max() > COLLAPSE * best["test_rmse"]:
            top = after.loc[after["test_rmse"].idxmax()]
            worse.append(f"{target} from {best['test_rmse']:.2g} at G = {int(best['G'])} to "
                         f"{top['test_rmse']:.2g} at G = {int(top['G'])}")
    if not worse:
        return (f"No trained KAN lost more than {COLLAPSE:g}× its best error on a finer grid.")
    return (f"Beyond their best grid some trained KANs did not just stop improving but collapsed (test error "
            f"more than {COLLAPSE:g}× their best): {joined(worse)}. A trained KAN reaches the rate only up to "
            "a grid its optimiser and data can still support.")
