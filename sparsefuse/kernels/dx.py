"""dx_d:  u[n,i] = sum_o g[n,o] sum_t B^(d)_t(x[n,i]) C[o,i,t].

This is the input gradient of fwd_{d-1} (and the d-th derivative of the spline
activations contracted with g).  Strategies:
  dense  -- P = g @ C_flat by cuBLAS for a chunk of rows, then each (row, feature)
            reads back only its k+1 active columns of P (:mod:`.streamed`);
  sparse -- gather the k+1 coefficient columns C[:, i, j-k..j] and dot them with
            g[n, :] over `out` in chunks (work independent of G).
"""

import torch
import triton
import triton.language as tl

from . import _runtime as rt
from . import dispatch, streamed
from ._basis import load_block, local_basis
from .fwd import o_major


@triton.jit
def _dx_sparse_kernel(X, T0, IH, C, G, U, N, IN, OUT, M, NCELL,
                      sxn, sxi, sco, sci, sct, sgn, sgo, sun, sui,
                      K: tl.constexpr, D: tl.constexpr, F64: tl.constexpr,
                      BLOCK_N: tl.constexpr, BLOCK_O: tl.constexpr, BLOCK_I: tl.constexpr):
    n64, i64, mask_n, m2, xv, t0, ih = load_block(X, T0, IH, N, IN, 0, sxn, sxi, BLOCK_N, BLOCK_I)
    one = tl.zeros((BLOCK_N, BLOCK_I), dtype=t0.dtype) + 1.0
    j, live, c0, c1, c2, c3, c4, c5, c6, c7 = local_basis(
        xv, t0[None, :], ih[None, :], one, NCELL, K, D)
    if F64:
        acc = tl.zeros((BLOCK_N, BLOCK_I), dtype=tl.float64)
    else:
        acc = tl.zeros((BLOCK_N, BLOCK_I), dtype=tl.float32)
    for o0 in range(0, OUT, BLOCK_O):
        offs_o = o0 + tl.arange(0, BLOCK_O)
        mask_o = offs_o < OUT
        o64 = offs_o.to(tl.int64)
        g = tl.load(G + n64[:, None] * sgn + o64[None, :] * sgo,
                    mask=mask_n[:, None] & mask_o[None, :], other=0.0).to(acc.dtype)
        base = C + i64[None, :, None] * sci + o64[None, None, :] * sco
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


def dx(x, t0, ih, C, g, k: int, d: int, strategy: str = None) -> torch.Tensor:
    """Launch dx_d on 2-D ``x`` [N, in], ``g`` [N, out]; returns u [N, in] in x's dtype."""
    N, IN = x.shape
    OUT, _, M = C.shape
    if d > k or N == 0 or IN == 0 or OUT == 0:
        return torch.zeros((N, IN), dtype=x.dtype, device=x.device)
    wdt = torch.promote_types(C.dtype, g.dtype)
    C, g = C.to(wdt), g.to(wdt)
    u = rt.alloc((N, IN), x.dtype, x.device)
    prec = rt.dot_precision(wdt)
    strategy, cfg = dispatch.plan("dx", M, wdt, prec, strategy, x.device, OUT)
    F64 = wdt == torch.float64 or x.dtype == torch.float64
    with rt.device_guard(x):
        if strategy == "dense":
            return streamed.dx(x, t0, ih, C, g, k, d, u, F64, cfg)
        BLOCK_N, BLOCK_O = cfg["BLOCK_N"], min(cfg["BLOCK_O"], max(16, rt.next_pow2(OUT)))
        C = o_major(C)
        BLOCK_I = cfg["BLOCK_I"]
        grid = (rt.cdiv(N, BLOCK_N), rt.cdiv(IN, BLOCK_I))
        _dx_sparse_kernel[grid](
            x, t0, ih, C, g, u, N, IN, OUT, M, M + k,
            x.stride(0), x.stride(1), C.stride(0), C.stride(1), C.stride(2),
            g.stride(0), g.stride(1), u.stride(0), u.stride(1),
            K=k, D=d, F64=F64, BLOCK_N=BLOCK_N, BLOCK_O=BLOCK_O, BLOCK_I=BLOCK_I,
            **dispatch.launch_options(cfg))
    return u
