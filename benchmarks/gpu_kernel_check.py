"""Correctness of the fused kernels on CUDA at realistic sizes, against float64.

Checks every primitive (fwd / dx / dw, derivative orders 0..2, every strategy) in
fp32-IEEE, TF32 and bf16, then first and second derivatives of
``spline_contract`` through autograd, a non-default device when there is one,
and torch.compile(fullgraph=True).  Prints max relative errors (max |a - b| /
max |b|) and exits non-zero on any failure.

    python benchmarks/gpu_kernel_check.py                 # N=8192, 512 -> 512
    python benchmarks/gpu_kernel_check.py --small         # for compute-sanitizer
    compute-sanitizer --tool memcheck python benchmarks/gpu_kernel_check.py --small
    python benchmarks/gpu_kernel_check.py --smoke         # tiny, CPU interpreter
"""

import argparse
import contextlib
import os
import sys

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")  # --smoke only

from sparsefuse.kernels.naive import rel_err  # noqa: E402  (after TRITON_INTERPRET is set)

TOL = {"fp32-ieee": 2e-4, "tf32": 2e-2, "bf16": 4e-2}


def make_case(N, IN, OUT, G, k, device, seed=0):
    gen = torch.Generator(device="cpu").manual_seed(seed)
    h = 2.0 / G
    knots = torch.arange(-k, G + k + 1, dtype=torch.float64) * h - 1.0
    shift = (torch.rand(IN, 1, generator=gen, dtype=torch.float64) - 0.5) * 0.2
    grid = (knots[None, :] + shift).float().to(device)
    x = torch.rand(N, IN, generator=gen, dtype=torch.float64) * 2.3 - 1.15
    # Keep x a little away from the knots: where d >= k the derivative jumps there, and a
    # float32 cell index one off from the float64 one is a rounding fact, not a kernel bug.
    g32 = (knots[None, :] + shift).float().double()
    u = (x - g32[:, :1].T) / h
    frac = u - u.floor()
    near = (frac < 1e-3) | (frac > 1 - 1e-3)
    x = torch.where(near, x + 2e-3 * h, x).float().to(device)
    C = (torch.randn(OUT, IN, G + k, generator=gen, dtype=torch.float64) / (IN ** 0.5)).float().to(device)
    g = torch.randn(N, OUT, generator=gen, dtype=torch.float64).float().to(device)
    s = torch.randn(N, IN, generator=gen, dtype=torch.float64).float().to(device)
    return grid, x, C, g, s


def check_primitives(args, results):
    from sparsefuse import kernels as sk
    from sparsefuse.bench import PRECISIONS, precision
    from sparsefuse.kernels import naive, streamed
    from sparsefuse.kernels import dw as kdw
    from sparsefuse.kernels import dx as kdx
    from sparsefuse.kernels import fwd as kfwd

    dev = args.device
    for G in args.grids:
        for k in args.orders:
            grid, x, C, g, s = make_case(args.n, args.inp, args.out, G, k, dev)
            t0, ih = sk.geometry(grid, torch.float32)
            xd, gridd, Cd, gd, sd = x.double(), grid.double(), C.double(), g.double(), s.double()
            strategies = ["sparse", "dense"]
            for d in (0, 1, 2):
                B = naive.basis(xd, gridd, k, d)
                ref_y = torch.einsum("nit,oit->no", B * sd[..., None], Cd)
                ref_u = torch.einsum("no,oit,nit->ni", gd, Cd, B)
                ref_w = torch.einsum("no,nit->oit", gd, B * sd[..., None])
                del B
                for prec in PRECISIONS:
                    wdt = torch.bfloat16 if prec == "bf16" else torch.float32
                    Cw, gw = C.to(wdt), g.to(wdt)
                    # The dense strategy also with a tiny chunk budget (several row chunks and
                    # both dw chunkings at realistic sizes) and one of 16 features of all rows
                    # (feature blocks in the forward and in dW).
                    runs = [(st, None) for st in strategies] + [("dense", 1 << 18),
                                                                ("dense", 16 * args.n * (G + k) * 4)]
                    for strat, budget in runs:
                        chunks = streamed.chunk_budget(budget) if budget else contextlib.nullcontext()
                        with precision(prec), sk.poison_outputs(), chunks:
                            y = kfwd.fwd(x, t0, ih, Cw, s, k, d, strategy=strat)
                            u = kdx.dx(x, t0, ih, Cw, gw, k, d, strategy=strat)
                            w = kdw.dw(x, t0, ih, gw, s, k, d, G + k, strategy=strat)
                        if x.is_cuda:
                            torch.cuda.synchronize()
                        for name, a, b in (("fwd", y, ref_y), ("dx", u, ref_u), ("dw", w, ref_w)):
                            err = rel_err(a, b)
                            ok = err < TOL[prec] and not torch.isnan(a).any().item()
                            label = strat if budget is None else f"{strat}@{budget >> 10}KiB"
                            results.append((f"{name}_d{d}", G, k, prec, label, err, ok))
                            print(f"{name}_d{d:<3} G={G:<4} k={k} {prec:<10} {label:<14} "
                                  f"max rel err {err:.2e} {'ok' if ok else 'FAIL'}", flush=True)


