"""The kernel-v3 section of results/gpu/README.md, from results/gpu/v3/ (gpu_v3_checks.sh and gpu_v3_sweep.sh).

Each target of the kernel-v3 issue is stated with its measured number and whether it was met;
the sweep is shown row by row against the best peer. The adaptive-grid rows come from the first
pass (``v3_first_pass/``: the kernels' arithmetic has not changed since). Called by gpu_report.py.
"""
from __future__ import annotations

import json
import math
import os
import re

import pandas as pd

COMPILE_TARGET = 1.05  # compiled time at most this multiple of eager
ADAPTIVE_TARGET = 1.15  # adaptive-grid rows at most this multiple of the uniform row of the same shape
HOST_TARGET_MS, HOST_GOAL_MS = 0.3, 0.1  # eager forward+backward above nn.Linear, N=1024 64->64
UNIFORM_SLACK = 1.03  # kernel v3 on uniform grids at most this multiple of kernel v2
GEOMEAN_GOAL, LARGE_G_GOAL = 2.0, 3.0  # bf16/TF32 geomean over the sweep; at G >= 30
PEERS = ("kan-reference", "inkan", "flashkan", "kanditioned")
SWEEP_FILES = ("sweep_eager.csv", "sweep_rest_16k.csv", "sweep_rest_16k_g30.csv", "sweep_rest_32k.csv")


def _ms(df, impl, **where):
    sub = df[df["impl"] == impl]
    for k, v in where.items():
        sub = sub[sub[k] == v]
    return float(sub["fwdbwd_ms"].iloc[0]) if len(sub) else float("nan")


def _geomean(values) -> float:
    v = [x for x in values if x == x and x > 0]
    return math.exp(sum(map(math.log, v)) / len(v)) if v else float("nan")


def sweep_rows(f: str) -> pd.DataFrame:
    """One row per (shape, precision): ours, the best peer (name, ms) and the speed-up; later files
    replace earlier measurements of the same row (they ran with lean launches)."""
    frames = [pd.read_csv(os.path.join(f, n)) for n in SWEEP_FILES if os.path.exists(os.path.join(f, n))]
    df = pd.concat(frames).drop_duplicates(["workload", "precision", "impl"], keep="last")
    df = df[df["status"] == "ok"]
    out = []
    for (N, i, o, G, prec), g in df.groupby(["N", "inp", "out", "G", "precision"]):
        ours = g[g["impl"] == "kan-auto"]
        peers = g[g["impl"].isin(PEERS)]
        if not len(ours) or not len(peers):
            continue
        best = peers.loc[peers["fwdbwd_ms"].idxmin()]
        out.append(dict(N=N, inp=i, shape=f"{i}→{o}", G=G, precision=prec, ours=float(ours["fwdbwd_ms"].iloc[0]),
                        pct_floor=float(ours["pct_of_floor"].iloc[0]), peer=best["impl"], peer_ms=best["fwdbwd_ms"],
                        speedup=best["fwdbwd_ms"] / float(ours["fwdbwd_ms"].iloc[0])))
    return pd.DataFrame(out)


def _checks(f: str) -> list[str]:
    found = []
    for log in ("checks_run.log", "eager_run.log", "final_run.log"):
        p = os.path.join(f, log)
        if os.path.exists(p):
            text = open(p).read()
            found += [f"`{log}`: {m.strip('= ')}" for m in re.findall(
                r"^(\d+/\d+ checks passed|\d+ passed(?:, \d+ failed)?|=+ ERROR SUMMARY: \d+ errors)", text, re.M)]
    return found


def _sweep_table(s: pd.DataFrame) -> list[str]:
    out = ["| N | shape | G | bf16: ours | best peer | × | TF32: ours | best peer | × |", "|---|---|---|---|---|---|---|---|---|"]
    for (N, _, shape, G), g in s.groupby(["N", "inp", "shape", "G"], sort=True):
        cells = []
        for prec in ("bf16", "tf32"):
            r = g[g["precision"] == prec]
            if len(r):
                r = r.iloc[0]
                cells += [f"{r['ours']:.3g}", f"{r['peer']} {r['peer_ms']:.3g}", f"{r['speedup']:.2f}×"]
            else:
                cells += ["—"] * 3
        out.append(f"| {N} | {shape} | {G} | " + " | ".join(cells) + " |")
    return out


