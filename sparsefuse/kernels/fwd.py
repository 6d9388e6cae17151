"""fwd_d:  y[n,o] = sum_i s[n,i] sum_t B^(d)_t(x[n,i]) C[o,i,t]   (s defaults to 1).

Two strategies, same result, neither writes an N*in*(G+k) tensor:
  streamed -- y = A @ W^T with the basis A written chunk by chunk (:mod:`.writer`) and
              contracted by cuBLAS (tensor cores, work grows with G): row chunks, or
              blocks of features over all rows accumulated when the chunks get thin;
  gather   -- per (row, feature) only the k+1 active coefficient rows C[:, i, j-k..j] are
              gathered (CUDA cores; work independent of G).
With ``base`` (the fused layer) slot 0 of every feature is the SiLU base branch.
"""

import torch
import triton
import triton.language as tl

from . import _runtime as rt
from . import dispatch
from ._basis import local_basis
from .launch import launch
from .layout import budget_bytes, chunk_rows, exact, flat_buffer, fwd_block, pack, rows_of
from .writer import write_basis


@triton.jit
def _fwd_gather_kernel(X, S, T, GEO, C, Y, N, IN, OUT, M, NCELL,
                       sxn, sxi, ssn, ssi, stk, sgeo, sco, sci, sct, syn, syo,
                       K: tl.constexpr, D: tl.constexpr, LOG2: tl.constexpr, HAS_S: tl.constexpr,
                       HAS_BASE: tl.constexpr, F64: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_O: tl.constexpr):
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
        t0 = tl.load(GEO + i)
        if HAS_S:
            sc = tl.load(S + n64 * ssn + i64 * ssi, mask=mask_n, other=0.0).to(t0.dtype)
        else:
            sc = tl.zeros((BLOCK_N,), dtype=t0.dtype) + 1.0
        j, live, c0, c1, c2, c3, c4, c5, c6, c7 = local_basis(
            xv, T + i64 * stk, t0, tl.load(GEO + sgeo + i), tl.load(GEO + 2 * sgeo + i),
            tl.load(GEO + 3 * sgeo + i) > 0.5, sc, NCELL, K, D, LOG2)
        row = C + i64 * sci + o64[None, :] * sco
        if HAS_BASE:
            xf = xv.to(acc.dtype)
            wb = tl.load(row, mask=mask_o[None, :], other=0.0)
            acc += (xf * tl.sigmoid(xf))[:, None] * wb.to(acc.dtype)
            row += sct
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


def gathered(x, grid, geo, C, strides, s, k, d, M, base, y, cfg):
    """y = fwd_d by the gather kernel; ``C`` holds (base slot +) M slots per feature with
    element (o, i, slot) at ``o*strides[0] + i*strides[1] + slot*strides[2]``."""
    N, IN = x.shape
    OUT = y.shape[1]
    ss = s if s is not None else x
    BLOCK_N, BLOCK_O = cfg["BLOCK_N"], min(cfg["BLOCK_O"], max(16, rt.next_pow2(OUT)))
    NCELL = grid.shape[1] - 1
    launch(_fwd_gather_kernel, (rt.cdiv(N, BLOCK_N), rt.cdiv(OUT, BLOCK_O)),
        x, ss, grid, geo, C, y, N, IN, OUT, M, NCELL,
        x.stride(0), x.stride(1), ss.stride(0), ss.stride(1), grid.stride(0), geo.stride(0),
        *strides, y.stride(0), y.stride(1),
        K=k, D=d, LOG2=rt.log2_ceil(NCELL), HAS_S=s is not None, HAS_BASE=base,
        F64=C.dtype == torch.float64 or x.dtype == torch.float64,
        BLOCK_N=BLOCK_N, BLOCK_O=BLOCK_O, **dispatch.launch_options(cfg))
    return y


def streamed(x, grid, geo, W, s, k, d, M, base, y, cfg, fb):
    """y = A @ W^T, W [out, in*MB] packed with block width ``fb`` (:func:`.layout.fwd_block`).
    Returns A when it was built in one piece (else None)."""
    N, IN = x.shape
    MB = M + int(base)
    K = IN * MB
    el = W.element_size()
    if fb >= IN:
        rows = chunk_rows(K * el, N, budget_bytes(cfg))
        buf = flat_buffer(rows, K, W.dtype, x.device)
        for r0 in range(0, N, rows):
            r1 = min(N, r0 + rows)
            A = write_basis(rows_of(x, r0, r1), rows_of(s, r0, r1), grid, geo, rows_of(buf, 0, r1 - r0),
                            k, d, M, 0, cfg, base)
            torch.mm(A, W.t(), out=rows_of(y, r0, r1))
        return A if rows == N else None
    buf = flat_buffer(N, fb * MB, W.dtype, x.device)
    acc = y if exact(y.dtype) else torch.zeros(y.shape, dtype=torch.float32, device=x.device)
    for f0 in range(0, IN, fb):
        f1 = min(IN, f0 + fb)
        A = write_basis(x, s, grid, geo, buf[:, : (f1 - f0) * MB], k, d, M, f0, cfg, base)
        part = W[:, f0 * MB:f1 * MB].t()
        if acc is y and f0 == 0:
            torch.mm(A, part, out=acc)
        elif acc is y:
            acc.addmm_(A, part)
        else:  # 16-bit GEMM per block, sums in float32
            acc += torch.mm(A, part)
    if acc is not y:
        y.copy_(acc)
    return None


def fwd(x, grid, geo, C, s, k: int, d: int, strategy: str = None) -> torch.Tensor:
    """Launch fwd_d on 2-D ``x`` [N, in] (``geo``: :func:`.geometry.geometry` of ``grid``);
    returns y [N, out] in C's dtype."""
    N, IN = x.shape
    OUT, _, M = C.shape
    if d > k or N == 0 or IN == 0 or OUT == 0:
        return torch.zeros((N, OUT), dtype=C.dtype, device=x.device)
    y = rt.alloc((N, OUT), C.dtype, x.device)
    strategy, cfg = dispatch.plan("fwd", M, C.dtype, rt.dot_precision(C.dtype), strategy, x.device, OUT)
    with rt.device_guard(x):
        if strategy == "streamed":
            # C packed once into the forward's layout (out*in*M elements, next to the N*in*M basis)
            fb = fwd_block(N, IN, M, OUT, C.element_size(), cfg)
            streamed(x, grid, geo, pack(C, None, None, C.dtype, fb), s, k, d, M, False, y, cfg, fb)
            return y
        # out-innermost coefficients: the row gathers coalesce (in the [out, in, M] layout
        # every element of a gathered row is its own sector).
        C = o_major(C)
        return gathered(x, grid, geo, C, C.stride(), s, k, d, M, False, y, cfg)
