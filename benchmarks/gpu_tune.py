"""Launch-config sweep of the fused primitives on one GPU (kernels/configs/<gpu>.json).

Per launch entry and precision class (fp32-ieee -> ieee, tf32, bf16) it times configs
around the one in force (powers of two) at N=8192, 512->512, k=3, G in (5, 20, 100),
the strategy forced through the primitives' ``strategy=`` (about 2000 timed launches):

  fwd/dx/dw gather      block sizes x {1/2, 1, 2}, then num_warps x num_stages at the current blocks;
  all/streamed basis    BASIS_BLOCK_N x BASIS_BLOCK_I, then basis_warps, timed on fwd + dw;
  all/streamed reduce   REDUCE_BLOCK_N x REDUCE_BLOCK_I, then reduce_warps, timed on dx.

chunk_mib / dw_accumulate_ratio are left alone (``gpu_layer_bench.py --crossover``).  A
candidate whose output (NaN-poisoned buffers) differs from the current config's by more
than TOL, or that fails to compile or run, is rejected.  Per (entry, class) the smallest
median summed over G (and primitives) wins if --min-gain faster than the current config;
``--write`` stores the changed winners as ``<prim>/<strategy>/<class>`` entries of the GPU's
file via ``dispatch.write_gpu_table`` (streamed entries: only the swept keys).

  python benchmarks/gpu_tune.py --out results/gpu --write
  python benchmarks/gpu_tune.py --entries dx/gather --precision bf16
  python benchmarks/gpu_tune.py --smoke          # CPU, TRITON_INTERPRET=1, nothing written
"""

import argparse
import itertools
import json
import math
import os
import sys
import tempfile
import time

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, HERE)

from gpu_layer_bench import provenance, write_csv  # noqa: E402

from sparsefuse.lab.bench import PRECISIONS, precision, try_benchmark  # noqa: E402
from sparsefuse.kernels.spec import SPECS  # noqa: E402

ORDER, GRIDS = 3, (5, 20, 100)
DERIV = {"fwd": 0, "dx": 1, "dw": 0}  # derivative order timed per primitive
# group -> (entry, keys swept as a product, launch keys swept at the current blocks, primitives)
GROUPS = {
    "fwd/gather": (("fwd", "gather"), ("BLOCK_N", "BLOCK_O"), ("num_warps", "num_stages"), ("fwd",)),
    "dx/gather": (("dx", "gather"), ("BLOCK_N", "BLOCK_I", "BLOCK_O"), ("num_warps", "num_stages"), ("dx",)),
    "dw/gather": (("dw", "gather"), ("BLOCK_N", "BLOCK_O", "WINDOW"), ("num_warps", "num_stages"), ("dw",)),
    "all/streamed:basis": (("all", "streamed"), ("BASIS_BLOCK_N", "BASIS_BLOCK_I"), ("basis_warps",), ("fwd", "dw")),
    "all/streamed:reduce": (("all", "streamed"), ("REDUCE_BLOCK_N", "REDUCE_BLOCK_I"), ("reduce_warps",), ("dx",)),
}
STAGES = (2, 3, 4)
MAX_PER_THREAD = 128  # register-tile elements per thread beyond which a launch only spills
# Largest max|a - b| / max|b| against the current config: configs change only the
# summation order (and, for bf16 outputs, one rounding of the result).
TOL = {"fp32-ieee": 1e-4, "tf32": 2e-3, "bf16": 2e-2}


