"""Cross-basis scaling: B-spline vs Chebyshev vs RBF vs Fourier vs the MatrixKAN power form.

Why: KAN variants swap the B-spline for cheaper or smoother bases. The fair
question is what each costs per coefficient and what accuracy that buys. Two
parts, both indexed by the number of basis functions per edge ``nb`` (the
layer's parameter count is ``out·in·nb`` for every basis):

* cost — forward+backward of one layer ``y = Σ_i Σ_b φ_b(x_i) c[o,i,b]``
  evaluated densely for every basis, plus the B-spline through the sparse and
  fused paths, which exploit that only ``k+1`` of its bases are non-zero;
* accuracy — a 1D least-squares fit (exact optimum for each basis, so only the
  basis is compared) and a 2D fit of a two-layer KAN trained with Adam.
"""
from __future__ import annotations

import math

import torch

from sparsefuse import status as S
from sparsefuse.grid import uniform_grid
from . import _guard as guard
from . import _pick as pick
from . import _plotting as viz
from . import _problems as prob
from . import _sweep as sw
from . import check_choices, recorded
from ._page import not_run, page_figure, panels, with_note
from ..words import joined, times

NAME = "cross_basis"

BASES = ("bspline", "power", "chebyshev", "rbf", "fourier")
COST_SERIES = BASES + ("bspline-sparse", "bspline-fused")

PROFILES = {
    "smoke": dict(num_basis=[6, 24], fit_num_basis=[6, 24], spline_order=3, n=64, width=8,
                  series=list(COST_SERIES), warmup=1, rep=3, fused_work_limit=64 * 8 * 8 * 9,
                  fit1d_points=512, fit2d_points=128, fit2d_hidden=2, fit2d_steps=20, fit2d_lr=2e-2,
                  time_budget_s=None),
    "quick": dict(num_basis=[6, 12, 24, 48, 96], fit_num_basis=[6, 12, 24, 48], spline_order=3, n=8192, width=256,
                  series=list(COST_SERIES), warmup=5, rep=20, fused_work_limit=None,
                  fit1d_points=4096, fit2d_points=2048, fit2d_hidden=5, fit2d_steps=300, fit2d_lr=1e-2,
                  time_budget_s=75),
    "paper": dict(num_basis=[6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 256],
                  fit_num_basis=[6, 8, 12, 16, 24, 32, 48, 64, 96, 128], spline_order=3, n=8192, width=256,
                  series=list(COST_SERIES), warmup=25, rep=100, fused_work_limit=None,
                  fit1d_points=16384, fit2d_points=8192, fit2d_hidden=5, fit2d_steps=3000, fit2d_lr=1e-2,
                  time_budget_s=None),
}

COLUMNS = ["part", "series", "num_basis", "size_param", "n", "width", "median_ms", "q20_ms", "q80_ms",
           "peak_mib", "rmse", "rel_l2", "status", "note"]


# --------------------------------------------------------------------------- bases by size

