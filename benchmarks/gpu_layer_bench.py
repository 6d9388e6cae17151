"""Side-by-side layer benchmark on one GPU: our paths eager and compiled, the fused strategies, the peers.

For each workload (``layer_rows.SETS``) and each precision setting it measures layer forward
(no_grad) and forward+backward (grads of x and all parameters) medians with
``triton.testing.do_bench`` (through ``sparsefuse.lab.bench``) and the peak extra memory of
forward+backward, for every implementation of ``layer_rows`` side by side in one process
(``--impls`` picks a subset), with the floors of each row (FLOPs of the sparse and dense
formulations, the byte floor, the time floor at the measured ceilings).

  python benchmarks/gpu_layer_bench.py --out results/gpu                # the seven committed workloads
  python benchmarks/gpu_layer_bench.py --set issue20 --precision bf16   # eager vs compiled, compile-gap shapes
  python benchmarks/gpu_layer_bench.py --set adaptive                   # layers after update_grid
  python benchmarks/gpu_layer_bench.py --set sweep --precision bf16 tf32
  python benchmarks/gpu_layer_bench.py --crossover --write --out results/gpu  # dispatch sweep
  python benchmarks/gpu_layer_bench.py --pinn | --profile               # the probes (layer_probes.py)
  python benchmarks/gpu_layer_bench.py --smoke                          # CPU, interpreter

``--rounds R`` measures every implementation R times, interleaved (order rotated), and
keeps the median; rows whose eager fused forward+backward is under ``HOST_BOUND_MS`` (host
bound, +-20% between runs) get at least ``--host-rounds`` rounds (default 3).
"""

import argparse
import csv
import os
import sys
import time

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, HERE)

import layer_probes  # noqa: E402  (after TRITON_INTERPRET is settled)
import layer_rows as L  # noqa: E402

from sparsefuse.lab.bench import PRECISIONS  # noqa: E402

DEFAULT_IMPLS = ("nn.Linear", "cublas-floor", "kan-auto", "kan-reference", "fused-streamed", "fused-gather",
                 "inkan", "flashkan", "kanditioned")


def _subjects(impls, wl, k, device):
    """Every implementation built once per workload (compiled ones compile on first use)."""
    N, IN, OUT, G, grid = wl
    out = {}
    for impl in impls:
        if impl == "cublas-floor":
            out[impl] = impl
            continue
        try:
            torch.manual_seed(0)
            out[impl] = L.Subject(impl, IN, OUT, G, k, grid, device)
        except Exception as e:  # noqa: BLE001 - a peer that cannot run is a row that says why
            out[impl] = e
    return out


def run_table(args, device, checkpoint=None):
    """Every implementation side by side per (workload, precision), ``args.rounds`` interleaved
    rounds (more for host-bound rows); each row is the median of its rounds."""
    workloads = [w for name in args.sets for w in L.SETS[name]]
    if getattr(args, "workloads", None):
        workloads = [workloads[i] for i in args.workloads]
    reps = dict(warmup=1, rep=2) if args.smoke else dict(warmup=25, rep=100)
    impls = list(args.impls)
    rows, k = [], 3
    for wl in workloads:
        x = L.inputs(wl[0], wl[1], wl[4], device)
        subjects = _subjects(impls, wl, k, device)
        for mode in args.precisions:
            fl = L.floors(*wl[:4], k, mode)
            blank = {impl: L.blank_row(impl, wl, k, mode, fl) for impl in impls}
            measured = {impl: [] for impl in impls}
            r = 0
            while True:
                for impl in impls[r % len(impls):] + impls[: r % len(impls)]:
                    measured[impl].append(L.measure_row(blank[impl], subjects[impl], x, mode, device, reps,
                                                        not args.fwdbwd_only))
                r += 1
                eager = [m["fwdbwd_ms"] for m in measured.get("kan-auto", []) if m["status"] == "ok"]
                host_bound = bool(eager) and min(eager) < L.HOST_BOUND_MS
                if r >= max(args.rounds, args.host_rounds if host_bound else 1):
                    break
            for impl in impls:
                row = L.combine(measured[impl])
                t = row["fwdbwd_ms"]
                if impl != "cublas-floor":
                    row["pct_of_floor"] = 100 * fl["floor_ms"] / t if t > 0 else float("nan")
                    row["mem_ratio"] = row["peak_mib"] / fl["mem_floor_mib"]
                rows.append(row)
                print(f"{row['workload']:<42} {mode:<9} {impl:<23} fwd {row['fwd_ms']:9.3f} ms  "
                      f"fwd+bwd {row['fwdbwd_ms']:9.3f} ms  peak {row['peak_mib']:9.1f} MiB  "
                      f"{row.get('pct_of_floor', float('nan')):6.1f}% of floor  {row['status']}"
                      + (f"  ({row['rounds']} rounds, spread {row['fwdbwd_spread']:.2f})" if r > 1 and "rounds" in row
                         else ""), flush=True)
            if checkpoint is not None:  # a run cut short still leaves every finished row
                checkpoint(L.with_peer_speedups(rows))
        del subjects
        if device.type == "cuda":
            torch._dynamo.reset()  # compiled modules of this workload go; peers recompile per shape anyway
            torch.cuda.empty_cache()
    return L.with_peer_speedups(rows)