def candidates(group, current):
    """The current config first, then block products, then launch options around it."""
    entry, product, launch, _ = GROUPS[group]
    around = lambda v: (v // 2, v, v * 2) if v > 1 else (v, v * 2)  # noqa: E731
    out = [dict(current)]
    for vals in itertools.product(*(around(current[k]) for k in product)):
        out.append(dict(current, **dict(zip(product, vals))))
    opts = [tuple(v for v in around(current[k]) if 2 <= v <= 16) if "warps" in k
            else tuple(sorted(set(STAGES) | {current.get(k, 3)})) for k in launch]
    for vals in itertools.product(*opts):
        out.append(dict(current, **dict(zip(launch, vals))))
    seen, keep = set(), []
    for c in out:
        key = json.dumps(c, sort_keys=True)
        spec = SPECS[entry]
        if key not in seen and spec.invalid(c) is None and (c is out[0] or spec.per_thread(c) <= MAX_PER_THREAD):
            seen.add(key)
            keep.append(c)
    return keep


def problem(mode, G, size, device):
    """{primitive: strategy -> output} launchers of one (precision, G) on fixed random data."""
    from sparsefuse.kernels import dw as kdw, dx as kdx, fwd as kfwd
    from sparsefuse.kernels.geometry import geometry

    N, IN, OUT = size
    k, M = ORDER, G + ORDER
    gen = torch.Generator().manual_seed(G)
    grid = (torch.arange(-k, G + k + 1, dtype=torch.float64) * (2.0 / G) - 1.0)[None].repeat(IN, 1)
    grid = grid.to(torch.float32).to(device)
    wdt = torch.bfloat16 if mode == "bf16" else torch.float32
    with precision(mode):
        geo = geometry(grid, torch.float32, wdt)
    x = (torch.rand(N, IN, generator=gen) * 2 - 1).to(device)
    C = torch.randn(OUT, IN, M, generator=gen).to(device=device, dtype=wdt)
    Co = kfwd.o_major(C)  # the gather launches' own layout: time the kernel, not the permute
    g = torch.randn(N, OUT, generator=gen).to(device=device, dtype=wdt)
    pick = lambda s: C if s == "streamed" else Co  # noqa: E731
    return {"fwd": lambda s: kfwd.fwd(x, grid, geo, pick(s), None, k, DERIV["fwd"], strategy=s),
            "dx": lambda s: kdx.dx(x, grid, geo, pick(s), g, k, DERIV["dx"], strategy=s),
            "dw": lambda s: kdw.dw(x, grid, geo, g, None, k, DERIV["dw"], M, strategy=s)}


def time_group(group, mode, cls, args, device, problems, rows):
    """Summed median ms per candidate (inf = rejected); the current config is candidate 0."""
    from sparsefuse import kernels as sk
    from sparsefuse.kernels import dispatch

    (prim, strat), product, launch, prims = GROUPS[group]
    current = dict(dispatch.config(prim, strat, cls, device))
    cands = candidates(group, current)[: 2 if args.smoke else None]
    totals, errs, refs = [0.0] * len(cands), [0.0] * len(cands), {}
    for i, cfg in enumerate(cands):
        for (G, p), call in [(gp, c) for gp, c in problems.items() if gp[1] in prims]:
            row = dict(group=group, precision=mode, cls=cls, G=G, primitive=p, candidate=i,
                       config=json.dumps(cfg, sort_keys=True), median_ms=math.nan, rel_err=math.nan)
            try:
                drop = {"num_stages": None} if "num_stages" in dispatch.CONFIG_KEYS[(prim, strat)] else {}
                with precision(mode), dispatch.override_config(prim, strat, **dict(drop, **cfg)):
                    with sk.poison_outputs():
                        out = call(strat).double()
                    ref = refs.setdefault((G, p), out)  # candidate 0, the current config
                    err = (out - ref).abs().max().item() / max(ref.abs().max().item(), 1e-30)
                    row["rel_err"] = err = math.inf if math.isnan(err) else err
                    if err > TOL[mode]:
                        row["status"] = "rejected: output differs"
                    else:
                        r = try_benchmark(lambda: call(strat), device=device, **args.reps)
                        row.update(median_ms=r.median_ms, status=r.status)
            except Exception as exc:  # compile errors, out of resources: reject the config
                if any(s in str(exc).lower() for s in ("illegal", "misaligned")) or i == 0:
                    raise  # the CUDA context is gone, or the current config itself fails
                row["status"] = f"error: {type(exc).__name__}: {str(exc).strip()[:160]}"
            rows.append(row)
            totals[i] += row["median_ms"] if row["status"] == "ok" else math.inf
            errs[i] = max(errs[i], row["rel_err"]) if row["rel_err"] == row["rel_err"] else math.inf
        print(f"{group:<20} {mode:<9} #{i:<3} {totals[i]:10.4f} ms  rel err {errs[i]:8.1e}  "
              f"{ {k: cfg.get(k) for k in product + launch} }", flush=True)
    best = min(range(len(cands)), key=lambda j: totals[j])
    if not totals[best] < totals[0] * (1 - args.min_gain):
        best = 0
    return dict(group=group, mode=mode, cls=cls, current=cands[0], best=cands[best],
                current_ms=totals[0], best_ms=totals[best], tried=len(cands),
                rejected=sum(t == math.inf for t in totals))


def gpu_update(results):
    """{"launch": {"fwd/gather/bf16": cfg, "all/streamed/bf16": swept keys}} for changed winners."""
    launch = {}
    for r in results:
        if r["best"] == r["current"]:
            continue
        (prim, strat), product, opts, _ = GROUPS[r["group"]]
        key = f"{prim}/{strat}/{r['cls']}"
        launch.setdefault(key, {}).update(
            r["best"] if prim != "all" else {k: r["best"][k] for k in product + opts})
    return {"launch": launch}


def prove_write_path(update):
    """--smoke: write_gpu_table into a temporary CONFIG_DIR and read the file back."""
    from sparsefuse.kernels import dispatch

    old = dispatch.CONFIG_DIR
    with tempfile.TemporaryDirectory() as tmp:
        dispatch.CONFIG_DIR = tmp
        try:
            update = update if update["launch"] else {"launch": {"fwd/gather/ieee": dict(
                dispatch.config("fwd", "gather", "ieee"))}}
            path = dispatch.write_gpu_table("Smoke GPU", update, "smoke: benchmarks/gpu_tune.py --smoke")
            back = dispatch.load_table(os.path.basename(path))["launch"]
            ok = all(back[tuple(k.split("/"))] == v for k, v in update["launch"].items())
        finally:
            dispatch.CONFIG_DIR = old
            dispatch.load_table.cache_clear()
    print(f"temp write of {os.path.basename(path)} ({len(update['launch'])} launch entries): "
          f"{'ok' if ok else 'MISMATCH'}")
    return ok


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--precision", default="all", choices=("all",) + PRECISIONS)
    p.add_argument("--entries", nargs="*", choices=tuple(GROUPS), default=list(GROUPS))
    p.add_argument("--grids", type=int, nargs="*", default=list(GRIDS))
    p.add_argument("--min-gain", type=float, default=0.02, help="keep the current config unless the best "
                   "is this fraction faster")
    p.add_argument("--out", default=None, help="folder for gpu_tune.csv (written atomically)")
    p.add_argument("--write", action="store_true", help="store the winners in kernels/configs/<gpu>.json")
    p.add_argument("--smoke", action="store_true", help="tiny sizes, 2 candidates per entry, CPU interpreter")
    p.add_argument("--device", default=None)
    args = p.parse_args(argv)
    from sparsefuse.kernels import dispatch

    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type != "cuda" and not args.smoke:
        print("no CUDA device: only --smoke runs here (TRITON_INTERPRET=1)", file=sys.stderr)
        return 2
    modes = PRECISIONS if args.precision == "all" else (args.precision,)
    if device.type == "cpu":
        modes = tuple(m for m in modes if m != "tf32")  # TF32 means nothing on CPU
    size, grids = ((64, 8, 16), (5,)) if args.smoke else ((8192, 512, 512), tuple(args.grids))
    args.reps = dict(warmup=1, rep=2) if args.smoke else dict(warmup=25, rep=100)
    print("provenance:", provenance(device), flush=True)
    rows, results = [], []
    for mode in modes:
        cls = dispatch.precision_class(torch.bfloat16 if mode == "bf16" else torch.float32,
                                       "tf32" if mode == "tf32" else "ieee")
        problems = {(G, p): f for G in grids for p, f in problem(mode, G, size, device).items()}
        for group in args.entries:
            results.append(time_group(group, mode, cls, args, device, problems, rows))
        if args.out:  # a run cut short still leaves every finished precision
            write_csv(rows, os.path.join(args.out, "gpu_tune.csv"))
    print(f"\nBest per (entry, precision class), median summed over G={grids} "
          f"(N={size[0]}, {size[1]}->{size[2]}, k={ORDER}):")
    for r in results:
        changed = {k: v for k, v in r["best"].items() if r["current"].get(k) != v}
        print(f"  {r['group']:<20} {r['cls']:<5} current {r['current_ms']:10.4f} ms  best {r['best_ms']:10.4f} ms"
              f"  x{r['current_ms'] / r['best_ms']:5.2f}  ({r['tried']} tried, {r['rejected']} rejected)  "
              f"{changed or 'keep current'}")
    update = gpu_update(results)
    print("GPU file update:", json.dumps(update, sort_keys=True))
    if args.smoke and not prove_write_path(update):
        return 1
    if args.write and device.type == "cuda" and not args.smoke and update["launch"]:
        gpu = torch.cuda.get_device_name(device)
        measured = (f"{gpu}, {time.strftime('%Y-%m-%d')}: benchmarks/gpu_tune.py --write (N={size[0]}, "
                    f"{size[1]}->{size[2]}, k={ORDER}, G in {grids}, {', '.join(modes)})")
        print(f"wrote {dispatch.write_gpu_table(gpu, update, measured)}")
    elif args.write:
        why = "--smoke" if args.smoke else "no CUDA device" if device.type != "cuda" else "no change"
        print(f"--write: nothing written ({why})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
