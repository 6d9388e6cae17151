"""The streamed-basis strategy: Triton writes the basis of a chunk, cuBLAS contracts it.

The dense formulation of a KAN layer is one GEMM over K = in * (G + k):
``y = A @ C_flat^T`` with ``A[n, i*M + t] = s[n,i] B^(d)_t(x[n,i])`` and
``C_flat = C.reshape(out, in*M)`` (the parameter's own layout, no copy).  Generating
A on chip inside a GEMM kernel is what kept the v1 dense tile at 5-15% of tensor-core
peak; here a memory-bound kernel writes A for a chunk of rows (sized to stay in L2)
and ``torch.mm`` consumes it, so the heavy part runs at cuBLAS speed and memory stays
O(chunk), never O(N * in * (G + k)):

  fwd_d:  y[rows]  = A[rows] @ C_flat^T                          (row chunks)
  dx_d:   P[rows]  = g[rows] @ C_flat;  u[n,i] = sum_t P[n,i*M+t] B^(d)_t(x[n,i])
          (only the k+1 active t are read back)
  dw_d:   W_flat   = g^T @ A, accumulated over row chunks when W is small, else
          computed per block of features from all rows (no read-modify-write of W)

Probe that chose it (H200, bf16, forward only, PERF.md): 0.12 / 0.31 / 1.31 ms at
N=8192, 512->512, G=5 / 20 / 100 against 0.20 / 0.56 / 2.30 ms for the best peer,
i.e. 50-80% of cuBLAS on the same K.  The layer-level side-by-side numbers are in
results/gpu/README.md.
"""

import contextlib

import torch
import triton
import triton.language as tl

from . import _runtime as rt
from ._basis import expand_tile, local_basis

# Launch settings of the two elementwise kernels and the chunk budget; overridable per
# GPU by kernels/configs/<gpu>.json through dispatch.stream_config().
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
                        sxn, sxi, ssn, ssi, san,
                        K: tl.constexpr, D: tl.constexpr, HAS_S: tl.constexpr,
                        BLOCK_N: tl.constexpr, BLOCK_I: tl.constexpr, TB: tl.constexpr):
    """A[n, (i - F0)*M + t] = s[n,i] B^(d)_t(x[n,i]) for n < R, F0 <= i < F0 + F, every t < M."""
    pid_n = tl.program_id(0)
    pid_i = tl.program_id(1)
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    offs_i = pid_i * BLOCK_I + tl.arange(0, BLOCK_I)
    mask_n = offs_n < R
    mask_i = offs_i < F
    n64 = offs_n.to(tl.int64)
    i64 = offs_i.to(tl.int64)
    m2 = mask_n[:, None] & mask_i[None, :]
    xv = tl.load(X + n64[:, None] * sxn + (F0 + i64)[None, :] * sxi, mask=m2, other=0.0)
    t0 = tl.load(T0 + F0 + offs_i, mask=mask_i, other=0.0)
    ih = tl.load(IH + F0 + offs_i, mask=mask_i, other=1.0)
    if HAS_S:
        sc = tl.load(S + n64[:, None] * ssn + (F0 + i64)[None, :] * ssi, mask=m2, other=0.0).to(t0.dtype)
    else:
        sc = tl.zeros((BLOCK_N, BLOCK_I), dtype=t0.dtype) + 1.0
    j, live, c0, c1, c2, c3, c4, c5, c6, c7 = local_basis(xv, t0[None, :], ih[None, :], sc, NCELL, K, D)
    row = A + n64[:, None, None] * san + (i64 * M)[None, :, None]
    for tb in range(0, M, TB):
        t = tb + tl.arange(0, TB)
        tile = expand_tile(j - tb, c0, c1, c2, c3, c4, c5, c6, c7, TB, K)
        tl.store(row + t[None, None, :], tile.to(A.dtype.element_ty),
                 mask=m2[:, :, None] & (t < M)[None, None, :])


