"""Derivatives of the fused kernels, written once, and the eager autograd Functions that use them.

Three primitives, each derivative again a primitive (d+1 for the x direction), so that
autograd composes them to any order:

  fwd_d(x, C, s):  dC = dw_d(x, gy, s);  dx = s * dx_{d+1}(x, C, gy);  ds = dx_d(x, C, gy)
  dx_d(x, C, g):   dg = fwd_d(x, C, gu); dC = dw_d(x, g, gu);   dx = gu * dx_{d+1}(x, C, g)
  dw_d(x, g, s):   dg = fwd_d(x, gW, s); ds = dx_d(x, gW, g);   dx = s * dx_{d+1}(x, gW, g)

The whole layer (:mod:`.layer`) has a fast first-order backward; under ``create_graph``
that backward runs as a differentiable function whose own backward (the layer's second
derivative, :func:`layer_bwd_grads`) is written with the primitives and torch ops, so PINN
losses keep the fused first derivative and every higher order still composes.

The formulas take the namespace ``P`` of primitives to call: :class:`Eager` here (plain
autograd.Functions, fewer dispatcher layers per call), or the registered ops of
:mod:`.ops` (what torch.compile traces).  Grid knots and geometry are not differentiated.
"""

import torch
import torch.nn.functional as F

from . import dw as _dw
from . import dx as _dx
from . import fwd as _fwd
from . import layer


def _c(t):
    return None if t is None else t.contiguous()


# ---- launch bodies, shared by the Functions below and the registered ops -------------------

def run_fwd(x, grid, geo, coeff, s, k, d):
    return _fwd.fwd(_c(x), _c(grid), geo, coeff, _c(s), k, d)


def run_dx(x, grid, geo, coeff, g, k, d):
    return _dx.dx(_c(x), _c(grid), geo, coeff, _c(g), k, d)


def run_dw(x, grid, geo, g, s, k, d, num_bases):
    return _dw.dw(_c(x), _c(grid), geo, _c(g), _c(s), k, d, num_bases)


# ---- the formulas -------------------------------------------------------------------------

def _times(a, s):
    return a if s is None else a * s


def fwd_grads(P, saved, k, d, need, gy):
    x, grid, geo, coeff, s = saved
    gx = gc = gs = None
    if need[0]:
        gx = _times(P.dx(x, grid, geo, coeff, gy, k, d + 1), s)
    if need[3]:
        gc = P.dw(x, grid, geo, gy, s, k, d, coeff.shape[2])
    if s is not None and need[4]:
        gs = P.dx(x, grid, geo, coeff, gy, k, d)
    return gx, None, None, gc, gs, None, None


def dx_grads(P, saved, k, d, need, gu):
    x, grid, geo, coeff, g = saved
    gx = gc = gg = None
    if need[0]:
        gx = gu * P.dx(x, grid, geo, coeff, g, k, d + 1)
    if need[3]:
        gc = P.dw(x, grid, geo, g, gu, k, d, coeff.shape[2])
    if need[4]:
        gg = P.fwd(x, grid, geo, coeff, gu, k, d)
    return gx, None, None, gc, gg, None, None


def dw_grads(P, saved, k, d, need, gw):
    x, grid, geo, g, s = saved
    gx = gg = gs = None
    if need[0]:
        gx = _times(P.dx(x, grid, geo, gw, g, k, d + 1), s)
    if need[3]:
        gg = P.fwd(x, grid, geo, gw, s, k, d)
    if s is not None and need[4]:
        gs = P.dx(x, grid, geo, gw, g, k, d)
    return gx, None, None, gg, gs, None, None, None


def _add(a, b):
    return b if a is None else (a if b is None else a + b)


def layer_bwd_grads(P, x, grid, geo, bw, sw, sc, gy, k, need, a, b, csw, dsc):
    """Gradients of the layer's first-order backward ``(gx, gbw, gsw, gsc)`` with respect to
    ``(x, bw, sw, sc, gy)``, given cotangents ``(a, b, csw, dsc)`` (any may be None);
    ``need``: which of (x, bw, sw, sc) are wanted (the rest may come back anyway).

    With C = sw * sc, gC = dw_0(x, gy), s' / s'' the derivatives of silu and c = csw * sc +
    dsc * sw the cotangent reaching gC:
      d gy = fwd_1(x, C, a) + (a s'(x)) bw^T + silu(x) b^T + fwd_0(x, c)
      d x  = a (dx_2(x, C, gy) + s''(x) (gy bw)) + s'(x) (gy b) + dx_1(x, c, gy)
      d bw = gy^T (a s'(x));  d C = dw_1(x, gy, a), which reaches sw and sc through C;
      and gsw = gC sc, gsc = sum_t gC sw add dsc gC to d sw and sum_t csw gC to d sc.
    Computed in the promoted dtype of x and the weights (float32 under autocast)."""
    dt = torch.promote_types(x.dtype, sw.dtype)
    M = sw.shape[2]
    xw, gyw, bww, sww = x.to(dt), gy.to(dt), bw.to(dt), sw.to(dt)
    scw = None if sc is None else sc.to(dt).unsqueeze(-1)
    C = sww if scw is None else sww * scw
    a, b, csw = (None if t is None else t.to(dt) for t in (a, b, csw))
    dsc = None if (dsc is None or sc is None) else dsc.to(dt).unsqueeze(-1)
    c = _add(None if csw is None else _times(csw, scw), None if dsc is None else dsc * sww)
    sg = torch.sigmoid(xw)
    d1 = sg * (1 + xw * (1 - sg))
    ggy = gx = gbw = gsw = gsc = None
    if a is not None:
        ggy = P.fwd(xw, grid, geo, C, a, k, 1) + (a * d1) @ bww.t()
        gx = a * (P.dx(xw, grid, geo, C, gyw, k, 2) + sg * (1 - sg) * (2 + xw * (1 - 2 * sg)) * (gyw @ bww))
        gbw = gyw.t() @ (a * d1)
        gCa = P.dw(xw, grid, geo, gyw, a, k, 1, M)
        gsw = _times(gCa, scw)
        gsc = None if scw is None else (gCa * sww).sum(-1)
    if b is not None:
        ggy = _add(ggy, F.silu(xw) @ b.t())
        gx = _add(gx, d1 * (gyw @ b))
    if c is not None:
        ggy = _add(ggy, P.fwd(xw, grid, geo, c, None, k, 0))
        gx = _add(gx, P.dx(xw, grid, geo, c, gyw, k, 1))
    if scw is not None and ((csw is not None and need[3]) or (dsc is not None and need[2])):
        gC = P.dw(xw, grid, geo, gyw, None, k, 0, M)
        if dsc is not None:
            gsw = _add(gsw, dsc * gC)
        if csw is not None:
            gsc = _add(gsc, (csw * gC).sum(-1))

    def cast(t, like):
        return None if t is None or like is None else t.to(like.dtype)

    return cast(gx, x), cast(gbw, bw), cast(gsw, sw), cast(gsc, sc), cast(ggy, gy)


