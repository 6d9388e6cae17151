"""Side-by-side layer benchmark on one GPU: our paths, the fused strategies, the peers.

For each workload of the kernel-v2 issue and each precision setting it measures layer forward
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
  python benchmarks/gpu_layer_bench.py --crossover --write --out results/gpu  # dispatch sweep
  python benchmarks/gpu_layer_bench.py --smoke                      # CPU, interpreter

``--crossover`` times each primitive (fwd_0, dx_1, dw_0) with the dense strategy (at
several chunk budgets) and the sparse strategy forced for G = 3..200; ``--write`` stores
the measured thresholds and budget in sparsefuse/kernels/configs/<gpu>.json.
"""

import argparse
import contextlib
import csv
import json
import math
import os
import sys
import time

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

import triton  # noqa: E402  (after TRITON_INTERPRET is settled)
import triton.language as tl  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from sparsefuse import status as S  # noqa: E402
from sparsefuse.bench import PRECISIONS, autocast, is_oom, precision, try_benchmark  # noqa: E402

# Ceilings on the H200 (the device's own notes): bf16 GEMM measured ~790 TF/s, TF32 about half, fp32 FMA
# 67 TF/s (spec), device copy ~4.3 TB/s (read + write).  Each row also carries the measured
# cuBLAS floor of its own shape (the "cublas-floor" rows), which is what the targets use.
PEAK_FLOPS = {"fp32-ieee": 60e12, "tf32": 400e12, "bf16": 790e12}
CUDA_CORE_FLOPS = 67e12
BANDWIDTH = 4.3e12

WORKLOADS = [  # (N, in, out, G)
    (8192, 512, 512, 5),
    (8192, 512, 512, 20),
    (8192, 512, 512, 100),
    (65536, 64, 64, 100),
    (4096, 2048, 2048, 5),
    (16384, 1024, 4096, 5),   # a GPT-style FFN projection
    (1024, 64, 64, 5),        # host-bound
]
QUICK = [(8192, 512, 512, 5), (8192, 512, 512, 100)]
SMOKE = [(64, 8, 6, 5)]
KAN_IMPLS = ("auto", "reference")
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
    status = S.OK if f.status == fb.status == S.OK else S.OOM
    return f.median_ms, fb.median_ms, fb.peak_mib, status


def _measure_row(impl, N, IN, OUT, G, k, x, mode, fl, device, reps):
    """One implementation at one (workload, precision): a table row (status says what failed)."""
    from sparsefuse import peers

    row = dict(workload=f"N={N}, {IN}->{OUT}, G={G}", N=N, inp=IN, out=OUT, G=G, k=k,
               precision=mode, impl=impl, fwd_ms=math.nan, fwdbwd_ms=math.nan,
               peak_mib=math.nan, status="ok", **fl)
    torch.manual_seed(0)
    try:
        with precision(mode):
            if impl == "cublas-floor":
                row["fwd_ms"], row["fwdbwd_ms"], row["status"] = gemm_floor(N, IN, OUT, G, k, mode, device, reps)
                return row
            layer, strategy = build(impl, IN, OUT, G, k, device)
            row["fwd_ms"], row["fwdbwd_ms"], row["peak_mib"], row["status"] = measure(
                layer, strategy, x, mode, device, reps)
        del layer
    except (peers.PeerUnavailable, peers.PeerUnsupported) as e:
        row["status"] = f"skipped: {e}"
    except Exception as e:  # noqa: BLE001 - one bad row must not end the run
        row["status"] = S.OOM if is_oom(e) else f"{S.ERROR}: {type(e).__name__}: {e}"[:200]
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return row


