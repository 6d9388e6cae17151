"""Probe: how fast can the streamed strategy write the basis, and in which layout?

The dense strategy's non-GEMM time is the basis writer (forward, and the dW recompute)
and the active-column reduce of dX.  This probe times, for one chunk of rows of the
whole layer (base column included, N=8192, in=512, k=3):

  * ``i-major select``  : today's writer, column ``i*MB + 1 + t`` (the parameter layout)
  * ``i-major scatter`` : the same layout, zero span + k+1 scattered stores
  * ``t-major``         : column ``(1 + t)*in + i``: every store is a contiguous run over
                          features, so it vectorises (the weights are packed anyway)
  * ``zero_``           : a plain write of the same bytes (the bandwidth floor)

and the matching dX reduce (i-major: k+1 active columns, t-major: a full coalesced read of
P), plus the forward GEMM's rate against the number of rows in a chunk (the output is
only ``out`` wide, so a thin chunk leaves SMs idle).  Writes probe.csv under OUT.

    python benchmarks/gpu_basis_probe.py OUT
"""

import sys
from pathlib import Path

import torch
import triton
import triton.language as tl

from sparsefuse.kernels import _runtime as rt
from sparsefuse.kernels import dispatch, streamed
from sparsefuse.kernels._basis import load_block, local_basis


@triton.jit
def _basis_tmajor_kernel(X, T0, IH, A, R, F, M, NCELL, F0, sxn, sxi, san, sat,
                         K: tl.constexpr, D: tl.constexpr, HAS_BASE: tl.constexpr,
                         BLOCK_N: tl.constexpr, BLOCK_I: tl.constexpr):
    """A[n, (HAS_BASE + t)*sat + i] = B^(d)_t(x[n, F0+i]); with HAS_BASE A[n, i] = silu(x)."""
    n64, i64, mask_n, m2, xv, t0, ih = load_block(X, T0, IH, R, F, F0, sxn, sxi, BLOCK_N, BLOCK_I)
    one = tl.zeros((BLOCK_N, BLOCK_I), dtype=t0.dtype) + 1.0
    j, live, c0, c1, c2, c3, c4, c5, c6, c7 = local_basis(xv, t0[None, :], ih[None, :], one, NCELL, K, D)
    row = A + n64[:, None] * san + i64[None, :]
    if HAS_BASE:
        xf = xv.to(t0.dtype)
        tl.store(row, (xf * tl.sigmoid(xf)).to(A.dtype.element_ty), mask=m2)
        row += sat
    first = j - K  # the basis in slot 0
    for t in range(0, M):
        slot = t - first
        v = tl.zeros_like(c0)
        d0, d1, d2, d3, d4, d5, d6, d7 = c0, c1, c2, c3, c4, c5, c6, c7
        for s in tl.static_range(K + 1):
            v = tl.where(slot == s, d0, v)
            d0, d1, d2, d3, d4, d5, d6 = d1, d2, d3, d4, d5, d6, d7
        tl.store(row + t * sat, v.to(A.dtype.element_ty), mask=m2)


@triton.jit
def _reduce_tmajor_kernel(X, T0, IH, P, U, R, IN, M, NCELL, sxn, sxi, spn, spt, sun,
                          K: tl.constexpr, D: tl.constexpr, HAS_BASE: tl.constexpr,
                          BLOCK_N: tl.constexpr, BLOCK_I: tl.constexpr):
    n64, i64, mask_n, m2, xv, t0, ih = load_block(X, T0, IH, R, IN, 0, sxn, sxi, BLOCK_N, BLOCK_I)
    one = tl.zeros((BLOCK_N, BLOCK_I), dtype=t0.dtype) + 1.0
    j, live, c0, c1, c2, c3, c4, c5, c6, c7 = local_basis(xv, t0[None, :], ih[None, :], one, NCELL, K, D)
    acc = tl.zeros((BLOCK_N, BLOCK_I), dtype=tl.float32)
    row = P + n64[:, None] * spn + i64[None, :]
    if HAS_BASE:
        xf = xv.to(tl.float32)
        sg = tl.sigmoid(xf)
        acc += tl.load(row, mask=m2, other=0.0).to(tl.float32) * (sg * (1.0 + xf * (1.0 - sg)))
        row += spt
    first = j - K
    for t in range(0, M):
        slot = t - first
        v = tl.zeros_like(c0)
        d0, d1, d2, d3, d4, d5, d6, d7 = c0, c1, c2, c3, c4, c5, c6, c7
        for s in tl.static_range(K + 1):
            v = tl.where(slot == s, d0, v)
            d0, d1, d2, d3, d4, d5, d6 = d1, d2, d3, d4, d5, d6, d7
        inside = (slot >= 0) & (slot <= K)
        p = tl.load(row + t * spt, mask=m2 & inside, other=0.0)
        acc += v.to(tl.float32) * p.to(tl.float32)
    tl.store(U + n64[:, None] * sun + i64[None, :], acc.to(U.dtype.element_ty), mask=m2)


