"""dw_d:  W[o,i,t] = sum_n g[n,o] s[n,i] B^(d)_t(x[n,i])   (s defaults to 1).

The coefficient gradient of fwd_d.  Strategies (both deterministic, no atomics):
  dense  -- W_flat = g^T @ A by cuBLAS, the basis A written chunk by chunk
            (:mod:`.streamed`; tensor cores, work grows with G);
  sparse -- rows are sorted per feature (torch.argsort of x[:, i]); a block of
            sorted rows then touches only a short window of cells, so its
            contribution is g^T @ one-hot-window [rows, WIN] (tensor cores) added
            into W[:, i, window].  Work per block is O(WIN), independent of G except
            for blocks whose rows spread over many cells (one extra window step per
            WIN - k cells).  Each program owns W[out-block, i, :] of its row split,
            so the read-add-write needs no atomics; a barrier orders the steps.
Row splits (for parallelism at small out*in) write separate partial buffers that
are summed in a fixed order.
"""

import torch
import triton
import triton.language as tl

from . import _runtime as rt
from . import dispatch, streamed
from ._basis import local_basis


@triton.jit
def _dw_sorted_kernel(X, S, T0, IH, G, PERM, W, N, IN, OUT, M, NCELL, CHUNK,
                      sxn, sxi, ssn, ssi, sgn, sgo, sws, swo, swi, swt,
                      K: tl.constexpr, D: tl.constexpr, HAS_S: tl.constexpr,
                      F64: tl.constexpr, UPCAST: tl.constexpr, PREC: tl.constexpr,
                      BLOCK_N: tl.constexpr, BLOCK_O: tl.constexpr, WIN: tl.constexpr):
    pid_o = tl.program_id(0)
    pid_i = tl.program_id(1)
    pid_s = tl.program_id(2)
    offs_o = pid_o * BLOCK_O + tl.arange(0, BLOCK_O)
    mask_o = offs_o < OUT
    o64 = offs_o.to(tl.int64)
    i64 = tl.cast(pid_i, tl.int64)
    t0 = tl.load(T0 + pid_i)
    ih = tl.load(IH + pid_i)
    wl = tl.arange(0, WIN)
    wbase = W + pid_s.to(tl.int64) * sws + o64[:, None] * swo + i64 * swi
    n_start = pid_s * CHUNK
    n_end = tl.minimum(n_start + CHUNK, N)
    for n0 in range(n_start, n_end, BLOCK_N):
        r = n0 + tl.arange(0, BLOCK_N)
        mr = r < n_end
        rows = tl.load(PERM + i64 * N + r, mask=mr, other=0).to(tl.int64)
        xv = tl.load(X + rows * sxn + i64 * sxi, mask=mr, other=0.0)
        if HAS_S:
            sc = tl.load(S + rows * ssn + i64 * ssi, mask=mr, other=0.0).to(t0.dtype)
        else:
            sc = tl.zeros((BLOCK_N,), dtype=t0.dtype) + 1.0
        j, live, c0, c1, c2, c3, c4, c5, c6, c7 = local_basis(xv, t0, ih, sc, NCELL, K, D)
        live = live & mr
        jmin = tl.min(tl.where(live, j, 1 << 30), axis=0)
        jmax = tl.max(tl.where(live, j, -1), axis=0)
        gt = tl.load(G + rows[None, :] * sgn + o64[:, None] * sgo,
                     mask=mask_o[:, None] & mr[None, :], other=0.0)
        if UPCAST:
            gt = gt.to(tl.float32)
        # Empty when no row of the block is live (jmin = 2^30 > jmax).
        for base in range(jmin - K, jmax + 1, WIN):
            wc = base + wl
            rel = wc[None, :] - (j[:, None] - K)
            tile = tl.zeros((BLOCK_N, WIN), dtype=c0.dtype)
            v0, v1, v2, v3, v4, v5, v6, v7 = c0, c1, c2, c3, c4, c5, c6, c7
            for l in tl.static_range(K + 1):
                tile = tl.where((rel == l) & live[:, None], v0[:, None], tile)
                v0, v1, v2, v3, v4, v5, v6 = v1, v2, v3, v4, v5, v6, v7
            part = tl.dot(gt, tile.to(gt.dtype), input_precision=PREC)
            mw = mask_o[:, None] & ((wc >= 0) & (wc < M))[None, :]
            ptr = wbase + wc.to(tl.int64)[None, :] * swt
            old = tl.load(ptr, mask=mw, other=0.0)
            tl.store(ptr, old + part.to(old.dtype), mask=mw)
            # Next window step may overlap these cells in other threads' registers.
            tl.debug_barrier()


