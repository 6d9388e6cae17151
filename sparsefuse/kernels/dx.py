"""dx_d:  u[n,i] = sum_o g[n,o] sum_t B^(d)_t(x[n,i]) C[o,i,t].

The input gradient of fwd_{d-1} (and the d-th derivative of the spline activations
contracted with g).  Strategies:
  streamed -- P = g @ C_flat by cuBLAS for a chunk of rows (C feature-major, so the k+1
              active columns of a feature are adjacent), then each (row, feature) reads
              back only its k+1 active columns of P;
  gather   -- gather the k+1 coefficient columns C[:, i, j-k..j] and dot them with
              g[n, :] over `out` in chunks (work independent of G).
With ``base`` (the fused layer) slot 0 of every feature is the SiLU base branch, whose
term is P[n, (i, 0)] silu'(x[n,i]).
"""

import torch
import triton
import triton.language as tl

from . import _runtime as rt
from . import dispatch
from ._basis import load_block, local_basis
from .fwd import o_major
from .launch import launch
from .layout import budget_bytes, chunk_rows, flat_buffer, rows_of


@triton.jit
def _silu_grad(x):
    sg = tl.sigmoid(x)
    return sg * (1.0 + x * (1.0 - sg))


@triton.jit
def _block_values(X, T, GEO, R, IN, sxn, sxi, stk, sgeo, NCELL, K: tl.constexpr, D: tl.constexpr,
                  LOG2: tl.constexpr, F64: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_I: tl.constexpr):
    """The program's [BLOCK_N, BLOCK_I] block of x, its active bases and a zero accumulator:
    ``(n64, i64, mask_n, m2, x, j, c0..c7, acc)``."""
    n64, i64, mask_n, m2, xv, trow, t0, tend, ih, uni = load_block(
        X, T, GEO, R, IN, 0, sxn, sxi, stk, sgeo, BLOCK_N, BLOCK_I)
    one = tl.zeros((BLOCK_N, BLOCK_I), dtype=t0.dtype) + 1.0
    j, live, c0, c1, c2, c3, c4, c5, c6, c7 = local_basis(xv, trow, t0, tend, ih, uni, one, NCELL, K, D, LOG2)
    if F64:
        acc = tl.zeros((BLOCK_N, BLOCK_I), dtype=tl.float64)
    else:
        acc = tl.zeros((BLOCK_N, BLOCK_I), dtype=tl.float32)
    return n64, i64, mask_n, m2, xv, j, c0, c1, c2, c3, c4, c5, c6, c7, acc


@triton.jit
def _active_reduce_kernel(X, T, GEO, P, U, R, IN, M, MB, NCELL,
                          sxn, sxi, stk, sgeo, spn, sun, sui,
                          K: tl.constexpr, D: tl.constexpr, LOG2: tl.constexpr, F64: tl.constexpr,
                          HAS_BASE: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_I: tl.constexpr):
    """u[n,i] = sum_l B^(d)_{j-K+l}(x[n,i]) P[n, i*MB + HAS_BASE + j-K+l] (only the k+1 active
    columns are read) + with HAS_BASE the base term P[n, i*MB] silu'(x[n,i])."""
    n64, i64, mask_n, m2, xv, j, c0, c1, c2, c3, c4, c5, c6, c7, acc = _block_values(
        X, T, GEO, R, IN, sxn, sxi, stk, sgeo, NCELL, K, D, LOG2, F64, BLOCK_N, BLOCK_I)
    base = P + n64[:, None] * spn + (i64 * MB)[None, :]
    if HAS_BASE:
        acc += tl.load(base, mask=m2, other=0.0).to(acc.dtype) * _silu_grad(xv.to(acc.dtype))
        base = base + 1
    for l in tl.static_range(K + 1):
        t = j - K + l
        mt = m2 & (t >= 0) & (t < M)
        p = tl.load(base + t, mask=mt, other=0.0)
        acc += c0.to(acc.dtype) * p.to(acc.dtype)
        c0, c1, c2, c3, c4, c5, c6 = c1, c2, c3, c4, c5, c6, c7
    tl.store(U + n64[:, None] * sun + i64[None, :] * sui, acc.to(U.dtype.element_ty), mask=m2)


@triton.jit
def _dx_gather_kernel(X, T, GEO, C, G, U, N, IN, OUT, M, NCELL,
                      sxn, sxi, stk, sgeo, sco, sci, sct, sgn, sgo, sun, sui,
                      K: tl.constexpr, D: tl.constexpr, LOG2: tl.constexpr, HAS_BASE: tl.constexpr,
                      F64: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_O: tl.constexpr, BLOCK_I: tl.constexpr):
    n64, i64, mask_n, m2, xv, j, c0, c1, c2, c3, c4, c5, c6, c7, acc = _block_values(
        X, T, GEO, N, IN, sxn, sxi, stk, sgeo, NCELL, K, D, LOG2, F64, BLOCK_N, BLOCK_I)
    if HAS_BASE:
        dsilu = _silu_grad(xv.to(acc.dtype))
    for o0 in range(0, OUT, BLOCK_O):
        offs_o = o0 + tl.arange(0, BLOCK_O)
        mask_o = offs_o < OUT
        o64 = offs_o.to(tl.int64)
        g = tl.load(G + n64[:, None] * sgn + o64[None, :] * sgo,
                    mask=mask_n[:, None] & mask_o[None, :], other=0.0).to(acc.dtype)
        base = C + i64[None, :, None] * sci + o64[None, None, :] * sco
        if HAS_BASE:
            w = tl.load(base, mask=m2[:, :, None] & mask_o[None, None, :], other=0.0)
            acc += dsilu * tl.sum(w.to(acc.dtype) * g[:, None, :], axis=2)
            base += sct
        v0, v1, v2, v3, v4, v5, v6, v7 = c0, c1, c2, c3, c4, c5, c6, c7
        for l in tl.static_range(K + 1):
            t = j - K + l
            mt = m2 & (t >= 0) & (t < M)
            w = tl.load(base + t.to(tl.int64)[:, :, None] * sct,
                        mask=mt[:, :, None] & mask_o[None, None, :], other=0.0)
            part = tl.sum(w.to(acc.dtype) * g[:, None, :], axis=2)
            acc += v0.to(acc.dtype) * part
            v0, v1, v2, v3, v4, v5, v6 = v1, v2, v3, v4, v5, v6, v7
    tl.store(U + n64[:, None] * sun + i64[None, :] * sui, acc.to(U.dtype.element_ty), mask=m2)


