"""Grid extension, symbolic recovery and a tabular supplement: the KAN workflow beyond speed.

Three parts, one table (column ``part``):

``grid_extension``
    A KAN on ``exp(sin(πx) + y²)`` trained coarse → fine: after each stage
    every layer is re-gridded by ``KANLinear.extend_grid`` (a least-squares
    refit that keeps the learned function) and training goes on.  Compared with
    training the finest grid from scratch for the same total number of steps.
``symbolic``
    KANs trained on formulas with known parts; each learned edge is matched
    against ``sin, exp, x², x³, log, tanh, affine`` by :mod:`sparsefuse.lab.symbolic`
    and we report the recovered formula, its R², and whether it is the true part.
``tabular``
    scikit-learn's bundled breast_cancer, wine, digits (classification:
    accuracy) and diabetes (regression: R²), KAN against an MLP with about the
    same number of parameters, same optimiser and budget.

:func:`prune_demo` (outside the table) trains a wide KAN with the sparsity penalty,
prunes it on its data (``KAN.prune``) and retrains the smaller one, pykan's workflow.
"""

from __future__ import annotations

import math
import time
import warnings
from collections import namedtuple

import pandas as pd
import torch

from ..data import TABULAR, load_tabular
from sparsefuse.kan_linear import KAN, GridResizeWarning
from sparsefuse.kan_tools import fit
from ..models.mlp import MLP, matched_mlp_width
from ..symbolic import best_fit, edge_function, fit_form
from sparsefuse import status as S
from .grid_extension_figures import PARTS, curves, edges, plot, verdict_numbers  # noqa: F401 (the chapter's API)
from sparsefuse.lab.measure import count_parameters, one_thread_on_cpu, seed_everything
from sparsefuse.lab.side_tables import attach_tables, curves_to_frame
from . import check_choices, recorded, resolve_profile

NAME = "grid_extension_symbolic_tabular"

# name -> (target f(x) on [-1,1]^2, KAN shape, {(layer, out, in): expected form})
SYMBOLIC_TASKS = {
    "sin(πx) + y²": (lambda x: torch.sin(math.pi * x[:, :1]) + x[:, 1:2] ** 2, (2, 1),
                     {(0, 0, 0): "sin", (0, 0, 1): "x^2"}),
    "exp(sin(πx) + y²)": (lambda x: torch.exp(torch.sin(math.pi * x[:, :1]) + x[:, 1:2] ** 2), (2, 1, 1),
                          {(0, 0, 0): "sin", (0, 0, 1): "x^2", (1, 0, 0): "exp"}),
}

# prune_demo: a KAN wider than the task needs, trained with this weight on regularization_loss
_PRUNE = dict(prune_shape=[2, 5, 1], prune_reg=3e-2, prune_threshold=0.1)

PROFILES = {
    "smoke": dict(parts=list(PARTS), ext_shape=[2, 1, 1], ext_grids=[3, 5, 10], ext_steps_per_stage=3,
                  sym_tasks=["sin(πx) + y²"], sym_grid=5, sym_steps=4, tab_datasets=list(TABULAR),
                  tab_hidden=8, tab_grid=5, tab_epochs=20, tab_lr=1e-2, n_train=256, n_test=1024,
                  lbfgs_iters=10, log_every=1, prune_steps=60, seed=0, **_PRUNE),
    "quick": dict(parts=list(PARTS), ext_shape=[2, 5, 1], ext_grids=[3, 5, 10, 20, 50, 100],
                  ext_steps_per_stage=20, sym_tasks=list(SYMBOLIC_TASKS), sym_grid=10, sym_steps=30,
                  tab_datasets=list(TABULAR), tab_hidden=16, tab_grid=5, tab_epochs=300, tab_lr=1e-2,
                  n_train=1000, n_test=10000, lbfgs_iters=10, log_every=1, prune_steps=300, seed=0, **_PRUNE),
    "paper": dict(parts=list(PARTS), ext_shape=[2, 5, 1], ext_grids=[3, 5, 10, 20, 50, 100, 200, 500, 1000],
                  ext_steps_per_stage=50, sym_tasks=list(SYMBOLIC_TASKS), sym_grid=20, sym_steps=100,
                  tab_datasets=list(TABULAR), tab_hidden=32, tab_grid=10, tab_epochs=1000, tab_lr=5e-3,
                  n_train=1000, n_test=40000, lbfgs_iters=10, log_every=1, prune_steps=1000, seed=0, **_PRUNE),
}

