"""Correctness of the fused kernels on CUDA at realistic sizes, against float64.

Checks every primitive (fwd / dx / dw, derivative orders 0..2, both strategies, small chunk
budgets) in fp32-IEEE, TF32, bf16 and float64 on uniform and adaptive grids (knots from
``update_grid``'s rule on skewed data), then first and second derivatives of
``spline_contract`` through autograd, the fused layer (``KANLinear(impl="fused")``, fresh
and after ``update_grid``, ``.double()`` too), a non-default device when there is one, and
torch.compile(fullgraph=True, dynamic) of the layer.  Prints max relative errors (max
|a - b| / max |b|) and exits non-zero on any failure.

    python benchmarks/gpu_kernel_check.py                 # N=8192, 512 -> 512
    python benchmarks/gpu_kernel_check.py --small         # for compute-sanitizer
    compute-sanitizer --tool memcheck python benchmarks/gpu_kernel_check.py --small
    python benchmarks/gpu_kernel_check.py --smoke         # tiny, CPU interpreter
"""

import argparse
import os
import sys

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")  # --smoke only

from sparsefuse.kernels.naive import rel_err  # noqa: E402  (after TRITON_INTERPRET is set)

TOL = {"fp32-ieee": 2e-4, "tf32": 2e-2, "bf16": 4e-2, "float64": 1e-12}
KINDS = ("uniform", "adaptive")


def make_case(N, IN, OUT, G, k, device, seed=0, kind="uniform", dtype=torch.float32):
    """(grid, x, C, g, s): a uniform grid shifted per feature, or an adaptive one (data quantiles
    of skewed samples blended with a uniform grid, efficient-kan's update_grid rule)."""
    from sparsefuse.grid import adaptive_grid

    gen = torch.Generator(device="cpu").manual_seed(seed)
    if kind == "uniform":
        knots = torch.arange(-k, G + k + 1, dtype=torch.float64) * (2.0 / G) - 1.0
        shift = (torch.rand(IN, 1, generator=gen, dtype=torch.float64) - 0.5) * 0.2
        grid = (knots[None, :] + shift).to(dtype)
    else:
        data = torch.randn(4096, IN, generator=gen, dtype=torch.float64).sinh() * 0.5
        grid = adaptive_grid(data, G, k, grid_eps=0.02, margin=0.01).to(dtype)
    g64 = grid.double()
    x = g64[:, 0] + (g64[:, -1] - g64[:, 0]) * (torch.rand(N, IN, generator=gen, dtype=torch.float64) * 1.1 - 0.05)
    # Keep x a little away from the knots: where d >= k the derivative jumps there, and a
    # float32 cell index one off from the float64 one is a rounding fact, not a kernel bug.
    cell = torch.searchsorted(g64.contiguous(), x.T.contiguous()).T.clamp(1, g64.shape[1] - 1)
    rows = torch.arange(IN)
    lo, hi = g64[rows, cell - 1], g64[rows, cell]
    x = x.clamp(lo + 1e-3 * (hi - lo), hi - 1e-3 * (hi - lo)).where((x > g64[:, 0]) & (x < g64[:, -1]), x)
    C = torch.randn(OUT, IN, G + k, generator=gen, dtype=torch.float64) / (IN ** 0.5)
    g = torch.randn(N, OUT, generator=gen, dtype=torch.float64)
    s = torch.randn(N, IN, generator=gen, dtype=torch.float64)
    return [t.to(dtype).to(device) for t in (grid, x, C, g, s)]