@triton.jit
def _active_reduce_kernel(X, T0, IH, P, U, R, IN, M, NCELL,
                          sxn, sxi, spn, sun, sui,
                          K: tl.constexpr, D: tl.constexpr, F64: tl.constexpr,
                          BLOCK_N: tl.constexpr, BLOCK_I: tl.constexpr):
    """u[n,i] = sum_l B^(d)_{j-K+l}(x[n,i]) P[n, i*M + j-K+l]: reads only the k+1 active columns."""
    pid_n = tl.program_id(0)
    pid_i = tl.program_id(1)
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    offs_i = pid_i * BLOCK_I + tl.arange(0, BLOCK_I)
    mask_n = offs_n < R
    mask_i = offs_i < IN
    n64 = offs_n.to(tl.int64)
    i64 = offs_i.to(tl.int64)
    m2 = mask_n[:, None] & mask_i[None, :]
    xv = tl.load(X + n64[:, None] * sxn + i64[None, :] * sxi, mask=m2, other=0.0)
    t0 = tl.load(T0 + offs_i, mask=mask_i, other=0.0)
    ih = tl.load(IH + offs_i, mask=mask_i, other=1.0)
    one = tl.zeros((BLOCK_N, BLOCK_I), dtype=t0.dtype) + 1.0
    j, live, c0, c1, c2, c3, c4, c5, c6, c7 = local_basis(xv, t0[None, :], ih[None, :], one, NCELL, K, D)
    if F64:
        acc = tl.zeros((BLOCK_N, BLOCK_I), dtype=tl.float64)
    else:
        acc = tl.zeros((BLOCK_N, BLOCK_I), dtype=tl.float32)
    base = P + n64[:, None] * spn + (i64 * M)[None, :]
    for l in tl.static_range(K + 1):
        t = j - K + l
        mt = m2 & (t >= 0) & (t < M)
        p = tl.load(base + t, mask=mt, other=0.0)
        acc += c0.to(acc.dtype) * p.to(acc.dtype)
        c0, c1, c2, c3, c4, c5, c6 = c1, c2, c3, c4, c5, c6, c7
    tl.store(U + n64[:, None] * sun + i64[None, :] * sui, acc.to(U.dtype.element_ty), mask=m2)


# ---- launchers ----------------------------------------------------------------------

def budget_bytes(cfg: dict) -> int:
    hit = _budget_override["bytes"]
    return hit if hit is not None else int(cfg["chunk_mib"] * 2**20)


