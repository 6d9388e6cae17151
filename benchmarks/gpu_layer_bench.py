"""Side-by-side layer benchmark on one GPU: our paths, the fused strategies, the peers.

For each workload of PERF.md and each precision setting it measures layer forward
(no_grad) and forward+backward (grads of x and all parameters) medians with
``triton.testing.do_bench`` (through ``sparsefuse.bench``) and the peak extra
memory of forward+backward, for:

  nn.Linear (scale), KANLinear impl in fused / sparse / dense / reference,
  the fused layer with each strategy forced (fused-dense, fused-sparse),
  peers inkan / flashkan / kanditioned when importable (else a row says why).

Each row also carries the floors: FLOPs of the sparse formulation
(2 N in (k+1) out per GEMM-like pass, 3 passes for forward+backward, plus the
base branch), of the dense formulation (G+k instead of k+1), the byte floor, the
time floor at the measured ceilings and the measured time as % of it.

  python benchmarks/gpu_layer_bench.py --out results/gpu            # full table
  python benchmarks/gpu_layer_bench.py --quick --precision tf32
  python benchmarks/gpu_layer_bench.py --crossover --out results/gpu  # dispatch sweep
  python benchmarks/gpu_layer_bench.py --smoke                      # CPU, interpreter

``--crossover`` times each primitive (fwd_0, dx_1, dw_0) with the dense and the
sparse strategy forced for G = 3..200 and prints the DENSE_MAX_BASES table to
paste into sparsefuse/kernels/dispatch.py.
"""

import argparse
import contextlib
import csv
import math
import os
import sys
import tempfile
import time

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from sparsefuse.bench import PRECISIONS, autocast, is_oom, precision, try_benchmark  # noqa: E402

# Measured ceilings on H100 (PERF.md).
PEAK_FLOPS = {"fp32-ieee": 50e12, "tf32": 400e12, "bf16": 800e12}
CUDA_CORE_FLOPS = 50e12
BANDWIDTH = 3.0e12

WORKLOADS = [  # (N, in, out, G)
    (8192, 512, 512, 5),
    (8192, 512, 512, 20),
    (8192, 512, 512, 100),
    (65536, 64, 64, 100),
    (4096, 2048, 2048, 5),
]
QUICK = [(8192, 512, 512, 5), (8192, 512, 512, 100)]
SMOKE = [(64, 8, 6, 5)]
KAN_IMPLS = ("fused", "sparse", "dense", "reference")
PEER_NAMES = ("inkan", "flashkan", "kanditioned")
CROSSOVER_G = (3, 5, 8, 12, 16, 20, 28, 36, 48, 64, 80, 100, 125, 160, 200)


def floors(N, IN, OUT, G, k, mode):
    """FLOP and byte floors of forward+backward, and the time floor at the ceilings."""
    base = 2 * N * IN * OUT * 3
    f_sparse = 2 * N * IN * (k + 1) * OUT * 3 + base
    f_dense = 2 * N * IN * (G + k) * OUT * 3 + base
    el = 2 if mode == "bf16" else 4
    params = OUT * IN * (G + k + 1)
    # read x twice, write y, read dy, write dx; read weights twice, write their grads
    bytes_ = el * (3 * N * IN + 2 * N * OUT) + 4 * 3 * params
    t_flop = min(f_sparse / CUDA_CORE_FLOPS, f_dense / PEAK_FLOPS[mode])
    t_floor = max(t_flop, bytes_ / BANDWIDTH)
    mem_floor = (4 * params + el * (2 * N * OUT + N * IN)) / 2**20  # grads + y, dy, dx
    return dict(flops_sparse=f_sparse, flops_dense=f_dense, bytes_floor=bytes_,
                floor_ms=t_floor * 1e3, mem_floor_mib=mem_floor)


