"""fwd_d:  y[n,o] = sum_i s[n,i] sum_t B^(d)_t(x[n,i]) C[o,i,t]   (s defaults to 1).

Two strategies, same result:
  dense  -- y = A @ C_flat^T with the basis A written chunk by chunk and contracted by
            cuBLAS (:mod:`.streamed`; tensor cores, work grows with G);
  sparse -- per (row, feature) only the k+1 active coefficient rows C[:, i, j-k..j]
            are gathered (CUDA cores; work independent of G).
Neither writes an N*in*(G+k) tensor.
"""

import torch
import triton
import triton.language as tl

from . import _runtime as rt
from . import dispatch, streamed
from ._basis import local_basis


@triton.jit
def _fwd_sparse_kernel(X, S, T0, IH, C, Y, N, IN, OUT, M, NCELL,
                       sxn, sxi, ssn, ssi, sco, sci, sct, syn, syo,
                       K: tl.constexpr, D: tl.constexpr, HAS_S: tl.constexpr,
                       F64: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_O: tl.constexpr):
    pid_n = tl.program_id(0)
    pid_o = tl.program_id(1)
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    offs_o = pid_o * BLOCK_O + tl.arange(0, BLOCK_O)
    mask_n = offs_n < N
    mask_o = offs_o < OUT
    n64 = offs_n.to(tl.int64)
    o64 = offs_o.to(tl.int64)
    if F64:
        acc = tl.zeros((BLOCK_N, BLOCK_O), dtype=tl.float64)
    else:
        acc = tl.zeros((BLOCK_N, BLOCK_O), dtype=tl.float32)
    for i in range(0, IN):
        i64 = tl.cast(i, tl.int64)
        xv = tl.load(X + n64 * sxn + i64 * sxi, mask=mask_n, other=0.0)
        t0 = tl.load(T0 + i)
        ih = tl.load(IH + i)
        if HAS_S:
            sc = tl.load(S + n64 * ssn + i64 * ssi, mask=mask_n, other=0.0).to(t0.dtype)
        else:
            sc = tl.zeros((BLOCK_N,), dtype=t0.dtype) + 1.0
        j, live, c0, c1, c2, c3, c4, c5, c6, c7 = local_basis(xv, t0, ih, sc, NCELL, K, D)
        row = C + i64 * sci + o64[None, :] * sco
        for l in tl.static_range(K + 1):
            t = j - K + l
            mt = mask_n & (t >= 0) & (t < M)
            w = tl.load(row + t.to(tl.int64)[:, None] * sct,
                        mask=mt[:, None] & mask_o[None, :], other=0.0)
            acc += c0[:, None].to(acc.dtype) * w.to(acc.dtype)
            c0, c1, c2, c3, c4, c5, c6 = c1, c2, c3, c4, c5, c6, c7
    tl.store(Y + n64[:, None] * syn + o64[None, :] * syo, acc.to(Y.dtype.element_ty),
             mask=mask_n[:, None] & mask_o[None, :])


def o_major(C: torch.Tensor) -> torch.Tensor:
    """Same [out, in, M] tensor with `out` innermost, so gathered rows are contiguous."""
    if C.stride(0) == 1:
        return C
    return C.permute(1, 2, 0).contiguous().permute(2, 0, 1)


def fwd(x, t0, ih, C, s, k: int, d: int, strategy: str = None) -> torch.Tensor:
    """Launch fwd_d on 2-D ``x`` [N, in]; returns y [N, out] in C's dtype."""
    N, IN = x.shape
    OUT, _, M = C.shape
    if d > k or N == 0 or IN == 0 or OUT == 0:
        return torch.zeros((N, OUT), dtype=C.dtype, device=x.device)
    y = rt.alloc((N, OUT), C.dtype, x.device)
    prec = rt.dot_precision(C.dtype)
    strategy, cfg = dispatch.plan("fwd", M, C.dtype, prec, strategy, x.device, OUT)
    with rt.device_guard(x):
        if strategy == "dense":
            return streamed.fwd(x, t0, ih, C, s, k, d, y, cfg)
        ss = s if s is not None else x
        BLOCK_N, BLOCK_O = cfg["BLOCK_N"], min(cfg["BLOCK_O"], max(16, rt.next_pow2(OUT)))
        # out-innermost coefficients: the row gathers coalesce (in the [out, in, M] layout
        # every element of a gathered row is its own sector).
        C = o_major(C)
        grid = (rt.cdiv(N, BLOCK_N), rt.cdiv(OUT, BLOCK_O))
        _fwd_sparse_kernel[grid](
            x, ss, t0, ih, C, y, N, IN, OUT, M, M + k,
            x.stride(0), x.stride(1), ss.stride(0), ss.stride(1),
            C.stride(0), C.stride(1), C.stride(2), y.stride(0), y.stride(1),
            K=k, D=d, HAS_S=s is not None, F64=C.dtype == torch.float64,
            BLOCK_N=BLOCK_N, BLOCK_O=BLOCK_O, **dispatch.launch_options(cfg))
    return y
