"""The kernel-v3 section of results/gpu/README.md, from results/gpu/v3_first_pass/ (gpu_v3.sh's files).

Each target of the kernel-v3 issue that the first pass measured is stated with its number and
whether it was met; what the pass did not measure is said too. Called by gpu_report.py.
"""
from __future__ import annotations

import json
import os

import pandas as pd

COMPILE_TARGET = 1.05  # compiled time at most this multiple of eager
ADAPTIVE_TARGET = 1.15  # adaptive-grid rows at most this multiple of the uniform row of the same shape
HOST_TARGET_MS = 0.3  # eager forward+backward above nn.Linear, N=1024 64->64
UNIFORM_SLACK = 1.03  # kernel v3 on uniform grids at most this multiple of kernel v2


def _ms(df, impl, **where):
    sub = df[df["impl"] == impl]
    for k, v in where.items():
        sub = sub[sub[k] == v]
    return float(sub["fwdbwd_ms"].iloc[0]) if len(sub) else float("nan")


def section(folder: str) -> list[str]:
    f = os.path.join(folder, "v3_first_pass")
    if not os.path.isdir(f):
        return []
    prov = json.load(open(os.path.join(f, "provenance.json")))
    out = ["## Kernel v3: first pass", "",
           f"The library now runs kernel v3 (any grid, one registered op under `torch.compile`). Its first H200 pass "
           f"(`v3_first_pass/`, commit {prov['git_commit']}, {prov['date']}) measured part of what the kernel-v3 "
           "issue asks; the side-by-side table above is still kernel v2's. Forward+backward ms, bf16 autocast.", "",
           "| shape | eager | torch.compile | compile ÷ eager | CUDA graphs | compiled efficient-kan | nn.Linear |",
           "|---|---|---|---|---|---|---|"]
    ratios = []
    for name in sorted(n for n in os.listdir(f) if n.startswith("compile_bf16_")):
        d = pd.read_csv(os.path.join(f, name))
        e, c = _ms(d, "kan-auto"), _ms(d, "kan-auto-compiled")
        g, r, lin = _ms(d, "kan-auto-cudagraphs"), _ms(d, "kan-reference-compiled"), _ms(d, "nn.Linear")
        ratios.append(c / e)
        cell = lambda v: "—" if v != v else f"{v:.3g}"  # noqa: E731
        out.append(f"| {d['workload'].iloc[0]} | {cell(e)} | {cell(c)} | {c / e:.2f}× | {cell(g)} | {cell(r)} | {cell(lin)} |")
    out += [""]
    a = pd.read_csv(os.path.join(f, "adaptive_bf16.csv"))
    a = a[a["impl"] == "kan-auto"]
    adapt = []
    for _, row in a[a["grid"] != "uniform"].iterrows():
        uni = a[(a["grid"] == "uniform") & (a["G"] == row["G"]) & (a["N"] == row["N"])]
        if len(uni):
            adapt.append((int(row["G"]), row["fwdbwd_ms"] / uni["fwdbwd_ms"].iloc[0]))
    h = pd.read_csv(os.path.join(f, "host.csv")).set_index("impl")["wall_ms_per_call"]
    host = h.get("kan-auto", float("nan")) - h.get("nn.Linear", float("nan"))
    ab = pd.read_csv(os.path.join(f, "uniform_ab.csv"))
    ab["tree"] = ab["tag"].map(lambda t: "v2" if t == "v2" else "v3")
    piv = ab.pivot_table(index=["N", "in", "out", "G", "precision"], columns="tree", values="fwdbwd_ms")
    piv["ratio"] = piv["v3"] / piv["v2"]
    gpu_bound = piv[piv.index.get_level_values("N") >= 16384].reset_index()
    gpu_bound = pd.concat([gpu_bound, piv[piv.index.get_level_values("G") == 100].reset_index()])
    worst = gpu_bound["ratio"].max()
    met = lambda ok: "met" if ok else "missed"  # noqa: E731
    out += ["Against the kernel-v3 targets:", "",
            f"- **Compiled ≤ {COMPILE_TARGET}× eager**: {met(max(ratios) <= COMPILE_TARGET)} — "
            + ", ".join(f"{r:.2f}×" for r in ratios) + " (by design the compiled forward does not keep the basis, so "
            "its backward writes it again; no profile of the compiled step was taken; CUDA graphs cut the host cost).",
            f"- **Adaptive grid within {ADAPTIVE_TARGET}× of uniform**: {met(all(r <= ADAPTIVE_TARGET for _, r in adapt))}"
            " — " + ", ".join(f"{r:.2f}× at G={g}" for g, r in adapt) + " (fused on both; the PyTorch dense path "
            "that kernel v2 fell back to is in `adaptive_bf16.csv`).",
            f"- **Eager host overhead ≤ {HOST_TARGET_MS} ms above nn.Linear** (N=1024, 64→64): {met(host <= HOST_TARGET_MS)}"
            f" — {host:.2f} ms ({h.get('kan-auto'):.3g} against {h.get('nn.Linear'):.3g} ms per call).",
            f"- **Uniform grids no slower than kernel v2 (≤ {UNIFORM_SLACK}×)**: on the GPU-bound rows "
            f"{met(worst <= UNIFORM_SLACK)} at one round (worst {worst:.3f}×); the host-bound rows "
            f"(N ≤ 8192 at G = 5) moved {piv[(piv.index.get_level_values('G') == 5) & (piv.index.get_level_values('N') <= 8192)]['ratio'].min():.2f}–"
            f"{piv[(piv.index.get_level_values('G') == 5) & (piv.index.get_level_values('N') <= 8192)]['ratio'].max():.2f}× "
            "in one round each; such rows move by ±20% between runs of the same code, so this is not settled.",
            "- **Not measured in this pass**: the sweep over N ∈ {2048, 16384, 32768} × three layer shapes × "
            "G ∈ {5, 10, 30}, TF32 compiled rows, every peer beside the compiled rows, the adaptive-grid kernel "
            "check on the GPU (the check was cut after 195/195 uniform cases passed), compute-sanitizer.", ""]
    return out
