"""Where the host time of a fused layer step goes, eager and under torch.compile.

For each case (shape, precision, mode) it prints and writes to ``--out``:
  wall ms per forward+backward step in a loop with no sync inside (what a host-bound
  training loop pays), the CUDA kernel time per step (torch.profiler), so the gap between
  the two is host time the GPU waits for; the top CPU ops (profiler) and the top Python
  functions (cProfile).  Plus the unit costs of one Triton launch through ``kernel[grid]``
  and through the compiled kernel's launcher directly, and one torch op.

    python benchmarks/host_profile.py --out OUT        # CUDA
    python benchmarks/host_profile.py --smoke          # CPU interpreter: runs the code, times nothing real
"""

import argparse
import cProfile
import io
import json
import os
import pstats
import sys
import time

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

import triton  # noqa: E402
import triton.language as tl  # noqa: E402

CASES = [  # (N, in, out, G, precision)
    (8192, 512, 512, 5, "bf16"), (1024, 64, 64, 5, "fp32-ieee"), (2048, 1024, 1024, 30, "bf16")]
MODES = ("eager", "eager-triton-launch", "compiled", "compiled-dynamic")  # eager-triton-launch: lean launches off


@triton.jit
def _noop(A0, A1, A2, A3, A4, A5, A6, A7, A8, A9, A10, A11, A12, A13, A14, A15, A16, A17, A18, A19,
          A20, A21, BLOCK: tl.constexpr):
    pass


def _wall_ms(fn, iters, cuda):
    for _ in range(5):
        fn()
    if cuda:
        torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(iters):
        fn()
    if cuda:
        torch.cuda.synchronize()
    return (time.perf_counter() - t) * 1e3 / iters


def _kernel_ms(fn, iters):
    """CUDA kernel time per call (sum of device kernel durations) and the profiler's CPU table."""
    from torch.profiler import ProfilerActivity, profile

    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if torch.cuda.is_available() else [])
    with profile(activities=acts) as prof:
        for _ in range(iters):
            fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
    events = prof.key_averages()
    dev = sum(getattr(e, "self_device_time_total", 0) or 0 for e in events) / 1e3 / iters
    table = events.table(sort_by="self_cpu_time_total", row_limit=18, max_name_column_width=60)
    kernels = events.table(sort_by="self_device_time_total", row_limit=12, max_name_column_width=60) \
        if torch.cuda.is_available() else ""
    return dev, table, kernels


def _python_profile(fn, iters):
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(iters):
        fn()
    prof.disable()
    s = io.StringIO()
    pstats.Stats(prof, stream=s).sort_stats("tottime").print_stats(22)
    return s.getvalue()


def step_of(N, IN, OUT, G, mode, prec, device):
    from sparsefuse.lab.bench import autocast
    from sparsefuse.kan_linear import KANLinear
    from sparsefuse.kernels import settings

    layer = KANLinear(IN, OUT, grid_size=G).to(device)
    run = layer
    if not mode.startswith("eager"):
        backend = "inductor" if device.type == "cuda" else "aot_eager"
        run = torch.compile(layer, backend=backend, dynamic=(mode == "compiled-dynamic") or None)
    x = (torch.rand(N, IN, device=device) * 2 - 1).requires_grad_()
    params = list(layer.parameters())

    lean = mode != "eager-triton-launch"

    def step():
        settings.lean_launch = lean  # set, not settings.changed(): that would bump the plan memo's key
        x.grad = None
        for p in params:
            p.grad = None
        with autocast(prec, device.type):
            y = run(x)
        y.backward(dy)

    with torch.no_grad(), autocast(prec, device.type):
        dy = torch.randn(N, OUT, device=device, dtype=layer(x[:2]).dtype)
    return step


def launch_costs(device, iters):
    buf = torch.empty(1024, device=device)
    args = [buf, 1024] + [buf, 3] * 10
    rows = {}
    if device.type == "cuda":
        ck = _noop[(1,)](*args, BLOCK=16)
        stream = torch.cuda.current_stream().cuda_stream
        rows["triton launch kernel[grid] (22 args)"] = _wall_ms(lambda: _noop[(1,)](*args, BLOCK=16), iters, True)
        rows["triton launch compiled.run (22 args)"] = _wall_ms(
            lambda: ck.run(1, 1, 1, stream, ck.function, ck.packed_metadata, None, None, None, *args, 16), iters, True)
    rows["torch op (mul)"] = _wall_ms(lambda: buf.mul(2.0), iters, device.type == "cuda")
    rows["torch.empty"] = _wall_ms(lambda: torch.empty(1024, device=device), iters, device.type == "cuda")
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=None)
    p.add_argument("--smoke", action="store_true")
    p.add_argument("--cases", type=int, nargs="*", help="indices into CASES")
    args = p.parse_args(argv)
    from sparsefuse.lab.bench import precision

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    cuda = device.type == "cuda"
    iters = 3 if args.smoke else 100
    cases = [(16, 5, 3, 5, "fp32-ieee")] if args.smoke else [CASES[i] for i in (args.cases or range(len(CASES)))]
    rows, text = [], []
    for name, ms in launch_costs(device, iters).items():
        rows.append(dict(case=name, wall_ms=ms))
        print(f"unit: {name:<40} {ms * 1e3:8.1f} us", flush=True)
    for N, IN, OUT, G, prec in cases:
        for mode in MODES:
            label = f"N={N}, {IN}->{OUT}, G={G}, {prec}, {mode}"
            with precision(prec):
                step = step_of(N, IN, OUT, G, mode, prec, device)
                wall = _wall_ms(step, iters, cuda)
                dev, table, kernels = _kernel_ms(step, max(3, iters // 5))
                py = _python_profile(step, max(3, iters // 2))
            rows.append(dict(case=label, wall_ms=wall, kernel_ms=dev, host_wait_ms=max(0.0, wall - dev)))
            print(f"{label:<50} wall {wall:7.3f} ms/step  kernels {dev:7.3f} ms/step", flush=True)
            text += [f"===== {label}: wall {wall:.3f} ms, kernels {dev:.3f} ms", table, kernels, py]
            if cuda:
                torch.cuda.empty_cache()
    if args.out:
        from sparsefuse.lab.book.atomic import atomic_write

        os.makedirs(args.out, exist_ok=True)
        atomic_write(os.path.join(args.out, "host_profile.json"), json.dumps(rows, indent=1))
        atomic_write(os.path.join(args.out, "host_profile.txt"), "\n".join(text))
    else:
        print("\n".join(text)[:4000])
    return 0


if __name__ == "__main__":
    sys.exit(main())