def _splits(device, base_programs: int, N: int, block_n: int, split) -> int:
    if split is not None:
        return max(1, min(int(split), rt.cdiv(N, block_n)))
    if device.type != "cuda":
        return 1
    want = rt.cdiv(4 * rt.num_sms(device), max(1, base_programs))
    return max(1, min(want, rt.cdiv(N, block_n * 8)))


def _o_innermost(buf: torch.Tensor) -> torch.Tensor:
    """View a [S, in, M, out] buffer as [S, out, in, M]: a program's W tile then spans
    contiguous ``out`` addresses, so its stores (and read-add-writes) coalesce."""
    return buf.permute(0, 3, 1, 2)


def dw(x, t0, ih, g, s, k: int, d: int, num_bases: int, strategy: str = None,
       split=None) -> torch.Tensor:
    """Launch dw_d on 2-D ``x`` [N, in], ``g`` [N, out]; returns W [out, in, num_bases] in g's dtype."""
    N, IN = x.shape
    OUT = g.shape[1]
    M = num_bases
    if d > k or N == 0 or IN == 0 or OUT == 0:
        return torch.zeros((OUT, IN, M), dtype=g.dtype, device=x.device)
    prec = rt.dot_precision(g.dtype)
    strategy, cfg = dispatch.plan("dw", M, g.dtype, prec, strategy, x.device, OUT)
    with rt.device_guard(x):
        if strategy == "dense":
            return streamed.dw(x, t0, ih, g, s, k, d, M, rt.alloc((OUT, IN, M), g.dtype, x.device), cfg)
        F64 = g.dtype == torch.float64 or x.dtype == torch.float64
        acc_dtype = torch.float64 if F64 else torch.float32
        ss = s if s is not None else x
        BLOCK_N, BLOCK_O = cfg["BLOCK_N"], min(cfg["BLOCK_O"], max(16, rt.next_pow2(OUT)))
        base = rt.cdiv(OUT, BLOCK_O) * IN
        S = _splits(x.device, base, N, BLOCK_N, split)
        chunk = rt.cdiv(rt.cdiv(N, S), BLOCK_N) * BLOCK_N
        S = rt.cdiv(N, chunk)
        perm_dtype = torch.int32 if N < 2**31 else torch.int64
        perm = torch.argsort(x.t(), dim=1, stable=True).to(perm_dtype).contiguous()
        out = _o_innermost(torch.zeros((S, IN, M, OUT), dtype=acc_dtype, device=x.device))
        grid = (rt.cdiv(OUT, BLOCK_O), IN, S)
        _dw_sorted_kernel[grid](
            x, ss, t0, ih, g, perm, out, N, IN, OUT, M, M + k, chunk,
            x.stride(0), x.stride(1), ss.stride(0), ss.stride(1), g.stride(0), g.stride(1),
            out.stride(0), out.stride(1), out.stride(2), out.stride(3),
            K=k, D=d, HAS_S=s is not None, F64=F64, UPCAST=rt.upcast_dots(g.dtype), PREC=prec,
            BLOCK_N=BLOCK_N, BLOCK_O=BLOCK_O, WIN=max(cfg["WINDOW"], rt.next_pow2(k + 1)),
            **dispatch.launch_options(cfg))
    w = out[0] if out.shape[0] == 1 else out.sum(0)
    return w.to(g.dtype).contiguous()  # the op (and its fake) promise a contiguous [out, in, M]