def bench(fn):
    return triton.testing.do_bench(fn, warmup=10, rep=60)


def main(out):
    dev = torch.device("cuda")
    torch.manual_seed(0)
    rows = []
    N, IN, k = 8192, 512, 3
    cfg = dict(dispatch.config("stream", "dense", "bf16", dev))
    for G in (5, 20, 100):
        M = G + k
        MB = M + 1
        t0 = torch.full((IN,), -1.0 - k * 2.0 / G, device=dev)
        ih = torch.full((IN,), G / 2.0, device=dev)
        for dtype in (torch.bfloat16, torch.float32):
            el = torch.finfo(dtype).bits // 8
            R = min(N, max(128, (64 << 20) // (IN * MB * el)))
            x = torch.randn(R, IN, device=dev) * 0.8
            A = torch.empty((R, IN * MB), dtype=dtype, device=dev)
            mb = A.numel() * el / 2**20
            res = {}
            for name, scatter in (("i-major select", 0), ("i-major scatter", 1)):
                c = dict(cfg, basis_scatter=scatter)
                res[name] = bench(lambda: streamed.write_basis(x, None, t0, ih, A, k, 0, M, 0, c, True))
            for bn, bi, w in ((16, 64, 4), (32, 64, 4), (16, 128, 4), (8, 128, 4), (32, 128, 8)):
                grid = (rt.cdiv(R, bn), rt.cdiv(IN, bi))
                res[f"t-major {bn}x{bi}w{w}"] = bench(lambda: _basis_tmajor_kernel[grid](
                    x, t0, ih, A, R, IN, M, M + k, 0, x.stride(0), x.stride(1), A.stride(0), IN,
                    K=k, D=0, HAS_BASE=True, BLOCK_N=bn, BLOCK_I=bi, num_warps=w))
            res["zero_ (floor)"] = bench(lambda: A.zero_())
            # dX reduce: i-major (k+1 active columns) vs t-major (full coalesced read)
            u = torch.empty((R, IN), device=dev)
            res["reduce i-major"] = bench(lambda: streamed.reduce_active(x, t0, ih, A, u, k, 1, M, False, cfg, True))
            for bn, bi, w in ((16, 64, 4), (32, 128, 8)):
                grid = (rt.cdiv(R, bn), rt.cdiv(IN, bi))
                res[f"reduce t-major {bn}x{bi}w{w}"] = bench(lambda: _reduce_tmajor_kernel[grid](
                    x, t0, ih, A, u, R, IN, M, M + k, x.stride(0), x.stride(1), A.stride(0), IN, u.stride(0),
                    K=k, D=1, HAS_BASE=True, BLOCK_N=bn, BLOCK_I=bi, num_warps=w))
            for name, ms in res.items():
                gbs = mb * 2**20 / (ms * 1e-3) / 1e9
                rows.append(dict(kind="basis", G=G, dtype=str(dtype)[6:], rows=R, what=name, ms=ms,
                                 GB_s=gbs if "reduce" not in name else float("nan"), chunk_mib=mb))
                print(f"G={G:3d} {str(dtype)[6:]:8s} R={R:5d} {name:26s} {ms*1e3:8.1f} us  {gbs:7.0f} GB/s",
                      flush=True)
    # forward GEMM rate vs rows per chunk (out = 512)
    for G, prec in ((5, "bf16"), (20, "tf32"), (100, "tf32")):
        K = IN * (G + k + 1)
        dtype = torch.bfloat16 if prec == "bf16" else torch.float32
        torch.backends.cuda.matmul.allow_tf32 = prec == "tf32"
        W = torch.randn(512, K, device=dev, dtype=dtype)
        for R in (512, 1024, 2048, 4096, 8192):
            Ab = torch.randn(R, K, device=dev, dtype=dtype)
            y = torch.empty(R, 512, device=dev, dtype=dtype)
            ms = bench(lambda: torch.mm(Ab, W.t(), out=y))
            tf = 2 * R * K * 512 / (ms * 1e-3) / 1e12
            rows.append(dict(kind="fwd-gemm", G=G, dtype=prec, rows=R, what="mm [R,K]x[K,512]", ms=ms, GB_s=tf,
                             chunk_mib=Ab.numel() * Ab.element_size() / 2**20))
            print(f"gemm G={G} {prec} R={R:5d} K={K}: {ms*1e3:8.1f} us  {tf:6.0f} TF/s", flush=True)
            del Ab
    sys.path.insert(0, str(Path(__file__).parent))
    from gpu_layer_bench import write_csv

    write_csv(rows, f"{out}/probe.csv")


if __name__ == "__main__":
    main(sys.argv[1])
