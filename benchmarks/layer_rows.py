"""What one row of the side-by-side layer table measures: workloads, implementations, floors, timing.

A workload is ``(N, in, out, G, grid)``; ``grid`` "uniform" is the layer as constructed,
"adaptive" the layer after ``update_grid`` on skewed data (heavy-tailed samples: the knots
bunch where the data is).  An implementation is a name:

  nn.Linear, cublas-floor          the scale: a linear layer, three GEMMs of the dense shape
  kan-auto                         our default path, eager (the fused layer on CUDA)
  kan-auto-compiled                torch.compile(KANLinear), default mode
  kan-auto-cudagraphs              torch.compile(KANLinear, mode="reduce-overhead")
  kan-dense                        the PyTorch dense path (what an adaptive grid ran before v3)
  fused-streamed / fused-gather    the fused layer with one strategy forced
  kan-reference                    efficient-kan's algorithm, eager (in-repo, identical numbers)
  kan-reference-compiled           torch.compile of it
  inkan, flashkan, kanditioned     the peer packages

Best peer: the fastest of efficient-kan (eager or compiled), inkan, flashkan, kanditioned.
Timing is :func:`sparsefuse.lab.bench.try_benchmark` for every row (do_bench median, the peak
extra memory of forward+backward).
"""

import contextlib
import math

import torch

from sparsefuse import status as S
from sparsefuse.lab.bench import autocast, is_oom, precision, try_benchmark

# Ceilings on the H200 (the device's own notes): bf16 GEMM measured ~790 TF/s, TF32 about half, fp32 FMA
# 67 TF/s (spec), device copy ~4.3 TB/s (read + write).  Each row also carries the measured
# cuBLAS floor of its own shape (the "cublas-floor" rows), which is what the targets use.
PEAK_FLOPS = {"fp32-ieee": 60e12, "tf32": 400e12, "bf16": 790e12}
CUDA_CORE_FLOPS = 67e12
BANDWIDTH = 4.3e12

U, A = "uniform", "adaptive"
WORKLOADS = [  # (N, in, out, G, grid): the committed table's seven
    (8192, 512, 512, 5, U), (8192, 512, 512, 20, U), (8192, 512, 512, 100, U), (65536, 64, 64, 100, U),
    (4096, 2048, 2048, 5, U),
    (16384, 1024, 4096, 5, U),   # a GPT-style FFN projection
    (1024, 64, 64, 5, U),        # host-bound
]
ISSUE20 = [(8192, 512, 512, 5, U), (16384, 256, 1024, 10, U), (2048, 1024, 1024, 30, U)]  # compile gap shapes
ADAPTIVE = [(8192, 512, 512, 5, U), (8192, 512, 512, 5, A), (8192, 512, 512, 100, U), (8192, 512, 512, 100, A)]
SWEEP = [(N, i, o, G, U) for N in (2048, 16384, 32768) for i, o in ((256, 1024), (1024, 1024), (768, 3072))
         for G in (5, 10, 30)]
HOST = [(1024, 64, 64, 5, U)]
SETS = {"table": WORKLOADS, "issue20": ISSUE20, "adaptive": ADAPTIVE, "sweep": SWEEP, "host": HOST,
        "smoke": [(64, 8, 6, 5, A)]}

PEER_NAMES = ("inkan", "flashkan", "kanditioned")
BEST_PEERS = ("kan-reference", "kan-reference-compiled") + PEER_NAMES  # "best peer" of a row
EAGER = ("nn.Linear", "cublas-floor", "kan-auto", "kan-reference", "fused-streamed", "fused-gather") + PEER_NAMES
COMPILED = ("kan-auto-compiled", "kan-auto-cudagraphs", "kan-reference-compiled")
IMPLS = EAGER + COMPILED + ("kan-dense",)
HOST_BOUND_MS = 2.0  # rows whose eager fwd+bwd is faster move +-20% between runs: give them extra rounds


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


def skewed(n, width, seed, device):
    """Heavy-tailed samples (sinh of a normal): what update_grid adapts the knots to."""
    gen = torch.Generator().manual_seed(seed)
    return (torch.sinh(torch.randn(n, width, generator=gen) * 1.2) * 0.4).to(device)


def inputs(N, IN, grid, device):
    """x of a workload: uniform on [-1, 1], or drawn like the data the adaptive grid was fitted to."""
    if grid == A:
        return skewed(N, IN, 1, device)
    gen = torch.Generator().manual_seed(0)
    return (torch.rand(N, IN, generator=gen) * 2 - 1).to(device)


