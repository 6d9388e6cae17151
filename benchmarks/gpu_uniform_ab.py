"""Uniform-grid A/B: the fused layer of whichever `sparsefuse` is on the path, timed on the shapes of
the committed H200 table, so two trees (e.g. kernel v2 exported to a folder, and this one) can be
compared in one GPU session, interleaved process by process.

    for r in 1 2; do for t in OLD_TREE .; do PYTHONPATH=$t python3 benchmarks/gpu_uniform_ab.py \
        --tag $t --round $r >> ab.csv; done; done

Only public API (``KANLinear``, the lab's ``bench``) is used, so any version of the package runs it.
Prints CSV rows: tag, round, shape, precision, fwd+bwd median ms.
"""
from __future__ import annotations

import argparse

import torch

SHAPES = [(8192, 512, 512, 5), (8192, 512, 512, 100), (16384, 1024, 4096, 5), (1024, 64, 64, 5)]


def main(argv=None) -> int:
    import sparsefuse
    try:
        from sparsefuse.lab.bench import autocast, benchmark, precision
    except ImportError:  # a tree from before the library/lab split had it at sparsefuse.bench
        from sparsefuse.bench import autocast, benchmark, precision

    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--tag", required=True)
    p.add_argument("--round", type=int, default=1)
    p.add_argument("--precisions", nargs="*", default=["bf16", "tf32"])
    p.add_argument("--header", action="store_true")
    p.add_argument("--out", help="append the rows to this CSV (header written when it is new) instead of printing")
    p.add_argument("--smoke", action="store_true", help="one tiny shape on CPU (TRITON_INTERPRET=1): the script runs")
    args = p.parse_args(argv)
    import os
    import sys

    sink = open(args.out, "a") if args.out else sys.stdout
    if args.header or (args.out and os.path.getsize(args.out) == 0):
        print("tag,round,N,in,out,G,precision,fwdbwd_ms,package", file=sink)
    dev = "cpu" if args.smoke else "cuda"
    for n, i, o, g in [(64, 8, 6, 5)] if args.smoke else SHAPES:
        torch.manual_seed(0)
        layer = sparsefuse.KANLinear(i, o, grid_size=g, impl="fused" if args.smoke else "auto").to(dev)
        x = torch.randn(n, i, device=dev, requires_grad=True)
        for prec in args.precisions:
            with precision(prec), autocast(prec):
                def step():
                    layer(x).float().sum().backward()
                res = benchmark(step, device=dev)
            print(f"{args.tag},{args.round},{n},{i},{o},{g},{prec},{res.median_ms:.4f},{sparsefuse.__file__}",
                  file=sink, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
