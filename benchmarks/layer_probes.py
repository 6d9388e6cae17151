"""The probes beside the side-by-side table: PINN step, eager host overhead, per-kernel profile,
and the streamed-vs-gather crossover that sets the dispatch thresholds (kernels/configs).

Run through ``gpu_layer_bench.py --pinn / --profile / --crossover``.
"""

import json
import math
import time

import torch
import triton
import triton.language as tl

from sparsefuse.lab.bench import autocast, precision, try_benchmark

CROSSOVER_G = (3, 5, 8, 12, 16, 20, 28, 36, 48, 64, 80, 100, 125, 160, 200)


def run_pinn(args, device):
    """One PINN training step (2 -> 64 -> 64 -> 1, G=20, N=16384, Laplacian loss through
    create_graph, fp32): our default path, efficient-kan's algorithm, and the peers."""
    from sparsefuse.lab import peers
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


def run_crossover(args, device):
    """Streamed (basis chunks + cuBLAS) vs gather per primitive, precision and G, the streamed
    strategy at several chunk budgets; returns rows and the measured thresholds."""
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
                        gather = try_benchmark(lambda: fn("gather"), device=device, **reps).median_ms
                        streamed = {}
                        for mib in budgets:
                            with sk.chunk_budget(int(mib * 2**20)):
                                streamed[mib] = try_benchmark(lambda: fn("streamed"), device=device, **reps).median_ms
                        best_budget = min(streamed, key=lambda b: streamed[b])
                        rows.append(dict(precision=mode, k=k, G=G, bases=M, primitive=prim, N=N, inp=IN,
                                         out=OUT, gather_ms=gather, streamed_ms=streamed[best_budget],
                                         best_budget_mib=best_budget,
                                         **{f"streamed_{b}mib_ms": v for b, v in streamed.items()}))
                        print(f"{mode:<9} k={k} G={G:<4} {prim:<4} gather {gather:8.3f} ms  "
                              + "  ".join(f"streamed@{b}MiB {v:8.3f}" for b, v in streamed.items()), flush=True)
    # Largest G+k for which streamed still won, per (primitive, precision class): streamed from
    # the smallest G up to the last G where it won (gather beyond).
    suggest = {}
    for r in rows:
        key = (r["primitive"], dispatch.precision_class(
            torch.bfloat16 if r["precision"] == "bf16" else torch.float32,
            "tf32" if r["precision"] == "tf32" else "ieee"))
        best = suggest.setdefault(key, 0)
        if r["streamed_ms"] <= r["gather_ms"]:
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