def write_csv(rows, path):
    """Every benchmark script's CSV writer: one header over all rows' keys, written atomically."""
    if not rows:
        return
    import io

    from sparsefuse.lab.book.atomic import atomic_write

    fields = list(rows[0].keys())
    for r in rows:
        fields += [k for k in r if k not in fields]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=fields)
    w.writeheader()
    w.writerows(rows)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    atomic_write(path, buf.getvalue())
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
    p.add_argument("--precision", nargs="*", default=["all"], choices=("all",) + PRECISIONS)
    p.add_argument("--set", dest="sets", nargs="*", default=["table"], choices=tuple(L.SETS),
                   help="workload sets (layer_rows.SETS)")
    p.add_argument("--impls", nargs="*", default=None, choices=L.IMPLS, help="implementations (default: eager ones)")
    p.add_argument("--out", default=None, help="folder for the CSV (written atomically)")
    p.add_argument("--quick", action="store_true", help="crossover: a smaller sweep")
    p.add_argument("--smoke", action="store_true", help="tiny sizes; runs on CPU under TRITON_INTERPRET=1")
    p.add_argument("--crossover", action="store_true", help="strategy sweep for the dispatch constants")
    p.add_argument("--device", default=None)
    p.add_argument("--grids", type=int, nargs="*", help="crossover: grid sizes to sweep")
    p.add_argument("--orders", type=int, nargs="*", help="crossover: spline orders to sweep")
    p.add_argument("--workloads", type=int, nargs="*", help="table: indices into the workloads of --set")
    p.add_argument("--rounds", type=int, default=1,
                   help="table: measure every implementation this many times, interleaved; rows are medians")
    p.add_argument("--host-rounds", type=int, default=None,
                   help="table: rounds at least for host-bound rows (default 3 on CUDA)")
    p.add_argument("--name", default=None, help="CSV file name under --out")
    p.add_argument("--fwdbwd-only", action="store_true", help="table: skip the forward-only timing")
    p.add_argument("--profile", action="store_true", help="CUDA time per kernel of a fused layer step")
    p.add_argument("--pinn", action="store_true", help="the PINN step and the eager host overhead")
    p.add_argument("--host", action="store_true", help="the eager host overhead alone")
    p.add_argument("--budgets", type=float, nargs="*", help="crossover: chunk budgets in MiB")
    p.add_argument("--write", action="store_true",
                   help="crossover: write the thresholds and chunk budget into kernels/configs/<gpu>.json")
    args = p.parse_args(argv)
    args.precisions = PRECISIONS if "all" in args.precision else tuple(args.precision)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type != "cuda" and not args.smoke:
        print("no CUDA device: only --smoke runs here (TRITON_INTERPRET=1)", file=sys.stderr)
        return 2
    if device.type == "cpu":
        args.precisions = tuple(m for m in args.precisions if m != "tf32") or ("fp32-ieee",)  # TF32: nothing on CPU
        if args.sets == ["table"]:
            args.sets = ["smoke"]
    args.impls = tuple(args.impls or DEFAULT_IMPLS)
    if args.host_rounds is None:
        args.host_rounds = 3 if device.type == "cuda" else 1
    from sparsefuse.lab import peers

    peers._allow_recompiles()  # compiled rows and flashkan: one compile per shape, never a silent eager fallback
    print("provenance:", provenance(device), flush=True)
    if args.crossover:
        rows, name = layer_probes.run_crossover(args, device), "gpu_strategy_crossover.csv"
    elif args.profile:
        rows, name = layer_probes.run_profile(args, device), "profile.csv"
    elif args.pinn or args.host:
        rows = ([] if args.host else layer_probes.run_pinn(args, device)) + layer_probes.run_host(args, device)
        name = args.name or "pinn_host.csv"
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