def section(folder: str) -> list[str]:
    f = os.path.join(folder, "v3")
    if not os.path.isdir(f):
        return []
    prov = json.load(open(os.path.join(f, "provenance.json")))
    met = lambda ok: "met" if ok else "missed"  # noqa: E731
    s = sweep_rows(f)
    geo = {p: _geomean(s[s["precision"] == p]["speedup"]) for p in ("bf16", "tf32")}
    big = s[s["G"] >= 30]
    geo_big = {p: _geomean(big[big["precision"] == p]["speedup"]) for p in ("bf16", "tf32")}
    below = s[s["speedup"] < 1.0].sort_values("speedup")
    c = pd.read_csv(os.path.join(f, "issue20_compiled.csv"))
    comp = []
    for wl, d in c.groupby("workload", sort=False):
        e, k, g, r, lin = (_ms(d, i) for i in ("kan-auto", "kan-auto-compiled", "kan-auto-cudagraphs",
                                               "kan-reference-compiled", "nn.Linear"))
        comp.append((wl, e, k, g, r, lin))
    hp = {r["case"]: r for r in json.load(open(os.path.join(f, "host_profile.json")))}
    h = pd.read_csv(os.path.join(f, "host.csv")).set_index("impl")["wall_ms_per_call"]
    host = h.get("kan-auto", float("nan")) - h.get("nn.Linear", float("nan"))
    ab = pd.read_csv(os.path.join(f, "uniform_ab.csv"))
    ab["tree"] = ab["tag"].map(lambda t: "v2" if t == "v2" else "v3")
    piv = ab.pivot_table(index=["N", "in", "out", "G", "precision"], columns="tree", values="fwdbwd_ms")
    piv["ratio"] = piv["v3"] / piv["v2"]
    lvl = piv.index.get_level_values
    worst = piv[(lvl("N") >= 16384) | (lvl("G") == 100)]["ratio"].max()
    hostbound = piv[(lvl("G") == 5) & (lvl("N") <= 8192)]["ratio"]
    first = os.path.join(folder, "v3_first_pass", "adaptive_bf16.csv")
    adapt = []
    if os.path.exists(first):
        a = pd.read_csv(first)
        a = a[a["impl"] == "kan-auto"]
        for _, row in a[a["grid"] != "uniform"].iterrows():
            uni = a[(a["grid"] == "uniform") & (a["G"] == row["G"]) & (a["N"] == row["N"])]
            if len(uni):
                adapt.append((int(row["G"]), row["fwdbwd_ms"] / uni["fwdbwd_ms"].iloc[0]))
    lean = [(case.split(", eager")[0], hp[case]["wall_ms"], hp[case.replace("eager", "eager-triton-launch")]["wall_ms"])
            for case in hp if case.endswith(", eager") and case.replace("eager", "eager-triton-launch") in hp]
    extra = [(case.split(", compiled")[0], hp[case]["wall_ms"] - hp[case.replace("compiled", "eager")]["wall_ms"],
              hp[case]["kernel_ms"]) for case in hp if case.endswith(", compiled") and case.replace("compiled", "eager") in hp]

    out = ["## Kernel v3", "",
           f"The library runs kernel v3: any grid, one registered op under `torch.compile`, lean launches. Its H200 runs "
           f"(`v3/`, commit {prov['git_commit']}, {prov['date']}; each file's run in `v3/provenance.json`) measured the "
           "sweep below beside the peer packages, the compiled rows, the host overhead and the GPU checks. "
           "Forward+backward ms; bf16 is autocast, TF32 is float32 with TF32 matmuls (the same setting for everyone); "
           "the best peer is the fastest of efficient-kan, inkan, flashkan and KANditioned (left out at N = 32768, "
           "see provenance). Rows under 2 ms are medians of 3 interleaved rounds.", ""]
    out += _sweep_table(s) + [""]
    out += ["| shape (bf16) | eager | torch.compile | compile ÷ eager | CUDA graphs | compiled efficient-kan | nn.Linear |",
            "|---|---|---|---|---|---|---|"]
    out += [f"| {wl} | {e:.3g} | {k:.3g} | {k / e:.2f}× | {g:.3g} | {r:.3g} | {lin:.3g} |" for wl, e, k, g, r, lin in comp]
    ratios = [k / e for _, e, k, *_ in comp]
    rows_below = ", ".join(f"N={r['N']} {r['shape']} G={r['G']} {r['precision']} {r['speedup']:.3f}× ({r['peer']})"
                           for _, r in below.iterrows())
    out += ["", "Against the kernel-v3 targets:", "",
            f"- **No row below the best peer**: {met(below.empty)} — {len(s) - len(below)} of {len(s)} sweep rows at "
            f"≥ 1.0×; below: {rows_below or 'none'}. At those TF32 rows our layer reaches "
            f"{below['pct_floor'].min():.0f}–{below['pct_floor'].max():.0f}% of the time floor (streamed strategy: the "
            "basis written per chunk and contracted by cuBLAS at TF32 rate) against flashkan." if len(below) else
            f"- **No row below the best peer**: met — all {len(s)} sweep rows at ≥ 1.0×.",
            f"- **Geomean ≥ {GEOMEAN_GOAL:.0f}× the best peer** (goal): bf16 {geo['bf16']:.2f}×, TF32 {geo['tf32']:.2f}× "
            f"— {met(min(geo.values()) >= GEOMEAN_GOAL)}; **≥ {LARGE_G_GOAL:.0f}× at G ≥ 30**: bf16 "
            f"{geo_big['bf16']:.2f}×, TF32 {geo_big['tf32']:.2f}× — {met(min(geo_big.values()) >= LARGE_G_GOAL)}.",
            f"- **Compiled ≤ {COMPILE_TARGET}× eager**: {met(max(ratios) <= COMPILE_TARGET)} — "
            + ", ".join(f"{r:.2f}×" for r in ratios) + ". The compiled step runs the same kernels ("
            + "; ".join(f"{wl}: {ex:+.2f} ms of wall time per step over eager at {kt:.3f} ms of kernel time"
                        for wl, ex, kt in extra)
            + ", `v3/host_profile.txt`): the difference is host time in Dynamo's guards, AOTAutograd's runtime "
            "wrappers and the custom op's dispatch layers, paid per step. Mode `reduce-overhead` (CUDA graphs) removes "
            "it: " + ", ".join(f"{g:.3g} ms" for _, _, _, g, _, _ in comp) + ", ahead of eager and of compiled "
            "efficient-kan on every one of these rows.",
            f"- **Adaptive grid within {ADAPTIVE_TARGET}× of uniform**: {met(all(r <= ADAPTIVE_TARGET for _, r in adapt))}"
            " — " + ", ".join(f"{r:.2f}× at G={g}" for g, r in adapt) + " (first pass, `v3_first_pass/adaptive_bf16.csv`).",
            f"- **Eager host overhead ≤ {HOST_TARGET_MS} ms above nn.Linear** (N=1024, 64→64; goal {HOST_GOAL_MS} ms): "
            f"{met(host <= HOST_TARGET_MS)} — {host:.2f} ms ({h.get('kan-auto'):.3g} against {h.get('nn.Linear'):.3g} ms "
            "per call). Lean launches (the compiled kernel's launcher once compiled) against Triton's own path in the "
            "same process (host_profile.py's step: grads reset, forward, backward): "
            + "; ".join(f"{wl}: {a:.3g} vs {b:.3g} ms" for wl, a, b in lean) + ".",
            f"- **Uniform grids no slower than kernel v2 (≤ {UNIFORM_SLACK}×)**: on the GPU-bound rows "
            f"{met(worst <= UNIFORM_SLACK)} (worst {worst:.3f}×, one round); the host-bound rows moved "
            f"{hostbound.min():.2f}–{hostbound.max():.2f}×.",
            "- **Checks on the H200**: " + "; ".join(_checks(f)) + " (compute-sanitizer memcheck in `checks_run.log`; "
            "at 759fe4f the three CUDA lean-launch tests failed, `eager_run.log`: triton 3.6's empty launch-hook chain "
            "was taken for a hook, so every launch went through Triton's own path; fixed and passed at 1644f88).", ""]
    return out