def _combine(rounds):
    """The rows of one implementation over several rounds: median times, largest peak, the
    first failure's status, and the spread (slowest / fastest forward+backward)."""
    ok = [r for r in rounds if r["status"] == S.OK]
    if not ok:
        return rounds[0]
    row = dict(ok[0])
    for key in ("fwd_ms", "fwdbwd_ms"):
        vals = sorted(r[key] for r in ok)
        row[key] = vals[len(vals) // 2] if len(vals) % 2 else 0.5 * (vals[len(vals) // 2 - 1] + vals[len(vals) // 2])
    row["peak_mib"] = max(r["peak_mib"] for r in ok)
    times = [r["fwdbwd_ms"] for r in ok]
    row["rounds"] = len(ok)
    row["fwdbwd_spread"] = max(times) / min(times) if min(times) > 0 else math.nan
    bad = [r for r in rounds if r["status"] != S.OK]
    if bad:
        row["status"] = bad[0]["status"]
    return row


def run_table(args, device, checkpoint=None):
    """Every implementation side by side per (workload, precision).  With ``--rounds R`` the
    implementations are measured R times, interleaved (the order rotated each round), and
    each row is the median: rows bound by host launch time move by +-20% between runs, and
    an interleaved median is fair to every implementation alike."""
    workloads = SMOKE if args.smoke else (QUICK if args.quick else WORKLOADS)
    if getattr(args, "workloads", None):
        workloads = [WORKLOADS[i] for i in args.workloads]
    reps = dict(warmup=1, rep=2) if args.smoke else dict(warmup=25, rep=100)
    impls = (["nn.Linear", "cublas-floor"] + [f"kan-{i}" for i in KAN_IMPLS] + ["fused-dense", "fused-sparse"]
             + list(PEER_NAMES))
    n_rounds = max(1, getattr(args, "rounds", 1) or 1)
    rows = []
    k = 3
    for (N, IN, OUT, G) in workloads:
        gen = torch.Generator().manual_seed(0)
        x = (torch.rand(N, IN, generator=gen) * 2 - 1).to(device)
        for mode in args.precisions:
            fl = floors(N, IN, OUT, G, k, mode)
            measured = {impl: [] for impl in impls}
            for r in range(n_rounds):
                for impl in impls[r % len(impls):] + impls[: r % len(impls)]:
                    measured[impl].append(_measure_row(impl, N, IN, OUT, G, k, x, mode, fl, device, reps))
            for impl in impls:
                row = _combine(measured[impl])
                t = row["fwdbwd_ms"]
                if impl != "cublas-floor":
                    row["pct_of_floor"] = 100 * fl["floor_ms"] / t if t > 0 else math.nan
                    row["mem_ratio"] = row["peak_mib"] / fl["mem_floor_mib"]
                rows.append(row)
                print(f"{row['workload']:<28} {mode:<9} {impl:<15} fwd {row['fwd_ms']:9.3f} ms  "
                      f"fwd+bwd {row['fwdbwd_ms']:9.3f} ms  peak {row['peak_mib']:9.1f} MiB  "
                      f"{row.get('pct_of_floor', math.nan):6.1f}% of floor  {row['status']}"
                      + (f"  ({row['rounds']} rounds, spread {row['fwdbwd_spread']:.2f})" if n_rounds > 1 else ""),
                      flush=True)
            if checkpoint is not None:  # a run cut short still leaves every finished row
                checkpoint(with_peer_speedups(rows))
    return with_peer_speedups(rows)


def gemm_floor(N, IN, OUT, G, k, mode, device, reps):
    """cuBLAS ``mm`` with the dense formulation's K = in * (G + k + 1) (spline + base branch):
    forward = one GEMM, forward+backward = three of that size (y, dW, dA)."""
    dt = torch.bfloat16 if mode == "bf16" else torch.float32
    K = IN * (G + k + 1)
    try:
        a = torch.randn(N, K, device=device, dtype=dt)
        b = torch.randn(K, OUT, device=device, dtype=dt)
    except torch.OutOfMemoryError:
        return math.nan, math.nan, S.OOM
    r = try_benchmark(lambda: torch.mm(a, b), device=device, **reps)
    return r.median_ms, 3 * r.median_ms, r.status


def run_pinn(args, device):
    """One PINN training step (2 -> 64 -> 64 -> 1, G=20, N=16384, Laplacian loss through
    create_graph, fp32): our default path, efficient-kan's algorithm, and the peers."""
    from sparsefuse import peers
    from sparsefuse.kan_linear import KAN

    N, G = (16384, 20) if not args.smoke else (64, 5)
    reps = dict(warmup=1, rep=2) if args.smoke else dict(warmup=25, rep=100)
    rows = []
    gen = torch.Generator().manual_seed(0)
    xy = (torch.rand(N, 2, generator=gen) * 2 - 1).to(device)
    for impl in ("kan-auto", "kan-reference", "inkan", "flashkan"):
        row = dict(workload=f"PINN step N={N}, 2->64->64->1, G={G}", precision="fp32-ieee", impl=impl,
                   fwdbwd_ms=math.nan, peak_mib=math.nan, status="ok")
        try:
            with precision("fp32-ieee"):
                if impl.startswith("kan-"):
                    model = KAN([2, 64, 64, 1], grid_size=G, impl=impl[4:]).to(device)
                else:
                    model = torch.nn.Sequential(*[peers.make_peer(impl, i, o, grid_size=G, spline_order=3,
                                                                  device=device)
                                                  for i, o in ((2, 64), (64, 64), (64, 1))])

                def step():
                    model.zero_grad(set_to_none=True)
                    x = xy.clone().requires_grad_()
                    u = model(x)
                    (gx,) = torch.autograd.grad(u.sum(), x, create_graph=True)
                    lap = sum(torch.autograd.grad(gx[:, d].sum(), x, create_graph=True)[0][:, d] for d in range(2))
                    loss = (lap + 1.0).pow(2).mean()
                    loss.backward()

                r = try_benchmark(step, device=device, **reps)
                row.update(fwdbwd_ms=r.median_ms, peak_mib=r.peak_mib, status=r.status)
        except (peers.PeerUnavailable, peers.PeerUnsupported) as e:
            row["status"] = f"skipped: {e}"
        except Exception as e:  # noqa: BLE001 - flashkan/inkan raise under create_graph: that is the result
            kind = "error" if impl.startswith("kan-") else "raises"  # only our own failures fail the run
            row["status"] = f"{kind}: {type(e).__name__}: {e}"[:200]
        rows.append(row)
        print(f"{row['workload']:<40} {impl:<14} step {row['fwdbwd_ms']:9.3f} ms  peak {row['peak_mib']:8.1f} MiB"
              f"  {row['status']}", flush=True)
    ref = next((r["fwdbwd_ms"] for r in rows if r["impl"] == "kan-reference"), math.nan)
    for r in rows:
        r["speedup_vs_efficient_kan"] = ref / r["fwdbwd_ms"] if r["fwdbwd_ms"] > 0 else math.nan
    return rows


@triton.jit
def _noop_kernel(A0, A1, A2, A3, A4, A5, A6, A7, A8, A9, A10, A11, A12, A13, A14, A15, A16, A17, A18, A19,
                 A20, A21, BLOCK: tl.constexpr):
    """A Triton kernel that does nothing, with as many arguments as the basis kernel (22)."""
    pass


def _direct(node, dy):
    """The layer's backward called in this thread (grad mode off: the first-order path)."""
    def call():
        with torch.no_grad():
            return node.apply(dy)
    return call


def _fused_node(y):
    """The fused layer's node of y's graph (below the reshape views)."""
    fn = y.grad_fn
    while fn is not None and "LayerFn" not in type(fn).__name__:
        fn = fn.next_functions[0][0] if fn.next_functions else None
    return fn


def run_host(args, device):
    """Eager host overhead at N=1024, 64->64, G=5: wall time per call of a loop with no sync
    inside (launch-bound at this size), for nn.Linear, our layer forward+backward and forward
    alone, and the unit costs that make it up: one trivial Triton launch (with as many
    arguments as the basis kernel), one trivial PyTorch op, one small torch.mm."""
    from sparsefuse.kan_linear import KANLinear

    iters = 5 if args.smoke else 300
    x = torch.randn(1024 if not args.smoke else 16, 64, device=device).requires_grad_()
    dy = torch.randn(x.shape[0], 64, device=device)
    lin = torch.nn.Linear(64, 64).to(device)
    kan = KANLinear(64, 64, grid_size=5).to(device)
    buf = torch.empty(1024, device=device)
    w = torch.randn(64, 64, device=device)
    kernel = _noop_kernel
    y_keep = kan(x)
    node = _fused_node(y_keep)
    cases = {
        "nn.Linear": lambda: lin(x).backward(dy),
        "kan-auto": lambda: kan(x).backward(dy),
        "kan-auto forward": lambda: kan(x),
        # the backward through autograd's engine (its device thread) and called directly
        "kan-auto backward (engine)": lambda: y_keep.backward(dy, retain_graph=True),
        "triton launch (22 args)": lambda: kernel[(1,)](buf, 1024, *([buf, 3] * 10), BLOCK=16),
        "torch op (mul)": lambda: buf.mul(2.0),
        "torch.mm 1024x64x64": lambda: torch.mm(x.detach(), w),
    }
    if node is not None:  # the fused layer ran (not on a CPU smoke run, where auto composes)
        cases["kan-auto backward (direct)"] = _direct(node, dy)
    rows = []
    for impl, fn in cases.items():
        for _ in range(10):
            fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        for _ in range(iters):
            fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        rows.append(dict(impl=impl, wall_ms_per_call=(time.perf_counter() - t) * 1e3 / iters))
        print(f"host: {impl:<24} {rows[-1]['wall_ms_per_call']:.4f} ms per call", flush=True)
    rows[1]["host_overhead_ms"] = rows[1]["wall_ms_per_call"] - rows[0]["wall_ms_per_call"]
    print(f"host overhead of kan-auto over nn.Linear: {rows[1]['host_overhead_ms']:.4f} ms", flush=True)
    # where the host time of one kan-auto step goes (Python functions and the C calls they make)
    import cProfile
    import pstats

    prof = cProfile.Profile()
    prof.enable()
    for _ in range(iters):
        cases["kan-auto forward"]()
        cases.get("kan-auto backward (direct)", cases["kan-auto backward (engine)"])()
    prof.disable()
    if device.type == "cuda":
        torch.cuda.synchronize()
    pstats.Stats(prof).sort_stats("tottime").print_stats(25)
    return rows


PROFILE_CASES = [  # (N, in, out, G, precision)
    (8192, 512, 512, 5, "bf16"), (8192, 512, 512, 100, "tf32"), (8192, 512, 512, 100, "bf16"),
    (16384, 1024, 4096, 5, "bf16"), (8192, 512, 512, 20, "fp32-ieee")]


def run_profile(args, device):
    """Where a fused layer's forward+backward spends its time: CUDA time per kernel (torch
    profiler) next to the wall time per call, for a few workloads."""
    from torch.profiler import ProfilerActivity, profile

    from sparsefuse.kan_linear import KANLinear

    cases = [(64, 8, 6, 5, "fp32-ieee")] if args.smoke else PROFILE_CASES
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    rows = []
    for N, IN, OUT, G, mode in cases:
        with precision(mode):
            layer = KANLinear(IN, OUT, grid_size=G).to(device)
            x = (torch.rand(N, IN, device=device) * 2 - 1).requires_grad_()
            with autocast(mode, device.type):
                dy = torch.randn_like(layer(x))

            def step():
                with autocast(mode, device.type):
                    y = layer(x)
                y.backward(dy)

            for _ in range(3):
                step()
            if device.type == "cuda":
                torch.cuda.synchronize()
            with profile(activities=acts) as prof:
                for _ in range(5):
                    step()
                if device.type == "cuda":
                    torch.cuda.synchronize()
        key = "self_device_time_total" if device.type == "cuda" else "self_cpu_time_total"
        events = sorted(prof.key_averages(), key=lambda e: -getattr(e, key, 0))
        total = sum(getattr(e, key, 0) for e in events if e.device_type.name == "CUDA") or 1
        print(f"\n== profile N={N}, {IN}->{OUT}, G={G}, {mode}: device time per step "
              f"{total / 5 / 1e3:.3f} ms", flush=True)
        for e in events[:14]:
            t = getattr(e, key, 0)
            if t <= 0:
                continue
            name = e.key[:70]
            print(f"  {t / 5 / 1e3:8.3f} ms  {100 * t / total:5.1f}%  x{e.count // 5:<3} {name}", flush=True)
            rows.append(dict(workload=f"N={N}, {IN}->{OUT}, G={G}", precision=mode, kernel=name,
                             ms_per_step=t / 5 / 1e3, calls_per_step=e.count // 5))
    return rows


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
    """Dense (streamed basis + cuBLAS) vs sparse per primitive, precision and G, plus the
    dense strategy at several chunk budgets; returns rows and the measured thresholds."""
    from sparsefuse import kernels as sk
    from sparsefuse.kernels import dispatch
    from sparsefuse.kernels import dw as kdw
    from sparsefuse.kernels import dx as kdx
    from sparsefuse.kernels import fwd as kfwd
    from sparsefuse.kernels.geometry import geometry

    if args.smoke:
        N, IN, OUT, gs, orders, budgets = 64, 8, 6, (3, 8), (3,), (1,)
        reps = dict(warmup=1, rep=2)
    else:
        N, IN, OUT = (8192, 512, 512) if not args.quick else (4096, 256, 256)
        gs = tuple(args.grids) if args.grids else CROSSOVER_G
        orders = tuple(args.orders) if args.orders else (1, 2, 3, 5)
        budgets = tuple(args.budgets) if args.budgets else (16, 32, 64)
        reps = dict(warmup=25, rep=100)
    rows = []
    for mode in args.precisions:
        wdt = torch.bfloat16 if mode == "bf16" else torch.float32
        for k in orders:
            for G in gs:
                M = G + k
                grid = (torch.arange(-k, G + k + 1, dtype=torch.float32) * (2 / G) - 1)
                grid = grid[None].repeat(IN, 1).to(device)
                x = (torch.rand(N, IN) * 2 - 1).to(device)
                C = torch.randn(OUT, IN, M).to(device=device, dtype=wdt)
                g = torch.randn(N, OUT).to(device=device, dtype=wdt)
                with precision(mode):
                    geo = geometry(grid, torch.float32, wdt)
                prims = {
                    "fwd": lambda s: kfwd.fwd(x, grid, geo, C, None, k, 0, strategy=s),
                    "dx": lambda s: kdx.dx(x, grid, geo, C, g, k, 1, strategy=s),
                    "dw": lambda s: kdw.dw(x, grid, geo, g, None, k, 0, M, strategy=s),
                }
                with precision(mode):
                    for prim, fn in prims.items():
                        res = {"sparse": try_benchmark(lambda: fn("gather"), device=device, **reps).median_ms}
                        for mib in budgets:
                            with sk.chunk_budget(int(mib * 2**20)):
                                res[f"dense@{mib}"] = try_benchmark(lambda: fn("streamed"), device=device,
                                                                    **reps).median_ms
                        dense = {b: res[f"dense@{b}"] for b in budgets}
                        best_budget = min(dense, key=lambda b: dense[b])
                        rows.append(dict(precision=mode, k=k, G=G, bases=M, primitive=prim, N=N, inp=IN,
                                         out=OUT, sparse_ms=res["sparse"], dense_ms=dense[best_budget],
                                         best_budget_mib=best_budget,
                                         **{f"dense_{b}mib_ms": v for b, v in dense.items()}))
                        print(f"{mode:<9} k={k} G={G:<4} {prim:<4} sparse {res['sparse']:8.3f} ms  "
                              + "  ".join(f"dense@{b}MiB {v:8.3f}" for b, v in dense.items()), flush=True)
    # Largest G+k for which dense still won, per (primitive, precision class): dense from
    # the smallest G up to the last G where it won (sparse beyond).
    suggest = {}
    for r in rows:
        key = (r["primitive"], dispatch.precision_class(
            torch.bfloat16 if r["precision"] == "bf16" else torch.float32,
            "tf32" if r["precision"] == "tf32" else "ieee"))
        best = suggest.setdefault(key, 0)
        if r["dense_ms"] <= r["sparse_ms"]:
            suggest[key] = max(best, r["bases"])
    largest = max(r["bases"] for r in rows)
    table = {f"{p}/{c}": (100000 if n == largest else n) for (p, c), n in sorted(suggest.items())}
    print("\nMeasured streamed_max_bases (largest G+k where streamed won; 100000 = won everywhere swept):")
    print(json.dumps(table, indent=1, sort_keys=True))
    votes = {}
    for r in rows:
        votes[r["best_budget_mib"]] = votes.get(r["best_budget_mib"], 0) + 1
    print(f"best chunk budget (MiB) by count of wins: {votes}")
    if getattr(args, "write", False) and device.type == "cuda":
        gpu = torch.cuda.get_device_name(device)
        chunk = max(votes, key=votes.get)
        measured = (f"{gpu}, {time.strftime('%Y-%m-%d')}: benchmarks/gpu_layer_bench.py --crossover --write "
                    f"(N={N}, {IN}->{OUT}, k in {orders}, G in {gs})")
        path = dispatch.write_gpu_table(gpu, {
            "streamed_max_bases": table,
            "launch": {"all/streamed": {"chunk_mib": chunk}}},
            measured)
        print(f"wrote {path}")
    return rows


def write_csv(rows, path):
    """Every benchmark script's CSV writer: one header over all rows' keys, written atomically."""
    if not rows:
        return
    import io

    from sparsefuse.book.atomic import atomic_write

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
    p.add_argument("--precision", default="all", choices=("all",) + PRECISIONS)
    p.add_argument("--out", default=None, help="folder for the CSV (written atomically)")
    p.add_argument("--quick", action="store_true", help="subset of workloads / smaller sweep")
    p.add_argument("--smoke", action="store_true", help="tiny sizes; runs on CPU under TRITON_INTERPRET=1")
    p.add_argument("--crossover", action="store_true", help="strategy sweep for the dispatch constants")
    p.add_argument("--device", default=None)
    p.add_argument("--grids", type=int, nargs="*", help="crossover: grid sizes to sweep")
    p.add_argument("--orders", type=int, nargs="*", help="crossover: spline orders to sweep")
    p.add_argument("--workloads", type=int, nargs="*", help="table: indices into WORKLOADS (default all)")
    p.add_argument("--rounds", type=int, default=1,
                   help="table: measure every implementation this many times, interleaved; rows are medians")
    p.add_argument("--name", default=None, help="CSV file name under --out")
    p.add_argument("--profile", action="store_true", help="CUDA time per kernel of a fused layer step")
    p.add_argument("--pinn", action="store_true", help="the PINN step and the eager host overhead")
    p.add_argument("--budgets", type=float, nargs="*", help="crossover: chunk budgets in MiB")
    p.add_argument("--write", action="store_true",
                   help="crossover: write the thresholds and chunk budget into kernels/configs/<gpu>.json")
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
    elif args.profile:
        rows = run_profile(args, device)
        name = "profile.csv"
    elif args.pinn:
        rows = run_pinn(args, device) + run_host(args, device)
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