COLUMNS = ["part", "case", "model", "G", "status", "metric_name", "metric", "train_metric", "params", "steps",
           "wall_s", "formula", "expected", "recovered", "seed", "device", "note"]


def _row(**kw) -> dict:
    row = {c: math.nan for c in COLUMNS}
    row.update(status="ok", formula="", expected="", note="", recovered=math.nan)
    row.update(kw)
    return row


def _fit_lbfgs(model, x, y, steps, cfg, desc, progress, step0=0):
    """``steps`` L-BFGS calls on the MSE; returns the TrainResult with the curve's steps offset by ``step0``."""
    # several iterations per call: torch's L-BFGS barely moves when allowed one per call
    opt = torch.optim.LBFGS(model.parameters(), lr=1.0, max_iter=cfg["lbfgs_iters"], history_size=50,
                            line_search_fn="strong_wolfe", tolerance_grad=1e-12, tolerance_change=1e-14)
    res = fit(model, (x, y), steps, optimizer=opt, log_every=cfg["log_every"], progress=progress, desc=desc)
    res.curve["step"] += step0
    return res


def _rmse(model, x, y) -> float:
    with torch.no_grad():
        return (model(x) - y).pow(2).mean().sqrt().item()


def _toy_data(fn, cfg, device):
    gen = seed_everything(int(cfg["seed"]))
    x = (torch.rand(cfg["n_train"], 2, generator=gen) * 2 - 1).to(device)
    xt = (torch.rand(cfg["n_test"], 2, generator=gen) * 2 - 1).to(device)
    return x, fn(x), xt, fn(xt)


# ---- part 1: grid extension -----------------------------------------------------------------

def run_grid_extension(cfg: dict, device="cpu", progress: bool = True):
    """Coarse → fine training against the finest grid from scratch; returns (rows, curve_rows)."""
    fn = SYMBOLIC_TASKS["exp(sin(πx) + y²)"][0]
    x, y, xt, yt = _toy_data(fn, cfg, device)
    grids, per = list(cfg["ext_grids"]), int(cfg["ext_steps_per_stage"])
    rows, curve_rows = [], []
    base = dict(part="grid_extension", case="exp(sin(πx) + y²)", metric_name="test_rmse",
                seed=cfg["seed"], device=str(device))
    # (a) extension
    try:
        seed_everything(int(cfg["seed"]))
        model = KAN(list(cfg["ext_shape"]), grid_size=grids[0], impl="auto").to(device)
        t0, step = time.perf_counter(), 0
        with torch.no_grad():
            model(x, update_grid=True)  # put the hidden grid where the hidden activations are
        for i, G in enumerate(grids):
            note = ""
            if i:
                with warnings.catch_warnings():  # the optimizer is built again for every stage
                    warnings.simplefilter("ignore", GridResizeWarning)
                    fit_err = model.extend_grid(G)
                note = f"extend_grid max refit error {fit_err:.2e} {WHOLE_SUPPORT}"
            res = _fit_lbfgs(model, x, y, per, cfg, f"extension G={G}", progress, step0=step)
            step += res.steps
            curve_rows.append(({"run": "extension", "G": G}, res.curve))
            rows.append(_row(**base, model="extension", G=G, status=res.status, metric=_rmse(model, xt, yt),
                             train_metric=_rmse(model, x, y), params=count_parameters(model), steps=step,
                             wall_s=time.perf_counter() - t0, note=note))
            if res.status != "ok":
                break
    except Exception as exc:  # noqa: BLE001
        st, note = S.failure(exc)
        rows.append(_row(**base, model="extension", status=st, note=note))
    # (b) the finest grid trained from scratch with the same total budget
    G = grids[-1]
    try:
        seed_everything(int(cfg["seed"]))
        model = KAN(list(cfg["ext_shape"]), grid_size=G, impl="auto").to(device)
        t0 = time.perf_counter()
        with torch.no_grad():
            model(x, update_grid=True)
        res = _fit_lbfgs(model, x, y, per * len(grids), cfg, f"fixed G={G}", progress)
        curve_rows.append(({"run": "fixed", "G": G}, res.curve))
        rows.append(_row(**base, model="fixed", G=G, status=res.status, metric=_rmse(model, xt, yt),
                         train_metric=_rmse(model, x, y), params=count_parameters(model), steps=res.steps,
                         wall_s=time.perf_counter() - t0))
    except Exception as exc:  # noqa: BLE001
        st, note = S.failure(exc)
        rows.append(_row(**base, model="fixed", G=G, status=st, note=note))
    return rows, curve_rows


