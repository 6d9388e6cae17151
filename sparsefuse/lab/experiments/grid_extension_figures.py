"""The grid-extension / symbolic / tabular chapter's figure and verdict numbers.

Read from the table :func:`sparsefuse.lab.experiments.grid_extension_symbolic_tabular.run`
returns (and the curves and edge samples attached to it); kept apart from the runs.
"""

from __future__ import annotations


import numpy as np
import pandas as pd

from sparsefuse.lab.side_tables import attached_table
from ._page import not_in_table, page_figure
from ..words import joined

PARTS = ("grid_extension", "symbolic", "tabular")


def curves(df: pd.DataFrame) -> pd.DataFrame:
    """Loss against step for the grid-extension and tabular runs."""
    return attached_table(df, "curves")


def edges(df: pd.DataFrame) -> pd.DataFrame:
    """Learned edge samples ``phi(x)`` with the chosen symbolic fit, per task and edge."""
    return attached_table(df, "edges")



@page_figure
def plot(df: pd.DataFrame):
    """Loss curve with the extension points, error against G, symbolic fits, tabular scores (2×2)."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(7.0, 7.0), layout="constrained")
    _extension_loss(axes[0, 0], curves(df))
    _extension_error(axes[0, 1], df)
    _symbolic_edges(axes[1, 0], edges(df))
    _tabular_scores(axes[1, 1], df)
    return fig


def _extension_loss(ax, cur: pd.DataFrame) -> None:
    """The train loss of the coarse-to-fine run, a dotted line at each extension, beside the fine grid from scratch."""
    if not cur.empty and "grid_extension" in set(cur["part"]):
        ge = cur[cur["part"] == "grid_extension"]
        ext = ge[ge["run"] == "extension"]
        ax.semilogy(ext["step"], ext["loss"], color="#d62728", label="coarse → fine")
        for G, s in ext.groupby("G", sort=False):
            ax.axvline(s["step"].min(), color="#d62728", ls=":", lw=0.8)
        fx = ge[ge["run"] == "fixed"]
        if len(fx):
            ax.semilogy(fx["step"], fx["loss"], color="#7f7f7f", label=f"G={int(fx['G'].iloc[0])} from scratch")
        ax.legend()
    else:
        not_in_table(ax, "loss curves are saved\nin their own table")
    ax.set_title("grid extension: train loss\n(dotted: extensions)")
    ax.set_xlabel("L-BFGS call")
    ax.set_ylabel("train MSE")
    ax.grid(True, which="both", alpha=0.3)


def _extension_error(ax, df: pd.DataFrame) -> None:
    """Test and train RMSE after each extension stage against G, with the G^-4 slope and the from-scratch point."""
    ge = df[(df["part"] == "grid_extension") & (df["status"] == "ok")]
    ext = ge[ge["model"] == "extension"]
    if len(ext):
        ax.loglog(ext["G"], ext["metric"], "o-", color="#d62728", label="test, extension")
        ax.loglog(ext["G"], ext["train_metric"], "x--", color="#d62728", alpha=0.5, label="train")
        g = ext["G"].to_numpy(dtype=float)
        ax.loglog(g, ext["metric"].iloc[0] * (g / g[0]) ** -4.0, "k:", label="G^-4")
        fx = ge[ge["model"] == "fixed"]
        if len(fx):
            ax.loglog(fx["G"], fx["metric"], "s", color="#7f7f7f", ms=8, label="from scratch")
        ax.set_xticks(g, [str(int(v)) for v in g])
        ax.minorticks_off()
        ax.legend()
    ax.set_title("grid extension: RMSE\nafter each stage")
    ax.set_xlabel("grid size G")
    ax.grid(True, which="both", alpha=0.3)


def _symbolic_edges(ax, ed: pd.DataFrame) -> None:
    """The learned edges of the last symbolic case (thick) with the formula fitted to each (dashed)."""
    if not ed.empty:
        case = ed["case"].iloc[-1]
        sub = ed[ed["case"] == case]
        for j, (edge, s) in enumerate(sub.groupby("edge", sort=False)):
            # standardise each edge so several fit on one axis
            mu, sd = s["phi"].mean(), s["phi"].std() or 1.0
            xs = (s["x"] - s["x"].min()) / max(s["x"].max() - s["x"].min(), 1e-12)
            ax.plot(xs, (s["phi"] - mu) / sd + 3 * j, color=f"C{j}", lw=3, alpha=0.4)
            ax.plot(xs, (s["fit"] - mu) / sd + 3 * j, color=f"C{j}", ls="--", lw=1, label=edge)
        ax.legend()
        ax.set_title(f"symbolic: {case}\nthick: learned, dashed: formula")
    else:
        not_in_table(ax, "learned edges are not\nsaved with the table")
        ax.set_title("symbolic: learned edges")
    ax.set_xlabel("edge input (rescaled)")
    ax.set_yticks([])


def _tabular_scores(ax, df: pd.DataFrame) -> None:
    """KAN and MLP test scores (accuracy or R²) per tabular dataset, at the same parameter count."""
    tab = df[df["part"] == "tabular"]
    if len(tab):
        cases = list(dict.fromkeys(tab["case"]))
        lo = min(0.0, float(tab["metric"].min(skipna=True)) if tab["metric"].notna().any() else 0.0)
        for i, (m, color) in enumerate((("kan", "#d62728"), ("mlp", "#1f77b4"))):
            s = tab[tab["model"] == m].set_index("case").reindex(cases)
            ax.bar(np.arange(len(cases)) + (i - 0.5) * 0.38, s["metric"].fillna(0), 0.38, color=color,
                   label=m.upper())
        ax.axhline(0, color="black", lw=0.8)
        names = {"accuracy": "acc", "r2": "R²"}
        ax.set_xticks(range(len(cases)), [f"{c}\n({names.get(tab[tab['case'] == c]['metric_name'].iloc[0], '')})"
                                          for c in cases], rotation=20)
        ax.set_ylim(lo - 0.1 if lo < 0 else 0, 1.1)
        ax.legend(loc="lower left")
    ax.set_title("tabular: test score\n(same parameter count)")


def verdict_numbers(df: pd.DataFrame, curves: pd.DataFrame | None = None) -> dict:
    """The chapter's verdict: extension vs training the fine grid from scratch, the loss jumps, symbolic, tabular."""
    nan = float("nan")
    out: dict = {}
    ge = df[(df["part"] == "grid_extension") & (df["status"] == "ok")]
    ext = ge[ge["model"] == "extension"].sort_values("G")
    fx = ge[ge["model"] == "fixed"]
    out["ge_g_hi"] = float(ext["G"].max()) if len(ext) else nan
    out["ge_ext_rmse"] = float(ext["metric"].iloc[-1]) if len(ext) else nan
    out["ge_fixed_rmse"] = float(fx["metric"].iloc[0]) if len(fx) else nan
    out["ge_best_g"] = float(ext.loc[ext["metric"].idxmin(), "G"]) if len(ext) else nan
    out["ge_best_rmse"] = float(ext["metric"].min()) if len(ext) else nan
    out["ge_vs_fixed"] = ("lower than" if out["ge_ext_rmse"] < out["ge_fixed_rmse"] else
                          "not lower than" if out["ge_ext_rmse"] == out["ge_ext_rmse"] else "not compared with")
    out["ge_overfit_text"] = ("and the test error is lowest at the finest grid" if out["ge_best_g"] == out["ge_g_hi"]
                              else f"but the test error is lowest at G = {out['ge_best_g']:.0f} "
                                   f"({out['ge_best_rmse']:.3g}) and rises on finer grids, where the grid starts "
                                   "to fit the sample" if out["ge_best_g"] == out["ge_best_g"] else "")
    # loss jump at each extension: first loss of a stage / last loss of the stage before
    cur = curves if curves is not None else attached_table(df, "curves")
    jumps = []
    if cur is not None and len(cur) and "run" in cur.columns:
        e = cur[(cur["part"] == "grid_extension") & (cur["run"] == "extension")]
        prev = None
        for _, s in e.groupby("G", sort=False):
            if prev is not None and prev > 0:
                jumps.append(float(s["loss"].iloc[0]) / prev)
            prev = float(s["loss"].iloc[-1])
    out["ge_jump_median"] = float(np.median(jumps)) if jumps else nan
    out["ge_jump_max"] = float(np.max(jumps)) if jumps else nan
    notes = ext["note"].dropna().astype(str) if "note" in ext.columns else pd.Series(dtype=str)
    old = len(notes) and not notes.str.contains("whole support", regex=False).any()
    out["ge_refit_text"] = (
        " This reference predates the extension that keeps the spline's outer knots: its extend_grid refit the "
        "finer spline on the old grid's interior only and measured the refit error there (at most "
        f"{notes.str.extract(r'error ([0-9.e+-]+)')[0].astype(float).max():.2g} in the notes), so those errors do "
        "not show how much the function changed outside the interior, and part of each jump may be the "
        "extension itself rather than training; a run at a later commit measures it over the whole support."
        if old and jumps and max(jumps) >= 2 else "")
    out["ge_jump_text"] = ("After each extension the training loss continued close to where the coarser grid "
                           "ended" if jumps and max(jumps) < 2 else
                           f"After an extension the first recorded training loss was {np.median(jumps):.3g}× "
                           f"(median; up to {np.max(jumps):.3g}×) the last loss on the coarser grid: training does "
                           "not continue where it left off but recovers over the next calls" if jumps else
                           "The loss curves are not in this table")
    sym = df[(df["part"] == "symbolic") & (df["status"] == "ok")]
    out["sy_edges"] = int(len(sym))
    out["sy_recovered"] = int(pd.to_numeric(sym["recovered"], errors="coerce").fillna(0).sum()) if len(sym) else 0
    tab = df[(df["part"] == "tabular") & (df["status"] == "ok")].pivot_table(index="case", columns="model",
                                                                            values="metric")
    for case in ("breast_cancer", "wine", "digits", "diabetes"):
        for m in ("kan", "mlp"):
            out[f"tb_{case}_{m}"] = float(tab.loc[case, m]) if case in tab.index and m in tab.columns else nan
    wins = [c for c in tab.index if {"kan", "mlp"} <= set(tab.columns) and tab.loc[c, "kan"] > tab.loc[c, "mlp"]]
    ties = [c for c in tab.index if {"kan", "mlp"} <= set(tab.columns) and tab.loc[c, "kan"] == tab.loc[c, "mlp"]]
    out["tb_kan_wins"] = ", ".join(wins) if wins else "none"
    out["tb_ties"] = ", ".join(ties) if ties else "none"
    d = out["tb_diabetes_kan"]
    out["tb_diabetes_text"] = ("below zero, i.e. worse than predicting the mean" if d == d and d < 0 else
                               "above zero" if d == d else "not measured")
    out["tb_claim_text"] = _tabular_claim(tab)
    return out


ON_PAR = 0.01  # "on par": the KAN's test metric (accuracy or R²) at most this far below the MLP's


def _tabular_claim(tab: pd.DataFrame) -> str:
    """Is the KAN on par with the parameter-matched MLP on each tabular set? Said plainly, with the rule."""
    if not {"kan", "mlp"} <= set(tab.columns) or tab.empty:
        return "The tabular comparison was not run."
    par = [c for c in tab.index if tab.loc[c, "kan"] >= tab.loc[c, "mlp"] - ON_PAR]
    lost = [f"{c} ({tab.loc[c, 'kan']:.3g} against {tab.loc[c, 'mlp']:.3g})" for c in tab.index if c not in par]
    rule = f"(on par: the KAN's test metric at most {ON_PAR:g} below the MLP's)"
    if not lost:
        return f"The tabular part of the claim holds on every set {rule}."
    if not par:
        return f"The tabular part of the claim holds on no set {rule}: the KAN lost on {joined(lost)}."
    return (f"The tabular part of the claim holds on {joined(par)} but not on {joined(lost)} {rule}.")
