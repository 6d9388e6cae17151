"""CPU timings of the reference, dense and sparse spline paths (forward, forward+backward).

Usage: python benchmarks/cpu_paths.py [--quick] [--out results/bench/cpu_paths.csv]
Prints a table and writes the CSV atomically. The numbers justify the CPU rule
of ``impl="auto"`` in sparsefuse/kan_linear.py.
"""

from __future__ import annotations

import argparse
import time

import torch

from gpu_layer_bench import write_csv

from sparsefuse.grid import uniform_grid
from sparsefuse.paths import get_path

SIZES = [  # (N, in, out, G, k)
    (1024, 64, 64, 5, 3),
    (1024, 64, 64, 20, 3),
    (1024, 64, 64, 50, 3),
    (1024, 64, 64, 100, 3),
    (1024, 64, 64, 200, 3),
    (1024, 64, 64, 400, 3),
    (4096, 128, 128, 5, 3),
    (4096, 128, 128, 100, 3),
    (1024, 64, 64, 100, 1),
    (1024, 64, 64, 100, 5),
]
PATHS = ("reference", "dense", "sparse")


def time_ms(fn, reps, warmup=1):
    """Best of ``reps`` runs: the minimum is the least disturbed by other load on a shared CPU."""
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1e3)
    return min(out)


def bench(n, n_in, n_out, g, k, path, reps, dtype=torch.float32):
    gen = torch.Generator().manual_seed(0)
    grid = uniform_grid(n_in, g, k, (-1, 1), dtype=dtype)
    x = (torch.rand(n, n_in, generator=gen, dtype=dtype) * 2.2 - 1.1).requires_grad_()
    coeff = (torch.randn(n_out, n_in, g + k, generator=gen, dtype=dtype) * 0.1).requires_grad_()
    fn = get_path(path)
    kw = {} if path == "reference" else {"uniform": True}

    def fwd():
        with torch.no_grad():
            fn(x, grid, coeff, k, **kw)

    def fwd_bwd():
        y = fn(x, grid, coeff, k, **kw)
        y.backward(torch.ones_like(y))
        x.grad = coeff.grad = None

    return time_ms(fwd, reps), time_ms(fwd_bwd, reps)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="first two sizes, 3 repetitions")
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--out", default="results/bench/cpu_paths.csv")
    args = ap.parse_args()
    sizes = SIZES[:2] if args.quick else SIZES
    reps = 3 if args.quick else args.reps
    rows = []
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, float32, best of {reps}")
    print(f"{'N':>5} {'in':>4} {'out':>4} {'G':>4} {'k':>2} {'path':>9} {'fwd ms':>9} {'fwd+bwd ms':>11}")
    for n, n_in, n_out, g, k in sizes:
        for path in PATHS:
            f, fb = bench(n, n_in, n_out, g, k, path, reps)
            rows.append(dict(N=n, in_features=n_in, out_features=n_out, grid_size=g, spline_order=k,
                             path=path, fwd_ms=round(f, 3), fwd_bwd_ms=round(fb, 3),
                             threads=torch.get_num_threads(), torch=torch.__version__))
            print(f"{n:>5} {n_in:>4} {n_out:>4} {g:>4} {k:>2} {path:>9} {f:>9.2f} {fb:>11.2f}", flush=True)
    write_csv(rows, args.out)


if __name__ == "__main__":
    main()