def gathered(x, grid, geo, C, strides, g, k, d, M, base, u, f64, cfg):
    """u = dx_d by the gather kernel; ``C`` as in :func:`.fwd.gathered`."""
    N, IN = x.shape
    OUT = g.shape[1]
    BLOCK_N, BLOCK_O = cfg["BLOCK_N"], min(cfg["BLOCK_O"], max(16, rt.next_pow2(OUT)))
    BLOCK_I = cfg["BLOCK_I"]
    NCELL = grid.shape[1] - 1
    launch(_dx_gather_kernel, (rt.cdiv(N, BLOCK_N), rt.cdiv(IN, BLOCK_I)),
        x, grid, geo, C, g, u, N, IN, OUT, M, NCELL,
        x.stride(0), x.stride(1), grid.stride(0), geo.stride(0), *strides,
        g.stride(0), g.stride(1), u.stride(0), u.stride(1),
        K=k, D=d, LOG2=rt.log2_ceil(NCELL), HAS_BASE=base, F64=f64, BLOCK_N=BLOCK_N, BLOCK_O=BLOCK_O,
        BLOCK_I=BLOCK_I, **dispatch.launch_options(cfg))
    return u


def reduce_active(x, grid, geo, P, u, k, d, M, f64, cfg, base=False):
    """u from the active columns of P (one chunk of rows)."""
    R, IN = x.shape
    if R == 0:
        return u
    BLOCK_N, BLOCK_I = cfg["REDUCE_BLOCK_N"], cfg["REDUCE_BLOCK_I"]
    NCELL = grid.shape[1] - 1
    launch(_active_reduce_kernel, (rt.cdiv(R, BLOCK_N), rt.cdiv(IN, BLOCK_I)),
        x, grid, geo, P, u, R, IN, M, M + int(base), NCELL,
        x.stride(0), x.stride(1), grid.stride(0), geo.stride(0), P.stride(0), u.stride(0), u.stride(1),
        K=k, D=d, LOG2=rt.log2_ceil(NCELL), F64=f64, HAS_BASE=base, BLOCK_N=BLOCK_N, BLOCK_I=BLOCK_I,
        num_warps=cfg["reduce_warps"])
    return u


def streamed(x, grid, geo, Wf, g, k, d, M, base, u, f64, cfg):
    """u = the k+1 active columns of (g @ Wf) contracted with B^(d); Wf feature-major
    ([out, in*MB], column ``i*MB + slot``: the parameter's own layout, or packed with fb=1)."""
    N, IN = x.shape
    K = IN * (M + int(base))
    rows = chunk_rows(K * Wf.element_size(), N, budget_bytes(cfg))
    buf = flat_buffer(rows, K, Wf.dtype, x.device)
    for r0 in range(0, N, rows):
        r1 = min(N, r0 + rows)
        P = torch.mm(rows_of(g, r0, r1), Wf, out=rows_of(buf, 0, r1 - r0))
        reduce_active(rows_of(x, r0, r1), grid, geo, P, rows_of(u, r0, r1), k, d, M, f64, cfg, base)
    return u


def dx(x, grid, geo, C, g, k: int, d: int, strategy: str = None) -> torch.Tensor:
    """Launch dx_d on 2-D ``x`` [N, in], ``g`` [N, out]; returns u [N, in] in x's dtype."""
    N, IN = x.shape
    OUT, _, M = C.shape
    if d > k or N == 0 or IN == 0 or OUT == 0:
        return torch.zeros((N, IN), dtype=x.dtype, device=x.device)
    wdt = torch.promote_types(C.dtype, g.dtype)
    C, g = C.to(wdt), g.to(wdt)
    u = rt.alloc((N, IN), x.dtype, x.device)
    strategy, cfg = dispatch.plan("dx", M, wdt, rt.dot_precision(wdt), strategy, x.device, OUT)
    f64 = wdt == torch.float64 or x.dtype == torch.float64
    with rt.device_guard(x):
        if strategy == "streamed":
            return streamed(x, grid, geo, C.reshape(C.shape[0], -1), g, k, d, M, False, u, f64, cfg)
        C = o_major(C)
        return gathered(x, grid, geo, C, C.stride(), g, k, d, M, False, u, f64, cfg)