def make_basis(name: str, num_basis: int, spline_order: int = 3, in_features: int = 1,
               lo: float = -1.0, hi: float = 1.0):
    """A basis with ``num_basis`` functions per input on ``[lo, hi]``, and its natural size parameter."""
    from sparsefuse import basis as B

    if name in ("bspline", "power"):
        g = num_basis - spline_order
        if g < 1:
            raise S.Unavailable(S.UNSUPPORTED, f"num_basis={num_basis} < spline_order+1")
        cls = B.BSplineBasis if name == "bspline" else B.PowerBSplineBasis
        return cls(in_features=in_features, grid_size=g, spline_order=spline_order, grid_range=(lo, hi)), g
    if name == "chebyshev":
        return B.ChebyshevBasis(degree=num_basis - 1), num_basis - 1
    if name == "rbf":
        return B.RBFBasis(grid_min=lo, grid_max=hi, num_grids=num_basis), num_basis
    if name == "fourier":
        if num_basis % 2:
            raise S.Unavailable(S.UNSUPPORTED, "fourier needs an even num_basis (cos and sin pairs)")
        return B.FourierBasis(gridsize=num_basis // 2), num_basis // 2
    raise ValueError(f"basis must be one of {BASES}, got {name!r}")


class BasisLayer(torch.nn.Module):
    """``y[n, o] = Σ_i Σ_b φ_b(x[n, i]) · coeff[o, i, b] + bias[o]`` for any basis (the naive dense form)."""

    def __init__(self, basis, in_features: int, out_features: int, num_basis: int, seed: int = 0):
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.basis = basis
        self.coeff = torch.nn.Parameter(torch.randn(out_features, in_features, num_basis, generator=gen)
                                        / math.sqrt(in_features * num_basis))
        self.bias = torch.nn.Parameter(torch.zeros(out_features))

    def forward(self, x):
        phi = self.basis.evaluate(x)  # [N, in, nb]
        return torch.einsum("nib,oib->no", phi, self.coeff) + self.bias


class LocalSplineLayer(torch.nn.Module):
    """The same B-spline layer through a local contraction path (``sparse`` or ``fused``)."""

    def __init__(self, contract, grid, spline_order, in_features, out_features, num_basis, seed=0):
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.contract, self.spline_order = contract, spline_order
        self.register_buffer("grid", grid)
        self.coeff = torch.nn.Parameter(torch.randn(out_features, in_features, num_basis, generator=gen)
                                        / math.sqrt(in_features * num_basis))
        self.bias = torch.nn.Parameter(torch.zeros(out_features))

    def forward(self, x):
        return self.contract(x, self.grid, self.coeff, self.spline_order) + self.bias


def _cost_layer(series, nb, cfg, device):
    k, w = cfg["spline_order"], cfg["width"]
    if series in BASES:
        basis, size = make_basis(series, nb, k, in_features=w)
        if hasattr(basis, "grid"):
            basis.grid = basis.grid.to(device)
        return BasisLayer(basis, w, w, nb).to(device), size
    path = series.split("-")[1]
    g = nb - k
    if g < 1:
        raise S.Unavailable(S.UNSUPPORTED, f"num_basis={nb} < spline_order+1")
    contract = pick.contract_path(path, device)
    grid = uniform_grid(w, g, k, (-1.0, 1.0), device=device)
    return LocalSplineLayer(contract, grid, k, w, w, nb).to(device), g


# --------------------------------------------------------------------------- accuracy

def target_1d(x):
    """A smooth 1D target with two scales (the KAN paper's flavour): exp(sin(πx)) + 0.2·sin(6πx)."""
    return torch.exp(torch.sin(math.pi * x)) + 0.2 * torch.sin(6 * math.pi * x)


def target_2d(xy):
    """The KAN paper's toy f(x, y) = exp(sin(πx) + y²), exactly a [2, 1, 1] KAN."""
    return torch.exp(torch.sin(math.pi * xy[:, 0]) + xy[:, 1] ** 2)


def fit_1d(name: str, nb: int, spline_order: int, points: int) -> tuple[float, float, int]:
    """Least-squares optimum of ``Σ_b c_b φ_b(x) + c_0`` in float64; test error on a 4× finer grid."""
    basis, size = make_basis(name, nb, spline_order, in_features=1)
    if hasattr(basis, "grid"):
        basis.grid = basis.grid.double()
    x = torch.linspace(-1, 1, points + 1, dtype=torch.float64)[:-1].unsqueeze(1)
    xt = torch.linspace(-1, 1, 4 * points + 1, dtype=torch.float64)[:-1].unsqueeze(1)

    def design(z):
        phi = basis.evaluate(z)[:, 0, :]
        return torch.cat([phi, torch.ones(len(z), 1, dtype=z.dtype)], dim=1)

    sol = torch.linalg.lstsq(design(x), target_1d(x[:, 0]).unsqueeze(1), driver="gelsd").solution
    pred = (design(xt) @ sol)[:, 0]
    err = pred - target_1d(xt[:, 0])
    rmse = err.pow(2).mean().sqrt().item()
    rel = (err.norm() / target_1d(xt[:, 0]).norm()).item()
    return rmse, rel, size


def fit_2d(name: str, nb: int, cfg: dict, device, seed: int = 0) -> tuple[float, float, int]:
    """Two-layer KAN ``[2, h, 1]`` trained with Adam; the hidden layer is squashed by tanh into the basis range."""
    k = cfg["spline_order"]
    torch.manual_seed(seed)
    b1, size = make_basis(name, nb, k, in_features=2)
    b2, _ = make_basis(name, nb, k, in_features=cfg["fit2d_hidden"])
    for b in (b1, b2):
        if hasattr(b, "grid"):
            b.grid = b.grid.to(device)
    l1 = BasisLayer(b1, 2, cfg["fit2d_hidden"], nb, seed=seed).to(device)
    l2 = BasisLayer(b2, cfg["fit2d_hidden"], 1, nb, seed=seed + 1).to(device)
    gen = torch.Generator().manual_seed(seed)
    xy = (torch.rand(cfg["fit2d_points"], 2, generator=gen, dtype=torch.float32) * 2 - 1).to(device)
    xt = (torch.rand(4 * cfg["fit2d_points"], 2, generator=gen, dtype=torch.float32) * 2 - 1).to(device)
    y, yt = target_2d(xy), target_2d(xt)
    params = list(l1.parameters()) + list(l2.parameters())
    opt = torch.optim.Adam(params, lr=cfg["fit2d_lr"])
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg["fit2d_steps"])

    def model(z):
        return l2(torch.tanh(l1(z)))[:, 0]

    for _ in range(cfg["fit2d_steps"]):
        opt.zero_grad(set_to_none=True)
        loss = (model(xy) - y).pow(2).mean()
        loss.backward()
        opt.step()
        sched.step()
    with torch.no_grad():
        err = model(xt) - yt
        return err.pow(2).mean().sqrt().item(), (err.norm() / yt.norm()).item(), size