# ---- part 2: symbolic -----------------------------------------------------------------------

def run_symbolic(cfg: dict, device="cpu", progress: bool = True):
    """Train each task's KAN, fit every edge symbolically; returns (rows, edge samples)."""
    rows, edge_rows = [], []
    check_choices(cfg, "sym_tasks", SYMBOLIC_TASKS)
    for task in cfg["sym_tasks"]:
        fn, shape, expected = SYMBOLIC_TASKS[task]
        base = dict(part="symbolic", case=task, G=cfg["sym_grid"], metric_name="r2", seed=cfg["seed"],
                    device=str(device))
        try:
            x, y, xt, yt = _toy_data(fn, cfg, device)
            seed_everything(int(cfg["seed"]))
            model = KAN(list(shape), grid_size=cfg["sym_grid"], impl="auto").to(device)
            t0 = time.perf_counter()
            if len(shape) > 2:
                with torch.no_grad():
                    model(x, update_grid=True)
            res = _fit_lbfgs(model, x, y, cfg["sym_steps"], cfg, f"symbolic {task}", progress)
            test_rmse = _rmse(model, xt, yt)
            h = x
            for li, layer in enumerate(model.layers):
                lo, hi = h.min(0).values, h.max(0).values
                for o in range(layer.out_features):
                    for i in range(layer.in_features):
                        xs, ys = edge_function(layer, o, i, n=200, x_range=(float(lo[i]), float(hi[i])))
                        fit = best_fit(xs, ys)
                        want = expected.get((li, o, i), "")
                        want_r2 = fit_form(xs, ys, want).r2 if want else math.nan
                        rows.append(_row(**base, model=f"layer{li} x{i}->y{o}", status=res.status, metric=fit.r2,
                                         train_metric=want_r2, params=count_parameters(model), steps=res.steps,
                                         wall_s=time.perf_counter() - t0, formula=fit.formula, expected=want,
                                         recovered=float(fit.form == want) if want else math.nan,
                                         note=f"KAN test RMSE {test_rmse:.2e}; train_metric = R² of the expected form"))
                        edge_rows.append(pd.DataFrame({"x": xs, "phi": ys, "fit": fit(xs), "case": task,
                                                   "edge": f"layer{li} x{i}->y{o}: {fit.form}"}))
                with torch.no_grad():
                    h = layer(h)
        except Exception as exc:  # noqa: BLE001
            st, note = S.failure(exc)
            rows.append(_row(**base, model="", status=st, note=note))
    return rows, edge_rows


# ---- part 3: tabular ------------------------------------------------------------------------

