"""On-chip B-spline values: the k+1 active bases at x on any knot vector, any derivative order.

Every kernel reads its features' knots (``T``, one row per feature) and their geometry
(``GEO``, :mod:`.geometry`: first and last knot, 1/spacing of the line through them, and
whether every knot lies within a small fraction of a spacing of that line), which the
caller derives from the knots on the device once per call: no host sync, nothing
remembered between calls.

The cell ``j`` (``t_j <= x < t_{j+1}``) is first guessed in closed form from the first knot
and the spacing, then checked against the two knots around the guess (two cached loads)
and moved by one cell where x is within rounding of a knot.  Then:

* rows on the line (fresh grids, ``extend_grid``): the local coordinate is ``(x - t_j) / h``
  with ``t_j`` the knot itself, so it keeps its precision at any G (no ``(x - t_0)/h - j``
  cancellation), and the k+1 values follow from the cardinal Cox–de Boor triangle on it, as
  in kernel v2: two loads and a few compares per element more than v2;
* other rows (``update_grid``'s quantile grids, a float32 grid in a float64 layer, float32 at
  large G): where a guess missed, the block runs a binary search over the row's knots
  (``LOG2 = ceil(log2(G + 2k))`` cached loads, a bounded search), then de Boor's triangle
  with the actual knots ``t_{j-k+1} .. t_{j+k}`` (2k loads, k(k+1)/2 divisions), derivatives
  by ``B'_{a,q} = q (B_{a,q-1} / (t_{a+q} - t_a) - B_{a+1,q-1} / (t_{a+q+1} - t_{a+1}))``.

Which runs is decided per program (all its features on the line or not) and per block
(any guess missed or not): branches on scalars, no divergence, so a uniform layer runs
only the closed-form code.  The values sit in at most ``MAX_ORDER + 1`` register slots
``c0..c7`` (slot ``l`` holds basis ``j - k + l``; unused slots stay zero); consumers walk
them by shifting ``c0, c1, ... = c1, c2, ...`` inside ``tl.static_range``.  Everything is
written inline, without nested jit helpers per slot: fewer calls keep the CPU interpreter
fast.
"""

import triton
import triton.language as tl

from .dispatch import MAX_ORDER  # noqa: F401  (k + 1 <= 8 register slots)


@triton.jit
def feature_rows(T, GEO, F0, offs_i, F, stk, sgeo):
    """Knot-row pointers and geometry ``(trow, t0, tend, ih, uni)`` of features F0 + offs_i
    (lanes beyond F read feature F0 + F - 1, so every pointer stays valid)."""
    fi = F0 + tl.minimum(offs_i, F - 1)
    trow = T + fi.to(tl.int64) * stk
    t0 = tl.load(GEO + fi)
    tend = tl.load(GEO + sgeo + fi)
    ih = tl.load(GEO + 2 * sgeo + fi)
    uni = tl.load(GEO + 3 * sgeo + fi)
    return trow, t0, tend, ih, uni


@triton.jit
def load_block(X, T, GEO, R, F, F0, sxn, sxi, stk, sgeo, BLOCK_N: tl.constexpr, BLOCK_I: tl.constexpr):
    """The [BLOCK_N, BLOCK_I] block of x this program owns (program ids 0 / 1 over rows < R and
    features F0 .. F0 + F) and its features' knots and geometry:
    ``(n64, i64, mask_n, m2, x, trow, t0, tend, ih, uniform)``, ``i64`` counted from F0, int64
    offsets, masked elements 0; ``uniform``: a scalar, every feature of the block uniform."""
    offs_n = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
    offs_i = tl.program_id(1) * BLOCK_I + tl.arange(0, BLOCK_I)
    mask_n = offs_n < R
    mask_i = offs_i < F
    n64 = offs_n.to(tl.int64)
    i64 = offs_i.to(tl.int64)
    m2 = mask_n[:, None] & mask_i[None, :]
    xv = tl.load(X + n64[:, None] * sxn + (F0 + i64)[None, :] * sxi, mask=m2, other=0.0)
    trow, t0, tend, ih, uni = feature_rows(T, GEO, F0, offs_i, F, stk, sgeo)
    return n64, i64, mask_n, m2, xv, trow[None, :], t0[None, :], tend[None, :], ih[None, :], tl.min(uni, axis=0) > 0.5