def check_primitives(args, results):
    from sparsefuse import kernels as sk
    from sparsefuse.lab.bench import PRECISIONS, precision
    from sparsefuse.kernels import naive
    from sparsefuse.kernels import dw as kdw
    from sparsefuse.kernels import dx as kdx
    from sparsefuse.kernels import fwd as kfwd
    from sparsefuse.kernels.geometry import geometry

    dev = args.device
    for kind, G, k in [(kind, G, k) for kind in args.kinds for G in args.grids for k in args.orders]:
        grid, x, C, g, s = make_case(args.n, args.inp, args.out, G, k, dev, kind=kind)
        xd, gridd, Cd, gd, sd = x.double(), grid.double(), C.double(), g.double(), s.double()
        for d in (0, 1, 2):
            B = naive.basis(xd, gridd, k, d)
            ref_y = torch.einsum("nit,oit->no", B * sd[..., None], Cd)
            ref_u = torch.einsum("no,oit,nit->ni", gd, Cd, B)
            ref_w = torch.einsum("no,nit->oit", gd, B * sd[..., None])
            del B
            for prec in PRECISIONS + ("float64",):
                wdt = {"bf16": torch.bfloat16, "float64": torch.float64}.get(prec, torch.float32)
                xx, ss, gg = (xd, sd, gridd) if prec == "float64" else (x, s, grid)
                Cw, gw = C.to(wdt), g.to(wdt)
                # The streamed strategy also with a tiny chunk budget (several row chunks and
                # both dw chunkings at realistic sizes) and one of 16 features of all rows
                # (feature blocks in the forward and in dW).
                runs = [("gather", None), ("streamed", None), ("streamed", 1 << 18),
                        ("streamed", 16 * args.n * (G + k) * 4)]
                for strat, budget in runs:
                    with precision("fp32-ieee" if prec == "float64" else prec), sk.poison_outputs(), \
                            sk.chunk_budget(budget or 2**40):
                        geo = geometry(gg, xx.dtype, wdt)
                        y = kfwd.fwd(xx, gg, geo, Cw, ss, k, d, strategy=strat)
                        u = kdx.dx(xx, gg, geo, Cw, gw, k, d, strategy=strat)
                        w = kdw.dw(xx, gg, geo, gw, ss, k, d, G + k, strategy=strat)
                    if x.is_cuda:
                        torch.cuda.synchronize()
                    for name, a, b in (("fwd", y, ref_y), ("dx", u, ref_u), ("dw", w, ref_w)):
                        err = rel_err(a, b)
                        ok = err < TOL[prec] and not torch.isnan(a).any().item()
                        label = strat if budget is None else f"{strat}@{budget >> 10}KiB"
                        results.append((f"{name}_d{d} {kind}", G, k, prec, label, err, ok))
                        print(f"{name}_d{d:<3} {kind:<8} G={G:<4} k={k} {prec:<10} {label:<16} "
                              f"max rel err {err:.2e} {'ok' if ok else 'FAIL'}", flush=True)


def check_autograd(args, results, device):
    from sparsefuse import kernels as sk
    from sparsefuse.kernels import naive

    torch.set_float32_matmul_precision("highest")
    n = min(args.n, 1024)
    for kind, G, k in [(kind, G, k) for kind in args.kinds for G in args.grids for k in args.orders]:
        grid, x, C, _, _ = make_case(n, args.inp, args.out, G, k, device, seed=1, kind=kind)
        w1 = torch.randn(n, args.out, device=device)
        w2 = torch.randn(n, args.inp, device=device)
        outs = []
        for fn, xx, CC, a, b in ((sk.spline_contract, x, C, w1, w2),
                                 (naive.spline_contract, x.double(), C.double(), w1.double(), w2.double())):
            xx, CC = xx.clone().requires_grad_(), CC.clone().requires_grad_()
            y = fn(xx, grid if fn is sk.spline_contract else grid.double(), CC, k)
            gx, gC = torch.autograd.grad((y * a).sum(), (xx, CC), create_graph=True)
            gx2, gC2 = torch.autograd.grad((gx * b).sum() + (gx ** 2).sum(), (xx, CC), materialize_grads=True)
            outs.append((y, gx, gC, gx2, gC2))
        for name, a, b in zip(("y", "dy/dx", "dy/dC", "d2/dx2", "d2/dxdC"), *outs):
            err = rel_err(a, b)
            ok = err < 5e-4
            results.append((f"autograd {name} {kind}", G, k, "fp32-ieee", f"auto@{device}", err, ok))
            print(f"autograd {name:<8} {kind:<8} G={G:<4} k={k} on {device}: max rel err {err:.2e} "
                  f"{'ok' if ok else 'FAIL'}", flush=True)


def _layers(args, G, dev):
    """(name, fused layer, float64 reference layer, x) for a fresh and an update_grid'ed layer."""
    from sparsefuse import KANLinear

    torch.manual_seed(G)
    x = torch.rand(args.n, args.inp, device=dev) * 2.4 - 1.2
    out = []
    for kind in KINDS:
        lay = KANLinear(args.inp, args.out, grid_size=G, impl="fused").to(dev)
        if kind == "adaptive":
            lay.update_grid(torch.sinh(torch.randn(4096, args.inp, device=dev)) * 0.5)
        ref = KANLinear(args.inp, args.out, grid_size=G, impl="reference").to(dev).double()
        ref.load_state_dict(lay.state_dict())
        out.append((kind, lay, ref, x))
    return out


