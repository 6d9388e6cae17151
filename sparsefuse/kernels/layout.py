"""Where the dense formulation's operands live: weight layouts, pack / unpack, chunk sizes.

The dense formulation of a KAN layer is one GEMM over K = in * MB, MB = G + k basis slots
per feature (+1 when the SiLU base branch rides along as slot 0).  Its operands use the
*blocked basis-major* layout of a block width FB: features in blocks of FB, block b's
columns starting at b*FB*MB, slot c of feature b*FB + i at column c*width_b + i.
FB = in is plain basis-major (the streamed basis writer stores contiguous runs over
features: 4-10x its bandwidth in the feature-major order, results/gpu/basis_probe.csv),
FB < in gives each block of features its own contiguous columns (feature blocks), FB = 1
is feature-major, the parameter's own [out, in, M] order (what dX contracts: it reads k+1
adjacent columns).  The gather kernels read the *out-major* copy [in * MB, out] instead, so
that the k+1 coefficient rows they gather are contiguous.

One pack launch writes up to two of these layouts from the parameters (and, for the fused
layer, the grid geometry, :mod:`.geometry`), one unpack launch reads dW back.  The chunk
helpers size the streamed strategy's basis buffers against the config's budget.
"""

import torch
import triton
import triton.language as tl

from . import _runtime as rt
from .geometry import feature_geometry, tolerance
from .launch import launch
from .settings import settings

OUT_MAJOR = 0  # a layout "block width" meaning [in * MB, out] (the gather kernels' operand)


