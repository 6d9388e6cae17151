"""The three primitives as torch.library custom ops, differentiable to any order.

Each primitive's derivatives are again primitives (d+1 for the x direction), so
the backward formulas call the custom ops themselves and autograd composes to any
order; torch.compile sees opaque ops with fake (shape-only) implementations.

  fwd_d(x, C, s):  dC = dw_d(x, gy, s);  dx = s * dx_{d+1}(x, C, gy);  ds = dx_d(x, C, gy)
  dx_d(x, C, g):   dg = fwd_d(x, C, gu); dC = dw_d(x, g, gu);   dx = gu * dx_{d+1}(x, C, g)
  dw_d(x, g, s):   dg = fwd_d(x, gW, s); ds = dx_d(x, gW, g);   dx = s * dx_{d+1}(x, gW, g)

Grid geometry enters as ``t0`` (first knot) and ``ih`` (1 / knot spacing) per
feature; they are not differentiated.  Dtypes: x, s, t0, ih are the "geometry"
side (fwd/dw basis values are computed in float32, or float64 for float64 x);
C, g and W are the "weight" side that feeds tl.dot.  fwd returns C's dtype, dx
returns x's dtype, dw returns g's dtype.
"""

from typing import Optional

import torch
from torch import Tensor

from . import dw as _dw
from . import dx as _dx
from . import fwd as _fwd


def _c(t):
    return None if t is None else t.contiguous()


# ---- forward implementations -------------------------------------------------------

@torch.library.custom_op("sparsefuse::fwd", mutates_args=())
def fwd(x: Tensor, t0: Tensor, ih: Tensor, coeff: Tensor, s: Optional[Tensor], k: int, d: int) -> Tensor:
    """y[n,o] = sum_i s[n,i] sum_t B^(d)_t(x[n,i]) coeff[o,i,t]."""
    return _fwd.fwd(_c(x), _c(t0), _c(ih), coeff, _c(s), k, d)


@fwd.register_fake
def _(x, t0, ih, coeff, s, k, d):
    return x.new_empty((x.shape[0], coeff.shape[0]), dtype=coeff.dtype)


@torch.library.custom_op("sparsefuse::dx", mutates_args=())
def dx(x: Tensor, t0: Tensor, ih: Tensor, coeff: Tensor, g: Tensor, k: int, d: int) -> Tensor:
    """u[n,i] = sum_o g[n,o] sum_t B^(d)_t(x[n,i]) coeff[o,i,t]."""
    return _dx.dx(_c(x), _c(t0), _c(ih), coeff, _c(g), k, d)


@dx.register_fake
def _(x, t0, ih, coeff, g, k, d):
    return x.new_empty(x.shape, dtype=x.dtype)


@torch.library.custom_op("sparsefuse::dw", mutates_args=())
def dw(x: Tensor, t0: Tensor, ih: Tensor, g: Tensor, s: Optional[Tensor], k: int, d: int,
       num_bases: int) -> Tensor:
    """W[o,i,t] = sum_n g[n,o] s[n,i] B^(d)_t(x[n,i]),  t < num_bases."""
    return _dw.dw(_c(x), _c(t0), _c(ih), _c(g), _c(s), k, d, num_bases)


@dw.register_fake
def _(x, t0, ih, g, s, k, d, num_bases):
    return x.new_empty((g.shape[1], x.shape[1], num_bases), dtype=g.dtype)


# ---- autograd -----------------------------------------------------------------------

def _times(a, s):
    return a if s is None else a * s


def _fwd_setup(ctx, inputs, output):
    x, t0, ih, coeff, s, k, d = inputs
    ctx.save_for_backward(x, t0, ih, coeff, s)
    ctx.k, ctx.d = k, d


def _fwd_backward(ctx, gy):
    x, t0, ih, coeff, s = ctx.saved_tensors
    k, d = ctx.k, ctx.d
    need = ctx.needs_input_grad
    gx = gc = gs = None
    if need[0]:
        gx = _times(dx(x, t0, ih, coeff, gy, k, d + 1), s)
    if need[3]:
        gc = dw(x, t0, ih, gy, s, k, d, coeff.shape[2])
    if s is not None and need[4]:
        gs = dx(x, t0, ih, coeff, gy, k, d)
    return gx, None, None, gc, gs, None, None


def _dx_setup(ctx, inputs, output):
    x, t0, ih, coeff, g, k, d = inputs
    ctx.save_for_backward(x, t0, ih, coeff, g)
    ctx.k, ctx.d = k, d


def _dx_backward(ctx, gu):
    x, t0, ih, coeff, g = ctx.saved_tensors
    k, d = ctx.k, ctx.d
    need = ctx.needs_input_grad
    gx = gc = gg = None
    if need[0]:
        gx = gu * dx(x, t0, ih, coeff, g, k, d + 1)
    if need[3]:
        gc = dw(x, t0, ih, g, gu, k, d, coeff.shape[2])
    if need[4]:
        gg = fwd(x, t0, ih, coeff, gu, k, d)
    return gx, None, None, gc, gg, None, None


def _dw_setup(ctx, inputs, output):
    x, t0, ih, g, s, k, d, num_bases = inputs
    ctx.save_for_backward(x, t0, ih, g, s)
    ctx.k, ctx.d = k, d


def _dw_backward(ctx, gw):
    x, t0, ih, g, s = ctx.saved_tensors
    k, d = ctx.k, ctx.d
    need = ctx.needs_input_grad
    gx = gg = gs = None
    if need[0]:
        gx = _times(dx(x, t0, ih, gw, g, k, d + 1), s)
    if need[3]:
        gg = fwd(x, t0, ih, gw, s, k, d)
    if s is not None and need[4]:
        gs = dx(x, t0, ih, gw, g, k, d)
    return gx, None, None, gg, gs, None, None, None


fwd.register_autograd(_fwd_backward, setup_context=_fwd_setup)
dx.register_autograd(_dx_backward, setup_context=_dx_setup)
dw.register_autograd(_dw_backward, setup_context=_dw_setup)
