"""Where the time of one fused KANLinear forward+backward goes, on one GPU.

For each precision (fp32-ieee, tf32, bf16 autocast) and G it prints

  * the median wall time of forward+backward (``sparsefuse.bench.benchmark``),
  * the GPU time of the kernels it launches (summed from ``torch.profiler``),
  * the host time to issue one forward+backward with the GPU far ahead (no sync),
  * the kernels sorted by GPU time.

If the host time is close to the wall time, the layer is launch bound at this size
and faster kernels will not show; if the kernel sum is, the kernels are what to fix.

  python benchmarks/gpu_profile_layer.py --grids 5 100 --out OUTDIR
  python benchmarks/gpu_profile_layer.py --grids 5 --compile reduce-overhead
"""

import argparse
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))


def profile_one(layer, x, dy, mode, top, compiled=None):
    from sparsefuse.bench import autocast, benchmark, precision

    params = [p for p in layer.parameters() if p.requires_grad]
    xr = x.clone().requires_grad_()
    run = layer if compiled is None else torch.compile(layer, mode=compiled, fullgraph=True)

    def step():
        if compiled == "reduce-overhead":
            torch.compiler.cudagraph_mark_step_begin()
        xr.grad = None
        for p in params:
            p.grad = None
        with precision(mode):
            with autocast(mode):
                y = run(xr)
            y.backward(dy)

    wall = benchmark(step, device="cuda", warmup=25, rep=200).median_ms
    # Host issue time: run ahead of the GPU by queueing many steps behind a long kernel.
    torch.cuda.synchronize()
    reps = 50
    big = torch.empty(int(2e8), device=x.device)
    big.uniform_()  # keeps the GPU busy while the host issues the steps
    t = time.perf_counter()
    for _ in range(reps):
        step()
    host = (time.perf_counter() - t) / reps * 1e3
    torch.cuda.synchronize()
    acts = [torch.profiler.ProfilerActivity.CPU, torch.profiler.ProfilerActivity.CUDA]
    n = 10
    with torch.profiler.profile(activities=acts) as prof:
        for _ in range(n):
            step()
        torch.cuda.synchronize()
    kernels = {}
    for ev in prof.key_averages():
        dev = getattr(ev, "device_time_total", None)
        if dev is None:
            dev = getattr(ev, "cuda_time_total", 0)
        if dev and ev.device_type == torch.autograd.DeviceType.CUDA:
            kernels[ev.key] = (dev / 1e3 / n, ev.count // n)
    gpu = sum(v[0] for v in kernels.values())
    lines = [f"  wall {wall:.3f} ms | kernels {gpu:.3f} ms | host issue {host:.3f} ms per forward+backward"]
    for name, (ms, cnt) in sorted(kernels.items(), key=lambda kv: -kv[1][0])[:top]:
        lines.append(f"    {ms:8.3f} ms  x{cnt:<3} {name[:110]}")
    return wall, gpu, host, "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", type=int, nargs=3, default=(8192, 512, 512), metavar=("N", "IN", "OUT"))
    p.add_argument("--grids", type=int, nargs="*", default=[5, 100])
    p.add_argument("--order", type=int, default=3)
    p.add_argument("--precisions", nargs="*", default=["fp32-ieee", "tf32", "bf16"])
    p.add_argument("--impls", nargs="*", default=["fused"])
    p.add_argument("--top", type=int, default=12)
    p.add_argument("--compile", nargs="*", default=[], choices=["default", "reduce-overhead"],
                   help="also profile the layer under torch.compile with these modes "
                        "(reduce-overhead: CUDA graphs, no per-launch host cost)")
    p.add_argument("--out", default=None, help="folder for profile.csv")
    args = p.parse_args(argv)
    if not torch.cuda.is_available():
        print("needs a CUDA device", file=sys.stderr)
        return 2
    from sparsefuse.kan_linear import KANLinear

    N, IN, OUT = args.size
    dev = torch.device("cuda")
    print(f"{torch.cuda.get_device_name(dev)}, torch {torch.__version__}, N={N}, {IN}->{OUT}, k={args.order}")
    rows = []
    x = torch.rand(N, IN, device=dev) * 2 - 1
    for G in args.grids:
        for impl in args.impls:
            torch.manual_seed(0)
            layer = KANLinear(IN, OUT, grid_size=G, spline_order=args.order, impl=impl).to(dev)
            for mode in args.precisions:
                dy = torch.randn(N, OUT, device=dev, dtype=torch.bfloat16 if mode == "bf16" else torch.float32)
                for compiled in [None] + list(args.compile):
                    torch._dynamo.reset()
                    try:
                        wall, gpu, host, text = profile_one(layer, x, dy, mode, args.top, compiled)
                    except Exception as exc:  # noqa: BLE001 - report and go on
                        print(f"G={G} {impl} {mode} compile={compiled}: {type(exc).__name__}: "
                              f"{str(exc).splitlines()[0][:200] if str(exc) else ''}", flush=True)
                        continue
                    print(f"G={G} {impl} {mode} compile={compiled or 'eager'}\n{text}", flush=True)
                    rows.append(dict(G=G, impl=impl, precision=mode, mode=compiled or "eager",
                                     wall_ms=wall, kernel_ms=gpu, host_ms=host))
    if args.out:
        from gpu_layer_bench import write_csv

        write_csv(rows, os.path.join(args.out, "profile.csv"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
