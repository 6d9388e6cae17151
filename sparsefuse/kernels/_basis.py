"""On-chip B-spline values: the k+1 active bases of a uniform grid, any derivative order.

On a uniform grid every basis is a shifted cardinal B-spline, so for an input in
cell ``j`` (fraction ``f``) the active bases ``j-k .. j`` follow from a short
Cox–de Boor triangle on ``f`` alone.  The triangle is unrolled over at most
``MAX_ORDER + 1`` register values ``c0..c7`` (local index ``l`` holds basis
``j - k + l``); unused slots stay zero.  Everything is written inline (no nested
jit helpers per slot): fewer calls keep the CPU interpreter fast, and consumers
walk the slots by shifting ``c0, c1, ... = c1, c2, ...`` inside ``tl.static_range``.

Derivatives use ``N_p'(v) = N_{p-1}(v) - N_{p-1}(v-1)``: raise the triangle to
order ``k - d`` and then take ``d`` difference steps.
"""

import triton
import triton.language as tl

from .dispatch import MAX_ORDER  # noqa: F401  (k + 1 <= 8 register slots)


@triton.jit
def load_block(X, T0, IH, R, F, F0, sxn, sxi, BLOCK_N: tl.constexpr, BLOCK_I: tl.constexpr):
    """The [BLOCK_N, BLOCK_I] block of x this program owns (program ids 0 / 1 over rows < R and
    features F0 .. F0 + F) and its features' geometry: ``(n64, i64, mask_n, m2, x, t0, ih)``,
    ``i64`` counted from F0, int64 offsets, masked elements 0 (t0 0, ih 1)."""
    offs_n = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
    offs_i = tl.program_id(1) * BLOCK_I + tl.arange(0, BLOCK_I)
    mask_n = offs_n < R
    mask_i = offs_i < F
    n64 = offs_n.to(tl.int64)
    i64 = offs_i.to(tl.int64)
    m2 = mask_n[:, None] & mask_i[None, :]
    xv = tl.load(X + n64[:, None] * sxn + (F0 + i64)[None, :] * sxi, mask=m2, other=0.0)
    t0 = tl.load(T0 + F0 + offs_i, mask=mask_i, other=0.0)
    ih = tl.load(IH + F0 + offs_i, mask=mask_i, other=1.0)
    return n64, i64, mask_n, m2, xv, t0, ih


@triton.jit
def local_basis(x, t0, ih, scale, NCELL, K: tl.constexpr, D: tl.constexpr):
    """Active bases of ``x`` (any shape): returns ``(j, live, c0..c7)``.

    ``j`` is the cell (basis ``j-K+l`` sits in slot ``l``), ``live`` marks inputs that
    touch some basis (inside the grid, or non-finite so that they poison).  Values
    are the D-th derivative, multiplied by ``scale``; an input outside
    ``[t_0, t_end)`` gives zeros, a NaN/Inf input gives NaN in every slot.
    """
    xc = x.to(t0.dtype)
    u = (xc - t0) * ih
    inside = (u >= 0) & (u < NCELL)  # False for NaN
    uc = tl.where(inside, u, 0.0)
    jf = tl.floor(uc)
    f = uc - jf
    j = jf.to(tl.int32)
    z = tl.zeros_like(f)
    one = z + 1.0
    c0 = one
    c1 = z
    c2 = z
    c3 = z
    c4 = z
    c5 = z
    c6 = z
    c7 = z
    # Raise order p -> p+1 (uniform knots), slots updated top-down in place:
    #   c_L <- ((f + p + 1 - L) c_{L-1} + (L + 1 - f) c_L) / (p + 1)
    for p in tl.static_range(K - D):
        # 1 / (p + 1) as a Python float would be a float32 constant: exact division in float64.
        if f.dtype == tl.float64:
            inv = one / (p + 1)
        else:
            inv = 1.0 / (p + 1)
        if p + 1 >= 7:
            c7 = ((f + (p - 6)) * c6 + (8.0 - f) * c7) * inv
        if p + 1 >= 6:
            c6 = ((f + (p - 5)) * c5 + (7.0 - f) * c6) * inv
        if p + 1 >= 5:
            c5 = ((f + (p - 4)) * c4 + (6.0 - f) * c5) * inv
        if p + 1 >= 4:
            c4 = ((f + (p - 3)) * c3 + (5.0 - f) * c4) * inv
        if p + 1 >= 3:
            c3 = ((f + (p - 2)) * c2 + (4.0 - f) * c3) * inv
        if p + 1 >= 2:
            c2 = ((f + (p - 1)) * c1 + (3.0 - f) * c2) * inv
        if p + 1 >= 1:
            c1 = ((f + p) * c0 + (2.0 - f) * c1) * inv
        c0 = (1.0 - f) * c0 * inv
    # Derivative steps, N_{p+1}' (v) = N_p(v) - N_p(v - 1):  c_L <- c_{L-1} - c_L
    for p in tl.static_range(K - D, K):
        if p + 1 >= 7:
            c7 = c6 - c7
        if p + 1 >= 6:
            c6 = c5 - c6
        if p + 1 >= 5:
            c5 = c4 - c5
        if p + 1 >= 4:
            c4 = c3 - c4
        if p + 1 >= 3:
            c3 = c2 - c3
        if p + 1 >= 2:
            c2 = c1 - c2
        if p + 1 >= 1:
            c1 = c0 - c1
        c0 = -c0
    # 0 inside the grid's reach, NaN for NaN/Inf inputs (x - x), so they poison outputs.
    poison = xc - xc
    sc = tl.where(inside, scale, 0.0 * scale)
    for _ in tl.static_range(D):
        sc = sc * ih
    c0 = c0 * sc + poison
    c1 = c1 * sc + poison
    c2 = c2 * sc + poison
    c3 = c3 * sc + poison
    c4 = c4 * sc + poison
    c5 = c5 * sc + poison
    c6 = c6 * sc + poison
    c7 = c7 * sc + poison
    live = inside | (poison != 0.0)
    return j, live, c0, c1, c2, c3, c4, c5, c6, c7