def check_layer(args, results):
    """KANLinear(impl="fused") -- the fused whole-layer op -- against the float64 reference
    layer, forward and every gradient, on a fresh and an update_grid'ed grid, in each
    precision, in one piece and in chunks, and as a float64 layer (.double())."""
    from sparsefuse import kernels as sk
    from sparsefuse.lab.bench import PRECISIONS, autocast, precision

    dev = args.device
    for G in args.grids:
        for kind, lay, ref, x in _layers(args, G, dev):
            gy = torch.randn(args.n, args.out, device=dev)
            xr = x.double().requires_grad_()
            want = [ref(xr)]
            want += torch.autograd.grad(want[0], [xr] + list(ref.parameters()), gy.double())
            runs = [(prec, budget) for prec in PRECISIONS for budget in (None, 1 << 18)] + [("float64", None)]
            for prec, budget in runs:
                layer = lay if prec != "float64" else ref.__class__(args.inp, args.out, grid_size=G, impl="fused")
                if prec == "float64":
                    layer = layer.to(dev).double()
                    layer.load_state_dict(ref.state_dict())
                xf = (x.double() if prec == "float64" else x).clone().requires_grad_()
                with precision("fp32-ieee" if prec == "float64" else prec), sk.chunk_budget(budget or 2**40), \
                        sk.poison_outputs():
                    with autocast(prec, "cuda" if dev != "cpu" else "cpu"):
                        y = layer(xf)
                    got = [y] + list(torch.autograd.grad(y, [xf] + list(layer.parameters()), gy.to(y.dtype)))
                err = max(rel_err(a.double(), b) for a, b in zip(got, want))
                ok = err < TOL[prec] and not any(torch.isnan(a).any().item() for a in got)
                label = f"layer {kind}" if budget is None else f"layer {kind}@{budget >> 10}KiB"
                results.append(("layer fwd+grads", G, 3, prec, label, err, ok))
                print(f"layer fwd+grads G={G:<4} k=3 {prec:<10} {label:<24} max rel err {err:.2e} "
                      f"{'ok' if ok else 'FAIL'}", flush=True)


def check_compile(args, results):
    """torch.compile(layer, fullgraph=True, dynamic=True) with gradients against eager, on both
    grids and three batch sizes: one graph, no recompile."""
    from torch._dynamo.utils import counters

    dev = args.device
    for kind, lay, _, x in _layers(args, 8, dev):
        torch._dynamo.reset()
        counters.clear()
        compiled = torch.compile(lay, fullgraph=True, dynamic=True)
        err = 0.0
        for n in (x.shape[0], x.shape[0] // 2 + 1, 37):
            outs = []
            for fn in (compiled, lay):
                xx = x[:n].clone().requires_grad_()
                lay.zero_grad()
                y = fn(xx)
                y.square().sum().backward()
                outs.append((y, xx.grad, lay.spline_weight.grad.clone()))
            err = max(err, max(rel_err(p, q) for p, q in zip(*outs)))
        graphs = counters["stats"]["unique_graphs"]
        ok = err < 1e-5 and graphs == 1
        results.append((f"compile fullgraph dynamic {kind}", 8, 3, "fp32-ieee", "auto", err, ok))
        print(f"torch.compile(KANLinear, fullgraph, dynamic) {kind}: max rel err {err:.2e}, {graphs} graph(s) "
              f"for 3 batch sizes {'ok' if ok else 'FAIL'}", flush=True)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda")
    p.add_argument("--small", action="store_true", help="N=512, 64 -> 64 (sanitizer runs)")
    p.add_argument("--smoke", action="store_true", help="tiny sizes on CPU (TRITON_INTERPRET=1)")
    p.add_argument("--no-compile", action="store_true")
    p.add_argument("--grids", type=int, nargs="*", help="grid sizes (default 5 20 100)")
    p.add_argument("--orders", type=int, nargs="*", help="spline orders (default 1 3)")
    p.add_argument("--kinds", nargs="*", default=KINDS, choices=KINDS, help="grids of the primitive checks")
    p.add_argument("--no-primitives", action="store_true", help="skip the per-primitive checks")
    args = p.parse_args(argv)
    grids, orders = args.grids, args.orders
    if args.smoke:
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
        # one small grid: the smoke run proves the script runs; the unit tests cover the grids
        args.n, args.inp, args.out, args.grids, args.orders = 40, 5, 3, (5,), (3,)
    elif not torch.cuda.is_available():
        print("CUDA is not available: only --smoke runs here", file=sys.stderr)
        return 2
    else:
        args.n, args.inp, args.out = (512, 64, 64) if args.small else (8192, 512, 512)
        args.grids, args.orders = tuple(grids or (5, 20, 100)), tuple(orders or (1, 3))
    results = []
    if not args.no_primitives:
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