# --------------------------------------------------------------------------- run / plot

@recorded(PROFILES)
def run(cfg: dict, device="cpu", progress: bool = True):
    """Rows of part ``cost`` (time per series and size), ``fit1d`` and ``fit2d`` (error per basis and size)."""
    dev = sw.check_device(device)
    check_choices(cfg, "series", COST_SERIES)
    jobs = [("cost", s, nb) for s in cfg["series"] for nb in cfg["num_basis"]]
    jobs += [(part, b, nb) for part in ("fit1d", "fit2d") for b in BASES for nb in cfg["fit_num_basis"]]
    rows = []
    budget = sw.Budget(cfg["time_budget_s"])
    for part, series, nb in sw.progress_bar(jobs, progress=progress, desc="cross-basis"):
        base = dict(part=part, series=series, num_basis=nb, n=cfg["n"] if part == "cost" else float("nan"),
                    width=cfg["width"] if part == "cost" else float("nan"))
        if budget.spent():
            rows.append(dict(base, **budget.row()))
            continue
        if part == "cost":
            rows.append(dict(base, **_cost_point(series, nb, cfg, dev)))
            continue
        try:
            if part == "fit1d":
                rmse, rel, size = fit_1d(series, nb, cfg["spline_order"], cfg["fit1d_points"])
            else:
                rmse, rel, size = fit_2d(series, nb, cfg, dev)
            rows.append(dict(base, size_param=size, rmse=rmse, rel_l2=rel, status=S.OK, note=""))
        except S.Unavailable as exc:
            rows.append(dict(base, status=exc.status, note=exc.note))
    return sw.finish(rows, COLUMNS)


def _cost_point(series, nb, cfg, dev):
    if series == "bspline-fused" and cfg["fused_work_limit"] is not None:
        work = prob.fused_work(cfg["n"], cfg["width"], cfg["width"], nb - cfg["spline_order"], cfg["spline_order"])
        ok, why = pick.interpreter_budget_ok(dev, work, cfg["fused_work_limit"])
        if not ok:
            return dict(guard.EMPTY, status=S.SKIPPED, note=why)
    built, bad = guard.guarded(lambda: _cost_layer(series, nb, cfg, dev), dev)
    if bad:
        return bad
    layer, size = built
    x = torch.rand(cfg["n"], cfg["width"], device=dev) * 2 - 1
    res = guard.measure(guard.forward_backward_fn(layer, x), dev, warmup=cfg["warmup"], reps=cfg["rep"])
    return dict(res, size_param=size)


def headline(df):
    """Per basis and size: cost (ms) and the 1D / 2D fit errors side by side."""
    import pandas as pd

    cost = viz.status_pivot(df[df["part"] == "cost"], "num_basis", "series", "median_ms")
    fits = {p: viz.status_pivot(df[df["part"] == p], "num_basis", "series", "rmse")
            for p in ("fit1d", "fit2d")}
    return pd.concat({"cost (ms)": cost, "1D RMSE": fits["fit1d"], "2D RMSE": fits["fit2d"]},
                     axis=1).rename_axis("n_b")


@page_figure
def plot(df):
    """Cost and fit error against the number of basis functions per edge (log-log), one panel each."""
    fig, axes = panels(3, height=3.0)
    palette = {"bspline": "#1f77b4", "power": "#9467bd", "chebyshev": "#2ca02c", "rbf": "#ff7f0e",
               "fourier": "#8c564b", "bspline-sparse": "#17becf", "bspline-fused": "#d62728"}
    ok = sw.ok_rows(df)
    cost = df[df["part"] == "cost"]
    shape = (f" (N={int(cost['n'].iloc[0])}, {int(cost['width'].iloc[0])}→{int(cost['width'].iloc[0])})"
             if len(cost) else "")
    titles = {"cost": f"cost of one layer, forward+backward{shape}",
              "fit1d": "1D fit (least-squares optimum): exp(sin πx) + 0.2 sin 6πx",
              "fit2d": "2D fit, [2, h, 1] KAN trained with Adam: exp(sin πx + y²)"}
    for ax, part, col, ylabel in ((axes[0], "cost", "median_ms", "time (ms)"),
                                  (axes[1], "fit1d", "rmse", "test RMSE"),
                                  (axes[2], "fit2d", "rmse", "test RMSE")):
        sub = ok[ok["part"] == part]
        for series, grp in sub.groupby("series", sort=False):
            grp = grp.sort_values("num_basis")
            ls = "--" if series in ("power",) else "-"
            ax.plot(grp["num_basis"], grp[col], marker="o", ms=4, linestyle=ls, color=palette.get(series),
                    label=series)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        viz.plain_ticks(ax)
        ax.set_xlabel("basis functions per edge $n_b$")
        ax.set_ylabel(ylabel)
        ax.grid(True, which="both", alpha=0.3)
        ax.set_title(titles[part])
        if not sub.empty:
            ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    axes[-1].set_xlabel(with_note("basis functions per edge $n_b$ (G+k, degree+1, centres, 2·frequencies)",
                                  not_run(df, ["part", "series"])))
    return fig


