"""The streamed strategy's basis writer: the basis of one chunk of rows, for cuBLAS to contract.

The dense formulation ``y = A @ W^T`` needs ``A[n, (i, t)] = s[n,i] B^(d)_t(x[n,i])``.
Generating A inside a GEMM kernel kept the v1 dense tile at 5-15% of tensor-core peak;
instead this memory-bound kernel writes A for a chunk of rows and ``torch.mm`` consumes it
(:mod:`.fwd`, :mod:`.dw`, :mod:`.layer`), so the heavy part runs at cuBLAS speed and memory
stays O(chunk).  Probe that chose the design (H200, bf16, forward only): 0.12 / 0.31 / 1.31 ms
at N=8192, 512->512, G=5 / 20 / 100 against 0.20 / 0.56 / 2.30 ms for the best peer.
"""

import triton
import triton.language as tl

from . import _runtime as rt
from ._basis import load_block, local_basis
from .launch import launch


@triton.jit
def _basis_block_kernel(X, S, T, GEO, A, R, F, M, NCELL, F0,
                        sxn, sxi, ssn, ssi, stk, sgeo, san, sac,
                        K: tl.constexpr, D: tl.constexpr, LOG2: tl.constexpr, HAS_S: tl.constexpr,
                        HAS_BASE: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_I: tl.constexpr):
    """A[n, (HAS_BASE + t)*sac + i] = s[n,F0+i] B^(d)_t(x[n,F0+i]) for n < R, i < F, t < M;
    with HAS_BASE also A[n, i] = silu(x[n,F0+i]) (the layer's base branch).

    Basis-major within the block (column ``t*sac + i``): the k+1 active values are computed
    once per (n, i), then every store is a [BLOCK_N, BLOCK_I] tile contiguous over
    features, which vectorises.  (The feature-major layout, column ``i*M + t``, wrote runs
    of M elements at an odd offset: 0.26-0.78 TB/s against 1.9-3.0 TB/s for this one on
    the H200, results/gpu/basis_probe.csv.)"""
    n64, i64, mask_n, m2, xv, trow, t0, tend, ih, uni = load_block(
        X, T, GEO, R, F, F0, sxn, sxi, stk, sgeo, BLOCK_N, BLOCK_I)
    if HAS_S:
        sc = tl.load(S + n64[:, None] * ssn + (F0 + i64)[None, :] * ssi, mask=m2, other=0.0).to(t0.dtype)
    else:
        sc = tl.zeros((BLOCK_N, BLOCK_I), dtype=t0.dtype) + 1.0
    j, live, c0, c1, c2, c3, c4, c5, c6, c7 = local_basis(xv, trow, t0, tend, ih, uni, sc, NCELL, K, D, LOG2)
    row = A + n64[:, None] * san + i64[None, :]
    if HAS_BASE:
        xf = xv.to(t0.dtype)
        tl.store(row, (xf * tl.sigmoid(xf)).to(A.dtype.element_ty), mask=m2)
        row += sac
    first = j - K  # the basis held in slot 0
    for t in range(0, M):
        slot = t - first
        v = tl.zeros_like(c0)
        d0, d1, d2, d3, d4, d5, d6, d7 = c0, c1, c2, c3, c4, c5, c6, c7
        for q in tl.static_range(K + 1):
            v = tl.where(slot == q, d0, v)
            d0, d1, d2, d3, d4, d5, d6 = d1, d2, d3, d4, d5, d6, d7
        tl.store(row + t * sac, v.to(A.dtype.element_ty), mask=m2)


def write_basis(x, s, grid, geo, out, k, d, M, f0, cfg, base=False):
    """Fill ``out`` [R, F*MB] (basis-major: column ``(base + t)*F + i``) with the (scaled)
    basis of x[:, f0:f0+F] (x, s already row-sliced), slot 0 silu(x) with ``base``."""
    MB = M + int(base)
    R, FM = out.shape
    F = FM // MB
    if R == 0 or F == 0:
        return out
    ss = s if s is not None else x
    BLOCK_N, BLOCK_I = cfg["BASIS_BLOCK_N"], cfg["BASIS_BLOCK_I"]
    NCELL = grid.shape[1] - 1
    launch(_basis_block_kernel, (rt.cdiv(R, BLOCK_N), rt.cdiv(F, BLOCK_I)),
        x, ss, grid, geo, out, R, F, M, NCELL, f0,
        x.stride(0), x.stride(1), ss.stride(0), ss.stride(1), grid.stride(0), geo.stride(0), out.stride(0), F,
        K=k, D=d, LOG2=rt.log2_ceil(NCELL), HAS_S=s is not None, HAS_BASE=base, BLOCK_N=BLOCK_N,
        BLOCK_I=BLOCK_I, num_warps=cfg["basis_warps"])
    return out