@triton.jit
def _blocked_cols(i64, c, IN, MB, FB):
    """Columns of (feature i, slot c) in the blocked basis-major layout of block width FB."""
    start = (i64 // FB) * FB
    width = tl.minimum(IN - start, FB)
    return (start * MB + (i64 - start))[:, None] + c[None, :].to(tl.int64) * width[:, None]


@triton.jit
def _pack_kernel(BW, SW, SC, W, W2, T, GEO, OUT, IN, M, MB, FB, FB2, NK,
                 sbo, sbi, swo, swi, swt, sco, sci, swr, swc, sw2r, sw2c, stk, sgeo, TOL,
                 HAS_BASE: tl.constexpr, HAS_SC: tl.constexpr, HAS_W2: tl.constexpr, HAS_GEO: tl.constexpr,
                 BLOCK_I: tl.constexpr, TP: tl.constexpr):
    """W[o, col(i, HAS_BASE + t)] = sw[o,i,t] * sc[o,i];  with HAS_BASE W[o, col(i, 0)] = bw[o,i];
    the same values into W2 in the layout of block width FB2; with HAS_GEO, programs of o = 0
    also write the geometry of their features (one program per output row, and one when
    there is no output row: OUT = 0 still has a geometry)."""
    o = tl.program_id(0).to(tl.int64)
    i64 = (tl.program_id(1) * BLOCK_I + tl.arange(0, BLOCK_I)).to(tl.int64)
    mi = i64 < IN
    c = tl.arange(0, TP)
    t = c - HAS_BASE
    m2 = mi[:, None] & (c < MB)[None, :] & ((tl.zeros_like(c) + tl.program_id(0)) < OUT)[None, :]
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
    tl.store(W + o * swr + _blocked_cols(i64, c, IN, MB, FB) * swc, v.to(W.dtype.element_ty), mask=m2)
    if HAS_W2:
        tl.store(W2 + o * sw2r + _blocked_cols(i64, c, IN, MB, FB2) * sw2c, v.to(W2.dtype.element_ty), mask=m2)
    if HAS_GEO:
        if tl.program_id(0) == 0:
            feature_geometry(T, GEO, i64, mi, NK, stk, sgeo, TOL, 16)


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


def flat_buffer(rows: int, K: int, dtype, device):
    """[rows, K] view of a buffer whose row stride is a multiple of 8 elements, so that a
    cuBLAS operand never falls to its slow unaligned kernels."""
    if K % 8 == 0:
        return torch.empty((rows, K), dtype=dtype, device=device)
    return torch.empty((rows, -(-K // 8) * 8), dtype=dtype, device=device)[:, :K]


def operand(OUT, K, dtype, device, fb):
    """An empty operand of layout ``fb`` and its (row, column) strides."""
    if fb == OUT_MAJOR:
        w = torch.empty((K, OUT), dtype=dtype, device=device)
        return w, 1, OUT
    w = flat_buffer(OUT, K, dtype, device)
    return w, w.stride(0), 1


def pack(spline_weight, scaler, base_weight, dtype, fb: int, fb2=None, grid=None, geo=None):
    """The contraction weight in the layout of block width ``fb`` (:data:`OUT_MAJOR`: the
    gather kernels' [in*MB, out]), and a second copy of layout ``fb2`` when given, from the
    parameters in their own layout, one launch: ``spline_weight * scaler`` (scaler optional),
    ``base_weight`` as slot 0 when given.  With ``grid`` the same launch writes the grid's
    geometry into ``geo`` (:mod:`.geometry`).  Returns ``W`` or ``(W, W2)``."""
    OUT, IN, M = spline_weight.shape
    base = base_weight is not None
    MB = M + int(base)
    dev = spline_weight.device
    W, swr, swc = operand(OUT, IN * MB, dtype, dev, fb)
    W2, sw2r, sw2c = operand(OUT, IN * MB, dtype, dev, fb2) if fb2 is not None else (W, 0, 0)
    if W.numel() == 0 and grid is None:
        return (W, W2) if fb2 is not None else W
    sc = scaler if scaler is not None else spline_weight
    bw = base_weight if base else spline_weight
    TP = rt.next_pow2(MB)
    BLOCK_I = max(1, 2048 // TP)
    T = grid if grid is not None else spline_weight
    G = geo if geo is not None else spline_weight
    launch(_pack_kernel, (max(OUT, 1), rt.cdiv(IN, BLOCK_I)),
        bw, spline_weight, sc, W, W2, T, G, OUT, IN, M, MB, max(fb, 1), max(fb2 or 0, 1),
        T.shape[1] if grid is not None else 1,
        bw.stride(0), bw.stride(1), spline_weight.stride(0), spline_weight.stride(1), spline_weight.stride(2),
        sc.stride(0), sc.stride(1), swr, swc, sw2r, sw2c, T.stride(0), G.stride(0),
        tolerance(dtype) if grid is not None else 0.0,
        HAS_BASE=base, HAS_SC=scaler is not None, HAS_W2=fb2 is not None, HAS_GEO=grid is not None,
        BLOCK_I=BLOCK_I, TP=TP, num_warps=4)
    return (W, W2) if fb2 is not None else W


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
    launch(_unpack_kernel, (OUT, rt.cdiv(IN, BLOCK_I)),
        dW, sw, sc, gbw if base else gsw, gsw, gsc if gsc is not None else gsw, IN, M, MB, fb, dW.stride(0),
        sw.stride(0), sw.stride(1), sw.stride(2), sc.stride(0), sc.stride(1),
        HAS_BASE=base, HAS_SC=scaler is not None, BLOCK_I=BLOCK_I, TP=TP, num_warps=4)
    return gbw, gsw, gsc


# ---- chunks of the streamed strategy -------------------------------------------------

def budget_bytes(cfg: dict) -> int:
    """The streamed chunk budget: the config's, or a test's (``settings.chunk_bytes``)."""
    hit = settings.chunk_bytes
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


def fwd_block(N: int, IN: int, MB: int, OUT: int, el: int, cfg: dict) -> int:
    """The block width the streamed forward runs with (and packs its weight for): ``IN`` (row
    chunks, or everything in one piece) while each chunk's GEMM still has a full wave of
    output tiles; else feature blocks over all rows (thin chunks: large G, narrow out)."""
    budget = budget_bytes(cfg)
    if N * IN * MB * el <= budget:
        return IN
    rows = chunk_rows(IN * MB * el, N, budget)
    feats = feature_block(N, MB, el, budget)
    if rows * OUT >= cfg["min_tile_elems"] or feats == 0 or feats >= IN:
        return IN
    return feats


def rows_of(t, r0, r1):
    """Rows r0:r1 of ``t`` (None stays None); the tensor itself for all of its rows: a view
    costs a dispatcher call, and a layer of one chunk would make eight of them per step."""
    if t is None or (r0 == 0 and r1 == t.shape[0]):
        return t
    return t[r0:r1]


def exact(dtype) -> bool:
    """Whether cuBLAS accumulates chunks in ``dtype`` without losing the float32 sums."""
    return dtype in (torch.float32, torch.float64)