# ---- eager Functions ----------------------------------------------------------------------

class FwdFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, grid, geo, coeff, s, k, d):
        ctx.save_for_backward(x, grid, geo, coeff, s)
        ctx.k, ctx.d = k, d
        return run_fwd(x, grid, geo, coeff, s, k, d)

    @staticmethod
    def backward(ctx, gy):
        return fwd_grads(Eager, ctx.saved_tensors, ctx.k, ctx.d, ctx.needs_input_grad, gy)


class DxFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, grid, geo, coeff, g, k, d):
        ctx.save_for_backward(x, grid, geo, coeff, g)
        ctx.k, ctx.d = k, d
        return run_dx(x, grid, geo, coeff, g, k, d)

    @staticmethod
    def backward(ctx, gu):
        return dx_grads(Eager, ctx.saved_tensors, ctx.k, ctx.d, ctx.needs_input_grad, gu)


class DwFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, grid, geo, g, s, k, d, num_bases):
        ctx.save_for_backward(x, grid, geo, g, s)
        ctx.k, ctx.d = k, d
        return run_dw(x, grid, geo, g, s, k, d, num_bases)

    @staticmethod
    def backward(ctx, gw):
        return dw_grads(Eager, ctx.saved_tensors, ctx.k, ctx.d, ctx.needs_input_grad, gw)


class LayerFn(torch.autograd.Function):
    """The fused layer (:func:`.layer.forward`) on 2-D x; ``plan`` from :func:`.layer.plan`."""

    @staticmethod
    def forward(ctx, x, grid, base_weight, spline_weight, scaler, k, plan):
        y, (geo, Wdx, A) = layer.forward(x, grid, base_weight, spline_weight, scaler, k, plan, keep_basis=True)
        ctx.save_for_backward(x, grid, base_weight, spline_weight, scaler, geo, Wdx, A)
        ctx.k, ctx.plan = k, plan
        return y

    @staticmethod
    def backward(ctx, gy):
        x, grid, bw, sw, sc, geo, Wdx, A = ctx.saved_tensors
        need = ctx.needs_input_grad
        if torch.is_grad_enabled():  # create_graph: the same backward, as a differentiable function
            gx, gbw, gsw, gsc = LayerBwdFn.apply(x, grid, geo, Wdx, bw, sw, sc, gy, ctx.k, ctx.plan)
        else:
            gx, gbw, gsw, gsc = layer.backward(x, grid, bw, sw, sc, gy, ctx.k, ctx.plan, (geo, Wdx, A),
                                               (need[0], any(need[2:5])))
        return gx, None, gbw, gsw, gsc, None, None


class LayerBwdFn(torch.autograd.Function):
    """The layer's first-order backward, differentiable (its backward: :func:`layer_bwd_grads`)."""

    @staticmethod
    def forward(ctx, x, grid, geo, Wdx, base_weight, spline_weight, scaler, gy, k, plan):
        ctx.save_for_backward(x, grid, geo, base_weight, spline_weight, scaler, gy)
        ctx.k = k
        ctx.set_materialize_grads(False)
        return layer.backward(x, grid, base_weight, spline_weight, scaler, gy, k, plan, (geo, Wdx, None))

    @staticmethod
    def backward(ctx, a, b, csw, dsc):
        x, grid, geo, bw, sw, sc, gy = ctx.saved_tensors
        need = ctx.needs_input_grad
        gx, gbw, gsw, gsc, ggy = layer_bwd_grads(Eager, x, grid, geo, bw, sw, sc, gy, ctx.k,
                                                 (need[0], need[4], need[5], need[6]), a, b, csw, dsc)
        return gx, None, None, None, gbw, gsw, gsc, ggy, None, None


class Eager:
    """The primitives as eager autograd Functions (what :func:`layer_bwd_grads` calls in eager code)."""

    fwd = FwdFn.apply
    dx = DxFn.apply
    dw = DwFn.apply

