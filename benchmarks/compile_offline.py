"""Compile every fused-kernel launch for real GPU targets on a machine without a GPU.

The CPU tests run the kernels in Triton's interpreter, which executes Python and so accepts
constructs the GPU compiler may refuse.  This script records the signature of every launch
the library makes (primitives and the layer, both strategies, k in 1/3/5, float32 / bf16 /
fp16 / float64, uniform and adaptive grids) by running them in the interpreter, then
compiles each one with Triton's CUDA backend for the given compute capabilities (PTX and
cubin, offline: ptxas ships with triton).  bf16 is skipped below sm80, where the library
refuses it (``kernels.unavailable``).

    python benchmarks/compile_offline.py                  # sm90 (H100/H200) and sm75 (T4)
    python benchmarks/compile_offline.py --targets 90 --orders 3
"""

import argparse
import importlib
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
KERNELS = (("writer", "_basis_block_kernel"), ("dx", "_active_reduce_kernel"), ("fwd", "_fwd_gather_kernel"),
           ("dx", "_dx_gather_kernel"), ("dw", "_dw_sorted_kernel"), ("layout", "_pack_kernel"),
           ("layout", "_unpack_kernel"), ("geometry", "_geometry_kernel"))


def record(path, orders):
    """(interpreter) every launch's (module, kernel, signature, constexprs, options) into ``path``."""
    import torch

    sys.path.insert(0, os.path.join(ROOT, "tests"))
    from conftest import make_problem

    from sparsefuse import kernels as sk
    from sparsefuse.kernels.geometry import geometry

    types = {torch.float32: "fp32", torch.float64: "fp64", torch.bfloat16: "bf16", torch.float16: "fp16",
             torch.int32: "i32", torch.int64: "i64"}
    seen = {}

    def spy(mod, name):
        kernel = getattr(mod, name)

        class Spy:
            def __getitem__(self, grid):
                def launch(*args, **kw):
                    sig = {}
                    for arg, a in zip(kernel.arg_names, args):
                        if isinstance(a, torch.Tensor):
                            sig[arg] = "*" + types[a.dtype]
                        elif isinstance(a, bool):
                            sig[arg] = "i1"
                        elif isinstance(a, int):
                            sig[arg] = "i64" if abs(a) >= 2**31 else "i32"
                        elif isinstance(a, float):
                            sig[arg] = "fp32"
                    opts = {k: v for k, v in kw.items() if k in ("num_warps", "num_stages")}
                    consts = {k: v for k, v in kw.items() if k not in opts}
                    sig.update({k: "constexpr" for k in consts})
                    entry = [mod.__name__, name, sig, consts, opts]
                    seen[json.dumps(entry, sort_keys=True, default=str)] = entry
                    return kernel[grid](*args, **kw)
                return launch
        setattr(mod, name, Spy())

    for mod, name in KERNELS:
        spy(importlib.import_module(f"sparsefuse.kernels.{mod}"), name)
    from sparsefuse.kernels import dw, dx, fwd

    for k in orders:
        for wdt in (torch.float32, torch.bfloat16, torch.float16, torch.float64):
            xdt = torch.float64 if wdt == torch.float64 else torch.float32
            for kind in ("uniform", "adaptive"):
                x, grid, C = (t.to(xdt) for t in make_problem(33, 5, 4, 6, k, kind=kind))
                C, g, s = C.to(wdt), torch.randn(33, 4).to(wdt), torch.randn(33, 5, dtype=xdt)
                geo = geometry(grid, xdt, wdt)
                for strategy in ("streamed", "gather"):
                    for d in (0, 1, 2):
                        fwd.fwd(x, grid, geo, C, s if d == 0 else None, k, d, strategy=strategy)
                        dx.dx(x, grid, geo, C, g, k, d, strategy=strategy)
                        dw.dw(x, grid, geo, g, s if d == 0 else None, k, d, C.shape[2], strategy=strategy)
                    with sk.force_strategy(strategy):
                        xx = x.clone().requires_grad_()
                        p = [torch.randn(*shape, dtype=xdt) for shape in ((4, 5), (4, 5, 6 + k), (4, 5))]
                        y = sk.kan_linear(xx, grid, *p, k, dtype=None if wdt in (torch.float32, torch.float64) else wdt)
                        y.float().sum().backward()
    with open(path, "w") as fh:
        json.dump(list(seen.values()), fh)


def compile_all(path, targets):
    """(GPU compiler) every recorded signature for every target; returns the failures."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    with open(path) as fh:
        entries = json.load(fh)
    failures, done = [], 0
    for mod, name, sig, consts, opts in entries:
        fn = getattr(importlib.import_module(mod), name)
        for cc in targets:
            if cc < 80 and "*bf16" in sig.values():
                continue
            try:
                triton.compile(ASTSource(fn=fn, signature=sig, constexprs=consts), target=GPUTarget("cuda", cc, 32),
                               options=opts)
                done += 1
            except Exception as e:  # noqa: BLE001 - every failure is reported, the rest still compiled
                failures.append((cc, name, consts, str(e).strip().splitlines()[-1][:300]))
    print(f"{len(entries)} launch signatures, {done} compiled for sm{'/sm'.join(map(str, targets))}, "
          f"{len(failures)} failed")
    return failures


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--targets", type=int, nargs="*", default=[90, 75], help="compute capabilities")
    p.add_argument("--orders", type=int, nargs="*", default=[1, 3, 5], help="spline orders")
    p.add_argument("--record", help=argparse.SUPPRESS)  # the interpreter half, run in a child process
    args = p.parse_args(argv)
    sys.path.insert(0, ROOT)
    if args.record:
        record(args.record, args.orders)
        return 0
    t0 = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "launches.json")
        env = dict(os.environ, TRITON_INTERPRET="1", PYTHONPATH=ROOT)
        subprocess.run([sys.executable, __file__, "--record", path, "--orders", *map(str, args.orders)],
                       env=env, check=True, capture_output=True)
        os.environ.pop("TRITON_INTERPRET", None)
        failures = compile_all(path, args.targets)
    for f in failures:
        print("FAILED:", *f)
    print(f"{time.time() - t0:.0f} s")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
