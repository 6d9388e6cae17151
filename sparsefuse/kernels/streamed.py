"""The streamed-basis strategy: Triton writes the basis of a chunk, cuBLAS contracts it.

The dense formulation of a KAN layer is one GEMM over K = in * (G + k):
``y = A @ W^T`` with ``A[n, (i, t)] = s[n,i] B^(d)_t(x[n,i])`` and W the coefficients in
the same column order.  Generating A on chip inside a GEMM kernel is what kept the v1
dense tile at 5-15% of tensor-core peak; here a memory-bound kernel writes A for a chunk
of rows and ``torch.mm`` consumes it, so the heavy part runs at cuBLAS speed and memory
stays O(chunk), never O(N * in * (G + k)):

  fwd_d:  y[rows]  = A[rows] @ W^T            (row chunks, or feature blocks accumulated)
  dx_d:   P[rows]  = g[rows] @ W_fm;  u[n,i] = sum_t P[n,(i,t)] B^(d)_t(x[n,i])
          (W_fm feature-major, so that the k+1 active t are adjacent and only they are read)
  dw_d:   dW       = g^T @ A, accumulated over row chunks when dW is small, else
          computed per block of features from all rows (no read-modify-write of dW)

A and the forward's W are basis-major (column ``t*in + i``): the writer then stores
contiguous runs over features (see ``_basis_block_kernel`` and the layout notes below);
one small kernel packs the parameters into that order, another unpacks dW.

Probe that chose the design (H200, bf16, forward only, before this module was written):
0.12 / 0.31 / 1.31 ms at N=8192, 512->512, G=5 / 20 / 100 against 0.20 / 0.56 / 2.30 ms
for the best peer, i.e. 50-80% of cuBLAS on the same K.  The layer-level side-by-side
numbers are in results/gpu/README.md.
"""

import contextlib

import torch
import triton
import triton.language as tl

from . import _runtime as rt
from ._basis import load_block, local_basis

# Tests shrink the chunk budget of the config in force (kernels/configs/*.json) with chunk_budget().
_budget_override = {"bytes": None}


@contextlib.contextmanager
def chunk_budget(nbytes: int):
    """Use ``nbytes`` as the basis-chunk budget (tests force several chunks with it)."""
    if not isinstance(nbytes, int) or nbytes < 1:
        raise ValueError(f"nbytes: expected a positive int, got {nbytes!r}")
    old = _budget_override["bytes"]
    _budget_override["bytes"] = nbytes
    try:
        yield
    finally:
        _budget_override["bytes"] = old


@triton.jit
def _basis_block_kernel(X, S, T0, IH, A, R, F, M, NCELL, F0,
                        sxn, sxi, ssn, ssi, san, sac,
                        K: tl.constexpr, D: tl.constexpr, HAS_S: tl.constexpr, HAS_BASE: tl.constexpr,
                        BLOCK_N: tl.constexpr, BLOCK_I: tl.constexpr):
    """A[n, (HAS_BASE + t)*sac + i] = s[n,F0+i] B^(d)_t(x[n,F0+i]) for n < R, i < F, t < M;
    with HAS_BASE also A[n, i] = silu(x[n,F0+i]) (the layer's base branch).

    Basis-major within the block (column ``t*sac + i``): the k+1 active values are computed
    once per (n, i), then every store is a [BLOCK_N, BLOCK_I] tile contiguous over
    features, which vectorises.  (The feature-major layout, column ``i*M + t``, wrote runs
    of M elements at an odd offset: 0.26-0.78 TB/s against 1.9-3.0 TB/s for this one on
    the H200, gpu_basis_probe.py, results/gpu/basis_probe.csv.)"""
    n64, i64, mask_n, m2, xv, t0, ih = load_block(X, T0, IH, R, F, F0, sxn, sxi, BLOCK_N, BLOCK_I)
    if HAS_S:
        sc = tl.load(S + n64[:, None] * ssn + (F0 + i64)[None, :] * ssi, mask=m2, other=0.0).to(t0.dtype)
    else:
        sc = tl.zeros((BLOCK_N, BLOCK_I), dtype=t0.dtype) + 1.0
    j, live, c0, c1, c2, c3, c4, c5, c6, c7 = local_basis(xv, t0[None, :], ih[None, :], sc, NCELL, K, D)
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