def build(impl, IN, OUT, G, k, device):
    """(module, strategy) for one row; raises PeerUnavailable/PeerUnsupported for peers."""
    from sparsefuse import peers
    from sparsefuse.kan_linear import KANLinear

    if impl == "nn.Linear":
        return torch.nn.Linear(IN, OUT, device=device), None
    if impl.startswith("kan-"):
        return KANLinear(IN, OUT, grid_size=G, spline_order=k, impl=impl[4:]).to(device), None
    if impl.startswith("fused-"):
        return KANLinear(IN, OUT, grid_size=G, spline_order=k, impl="fused").to(device), impl[6:]
    return peers.make_peer(impl, IN, OUT, grid_size=G, spline_order=k, device=device), None


def measure(layer, strategy, x, mode, device, reps):
    from sparsefuse.kernels import force_strategy

    params = [p for p in layer.parameters() if p.requires_grad]
    xr = x.clone().requires_grad_()
    strat = force_strategy(strategy) if strategy else contextlib.nullcontext()
    with autocast(mode, device.type):
        probe = layer(x[:2])
    dy = torch.randn(x.shape[0], probe.shape[-1], device=device, dtype=probe.dtype)

    def fwd():
        with torch.no_grad(), autocast(mode, device.type):
            return layer(x)

    def fwdbwd():
        xr.grad = None
        for p in params:
            p.grad = None
        with autocast(mode, device.type):
            y = layer(xr)
        y.backward(dy)

    with strat:
        f = try_benchmark(fwd, device=device, **reps)
        fb = try_benchmark(fwdbwd, device=device, **reps)
    status = "ok" if f.status == fb.status == "ok" else "OOM"
    return f.median_ms, fb.median_ms, fb.peak_mib, status


def run_table(args, device, checkpoint=None):
    from sparsefuse import peers

    workloads = SMOKE if args.smoke else (QUICK if args.quick else WORKLOADS)
    if getattr(args, "workloads", None):
        workloads = [WORKLOADS[i] for i in args.workloads]
    reps = dict(warmup=1, rep=2) if args.smoke else dict(warmup=25, rep=100)
    impls = (["nn.Linear"] + [f"kan-{i}" for i in KAN_IMPLS] + ["fused-dense", "fused-sparse"]
             + list(PEER_NAMES))
    rows = []
    k = 3
    for (N, IN, OUT, G) in workloads:
        gen = torch.Generator().manual_seed(0)
        x = (torch.rand(N, IN, generator=gen) * 2 - 1).to(device)
        for mode in args.precisions:
            fl = floors(N, IN, OUT, G, k, mode)
            for impl in impls:
                row = dict(workload=f"N={N}, {IN}->{OUT}, G={G}", N=N, inp=IN, out=OUT, G=G, k=k,
                           precision=mode, impl=impl, fwd_ms=math.nan, fwdbwd_ms=math.nan,
                           peak_mib=math.nan, status="ok", **fl)
                torch.manual_seed(0)
                try:
                    with precision(mode):
                        layer, strategy = build(impl, IN, OUT, G, k, device)
                        row["fwd_ms"], row["fwdbwd_ms"], row["peak_mib"], row["status"] = measure(
                            layer, strategy, x, mode, device, reps)
                    del layer
                except (peers.PeerUnavailable, peers.PeerUnsupported) as e:
                    row["status"] = f"skipped: {e}"
                except Exception as e:  # noqa: BLE001 - one bad row must not end the run
                    row["status"] = "OOM" if is_oom(e) else f"error: {type(e).__name__}: {e}"[:200]
                if device.type == "cuda":
                    torch.cuda.empty_cache()
                t = row["fwdbwd_ms"]
                row["pct_of_floor"] = 100 * fl["floor_ms"] / t if t > 0 else math.nan
                row["mem_ratio"] = row["peak_mib"] / fl["mem_floor_mib"]
                rows.append(row)
                print(f"{row['workload']:<28} {mode:<9} {impl:<15} fwd {row['fwd_ms']:9.3f} ms  "
                      f"fwd+bwd {row['fwdbwd_ms']:9.3f} ms  peak {row['peak_mib']:9.1f} MiB  "
                      f"{row['pct_of_floor']:6.1f}% of floor  {row['status']}", flush=True)
            if checkpoint is not None:  # a run cut short still leaves every finished row
                checkpoint(with_peer_speedups(rows))
    return with_peer_speedups(rows)


