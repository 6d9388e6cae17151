"""dw_d:  W[o,i,t] = sum_n g[n,o] s[n,i] B^(d)_t(x[n,i])   (s defaults to 1).

The coefficient gradient of fwd_d.  Strategies (both deterministic, no atomics):
  streamed -- W_flat = g^T @ A by cuBLAS, the basis A written chunk by chunk
              (:mod:`.writer`; tensor cores, work grows with G): row chunks accumulated
              when dW is small next to a chunk, else blocks of features over all rows;
  gather   -- rows are sorted per feature (torch.argsort of x[:, i]); a block of
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
from . import dispatch
from ._basis import local_basis
from .launch import launch
from .layout import budget_bytes, chunk_rows, exact, feature_block, flat_buffer, unpack
from .writer import write_basis


@triton.jit
def _dw_sorted_kernel(X, S, T, GEO, G, PERM, W, N, IN, OUT, M, NCELL, CHUNK,
                      sxn, sxi, ssn, ssi, stk, sgeo, sgn, sgo, sws, swo, swi, swt,
                      K: tl.constexpr, D: tl.constexpr, LOG2: tl.constexpr, HAS_S: tl.constexpr,
                      F64: tl.constexpr, UPCAST: tl.constexpr, PREC: tl.constexpr,
                      BLOCK_N: tl.constexpr, BLOCK_O: tl.constexpr, WIN: tl.constexpr):
    pid_o = tl.program_id(0)
    pid_i = tl.program_id(1)
    pid_s = tl.program_id(2)
    offs_o = pid_o * BLOCK_O + tl.arange(0, BLOCK_O)
    mask_o = offs_o < OUT
    o64 = offs_o.to(tl.int64)
    i64 = tl.cast(pid_i, tl.int64)
    trow = T + i64 * stk
    t0 = tl.load(GEO + pid_i)
    tend = tl.load(GEO + sgeo + pid_i)
    ih = tl.load(GEO + 2 * sgeo + pid_i)
    uni = tl.load(GEO + 3 * sgeo + pid_i) > 0.5
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
        j, live, c0, c1, c2, c3, c4, c5, c6, c7 = local_basis(xv, trow, t0, tend, ih, uni, sc, NCELL, K, D, LOG2)
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


def streamed(x, grid, geo, g, s, k, d, M, base, cfg, A=None):
    """(dW, fb): dW [out, in*MB] (g's dtype) = g^T @ A in the layout of block width fb.  Row
    chunks accumulated when dW is small next to a chunk (fb = in), else blocks of features
    over all rows (each block's GEMM writes its own columns).  ``A``: the whole basis from
    the forward (fb = in), when it kept it."""
    N, IN = x.shape
    MB = M + int(base)
    K = IN * MB
    OUT = g.shape[1]
    el = g.element_size()
    budget = budget_bytes(cfg)
    gt = g.t()
    wf = flat_buffer(OUT, K, g.dtype, x.device)
    if A is None and N * K * el <= budget:  # one chunk
        A = write_basis(x, s, grid, geo, flat_buffer(N, K, g.dtype, x.device), k, d, M, 0, cfg, base)
    if A is not None:
        torch.mm(gt, A, out=wf)
        return wf, IN
    feats = feature_block(N, MB, el, budget)
    if feats == 0 or feats >= IN or OUT * K * 4 * cfg["dw_accumulate_ratio"] <= budget:
        rows = chunk_rows(K * el, N, budget)
        buf = flat_buffer(rows, K, g.dtype, x.device)
        summed = exact(g.dtype)
        acc = wf if summed else torch.zeros((OUT, K), dtype=torch.float32, device=x.device)
        for r0 in range(0, N, rows):
            r1 = min(N, r0 + rows)
            A = write_basis(x[r0:r1], None if s is None else s[r0:r1], grid, geo, buf[: r1 - r0],
                            k, d, M, 0, cfg, base)
            if summed and r0 == 0:
                torch.mm(gt[:, r0:r1], A, out=acc)
            elif summed:
                acc.addmm_(gt[:, r0:r1], A)
            else:  # 16-bit GEMM per chunk, sums in float32
                acc += torch.mm(gt[:, r0:r1], A)
        if not summed:
            wf.copy_(acc)
        return wf, IN
    buf = flat_buffer(N, feats * MB, g.dtype, x.device)
    for f0 in range(0, IN, feats):
        f1 = min(IN, f0 + feats)
        A = write_basis(x, s, grid, geo, buf[:, : (f1 - f0) * MB], k, d, M, f0, cfg, base)
        torch.mm(gt, A, out=wf[:, f0 * MB:f1 * MB])
    return wf, feats


def gathered(x, grid, geo, g, s, k, d, M, cfg, split=None):
    """W [out, in, M] (float32, float64 for float64) by the sorted-window kernel."""
    N, IN = x.shape
    OUT = g.shape[1]
    f64 = g.dtype == torch.float64 or x.dtype == torch.float64
    ss = s if s is not None else x
    BLOCK_N, BLOCK_O = cfg["BLOCK_N"], min(cfg["BLOCK_O"], max(16, rt.next_pow2(OUT)))
    S = _splits(x.device, rt.cdiv(OUT, BLOCK_O) * IN, N, BLOCK_N, split)
    chunk = rt.cdiv(rt.cdiv(N, S), BLOCK_N) * BLOCK_N
    S = rt.cdiv(N, chunk)
    perm_dtype = torch.int32 if N < 2**31 else torch.int64
    perm = torch.argsort(x.t(), dim=1, stable=True).to(perm_dtype).contiguous()
    out = _o_innermost(torch.zeros((S, IN, M, OUT), dtype=torch.float64 if f64 else torch.float32,
                                   device=x.device))
    NCELL = grid.shape[1] - 1
    launch(_dw_sorted_kernel, (rt.cdiv(OUT, BLOCK_O), IN, S),
        x, ss, grid, geo, g, perm, out, N, IN, OUT, M, NCELL, chunk,
        x.stride(0), x.stride(1), ss.stride(0), ss.stride(1), grid.stride(0), geo.stride(0),
        g.stride(0), g.stride(1), out.stride(0), out.stride(1), out.stride(2), out.stride(3),
        K=k, D=d, LOG2=rt.log2_ceil(NCELL), HAS_S=s is not None, F64=f64, UPCAST=rt.upcast_dots(g.dtype),
        PREC=rt.dot_precision(g.dtype), BLOCK_N=BLOCK_N, BLOCK_O=BLOCK_O,
        WIN=max(cfg["WINDOW"], rt.next_pow2(k + 1)), **dispatch.launch_options(cfg))
    return out[0] if out.shape[0] == 1 else out.sum(0)


def dw(x, grid, geo, g, s, k: int, d: int, num_bases: int, strategy: str = None,
       split=None) -> torch.Tensor:
    """Launch dw_d on 2-D ``x`` [N, in], ``g`` [N, out]; returns W [out, in, num_bases] in g's dtype."""
    N, IN = x.shape
    OUT = g.shape[1]
    M = num_bases
    if d > k or N == 0 or IN == 0 or OUT == 0:
        return torch.zeros((OUT, IN, M), dtype=g.dtype, device=x.device)
    strategy, cfg = dispatch.plan("dw", M, g.dtype, rt.dot_precision(g.dtype), strategy, x.device, OUT)
    with rt.device_guard(x):
        if strategy == "streamed":
            wf, fb = streamed(x, grid, geo, g, s, k, d, M, False, cfg)
            return unpack(wf, fb, M, gsw=rt.alloc((OUT, IN, M), g.dtype, x.device))[1]
        w = gathered(x, grid, geo, g, s, k, d, M, cfg, split)
    return w.to(g.dtype).contiguous()  # the op (and its fake) promise a contiguous [out, in, M]