class Subject:
    """One implementation built for one workload: the module, a forced strategy, and whether
    each call must start a new CUDA-graph step."""

    def __init__(self, impl, IN, OUT, G, k, grid, device):
        from sparsefuse.lab import peers
        from sparsefuse.kan_linear import KANLinear

        self.strategy, self.graph_steps = None, impl == "kan-auto-cudagraphs"
        if impl == "nn.Linear":
            self.module = torch.nn.Linear(IN, OUT, device=device)
        elif impl in PEER_NAMES:
            self.module = peers.make_peer(impl, IN, OUT, grid_size=G, spline_order=k, device=device)
        else:
            path = {"kan-dense": "dense"}.get(impl, "reference" if impl.startswith("kan-reference") else "auto")
            if impl.startswith("fused-"):
                path, self.strategy = "fused", impl[6:]
            layer = KANLinear(IN, OUT, grid_size=G, spline_order=k).to(device)
            if grid == A:
                layer.update_grid(skewed(16384, IN, 2, device))
            layer.impl = path
            self.module = layer
            if impl in COMPILED and device.type == "cuda":
                self.module = torch.compile(layer, mode="reduce-overhead" if self.graph_steps else "default")
            elif impl in COMPILED:  # CPU smoke runs: Inductor's C++ build would take minutes
                self.module = torch.compile(layer, backend="aot_eager")
        self.eager = getattr(self.module, "_orig_mod", self.module)

    def measure(self, x, mode, device, reps, forward_too=True):
        """(fwd ms, fwd+bwd ms, peak extra MiB of fwd+bwd, status); fwd NaN unless ``forward_too``
        (compiled rows then compile their training graph only)."""
        from sparsefuse.kernels import force_strategy

        layer = self.module
        params = [p for p in layer.parameters() if p.requires_grad]
        xr = x.clone().requires_grad_()
        step = torch.compiler.cudagraph_mark_step_begin if self.graph_steps else (lambda: None)

        def fwd():
            step()
            with torch.no_grad(), autocast(mode, device.type):
                return layer(x)

        def fwdbwd():
            step()
            xr.grad = None
            for p in params:
                p.grad = None
            with autocast(mode, device.type):
                y = layer(xr)
            y.backward(dy)

        with force_strategy(self.strategy) if self.strategy else contextlib.nullcontext():
            with torch.no_grad(), autocast(mode, device.type):  # the eager module: no compile for this shape
                probe = self.eager(x[:2])
            dy = torch.randn((x.shape[0], probe.shape[-1]), device=device, dtype=probe.dtype)
            f = try_benchmark(fwd, device=device, **reps) if forward_too else None
            fb = try_benchmark(fwdbwd, device=device, **reps)
        status = S.OK if fb.status == S.OK and (f is None or f.status == S.OK) else S.OOM
        return (f.median_ms if f is not None else math.nan), fb.median_ms, fb.peak_mib, status


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


def blank_row(impl, workload, k, mode, fl):
    N, IN, OUT, G, grid = workload
    name = f"N={N}, {IN}->{OUT}, G={G}" + (", adaptive grid" if grid == A else "")
    return dict(workload=name, N=N, inp=IN, out=OUT, G=G, k=k, grid=grid, precision=mode, impl=impl,
                fwd_ms=math.nan, fwdbwd_ms=math.nan, peak_mib=math.nan, status="ok", **fl)


def failed(e):
    """The status of a row whose implementation raised (one bad row must not end the run)."""
    from sparsefuse.lab import peers

    if isinstance(e, (peers.PeerUnavailable, peers.PeerUnsupported)):
        return f"skipped: {e}"
    return S.OOM if is_oom(e) else f"{S.ERROR}: {type(e).__name__}: {e}"[:200]


def measure_row(row, subject, x, mode, device, reps, forward_too=True):
    """Fill ``row`` with one measurement of ``subject`` (a :class:`Subject`, the string
    "cublas-floor", or an exception raised while building it)."""
    row = dict(row)
    try:
        if isinstance(subject, Exception):
            raise subject
        with precision(mode):
            if subject == "cublas-floor":
                row["fwd_ms"], row["fwdbwd_ms"], row["status"] = gemm_floor(
                    row["N"], row["inp"], row["out"], row["G"], row["k"], mode, device, reps)
            else:
                row["fwd_ms"], row["fwdbwd_ms"], row["peak_mib"], row["status"] = subject.measure(
                    x, mode, device, reps, forward_too)
    except Exception as e:  # noqa: BLE001
        row["status"] = failed(e)
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return row


def combine(rounds):
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


def with_peer_speedups(rows):
    """Speed-up of every row against the best peer of the same workload and precision."""
    for r in rows:
        peer_times = [q["fwdbwd_ms"] for q in rows if q["impl"] in BEST_PEERS
                      and q["workload"] == r["workload"] and q["precision"] == r["precision"]
                      and q["status"] == "ok"]
        best = min(peer_times) if peer_times else math.nan
        r["best_peer_ms"] = best
        r["speedup_vs_best_peer"] = best / r["fwdbwd_ms"] if r["fwdbwd_ms"] > 0 else math.nan
    return rows