@triton.jit
def _active_reduce_kernel(X, T0, IH, P, U, R, IN, M, MB, NCELL,
                          sxn, sxi, spn, sun, sui,
                          K: tl.constexpr, D: tl.constexpr, F64: tl.constexpr, HAS_BASE: tl.constexpr,
                          BLOCK_N: tl.constexpr, BLOCK_I: tl.constexpr):
    """u[n,i] = sum_l B^(d)_{j-K+l}(x[n,i]) P[n, i*MB + HAS_BASE + j-K+l] (only the k+1 active
    columns are read) + with HAS_BASE the base term P[n, i*MB] silu'(x[n,i])."""
    n64, i64, mask_n, m2, xv, t0, ih = load_block(X, T0, IH, R, IN, 0, sxn, sxi, BLOCK_N, BLOCK_I)
    one = tl.zeros((BLOCK_N, BLOCK_I), dtype=t0.dtype) + 1.0
    j, live, c0, c1, c2, c3, c4, c5, c6, c7 = local_basis(xv, t0[None, :], ih[None, :], one, NCELL, K, D)
    if F64:
        acc = tl.zeros((BLOCK_N, BLOCK_I), dtype=tl.float64)
    else:
        acc = tl.zeros((BLOCK_N, BLOCK_I), dtype=tl.float32)
    base = P + n64[:, None] * spn + (i64 * MB)[None, :]
    if HAS_BASE:
        xf = xv.to(acc.dtype)
        sg = tl.sigmoid(xf)
        acc += tl.load(base, mask=m2, other=0.0).to(acc.dtype) * (sg * (1.0 + xf * (1.0 - sg)))
        base = base + 1
    for l in tl.static_range(K + 1):
        t = j - K + l
        mt = m2 & (t >= 0) & (t < M)
        p = tl.load(base + t, mask=mt, other=0.0)
        acc += c0.to(acc.dtype) * p.to(acc.dtype)
        c0, c1, c2, c3, c4, c5, c6 = c1, c2, c3, c4, c5, c6, c7
    tl.store(U + n64[:, None] * sun + i64[None, :] * sui, acc.to(U.dtype.element_ty), mask=m2)