def check_autograd(args, results, device):
    from sparsefuse import kernels as sk
    from sparsefuse.kernels import naive

    torch.set_float32_matmul_precision("highest")
    n = min(args.n, 1024)
    for G in args.grids:
        for k in args.orders:
            grid, x, C, _, _ = make_case(n, args.inp, args.out, G, k, device, seed=1)
            w1 = torch.randn(n, args.out, device=device)
            w2 = torch.randn(n, args.inp, device=device)
            outs = []
            for fn, xx, CC, a, b in (
                (sk.spline_contract, x, C, w1, w2),
                (naive.spline_contract, x.double(), C.double(), w1.double(), w2.double()),
            ):
                xx = xx.clone().requires_grad_()
                CC = CC.clone().requires_grad_()
                gg = grid if fn is sk.spline_contract else grid.double()
                y = fn(xx, gg, CC, k)
                gx, gC = torch.autograd.grad((y * a).sum(), (xx, CC), create_graph=True)
                gx2, gC2 = torch.autograd.grad((gx * b).sum() + (gx ** 2).sum(), (xx, CC))
                outs.append((y, gx, gC, gx2, gC2))
            for name, a, b in zip(("y", "dy/dx", "dy/dC", "d2/dx2", "d2/dxdC"), *outs):
                err = rel_err(a, b)
                ok = err < 5e-4
                results.append((f"autograd {name}", G, k, "fp32-ieee", f"auto@{device}", err, ok))
                print(f"autograd {name:<8} G={G:<4} k={k} on {device}: max rel err {err:.2e} "
                      f"{'ok' if ok else 'FAIL'}", flush=True)


def check_layer(args, results):
    """KANLinear(impl="fused") -- the fused whole-layer op -- against the float64 reference
    layer, forward and every gradient, in each precision, in one piece and in chunks."""
    from sparsefuse import KANLinear
    from sparsefuse import kernels as sk
    from sparsefuse.bench import PRECISIONS, autocast, precision
    from sparsefuse.kernels import streamed

    dev = args.device
    for G in args.grids:
        torch.manual_seed(G)
        lay = KANLinear(args.inp, args.out, grid_size=G, impl="fused").to(dev)
        ref = KANLinear(args.inp, args.out, grid_size=G, impl="reference").to(dev).double()
        ref.load_state_dict(lay.state_dict())
        x = torch.rand(args.n, args.inp, device=dev) * 2.4 - 1.2
        gy = torch.randn(args.n, args.out, device=dev)
        xr = x.double().requires_grad_()
        want = [ref(xr)]
        want += torch.autograd.grad(want[0], [xr] + list(ref.parameters()), gy.double())
        for prec in PRECISIONS:
            for budget in (None, 1 << 18):
                chunks = streamed.chunk_budget(budget) if budget else contextlib.nullcontext()
                xf = x.clone().requires_grad_()
                with precision(prec), chunks, sk.poison_outputs():
                    with autocast(prec, "cuda" if dev != "cpu" else "cpu"):
                        y = lay(xf)
                    got = [y] + list(torch.autograd.grad(y, [xf] + list(lay.parameters()), gy.to(y.dtype)))
                err = max(rel_err(a.double(), b) for a, b in zip(got, want))
                ok = err < TOL[prec] and not any(torch.isnan(a).any().item() for a in got)
                label = "layer" if budget is None else f"layer@{budget >> 10}KiB"
                results.append(("layer fwd+grads", G, 3, prec, label, err, ok))
                print(f"layer fwd+grads G={G:<4} k=3 {prec:<10} {label:<14} max rel err {err:.2e} "
                      f"{'ok' if ok else 'FAIL'}", flush=True)


def check_compile(args, results):
    from sparsefuse import kernels as sk

    grid, x, C, _, _ = make_case(256, 32, 16, 8, 3, args.device, seed=2)

    def f(a, b):
        return (sk.spline_contract(torch.tanh(a), grid, b, 3) ** 2).sum()

    outs = []
    for compiled in (True, False):
        a = x.clone().requires_grad_()
        b = C.clone().requires_grad_()
        fn = torch.compile(f, fullgraph=True) if compiled else f
        loss = fn(a, b)
        loss.backward()
        outs.append((loss, a.grad, b.grad))
    err = max(rel_err(p, q) for p, q in zip(*outs))
    ok = err < 1e-5
    results.append(("compile fullgraph", 8, 3, "fp32-ieee", "auto", err, ok))
    print(f"torch.compile(fullgraph=True): max rel err {err:.2e} {'ok' if ok else 'FAIL'}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda")
    p.add_argument("--small", action="store_true", help="N=512, 64 -> 64 (sanitizer runs)")
    p.add_argument("--smoke", action="store_true", help="tiny sizes on CPU (TRITON_INTERPRET=1)")
    p.add_argument("--no-compile", action="store_true")
    p.add_argument("--grids", type=int, nargs="*", help="grid sizes (default 5 20 100)")
    p.add_argument("--orders", type=int, nargs="*", help="spline orders (default 1 3)")
    args = p.parse_args(argv)
    grids, orders = args.grids, args.orders
    if args.smoke:
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
        # one small grid: the smoke run proves the script runs; the unit tests cover the grids
        args.n, args.inp, args.out, args.grids, args.orders = 40, 5, 3, (5,), (1, 3)
    elif not torch.cuda.is_available():
        print("CUDA is not available: only --smoke runs here", file=sys.stderr)
        return 2
    else:
        args.n, args.inp, args.out = (512, 64, 64) if args.small else (8192, 512, 512)
        args.grids, args.orders = tuple(grids or (5, 20, 100)), tuple(orders or (1, 3))
    results = []
    check_primitives(args, results)
    check_autograd(args, results, args.device)
    check_layer(args, results)
    if torch.cuda.is_available() and torch.cuda.device_count() > 1:
        check_autograd(args, results, "cuda:1")
    if not (args.no_compile or args.smoke):
        check_compile(args, results)
    failed = [r for r in results if not r[-1]]
    print(f"\n{len(results) - len(failed)}/{len(results)} checks passed")
    for r in failed:
        print("FAILED:", r)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