@triton.jit
def local_basis(x, trow, t0, tend, ih, uniform, scale, NCELL, K: tl.constexpr, D: tl.constexpr,
                LOG2: tl.constexpr):
    """Active bases of ``x`` (any shape; knot rows ``trow`` and geometry broadcast to it):
    returns ``(j, live, c0..c7)``.

    ``j`` is the cell (``t_j <= x < t_{j+1}``; basis ``j-K+l`` sits in slot ``l``), ``live``
    marks inputs that touch some basis (inside the grid, or non-finite so that they poison).
    Values are the D-th derivative times ``scale``; an input outside ``[t_0, t_end)`` gives
    zeros, a NaN/Inf input NaN in every slot.  Slots of bases that do not exist (index < 0
    or >= G + k) hold finite values: consumers mask them by index.  ``uniform`` (a scalar)
    picks the closed-form path; ``LOG2`` bounds the search of the other.
    """
    xc = x.to(t0.dtype)
    inside = (xc >= t0) & (xc < tend)  # False for NaN
    sc = tl.where(inside, scale, 0.0 * scale)
    z = tl.zeros_like(sc)
    one = z + 1.0
    jg = tl.minimum(tl.floor(tl.where(inside, (xc - t0) * ih, 0.0)).to(tl.int32), NCELL - 1)
    tj = tl.load(trow + jg).to(xc.dtype)
    tj1 = tl.load(trow + jg + 1).to(xc.dtype)
    dn = xc < tj  # the guess is one cell high (on the line: x within rounding of t_j)
    up = xc >= tj1  # ... or low
    c0 = one
    c1 = z
    c2 = z
    c3 = z
    c4 = z
    c5 = z
    c6 = z
    c7 = z
    if uniform:
        f = (xc - tj) * ih
        f = tl.where(inside, tl.where(dn, f + 1.0, tl.where(up, f - 1.0, f)), 0.0)
        j = tl.where(inside, jg - dn.to(tl.int32) + up.to(tl.int32), 0)
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
        # Derivative steps, N_{p+1}' (v) = N_p(v) - N_p(v - 1):  c_L <- c_L-1 - c_L, times 1/h each
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
            sc = sc * ih
    else:
        j = tl.where(inside, jg, 0)
        if tl.max((inside & (dn | up)).to(tl.int32), axis=None) > 0:  # a guess missed: search
            # t_lo <= x < t_hi kept while the bracket halves (NaN: stays at 0)
            lo = tl.zeros_like(j)
            hi = lo + NCELL
            for _ in tl.static_range(LOG2):
                mid = (lo + hi) >> 1
                ge = xc >= tl.load(trow + mid).to(xc.dtype)
                lo = tl.where(ge, mid, lo)
                hi = tl.where(ge, hi, mid)
            j = lo
        # Knots of the triangle at level q: a_L = t_{j-q+L} (a window shifted down one knot per
        # level), b_L = t_{j+L}; basis j-q+L of level q sits in slot L.  Indices are clamped
        # into the row: only slots of bases that do not exist read clamped knots, and a zero
        # denominator there is replaced by 1 (their values are finite and masked by index).
        a1 = tl.load(trow + j).to(xc.dtype)
        xe = tl.where(inside, xc, a1)
        b1 = tl.load(trow + tl.minimum(j + 1, NCELL)).to(xc.dtype)
        b2 = z
        b3 = z
        b4 = z
        b5 = z
        b6 = z
        b7 = z
        if K >= 2:
            b2 = tl.load(trow + tl.minimum(j + 2, NCELL)).to(xc.dtype)
        if K >= 3:
            b3 = tl.load(trow + tl.minimum(j + 3, NCELL)).to(xc.dtype)
        if K >= 4:
            b4 = tl.load(trow + tl.minimum(j + 4, NCELL)).to(xc.dtype)
        if K >= 5:
            b5 = tl.load(trow + tl.minimum(j + 5, NCELL)).to(xc.dtype)
        if K >= 6:
            b6 = tl.load(trow + tl.minimum(j + 6, NCELL)).to(xc.dtype)
        if K >= 7:
            b7 = tl.load(trow + tl.minimum(j + 7, NCELL)).to(xc.dtype)
        a2 = z
        a3 = z
        a4 = z
        a5 = z
        a6 = z
        a7 = z
        # w_L: the level's weight of slot L (raising) or 1 / (t_{a+q} - t_a) (derivatives);
        # w_{q+1} is still 0 at level q, which is all its use there needs (c_q is 0 before).
        w1 = z
        w2 = z
        w3 = z
        w4 = z
        w5 = z
        w6 = z
        w7 = z
        w8 = z
        for q in tl.static_range(1, K + 1):
            if q > 1:
                if q >= 7:
                    a7 = a6
                if q >= 6:
                    a6 = a5
                if q >= 5:
                    a5 = a4
                if q >= 4:
                    a4 = a3
                if q >= 3:
                    a3 = a2
                a2 = a1
                a1 = tl.load(trow + tl.maximum(j + 1 - q, 0)).to(xc.dtype)
            if q <= K - D:  # raise the order: w_L = (x - t_a) / (t_{a+q} - t_a)
                if q >= 7:
                    w7 = (xe - a7) / tl.where(b7 != a7, b7 - a7, 1.0)
                if q >= 6:
                    w6 = (xe - a6) / tl.where(b6 != a6, b6 - a6, 1.0)
                if q >= 5:
                    w5 = (xe - a5) / tl.where(b5 != a5, b5 - a5, 1.0)
                if q >= 4:
                    w4 = (xe - a4) / tl.where(b4 != a4, b4 - a4, 1.0)
                if q >= 3:
                    w3 = (xe - a3) / tl.where(b3 != a3, b3 - a3, 1.0)
                if q >= 2:
                    w2 = (xe - a2) / tl.where(b2 != a2, b2 - a2, 1.0)
                w1 = (xe - a1) / tl.where(b1 != a1, b1 - a1, 1.0)
                if q >= 7:
                    c7 = w7 * c6 + (1.0 - w8) * c7
                if q >= 6:
                    c6 = w6 * c5 + (1.0 - w7) * c6
                if q >= 5:
                    c5 = w5 * c4 + (1.0 - w6) * c5
                if q >= 4:
                    c4 = w4 * c3 + (1.0 - w5) * c4
                if q >= 3:
                    c3 = w3 * c2 + (1.0 - w4) * c3
                if q >= 2:
                    c2 = w2 * c1 + (1.0 - w3) * c2
                c1 = w1 * c0 + (1.0 - w2) * c1
                c0 = (1.0 - w1) * c0
            else:  # a derivative step: w_L = 1 / (t_{a+q} - t_a)
                if q >= 7:
                    w7 = one / tl.where(b7 != a7, b7 - a7, 1.0)
                if q >= 6:
                    w6 = one / tl.where(b6 != a6, b6 - a6, 1.0)
                if q >= 5:
                    w5 = one / tl.where(b5 != a5, b5 - a5, 1.0)
                if q >= 4:
                    w4 = one / tl.where(b4 != a4, b4 - a4, 1.0)
                if q >= 3:
                    w3 = one / tl.where(b3 != a3, b3 - a3, 1.0)
                if q >= 2:
                    w2 = one / tl.where(b2 != a2, b2 - a2, 1.0)
                w1 = one / tl.where(b1 != a1, b1 - a1, 1.0)
                if q >= 7:
                    c7 = (c6 * w7 - c7 * w8) * q
                if q >= 6:
                    c6 = (c5 * w6 - c6 * w7) * q
                if q >= 5:
                    c5 = (c4 * w5 - c5 * w6) * q
                if q >= 4:
                    c4 = (c3 * w4 - c4 * w5) * q
                if q >= 3:
                    c3 = (c2 * w3 - c3 * w4) * q
                if q >= 2:
                    c2 = (c1 * w2 - c2 * w3) * q
                c1 = (c0 * w1 - c1 * w2) * q
                c0 = -(c0 * w1) * q
    # 0 inside the grid's reach, NaN for NaN/Inf inputs (x - x), so they poison outputs.
    poison = xc - xc
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
