"""Symbolic regression of a learned KAN edge: which simple formula is this 1D function?

Each candidate form is ``y ≈ c·g(a·x + b) + d``.  For fixed ``(a, b)`` the
outer ``(c, d)`` are a linear least-squares problem, so we search ``(a, b)``
(coarse grid, then Nelder–Mead) and solve ``(c, d)`` exactly inside
(variable projection).  The best form is the *simplest* one whose unexplained
variance ``1 − R²`` is within a factor of the best form's: a cubic can mimic
``sin`` on a short interval, but not to the same number of digits.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

__all__ = ["FORMS", "SymbolicFit", "fit_form", "fit_symbolic", "best_fit", "edge_function"]


def _log(z):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(z > 0, np.log(np.where(z > 0, z, 1.0)), np.nan)


def _exp(z):
    return np.exp(np.clip(z, -50.0, 50.0))


# name -> (g, complexity, template); affine has no inner (a, b).
FORMS: dict[str, tuple] = {
    "affine": (lambda z: z, 1, "{c}*x + {d}"),
    "x^2": (lambda z: z**2, 2, "{c}*({a}*x + {b})^2 + {d}"),
    "x^3": (lambda z: z**3, 3, "{c}*({a}*x + {b})^3 + {d}"),
    "exp": (_exp, 3, "{c}*exp({a}*x + {b}) + {d}"),
    "log": (_log, 3, "{c}*log({a}*x + {b}) + {d}"),
    "sin": (np.sin, 4, "{c}*sin({a}*x + {b}) + {d}"),
    "tanh": (np.tanh, 4, "{c}*tanh({a}*x + {b}) + {d}"),
}


@dataclass(frozen=True)
class SymbolicFit:
    form: str
    a: float
    b: float
    c: float
    d: float
    r2: float
    complexity: int

    @property
    def formula(self) -> str:
        tmpl = FORMS[self.form][2]
        return tmpl.format(a=f"{self.a:.4g}", b=f"{self.b:.4g}", c=f"{self.c:.4g}", d=f"{self.d:.4g}")

    def __call__(self, x):
        x = np.asarray(x, dtype=float)
        return self.c * FORMS[self.form][0](self.a * x + self.b) + self.d


def _linear_outer(gz: np.ndarray, y: np.ndarray):
    """Best ``(c, d)`` for ``y ≈ c·gz + d`` and the residual sum of squares (inf if gz is invalid)."""
    if not np.all(np.isfinite(gz)):
        return 0.0, 0.0, np.inf
    A = np.stack([gz, np.ones_like(gz)], axis=1)
    coef, *_ = np.linalg.lstsq(A, y, rcond=None)
    sse = float(np.sum((A @ coef - y) ** 2))
    return float(coef[0]), float(coef[1]), sse


def _r2(sse: float, y: np.ndarray) -> float:
    sst = float(np.sum((y - y.mean()) ** 2))
    if sst == 0.0:
        return 1.0 if sse <= 1e-24 else 0.0
    return 1.0 - sse / sst


def _prepare(x, y) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x.detach().cpu() if isinstance(x, torch.Tensor) else x, dtype=float).reshape(-1)
    y = np.asarray(y.detach().cpu() if isinstance(y, torch.Tensor) else y, dtype=float).reshape(-1)
    if x.shape != y.shape:
        raise ValueError(f"x and y must have the same number of points, got {x.size} and {y.size}")
    if x.size < 3:
        raise ValueError(f"x needs at least 3 points to fit a form, got {x.size}")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise ValueError("x and y must be finite to fit a symbolic form")
    return x, y


def fit_form(x, y, form: str, a_range: float = 10.0, n_grid: int = 25) -> SymbolicFit:
    """Least-squares fit of one form ``c·g(a·x + b) + d`` to samples ``(x, y)``."""
    if form not in FORMS:
        raise ValueError(f"form must be one of {sorted(FORMS)}, got {form!r}")
    x, y = _prepare(x, y)
    g, complexity, _ = FORMS[form]
    if form == "affine":
        c, d, sse = _linear_outer(x, y)
        return SymbolicFit(form, 1.0, 0.0, c, d, _r2(sse, y), complexity)
    # Work on x scaled to [-1, 1] so one (a, b) grid suits any input range, then map back.
    center, half = (x.max() + x.min()) / 2, max((x.max() - x.min()) / 2, 1e-12)
    s = (x - center) / half

    def cost(p):
        with np.errstate(all="ignore"):
            return _linear_outer(g(p[0] * s + p[1]), y)[2]

    a_vals = np.linspace(-a_range, a_range, n_grid)
    a_vals = a_vals[np.abs(a_vals) > 1e-9]
    b_vals = np.linspace(-a_range, a_range, n_grid)
    scores = sorted((cost((a, b)), a, b) for a in a_vals for b in b_vals)
    from scipy.optimize import minimize

    best = (np.inf, 1.0, 0.0)
    for sse0, a0, b0 in scores[:3]:
        if not np.isfinite(sse0):
            continue
        res = minimize(cost, np.array([a0, b0]), method="Nelder-Mead",
                       options={"xatol": 1e-9, "fatol": 1e-14, "maxiter": 600})
        cand = (float(res.fun), float(res.x[0]), float(res.x[1]))
        if cand[0] < best[0]:
            best = cand
    sse, a_s, b_s = best
    if not np.isfinite(sse):
        return SymbolicFit(form, float("nan"), float("nan"), float("nan"), float("nan"), float("-inf"), complexity)
    a, b = a_s / half, b_s - a_s * center / half
    with np.errstate(all="ignore"):
        c, d, sse = _linear_outer(g(a * x + b), y)
    if form in ("x^2", "x^3"):  # c·(a x + b)^p = (c a^p)·(x + b/a)^p: report the canonical monic form
        p = 2 if form == "x^2" else 3
        a, b, c = 1.0, b / a, c * a**p
    elif form == "exp":  # c·exp(a x + b) = (c e^b)·exp(a x)
        a, b, c = a, 0.0, c * float(np.exp(np.clip(b, -50, 50)))
    elif form == "log" and a > 0:  # c·log(a x + b) = c·log(x + b/a) + c·log a
        a, b, d = 1.0, b / a, d + c * float(np.log(a))
    elif form in ("sin", "tanh") and a < 0:  # odd g: flip signs so a > 0
        a, b, c = -a, -b, -c
    if form == "sin":  # c > 0 and phase in (-π, π]: one name for one function
        if c < 0:
            b, c = b + np.pi, -c
        b = float(np.pi - (np.pi - b) % (2 * np.pi))
    return SymbolicFit(form, a, b, c, d, _r2(sse, y), complexity)


def fit_symbolic(x, y, forms=None) -> pd.DataFrame:
    """Fit every form; one row per form with its parameters, R² and formula, best R² first."""
    forms = list(FORMS) if forms is None else list(forms)
    if not forms:
        raise ValueError("forms must name at least one form")
    fits = [fit_form(x, y, f) for f in forms]
    df = pd.DataFrame([{**fit.__dict__, "formula": fit.formula} for fit in fits])
    return df.sort_values(["r2", "complexity"], ascending=[False, True], ignore_index=True)


def best_fit(x, y, forms=None, ratio: float = 10.0, floor: float = 1e-6) -> SymbolicFit:
    """The simplest form whose ``1 − R²`` is ≤ ``max(ratio·(1 − R²_best), floor)``."""
    table = fit_symbolic(x, y, forms)
    miss_best = max(1.0 - float(table["r2"].iloc[0]), 0.0)
    tol = max(ratio * miss_best, floor)
    ok = table[(1.0 - table["r2"]) <= tol].sort_values(["complexity", "r2"], ascending=[True, False])
    row = (ok if len(ok) else table).iloc[0]
    return SymbolicFit(row["form"], row["a"], row["b"], row["c"], row["d"], row["r2"], int(row["complexity"]))


@torch.no_grad()
def edge_function(layer, out_index: int, in_index: int, n: int = 256, x_range=None):
    """Samples ``(x, φ(x))`` of the learned edge ``in_index → out_index`` of a ``KANLinear``.

    ``φ(x) = base_weight·act(x) + Σ_t B_t(x)·(spline_weight ⊙ spline_scaler)_t``, the
    function the layer adds to output ``out_index`` from input ``in_index``.  The
    default range is the grid's ``[t_k, t_{G+k}]``.
    """
    if not 0 <= out_index < layer.out_features:
        raise ValueError(f"out_index must be in [0, {layer.out_features}), got {out_index}")
    if not 0 <= in_index < layer.in_features:
        raise ValueError(f"in_index must be in [0, {layer.in_features}), got {in_index}")
    k = layer.spline_order
    grid = layer.grid
    if x_range is None:
        x_range = (float(grid[in_index, k]), float(grid[in_index, -k - 1]))
    dtype = layer.base_weight.dtype
    x = torch.linspace(float(x_range[0]), float(x_range[1]), n, dtype=dtype, device=grid.device)
    X = torch.zeros(n, layer.in_features, dtype=dtype, device=grid.device)
    X[:, in_index] = x
    basis = layer.b_splines(X)[:, in_index, :]
    act = layer.base_activation
    act = act() if isinstance(act, type) else act
    y = layer.base_weight[out_index, in_index] * act(x) + basis @ layer.scaled_spline_weight[out_index, in_index]
    return x.cpu().numpy(), y.cpu().numpy()