def with_peer_speedups(rows):
    """Speed-up of every row against the best peer of the same workload and precision."""
    for r in rows:
        peer_times = [q["fwdbwd_ms"] for q in rows if q["impl"] in PEER_NAMES
                      and q["workload"] == r["workload"] and q["precision"] == r["precision"]
                      and q["status"] == "ok"]
        best = min(peer_times) if peer_times else math.nan
        r["best_peer_ms"] = best
        r["speedup_vs_best_peer"] = best / r["fwdbwd_ms"] if r["fwdbwd_ms"] > 0 else math.nan
    return rows


def run_crossover(args, device):
    """Dense vs sparse per primitive and G; returns rows and the suggested thresholds."""
    from sparsefuse import kernels as sk
    from sparsefuse.kernels import dispatch
    from sparsefuse.kernels import dw as kdw
    from sparsefuse.kernels import dx as kdx
    from sparsefuse.kernels import fwd as kfwd

    if args.smoke:
        N, IN, OUT, gs, orders = 64, 8, 6, (3, 8), (3,)
        reps = dict(warmup=1, rep=2)
    else:
        N, IN, OUT = (8192, 512, 512) if not args.quick else (4096, 256, 256)
        gs = tuple(args.grids) if args.grids else CROSSOVER_G
        orders = tuple(args.orders) if args.orders else (1, 2, 3, 5)
        reps = dict(warmup=25, rep=100)
    rows = []
    for mode in args.precisions:
        wdt = torch.bfloat16 if mode == "bf16" else torch.float32
        for k in orders:
            for G in gs:
                M = G + k
                tp = 1 << (M - 1).bit_length()
                grid = (torch.arange(-k, G + k + 1, dtype=torch.float32) * (2 / G) - 1)
                grid = grid[None].repeat(IN, 1).to(device)
                t0, ih = sk.geometry(grid, torch.float32)
                x = (torch.rand(N, IN) * 2 - 1).to(device)
                C = torch.randn(OUT, IN, M).to(device=device, dtype=wdt)
                g = torch.randn(N, OUT).to(device=device, dtype=wdt)
                prims = {
                    "fwd": lambda s: kfwd.fwd(x, t0, ih, C, None, k, 0, strategy=s),
                    "dx": lambda s: kdx.dx(x, t0, ih, C, g, k, 1, strategy=s),
                    "dw": lambda s: kdw.dw(x, t0, ih, g, None, k, 0, M, strategy=s),
                }
                with precision(mode):
                    for prim, fn in prims.items():
                        res = {}
                        for strat in ("dense", "sparse"):
                            if strat == "dense" and tp > dispatch.DENSE_TILE_LIMIT:
                                res[strat] = math.nan
                                continue
                            r = try_benchmark(lambda: fn(strat), device=device, **reps)
                            res[strat] = r.median_ms
                        rows.append(dict(precision=mode, k=k, G=G, bases=M, primitive=prim,
                                         N=N, inp=IN, out=OUT, dense_ms=res["dense"],
                                         sparse_ms=res["sparse"]))
                        print(f"{mode:<9} k={k} G={G:<4} {prim:<4} dense {res['dense']:9.3f} ms  "
                              f"sparse {res['sparse']:9.3f} ms", flush=True)
    # Largest G+k for which dense still wins, per (primitive, precision class).
    suggest = {}
    for r in rows:
        key = (r["primitive"], dispatch.precision_class(
            torch.bfloat16 if r["precision"] == "bf16" else torch.float32,
            "tf32" if r["precision"] == "tf32" else "ieee"))
        best = suggest.setdefault(key, 0)
        if r["dense_ms"] == r["dense_ms"] and r["dense_ms"] <= r["sparse_ms"]:
            suggest[key] = max(best, r["bases"])
    print("\nSuggested DENSE_MAX_BASES (largest G+k where dense won; paste into dispatch.py):")
    print("DENSE_MAX_BASES = {")
    for key in sorted(suggest):
        print(f"    {key!r}: {suggest[key]},")
    print("}")
    if getattr(args, "write_dispatch", False):
        write_dispatch(suggest, device, N, IN, OUT)
    return rows


