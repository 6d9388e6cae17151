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

Probe that chose it (H200, bf16, forward only, measured before this module was written): 0.12 / 0.31 / 1.31 ms at
N=8192, 512->512, G=5 / 20 / 100 against 0.20 / 0.56 / 2.30 ms for the best peer,
i.e. 50-80% of cuBLAS on the same K.  The layer-level side-by-side numbers are in
results/gpu/README.md.
"""

import contextlib

import torch
import triton
import triton.language as tl

from . import _runtime as rt
from ._basis import expand_tile, load_block, local_basis

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
def _basis_block_kernel(X, S, T0, IH, A, R, F, M, MB, NCELL, F0,
                        sxn, sxi, ssn, ssi, san,
                        K: tl.constexpr, D: tl.constexpr, HAS_S: tl.constexpr, HAS_BASE: tl.constexpr,
                        BLOCK_N: tl.constexpr, BLOCK_I: tl.constexpr, TB: tl.constexpr,
                        SCATTER: tl.constexpr):
    """A[n, (i - F0)*MB + HAS_BASE + t] = s[n,i] B^(d)_t(x[n,i]) for n < R, F0 <= i < F0 + F,
    every t < M; with HAS_BASE also A[n, (i - F0)*MB] = silu(x[n,i]) (the layer's base branch).

    Two ways to fill the block, same result: ``SCATTER=False`` builds every element by
    selecting among the k+1 values (about k+6 instructions per element written);
    ``SCATTER=True`` zeroes the program's contiguous span of each row, then (after a CTA
    barrier, which orders the two phases' global stores) writes only the k+1 active values."""
    pid_i = tl.program_id(1)
    n64, i64, mask_n, m2, xv, t0, ih = load_block(X, T0, IH, R, F, F0, sxn, sxi, BLOCK_N, BLOCK_I)
    if HAS_S:
        sc = tl.load(S + n64[:, None] * ssn + (F0 + i64)[None, :] * ssi, mask=m2, other=0.0).to(t0.dtype)
    else:
        sc = tl.zeros((BLOCK_N, BLOCK_I), dtype=t0.dtype) + 1.0
    j, live, c0, c1, c2, c3, c4, c5, c6, c7 = local_basis(xv, t0[None, :], ih[None, :], sc, NCELL, K, D)
    row = A + n64[:, None] * san + (i64 * MB)[None, :]
    if SCATTER:
        c_start = pid_i * BLOCK_I * MB
        c_end = tl.minimum((pid_i + 1) * BLOCK_I, F) * MB
        zero = tl.zeros((BLOCK_N, TB), dtype=A.dtype.element_ty)
        for c in range(c_start, c_end, TB):
            cols = c + tl.arange(0, TB)
            tl.store(A + n64[:, None] * san + cols[None, :], zero,
                     mask=mask_n[:, None] & (cols < c_end)[None, :])
        tl.debug_barrier()
    if HAS_BASE:
        xf = xv.to(t0.dtype)
        tl.store(row, (xf * tl.sigmoid(xf)).to(A.dtype.element_ty), mask=m2)
        row = row + 1
    if SCATTER:
        for l in tl.static_range(K + 1):
            t = j - K + l
            tl.store(row + t, c0.to(A.dtype.element_ty), mask=m2 & (t >= 0) & (t < M))
            c0, c1, c2, c3, c4, c5, c6 = c1, c2, c3, c4, c5, c6, c7
    else:
        row = row[:, :, None]
        for tb in range(0, M, TB):
            t = tb + tl.arange(0, TB)
            tile = expand_tile(j - tb, c0, c1, c2, c3, c4, c5, c6, c7, TB, K)
            tl.store(row + t[None, None, :], tile.to(A.dtype.element_ty),
                     mask=m2[:, :, None] & (t < M)[None, None, :])


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


# ---- launchers ----------------------------------------------------------------------
# ``Cf`` is the flat weight [out, in*MB] (MB = M, or M + 1 with the base column first);
# every launcher takes ``base`` to say which.

def budget_bytes(cfg: dict) -> int:
    hit = _budget_override["bytes"]
    return hit if hit is not None else int(cfg["chunk_mib"] * 2**20)


def chunk_rows(row_bytes: int, N: int, budget: int) -> int:
    """Rows per chunk: as many as fit the budget, a multiple of 128 when that many fit."""
    rows = max(1, budget // max(1, row_bytes))
    if rows >= 256:
        rows -= rows % 128
    return min(N, rows)


def write_basis(x, s, t0, ih, out, k, d, M, f0, cfg, base=False):
    """Fill ``out`` [R, F*MB] with the (scaled) basis of x[:, f0:f0+F] (x, s already row-sliced)."""
    MB = M + int(base)
    R, FM = out.shape
    F = FM // MB
    if R == 0 or F == 0:
        return out
    ss = s if s is not None else x
    BLOCK_N, BLOCK_I = cfg["BASIS_BLOCK_N"], cfg["BASIS_BLOCK_I"]
    scatter = cfg.get("basis_scatter", 0) == 1
    if scatter:  # TB: width of the zeroing sweep over the program's contiguous span
        TB = cfg["BASIS_TB"] * 8
    else:
        TB = rt.next_pow2(M) if M <= cfg["BASIS_TB"] else cfg["BASIS_TB"]
    grid = (rt.cdiv(R, BLOCK_N), rt.cdiv(F, BLOCK_I))
    _basis_block_kernel[grid](
        x, ss, t0, ih, out, R, F, M, MB, M + k, f0,
        x.stride(0), x.stride(1), ss.stride(0), ss.stride(1), out.stride(0),
        K=k, D=d, HAS_S=s is not None, HAS_BASE=base, BLOCK_N=BLOCK_N, BLOCK_I=BLOCK_I, TB=TB,
        SCATTER=scatter, num_warps=cfg["basis_warps"])
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


def feature_block(N: int, MB: int, el: int, budget: int) -> int:
    """Features per block when a block spans all N rows: a multiple of 8, so that every block's
    column offset and the buffer's row stride stay 16-byte aligned (a misaligned operand sends
    cuBLAS to its slow align-1 kernels: results/gpu/README.md profile, GPT-FFN dW); 0 when
    fewer than 8 features of all rows fit the budget (then row chunks are used)."""
    feats = budget // max(1, N * MB * el)
    return feats - feats % 8


def _flat(C):
    """[out, in, M] -> [out, in*M]: a view for the parameter's own (contiguous) layout."""
    return C.reshape(C.shape[0], -1)


def _exact(dtype) -> bool:
    return dtype in (torch.float32, torch.float64)


def fwd_flat(x, t0, ih, Cf, s, k, d, M, base, y, cfg):
    """y = A @ Cf^T.  Returns A when it was built in one piece (else None).

    Row chunks while each chunk's GEMM still has a full wave of output tiles; else (thin
    chunks, large G) blocks of features over all rows, accumulated into y."""
    N, IN = x.shape
    MB = M + int(base)
    K = IN * MB
    el = Cf.element_size()
    budget = budget_bytes(cfg)
    OUT = Cf.shape[0]
    if N * K * el <= budget:
        A = write_basis(x, s, t0, ih, torch.empty((N, K), dtype=Cf.dtype, device=x.device), k, d, M, 0, cfg, base)
        torch.mm(A, Cf.t(), out=y)
        return A
    rows = chunk_rows(K * el, N, budget)
    feats = feature_block(N, MB, el, budget)
    if rows * OUT >= cfg["min_tile_elems"] or feats == 0:
        buf = torch.empty((rows, K), dtype=Cf.dtype, device=x.device)
        for r0 in range(0, N, rows):
            r1 = min(N, r0 + rows)
            A = write_basis(x[r0:r1], None if s is None else s[r0:r1], t0, ih, buf[: r1 - r0], k, d, M, 0,
                            cfg, base)
            torch.mm(A, Cf.t(), out=y[r0:r1])
        return None
    buf = torch.empty((N, feats * MB), dtype=Cf.dtype, device=x.device)
    acc = y if _exact(y.dtype) else torch.zeros(y.shape, dtype=torch.float32, device=x.device)
    for f0 in range(0, IN, feats):
        f1 = min(IN, f0 + feats)
        A = write_basis(x, s, t0, ih, buf[:, : (f1 - f0) * MB], k, d, M, f0, cfg, base)
        part = Cf[:, f0 * MB:f1 * MB].t()
        if acc is y and f0 == 0:
            torch.mm(A, part, out=acc)
        elif acc is y:
            acc.addmm_(A, part)
        else:  # 16-bit GEMM per block, sums in float32
            acc += torch.mm(A, part)
    if acc is not y:
        y.copy_(acc)
    return None


def dx_flat(x, t0, ih, Cf, g, k, d, M, base, u, f64, cfg):
    N, IN = x.shape
    K = IN * (M + int(base))
    rows = chunk_rows(K * Cf.element_size(), N, budget_bytes(cfg))
    buf = torch.empty((rows, K), dtype=Cf.dtype, device=x.device)
    for r0 in range(0, N, rows):
        r1 = min(N, r0 + rows)
        P = torch.mm(g[r0:r1], Cf, out=buf[: r1 - r0])
        reduce_active(x[r0:r1], t0, ih, P, u[r0:r1], k, d, M, f64, cfg, base)
    return u


def dw_flat(x, t0, ih, g, s, k, d, M, base, wf, cfg, A=None):
    """wf [out, in*MB] (g's dtype) = g^T @ A: row chunks accumulated when W is small next to a
    chunk, else blocks of features over all rows (each block's GEMM writes its own columns)."""
    N, IN = x.shape
    MB = M + int(base)
    K = IN * MB
    OUT = g.shape[1]
    el = g.element_size()
    budget = budget_bytes(cfg)
    gt = g.t()
    if A is None and N * K * el <= budget:  # one chunk
        A = write_basis(x, s, t0, ih, torch.empty((N, K), dtype=g.dtype, device=x.device), k, d, M, 0, cfg, base)
    if A is not None:
        torch.mm(gt, A, out=wf)
        return wf
    feats = feature_block(N, MB, el, budget)
    if feats == 0 or OUT * K * 4 * cfg["dw_accumulate_ratio"] <= budget:
        rows = chunk_rows(K * el, N, budget)
        buf = torch.empty((rows, K), dtype=g.dtype, device=x.device)
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
        return wf
    buf = torch.empty((N, feats * MB), dtype=g.dtype, device=x.device)
    for f0 in range(0, IN, feats):
        f1 = min(IN, f0 + feats)
        A = write_basis(x, s, t0, ih, buf[:, : (f1 - f0) * MB], k, d, M, f0, cfg, base)
        torch.mm(gt, A, out=wf[:, f0 * MB:f1 * MB])
    return wf


# ---- the three primitives (no base column) -----------------------------------------

def fwd(x, t0, ih, C, s, k, d, y, cfg):
    fwd_flat(x, t0, ih, _flat(C), s, k, d, C.shape[2], False, y, cfg)
    return y


def dx(x, t0, ih, C, g, k, d, u, f64, cfg):
    return dx_flat(x, t0, ih, _flat(C), g, k, d, C.shape[2], False, u, f64, cfg)


def dw(x, t0, ih, g, s, k, d, M, w, cfg):
    dw_flat(x, t0, ih, g, s, k, d, M, False, w.view(w.shape[0], -1), cfg)
    return w