def _train_tabular(model, data, cfg, desc, progress, device):
    X, y = data.X_train.to(device), data.y_train.to(device)
    Xt, yt = data.X_test.to(device), data.y_test.to(device)
    classify = data.task == "classification"
    lossf = torch.nn.functional.cross_entropy if classify else (lambda out, y: torch.nn.functional.mse_loss(out[:, 0], y))
    res = fit(model, (X, y), cfg["tab_epochs"], lr=cfg["tab_lr"], loss_fn=lossf, desc=desc, progress=progress,
              log_every=max(1, cfg["tab_epochs"] // 50))

    def score(Xa, ya):
        with torch.no_grad():
            out = model(Xa)
        if classify:
            return (out.argmax(1) == ya).float().mean().item()
        resid = ((out[:, 0] - ya) ** 2).sum()
        return (1 - resid / ((ya - ya.mean()) ** 2).sum()).item()

    return res, score(Xt, yt), score(X, y)


def run_tabular(cfg: dict, device="cpu", progress: bool = True):
    """KAN against a parameter-matched MLP on each dataset; returns (rows, curve_rows)."""
    rows, curve_rows = [], []
    for name in cfg["tab_datasets"]:
        data = load_tabular(name, seed=int(cfg["seed"]))
        d, c = data.n_features, data.out_features
        metric = "accuracy" if data.task == "classification" else "r2"
        seed_everything(int(cfg["seed"]))
        kan = KAN([d, cfg["tab_hidden"], c], grid_size=cfg["tab_grid"], impl="auto")
        width = matched_mlp_width(d, c, count_parameters(kan), depth=1)
        seed_everything(int(cfg["seed"]))
        mlp = MLP(d, [width], c, activation="silu")
        for label, model in (("kan", kan), ("mlp", mlp)):
            base = dict(part="tabular", case=name, model=label, metric_name=metric, seed=cfg["seed"],
                        device=str(device), G=cfg["tab_grid"] if label == "kan" else math.nan,
                        params=count_parameters(model))
            try:
                model = model.to(device)
                res, test, train = _train_tabular(model, data, cfg, f"{name}/{label}", progress, device)
                curve_rows.append(({"run": f"{name}/{label}", "G": base["G"]}, res.curve))
                arch = (f"KAN [{d}, {cfg['tab_hidden']}, {c}]" if label == "kan" else f"MLP [{d}, {width}, {c}] SiLU")
                rows.append(_row(**base, status=res.status, metric=test, train_metric=train, steps=res.steps,
                                 wall_s=res.wall_s, note=arch))
            except Exception as exc:  # noqa: BLE001
                st, note = S.failure(exc)
                rows.append(_row(**base, status=st, note=note))
    return rows, curve_rows


# prune_demo's result: the trained model, its pruned and retrained copy, the training inputs, a table
PruneDemo = namedtuple("PruneDemo", "model pruned x table")


def prune_demo(profile: str = "smoke", device="cpu", progress: bool = True, **overrides) -> PruneDemo:
    """Train a too-wide KAN on sin(πx) + y² with ``regularization_loss``, prune it on its data, retrain."""
    cfg = resolve_profile(PROFILES, profile, overrides)
    with one_thread_on_cpu(device, when=profile == "smoke"):
        x, y, xt, yt = _toy_data(SYMBOLIC_TASKS["sin(πx) + y²"][0], cfg, device)
        seed_everything(int(cfg["seed"]))
        model = KAN(list(cfg["prune_shape"]), grid_size=cfg["sym_grid"]).to(device)
        fit(model, (x, y), cfg["prune_steps"], reg=cfg["prune_reg"], progress=progress, desc="prune demo: train")
        pruned = model.prune(cfg["prune_threshold"], x)
        rows = [("trained", model, _rmse(model, xt, yt)), ("pruned", pruned, _rmse(pruned, xt, yt))]
        fit(pruned, (x, y), cfg["prune_steps"], progress=progress, desc="prune demo: retrain")
        rows.append(("pruned, retrained", pruned, _rmse(pruned, xt, yt)))
    table = pd.DataFrame([{"stage": name, "shape": [m.layers[0].in_features] + [lay.out_features for lay in m.layers],
                           "params": count_parameters(m), "test_rmse": rmse} for name, m, rmse in rows])
    return PruneDemo(model, pruned, x, table)


# Marks the notes of runs whose extend_grid keeps the spline's whole support (its outer knots) and
# measures the refit error over all of it; earlier runs refit and measured on the interior only.
WHOLE_SUPPORT = "(whole support)"


@recorded(PROFILES, one_thread_at_smoke=True)
def run(cfg: dict, device="cpu", progress: bool = True) -> pd.DataFrame:
    """All three parts; loss curves and edge samples attached (see :func:`curves`, :func:`edges`)."""
    check_choices(cfg, "parts", PARTS)
    rows, curve_parts, edge_parts = [], [], []
    if "grid_extension" in cfg["parts"]:
        r, c = run_grid_extension(cfg, device, progress)
        rows += r
        curve_parts += [({"part": "grid_extension", **k}, v) for k, v in c]
    if "symbolic" in cfg["parts"]:
        r, e = run_symbolic(cfg, device, progress)
        rows += r
        edge_parts += e
    if "tabular" in cfg["parts"]:
        r, c = run_tabular(cfg, device, progress)
        rows += r
        curve_parts += [({"part": "tabular", **k}, v) for k, v in c]
    df = pd.DataFrame(rows, columns=COLUMNS)
    eds = pd.concat(edge_parts, ignore_index=True) if edge_parts else pd.DataFrame()
    return attach_tables(df, curves=curves_to_frame(curve_parts), edges=eds)


def tables(df: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """One table per part, with only the columns that part fills."""
    out = {}
    for part in PARTS:
        sub = df[df["part"] == part]
        if len(sub):
            out[part] = sub.dropna(axis=1, how="all").loc[:, lambda t: (t != "").any()].reset_index(drop=True)
    return out