def chunk_rows(row_bytes: int, N: int, budget: int) -> int:
    """Rows per chunk: as many as fit the budget, a multiple of 128 when that many fit."""
    rows = max(1, budget // max(1, row_bytes))
    if rows >= 256:
        rows -= rows % 128
    return min(N, rows)


def write_basis(x, s, t0, ih, out, k, d, M, f0, cfg):
    """Fill ``out`` [R, F*M] with the scaled basis of x[:, f0:f0+F] (x, s already row-sliced)."""
    R, FM = out.shape
    F = FM // M
    if R == 0 or F == 0:
        return out
    ss = s if s is not None else x
    BLOCK_N, BLOCK_I = cfg["BASIS_BLOCK_N"], cfg["BASIS_BLOCK_I"]
    TB = min(cfg["BASIS_TB"], triton.next_power_of_2(M)) if M <= cfg["BASIS_TB"] else cfg["BASIS_TB"]
    grid = (triton.cdiv(R, BLOCK_N), triton.cdiv(F, BLOCK_I))
    _basis_block_kernel[grid](
        x, ss, t0, ih, out, R, F, M, M + k, f0,
        x.stride(0), x.stride(1), ss.stride(0), ss.stride(1), out.stride(0),
        K=k, D=d, HAS_S=s is not None, BLOCK_N=BLOCK_N, BLOCK_I=BLOCK_I, TB=TB,
        num_warps=cfg["basis_warps"])
    return out


def reduce_active(x, t0, ih, P, u, k, d, M, f64, cfg):
    R, IN = x.shape
    if R == 0:
        return u
    BLOCK_N, BLOCK_I = cfg["REDUCE_BLOCK_N"], cfg["REDUCE_BLOCK_I"]
    grid = (triton.cdiv(R, BLOCK_N), triton.cdiv(IN, BLOCK_I))
    _active_reduce_kernel[grid](
        x, t0, ih, P, u, R, IN, M, M + k,
        x.stride(0), x.stride(1), P.stride(0), u.stride(0), u.stride(1),
        K=k, D=d, F64=f64, BLOCK_N=BLOCK_N, BLOCK_I=BLOCK_I, num_warps=cfg["reduce_warps"])
    return u


def _flat(C):
    """[out, in, M] -> [out, in*M]: a view for the parameter's own (contiguous) layout."""
    return C.reshape(C.shape[0], -1)


def fwd(x, t0, ih, C, s, k, d, y, cfg):
    N, IN = x.shape
    M = C.shape[2]
    Cf = _flat(C)
    rows = chunk_rows(IN * M * C.element_size(), N, budget_bytes(cfg))
    buf = torch.empty((rows, IN * M), dtype=C.dtype, device=x.device)
    for r0 in range(0, N, rows):
        r1 = min(N, r0 + rows)
        A = write_basis(x[r0:r1], None if s is None else s[r0:r1], t0, ih, buf[: r1 - r0], k, d, M, 0, cfg)
        torch.mm(A, Cf.t(), out=y[r0:r1])
    return y


def dx(x, t0, ih, C, g, k, d, u, f64, cfg):
    N, IN = x.shape
    M = C.shape[2]
    Cf = _flat(C)
    rows = chunk_rows(IN * M * C.element_size(), N, budget_bytes(cfg))
    buf = torch.empty((rows, IN * M), dtype=C.dtype, device=x.device)
    for r0 in range(0, N, rows):
        r1 = min(N, r0 + rows)
        P = torch.mm(g[r0:r1], Cf, out=buf[: r1 - r0])
        reduce_active(x[r0:r1], t0, ih, P, u[r0:r1], k, d, M, f64, cfg)
    return u


def dw(x, t0, ih, g, s, k, d, M, w, cfg):
    """W [out, in, M] in ``w`` (g's dtype): row chunks accumulated when W is small next to a
    chunk, else blocks of features over all rows (each block's GEMM writes its own columns)."""
    N, IN = x.shape
    OUT = g.shape[1]
    el = g.element_size()
    budget = budget_bytes(cfg)
    wf = w.view(OUT, IN * M)
    gt = g.t()
    if N * IN * M * el <= budget:  # one chunk
        A = write_basis(x, s, t0, ih, torch.empty((N, IN * M), dtype=g.dtype, device=x.device),
                        k, d, M, 0, cfg)
        torch.mm(gt, A, out=wf)
        return w
    acc_bytes = OUT * IN * M * 4
    if N * M * el > budget or acc_bytes * cfg["dw_accumulate_ratio"] <= budget:
        rows = chunk_rows(IN * M * el, N, budget)
        buf = torch.empty((rows, IN * M), dtype=g.dtype, device=x.device)
        exact = g.dtype in (torch.float32, torch.float64)
        acc = wf if exact else torch.zeros((OUT, IN * M), dtype=torch.float32, device=x.device)
        for r0 in range(0, N, rows):
            r1 = min(N, r0 + rows)
            A = write_basis(x[r0:r1], None if s is None else s[r0:r1], t0, ih, buf[: r1 - r0],
                            k, d, M, 0, cfg)
            if exact and r0 == 0:
                torch.mm(gt[:, r0:r1], A, out=acc)
            elif exact:
                acc.addmm_(gt[:, r0:r1], A)
            else:  # 16-bit GEMM per chunk, sums in float32
                acc += torch.mm(gt[:, r0:r1], A)
        if not exact:
            wf.copy_(acc)
        return w
    feats = max(1, budget // (N * M * el))
    buf = torch.empty((N, feats * M), dtype=g.dtype, device=x.device)
    for f0 in range(0, IN, feats):
        f1 = min(IN, f0 + feats)
        A = write_basis(x, s, t0, ih, buf[:, : (f1 - f0) * M], k, d, M, f0, cfg)
        torch.mm(gt, A, out=wf[:, f0 * M:f1 * M])
    return w