def _cheaper_than_fused(cost) -> str:
    """Which other basis layers cost less than the fused B-spline, at which n_b."""
    if "bspline-fused" not in cost.columns:
        return "The fused B-spline layer was not measured."
    parts, where = [], set()
    for series in [c for c in cost.columns if c != "bspline-fused"]:
        both = cost[["bspline-fused", series]].dropna()
        pts = [nb for nb, r in both.iterrows() if r[series] < r["bspline-fused"]]
        if pts:
            parts.append(f"{series} at n_b = {joined(f'{p:g}' for p in pts)}")
            where.update(pts)
    if not parts:
        return "The fused B-spline layer was the cheapest at every n_b measured."
    rest = [nb for nb in cost.index if nb > max(where) and cost.loc[nb].notna().sum() > 1]
    tail = (f"; from n_b = {min(rest):g} on the fused B-spline was the cheapest" if rest and all(
        cost.loc[nb, "bspline-fused"] <= cost.loc[nb].dropna().min() for nb in rest) else "")
    return f"Not every size favours it: cheaper than the fused B-spline were {joined(parts)}{tail}."


def verdict_numbers(df) -> dict:
    """The chapter's verdict: cost growth of each basis over the n_b sweep, and the best 1D fit at the largest n_b."""
    nan = float("nan")
    ok = sw.ok_rows(df)
    cost = ok[ok["part"] == "cost"].pivot_table(index="num_basis", columns="series", values="median_ms")
    out = dict(cb_nb_lo=nan, cb_nb_hi=nan, cb_fused_growth=nan, cb_bspline_growth=nan, cb_cheb_growth=nan,
               cb_fused_vs_cheb_hi=nan, cb_fit_nb=nan, cb_bspline_rmse=nan, cb_best_rmse=nan)
    if len(cost) >= 2:
        lo, hi = cost.index.min(), cost.index.max()
        out.update(cb_nb_lo=lo, cb_nb_hi=hi)
        for series, key in (("bspline-fused", "cb_fused_growth"), ("bspline", "cb_bspline_growth"),
                            ("chebyshev", "cb_cheb_growth")):
            if series in cost.columns:
                out[key] = cost.loc[hi, series] / cost.loc[lo, series]
        if {"bspline-fused", "chebyshev"} <= set(cost.columns):
            out["cb_fused_vs_cheb_hi"] = cost.loc[hi, "chebyshev"] / cost.loc[hi, "bspline-fused"]
    fit = ok[ok["part"] == "fit1d"].pivot_table(index="num_basis", columns="series", values="rmse")
    best = "—"
    if len(fit):
        nb = fit.index.max()
        row = fit.loc[nb].dropna()
        out["cb_fit_nb"] = nb
        if len(row):
            best = str(row.idxmin())
            out["cb_best_rmse"] = row.min()
        if "bspline" in row.index:
            out["cb_bspline_rmse"] = row["bspline"]
    out["cb_best_basis"] = best
    b, r = out["cb_bspline_rmse"], out["cb_best_rmse"]
    out["cb_acc_text"] = ("the B-spline itself" if best in ("bspline", "power") else
                          f"{best} (test RMSE {r:.2g}, against the B-spline's {b:.2g}): on a smooth target a global "
                          "basis converges faster per basis function, so the B-spline's advantage here is its cost, "
                          "not its accuracy" if best != "—" and b == b else "not measured")
    out["cb_cheaper_text"] = _cheaper_than_fused(cost)
    out["cb_fused_growth_text"] = times(out["cb_fused_growth"])
    out["cb_cheb_growth_text"] = times(out["cb_cheb_growth"])
    out["cb_fused_vs_cheb_text"] = times(out["cb_fused_vs_cheb_hi"])
    return out