def write_dispatch(suggest, device, N, IN, OUT):
    """Rewrite DENSE_MAX_BASES in sparsefuse/kernels/dispatch.py from this sweep."""
    import datetime
    import re

    from sparsefuse.kernels import dispatch

    path = dispatch.__file__
    src = open(path).read()
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    lines = [f"# Measured: benchmarks/gpu_layer_bench.py --crossover --write-dispatch, {gpu},",
             f"# {datetime.date.today().isoformat()}, N={N}, {IN}->{OUT}, k=3, median ms per primitive.",
             "DENSE_MAX_BASES = {"]
    for (prim, cls) in sorted(dispatch.DENSE_MAX_BASES):
        lines.append(f'    ("{prim}", "{cls}"): {suggest.get((prim, cls), dispatch.DENSE_MAX_BASES[(prim, cls)])},')
    lines.append("}")
    new, n = re.subn(r"(?:# Measured:[^\n]*\n# [^\n]*\n)?DENSE_MAX_BASES = \{.*?\n\}", "\n".join(lines),
                     src, count=1, flags=re.S)
    if n != 1:
        raise RuntimeError("DENSE_MAX_BASES block not found in dispatch.py")
    tmp = path + ".tmp"
    with open(tmp, "w") as fh:
        fh.write(new)
    os.replace(tmp, path)
    print(f"wrote thresholds into {path}")


def write_csv(rows, path):
    """Atomic write: temp file in the same folder, then os.replace."""
    if not rows:
        return
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fields = list(rows[0].keys())
    for r in rows:
        fields += [k for k in r if k not in fields]
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(path)), suffix=".tmp")
    with os.fdopen(fd, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)
    os.replace(tmp, path)
    print(f"wrote {path}")


def provenance(device):
    import platform

    info = dict(torch=torch.__version__, python=platform.python_version(),
                time=time.strftime("%Y-%m-%dT%H:%M:%S"))
    try:
        import triton

        info["triton"] = triton.__version__
    except ImportError:
        pass
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--precision", default="all", choices=("all",) + PRECISIONS)
    p.add_argument("--out", default=None, help="folder for the CSV (written atomically)")
    p.add_argument("--quick", action="store_true", help="subset of workloads / smaller sweep")
    p.add_argument("--smoke", action="store_true", help="tiny sizes; runs on CPU under TRITON_INTERPRET=1")
    p.add_argument("--crossover", action="store_true", help="strategy sweep for the dispatch constants")
    p.add_argument("--device", default=None)
    p.add_argument("--grids", type=int, nargs="*", help="crossover: grid sizes to sweep")
    p.add_argument("--orders", type=int, nargs="*", help="crossover: spline orders to sweep")
    p.add_argument("--workloads", type=int, nargs="*", help="table: indices into WORKLOADS (default all)")
    p.add_argument("--name", default=None, help="CSV file name under --out")
    p.add_argument("--write-dispatch", action="store_true",
                   help="crossover: write the measured thresholds into sparsefuse/kernels/dispatch.py")
    args = p.parse_args(argv)
    args.precisions = PRECISIONS if args.precision == "all" else (args.precision,)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type != "cuda" and not args.smoke:
        print("no CUDA device: only --smoke runs here (TRITON_INTERPRET=1)", file=sys.stderr)
        return 2
    if device.type == "cpu" and args.precision == "all":
        args.precisions = ("fp32-ieee", "bf16")  # TF32 means nothing on CPU
    print("provenance:", provenance(device), flush=True)
    if args.crossover:
        rows = run_crossover(args, device)
        name = "gpu_strategy_crossover.csv"
    else:
        name = args.name or "gpu_layer_bench.csv"
        save = (lambda rs: write_csv(rs, os.path.join(args.out, name))) if args.out else None
        rows = run_table(args, device, checkpoint=save)
    if args.out:
        write_csv(rows, os.path.join(args.out, name))
    bad = [r for r in rows if str(r.get("status", "ok")).startswith("error")]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