@triton.jit
def _blocked_cols(i64, c, IN, MB, FB):
    """Columns of (feature i, slot c) in the blocked basis-major layout: features in blocks
    of FB, block b holding its MB slots one after the other, each a run over the block."""
    start = (i64 // FB) * FB
    width = tl.minimum(IN - start, FB)
    return (start * MB + (i64 - start))[:, None] + c[None, :].to(tl.int64) * width[:, None]


@triton.jit
def _pack_kernel(BW, SW, SC, W, W2, IN, M, MB, FB, FB2, sbo, sbi, swo, swi, swt, sco, sci, swr, sw2r,
                 HAS_BASE: tl.constexpr, HAS_SC: tl.constexpr, HAS_W2: tl.constexpr,
                 BLOCK_I: tl.constexpr, TP: tl.constexpr):
    """W[o, col(i, HAS_BASE + t)] = sw[o,i,t] * sc[o,i];  with HAS_BASE W[o, col(i, 0)] = bw[o,i];
    the same values into W2 in the layout of block width FB2 (FB2 = 1: feature-major)."""
    o = tl.program_id(0).to(tl.int64)
    i64 = (tl.program_id(1) * BLOCK_I + tl.arange(0, BLOCK_I)).to(tl.int64)
    mi = i64 < IN
    c = tl.arange(0, TP)
    t = c - HAS_BASE
    m2 = mi[:, None] & (c < MB)[None, :]
    # products in float32 (float64 for float64 weights), one rounding to W's dtype
    if SW.dtype.element_ty == tl.float64:
        wide = tl.float64
    else:
        wide = tl.float32
    v = tl.load(SW + o * swo + i64[:, None] * swi + t[None, :].to(tl.int64) * swt,
                mask=m2 & (t >= 0)[None, :], other=0.0).to(wide)
    if HAS_SC:
        v = v * tl.load(SC + o * sco + i64 * sci, mask=mi, other=0.0).to(wide)[:, None]
    if HAS_BASE:
        bw = tl.load(BW + o * sbo + i64 * sbi, mask=mi, other=0.0).to(wide)
        v = tl.where((c == 0)[None, :], bw[:, None], v)
    tl.store(W + o * swr + _blocked_cols(i64, c, IN, MB, FB), v.to(W.dtype.element_ty), mask=m2)
    if HAS_W2:
        tl.store(W2 + o * sw2r + _blocked_cols(i64, c, IN, MB, FB2), v.to(W2.dtype.element_ty), mask=m2)


@triton.jit
def _unpack_kernel(DW, SW, SC, GBW, GSW, GSC, IN, M, MB, FB, sdr, swo, swi, swt, sco, sci,
                   HAS_BASE: tl.constexpr, HAS_SC: tl.constexpr, BLOCK_I: tl.constexpr, TP: tl.constexpr):
    """From dW [out, in*MB] (blocked layout of width FB): d spline_weight [out, in, M] (= dW *
    scaler), with HAS_SC d scaler (= sum_t dW * spline_weight), with HAS_BASE d base_weight;
    computed in float32 (float64 for float64)."""
    o = tl.program_id(0).to(tl.int64)
    i64 = (tl.program_id(1) * BLOCK_I + tl.arange(0, BLOCK_I)).to(tl.int64)
    mi = i64 < IN
    t = tl.arange(0, TP)
    m2 = mi[:, None] & (t < M)[None, :]
    if DW.dtype.element_ty == tl.float64:
        wide = tl.float64
    else:
        wide = tl.float32
    cols = _blocked_cols(i64, t + HAS_BASE, IN, MB, FB)
    d = tl.load(DW + o * sdr + cols, mask=m2, other=0.0).to(wide)
    if HAS_BASE:
        start = (i64 // FB) * FB
        gb = tl.load(DW + o * sdr + start * MB + (i64 - start), mask=mi, other=0.0)
        tl.store(GBW + o * IN + i64, gb.to(GBW.dtype.element_ty), mask=mi)
    gsw_ptr = GSW + o * (IN * M) + i64[:, None] * M + t[None, :]
    if HAS_SC:
        sc = tl.load(SC + o * sco + i64 * sci, mask=mi, other=0.0).to(wide)
        sw = tl.load(SW + o * swo + i64[:, None] * swi + t[None, :] * swt, mask=m2, other=0.0).to(wide)
        tl.store(gsw_ptr, (d * sc[:, None]).to(GSW.dtype.element_ty), mask=m2)
        tl.store(GSC + o * IN + i64, tl.sum(d * sw, axis=1).to(GSC.dtype.element_ty), mask=mi)
    else:
        tl.store(gsw_ptr, d.to(GSW.dtype.element_ty), mask=m2)


# ---- layout ------------------------------------------------------------------------
# The dense formulation's K axis holds MB = M (+1 with the base column) slots per feature.
# Basis and weight use the *blocked basis-major* layout of a block width FB: features in
# blocks of FB, block b's columns starting at b*FB*MB, slot c of feature b*FB + i at
# c*width_b + i.  FB = in is plain basis-major (row chunks), FB < in gives each block of
# features its own contiguous columns (feature blocks), FB = 1 is feature-major, the
# parameter's own [out, in, M] order (what dX contracts: it reads k+1 adjacent columns).

def flat_buffer(rows: int, K: int, dtype, device):
    """[rows, K] view of a buffer whose row stride is a multiple of 8 elements, so that a
    cuBLAS operand never falls to its slow unaligned kernels."""
    if K % 8 == 0:
        return torch.empty((rows, K), dtype=dtype, device=device)
    return torch.empty((rows, -(-K // 8) * 8), dtype=dtype, device=device)[:, :K]


def pack(spline_weight, scaler, base_weight, dtype, fb: int, fb2: int = 0):
    """The GEMM weight [out, in*MB] in the layout of block width ``fb`` (and a second copy of
    block width ``fb2`` when given), from the parameters in their own layout, one launch:
    ``spline_weight * scaler`` (scaler optional), ``base_weight`` as slot 0 when given."""
    OUT, IN, M = spline_weight.shape
    base = base_weight is not None
    MB = M + int(base)
    W = flat_buffer(OUT, IN * MB, dtype, spline_weight.device)
    W2 = flat_buffer(OUT, IN * MB, dtype, spline_weight.device) if fb2 else W
    if W.numel() == 0:
        return (W, W2) if fb2 else W
    sc = scaler if scaler is not None else spline_weight
    bw = base_weight if base else spline_weight
    TP = rt.next_pow2(MB)
    BLOCK_I = max(1, 2048 // TP)
    _pack_kernel[(OUT, rt.cdiv(IN, BLOCK_I))](
        bw, spline_weight, sc, W, W2, IN, M, MB, fb, max(fb2, 1),
        bw.stride(0), bw.stride(1), spline_weight.stride(0), spline_weight.stride(1), spline_weight.stride(2),
        sc.stride(0), sc.stride(1), W.stride(0), W2.stride(0),
        HAS_BASE=base, HAS_SC=scaler is not None, HAS_W2=bool(fb2), BLOCK_I=BLOCK_I, TP=TP, num_warps=4)
    return (W, W2) if fb2 else W


def unpack(dW, fb: int, M: int, spline_weight=None, scaler=None, base_weight=None, gsw=None):
    """(d base_weight | None, d spline_weight, d scaler | None) from dW in the layout of block
    width ``fb`` (slot 0 the base branch when ``base_weight`` is given, as :func:`pack`
    wrote it); each gradient in its parameter's dtype; ``gsw`` is the output for
    d spline_weight when the caller has one."""
    OUT = dW.shape[0]
    base = base_weight is not None
    MB = M + int(base)
    IN = dW.shape[1] // MB
    if gsw is None:
        gsw = torch.empty((OUT, IN, M), dtype=spline_weight.dtype, device=dW.device)
    gbw = torch.empty((OUT, IN), dtype=base_weight.dtype, device=dW.device) if base else None
    gsc = torch.empty((OUT, IN), dtype=scaler.dtype, device=dW.device) if scaler is not None else None
    if gsw.numel() == 0:
        return gbw, gsw, gsc
    sw = spline_weight if spline_weight is not None else gsw
    sc = scaler if scaler is not None else sw
    TP = rt.next_pow2(M)
    BLOCK_I = max(1, 2048 // TP)
    _unpack_kernel[(OUT, rt.cdiv(IN, BLOCK_I))](
        dW, sw, sc, gbw if base else gsw, gsw, gsc if gsc is not None else gsw, IN, M, MB, fb, dW.stride(0),
        sw.stride(0), sw.stride(1), sw.stride(2), sc.stride(0), sc.stride(1),
        HAS_BASE=base, HAS_SC=scaler is not None, BLOCK_I=BLOCK_I, TP=TP, num_warps=4)
    return gbw, gsw, gsc


# ---- launchers ----------------------------------------------------------------------

def budget_bytes(cfg: dict) -> int:
    hit = _budget_override["bytes"]
    return hit if hit is not None else int(cfg["chunk_mib"] * 2**20)


def chunk_rows(row_bytes: int, N: int, budget: int) -> int:
    """Rows per chunk: all N when they fit the budget, else as many as fit, a multiple of 128
    when that many fit."""
    rows = max(1, budget // max(1, row_bytes))
    if rows >= N:
        return N
    if rows >= 256:
        rows -= rows % 128
    return min(N, rows)


def feature_block(N: int, MB: int, el: int, budget: int) -> int:
    """Features per block when a block spans all N rows: a multiple of 8, so that every
    block's first column stays 16-byte aligned; 0 when fewer than 8 features of all rows fit
    the budget (then row chunks are used)."""
    feats = budget // max(1, N * MB * el)
    return feats - feats % 8


def write_basis(x, s, t0, ih, out, k, d, M, f0, cfg, base=False):
    """Fill ``out`` [R, F*MB] (basis-major: column ``(base + t)*F + i``) with the (scaled)
    basis of x[:, f0:f0+F] (x, s already row-sliced), slot 0 silu(x) with ``base``."""
    MB = M + int(base)
    R, FM = out.shape
    F = FM // MB
    if R == 0 or F == 0:
        return out
    ss = s if s is not None else x
    BLOCK_N, BLOCK_I = cfg["BASIS_BLOCK_N"], cfg["BASIS_BLOCK_I"]
    grid = (rt.cdiv(R, BLOCK_N), rt.cdiv(F, BLOCK_I))
    _basis_block_kernel[grid](
        x, ss, t0, ih, out, R, F, M, M + k, f0,
        x.stride(0), x.stride(1), ss.stride(0), ss.stride(1), out.stride(0), F,
        K=k, D=d, HAS_S=s is not None, HAS_BASE=base, BLOCK_N=BLOCK_N, BLOCK_I=BLOCK_I,
        num_warps=cfg["basis_warps"])
    return out


def reduce_active(x, t0, ih, P, u, k, d, M, f64, cfg, base=False):
    R, IN = x.shape
    if R == 0:
        return u
    BLOCK_N, BLOCK_I = cfg["REDUCE_BLOCK_N"], cfg["REDUCE_BLOCK_I"]
    grid = (rt.cdiv(R, BLOCK_N), rt.cdiv(IN, BLOCK_I))
    _active_reduce_kernel[grid](
        x, t0, ih, P, u, R, IN, M, M + int(base), M + k,
        x.stride(0), x.stride(1), P.stride(0), u.stride(0), u.stride(1),
        K=k, D=d, F64=f64, HAS_BASE=base, BLOCK_N=BLOCK_N, BLOCK_I=BLOCK_I, num_warps=cfg["reduce_warps"])
    return u


def _rows(t, r0, r1):
    """Rows r0:r1 of ``t`` (None stays None); the tensor itself for all of its rows: a view
    costs a dispatcher call, and a layer of one chunk would make eight of them per step."""
    if t is None or (r0 == 0 and r1 == t.shape[0]):
        return t
    return t[r0:r1]


def _exact(dtype) -> bool:
    return dtype in (torch.float32, torch.float64)


def fwd_block(N: int, IN: int, MB: int, OUT: int, el: int, cfg: dict) -> int:
    """The block width the forward runs with (and packs its weight for): ``IN`` (row chunks,
    or everything in one piece) while each chunk's GEMM still has a full wave of output
    tiles; else feature blocks over all rows (thin chunks: large G, narrow out)."""
    budget = budget_bytes(cfg)
    if N * IN * MB * el <= budget:
        return IN
    rows = chunk_rows(IN * MB * el, N, budget)
    feats = feature_block(N, MB, el, budget)
    if rows * OUT >= cfg["min_tile_elems"] or feats == 0 or feats >= IN:
        return IN
    return feats


def fwd_flat(x, t0, ih, W, s, k, d, M, base, y, cfg, fb):
    """y = A @ W^T, W [out, in*MB] packed with block width ``fb`` (:func:`fwd_block`).
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
            A = write_basis(_rows(x, r0, r1), _rows(s, r0, r1), t0, ih, _rows(buf, 0, r1 - r0), k, d, M, 0,
                            cfg, base)
            torch.mm(A, W.t(), out=_rows(y, r0, r1))
        return A if rows == N else None
    buf = flat_buffer(N, fb * MB, W.dtype, x.device)
    acc = y if _exact(y.dtype) else torch.zeros(y.shape, dtype=torch.float32, device=x.device)
    for f0 in range(0, IN, fb):
        f1 = min(IN, f0 + fb)
        A = write_basis(x, s, t0, ih, buf[:, : (f1 - f0) * MB], k, d, M, f0, cfg, base)
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


def dx_flat(x, t0, ih, Wf, g, k, d, M, base, u, f64, cfg):
    """u = the k+1 active columns of (g @ Wf) contracted with B^(d); Wf feature-major
    ([out, in*MB], column ``i*MB + slot``: the parameter's own layout, or packed with fb=1)."""
    N, IN = x.shape
    K = IN * (M + int(base))
    rows = chunk_rows(K * Wf.element_size(), N, budget_bytes(cfg))
    buf = flat_buffer(rows, K, Wf.dtype, x.device)
    for r0 in range(0, N, rows):
        r1 = min(N, r0 + rows)
        P = torch.mm(_rows(g, r0, r1), Wf, out=_rows(buf, 0, r1 - r0))
        reduce_active(_rows(x, r0, r1), t0, ih, P, _rows(u, r0, r1), k, d, M, f64, cfg, base)
    return u


def dw_flat(x, t0, ih, g, s, k, d, M, base, cfg, A=None):
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
        A = write_basis(x, s, t0, ih, flat_buffer(N, K, g.dtype, x.device), k, d, M, 0, cfg, base)
    if A is not None:
        torch.mm(gt, A, out=wf)
        return wf, IN
    feats = feature_block(N, MB, el, budget)
    if feats == 0 or feats >= IN or OUT * K * 4 * cfg["dw_accumulate_ratio"] <= budget:
        rows = chunk_rows(K * el, N, budget)
        buf = flat_buffer(rows, K, g.dtype, x.device)
        exact = _exact(g.dtype)
        acc = wf if exact else torch.zeros((OUT, K), dtype=torch.float32, device=x.device)
        for r0 in range(0, N, rows):
            r1 = min(N, r0 + rows)
            A = write_basis(x[r0:r1], None if s is None else s[r0:r1], t0, ih, buf[: r1 - r0],
                            k, d, M, 0, cfg, base)
            if exact and r0 == 0:
                torch.mm(gt[:, r0:r1], A, out=acc)
            elif exact:
                acc.addmm_(gt[:, r0:r1], A)
            else:  # 16-bit GEMM per chunk, sums in float32
                acc += torch.mm(gt[:, r0:r1], A)
        if not exact:
            wf.copy_(acc)
        return wf, IN
    buf = flat_buffer(N, feats * MB, g.dtype, x.device)
    for f0 in range(0, IN, feats):
        f1 = min(IN, f0 + feats)
        A = write_basis(x, s, t0, ih, buf[:, : (f1 - f0) * MB], k, d, M, f0, cfg, base)
        torch.mm(gt, A, out=wf[:, f0 * MB:f1 * MB])
    return wf, feats


# ---- the three primitives (no base column) -----------------------------------------

def fwd(x, t0, ih, C, s, k, d, y, cfg):
    """y = sum_i,t s B^(d)_t(x_i) C[:, i, t]: C packed once into the forward's layout
    (out*in*M elements, next to the N*in*M basis it multiplies)."""
    N, IN = x.shape
    OUT, _, M = C.shape
    fb = fwd_block(N, IN, M, OUT, C.element_size(), cfg)
    W = pack(C, None, None, C.dtype, fb)
    fwd_flat(x, t0, ih, W, s, k, d, M, False, y, cfg, fb)
    return y


def dx(x, t0, ih, C, g, k, d, u, f64, cfg):
    return dx_flat(x, t0, ih, C.reshape(C.shape[0], -1), g, k, d, C.shape[2], False, u, f64, cfg)


def dw(x, t0, ih, g, s, k, d, M, w, cfg):
    wf, fb = dw_flat(x, t0, ih, g, s, k, d, M, False, cfg)
    unpack(wf, fb, M, gsw=w)
    return w
