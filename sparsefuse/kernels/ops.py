"""The fused kernels as registered torch ops: what torch.compile captures, differentiable to any order.

``torch.ops.sparsefuse``:
  geometry(grid, dtype)                                   the per-feature geometry (:mod:`.geometry`)
  fwd / dx / dw(x, grid, geo, ...)                        the three primitives (:mod:`.autograd`)
  kan_linear(x, grid, base_weight, spline_weight, spline_scaler, k, dtype)
                                                          the whole layer, base branch included
  kan_linear_bwd(...)                                     its first-order backward

Each has a fake (shape-only) implementation, so Dynamo and Inductor treat it as one opaque
call with a dynamic batch, and an autograd formula from :mod:`.autograd`: the layer's
backward is ``kan_linear_bwd``, whose own backward is written with the registered
primitives, so derivatives of every order stay inside registered ops.  Eager code calls
the same launch bodies through the autograd Functions of :mod:`.autograd` instead (fewer
dispatcher layers per call); :func:`primitives` picks the namespace.
"""

from typing import Optional

import torch
from torch import Tensor

from . import autograd as ag
from . import layer
from .geometry import compute_dtype_of, geometry as _geometry


@torch.library.custom_op("sparsefuse::geometry", mutates_args=())
def geometry(grid: Tensor, dtype: torch.dtype, dot_dtype: torch.dtype) -> Tensor:
    """[4, in]: first knot, last knot, 1/spacing, closed form (1.0) or not, per feature."""
    return _geometry(grid if grid.stride(-1) == 1 else grid.contiguous(), dtype, dot_dtype)


@geometry.register_fake
def _(grid, dtype, dot_dtype):
    return grid.new_empty((4, grid.shape[0]), dtype=dtype)


@torch.library.custom_op("sparsefuse::fwd", mutates_args=())
def fwd(x: Tensor, grid: Tensor, geo: Tensor, coeff: Tensor, s: Optional[Tensor], k: int, d: int) -> Tensor:
    """y[n,o] = sum_i s[n,i] sum_t B^(d)_t(x[n,i]) coeff[o,i,t]."""
    return ag.run_fwd(x, grid, geo, coeff, s, k, d)


@fwd.register_fake
def _(x, grid, geo, coeff, s, k, d):
    return x.new_empty((x.shape[0], coeff.shape[0]), dtype=coeff.dtype)


@torch.library.custom_op("sparsefuse::dx", mutates_args=())
def dx(x: Tensor, grid: Tensor, geo: Tensor, coeff: Tensor, g: Tensor, k: int, d: int) -> Tensor:
    """u[n,i] = sum_o g[n,o] sum_t B^(d)_t(x[n,i]) coeff[o,i,t]."""
    return ag.run_dx(x, grid, geo, coeff, g, k, d)


@dx.register_fake
def _(x, grid, geo, coeff, g, k, d):
    return x.new_empty(x.shape, dtype=x.dtype)


@torch.library.custom_op("sparsefuse::dw", mutates_args=())
def dw(x: Tensor, grid: Tensor, geo: Tensor, g: Tensor, s: Optional[Tensor], k: int, d: int,
       num_bases: int) -> Tensor:
    """W[o,i,t] = sum_n g[n,o] s[n,i] B^(d)_t(x[n,i]),  t < num_bases."""
    return ag.run_dw(x, grid, geo, g, s, k, d, num_bases)


@dw.register_fake
def _(x, grid, geo, g, s, k, d, num_bases):
    return x.new_empty((g.shape[1], x.shape[1], num_bases), dtype=g.dtype)


class Registered:
    """The primitives as registered ops (what :func:`.autograd.layer_bwd_grads` calls when traced)."""

    fwd = staticmethod(fwd)
    dx = staticmethod(dx)
    dw = staticmethod(dw)


def _setup(ctx, inputs, output):
    ctx.save_for_backward(*inputs[:5])
    ctx.k, ctx.d = inputs[5], inputs[6]


def _primitive_backward(grads):
    return lambda ctx, grad: grads(Registered, ctx.saved_tensors, ctx.k, ctx.d, ctx.needs_input_grad, grad)


fwd.register_autograd(_primitive_backward(ag.fwd_grads), setup_context=_setup)
dx.register_autograd(_primitive_backward(ag.dx_grads), setup_context=_setup)
dw.register_autograd(_primitive_backward(ag.dw_grads), setup_context=_setup)


# ---- the whole layer -------------------------------------------------------------------------

def _contiguous(x, grid):
    return x if x.is_contiguous() else x.contiguous(), grid if grid.stride(-1) == 1 else grid.contiguous()


@torch.library.custom_op("sparsefuse::kan_linear", mutates_args=())
def kan_linear(x: Tensor, grid: Tensor, base_weight: Tensor, spline_weight: Tensor, spline_scaler: Optional[Tensor],
               k: int, dtype: torch.dtype) -> Tensor:
    """silu(x) @ base_weight^T + the spline branch, in ``dtype`` (autocast's, or the layer's)."""
    x, grid = _contiguous(x, grid)
    p = layer.plan(dtype, x.device, spline_weight.shape[2], spline_weight.shape[0])
    return layer.forward(x, grid, base_weight, spline_weight, spline_scaler, k, p, keep_basis=False)[0]


@kan_linear.register_fake
def _(x, grid, base_weight, spline_weight, spline_scaler, k, dtype):
    return x.new_empty((x.shape[0], spline_weight.shape[0]), dtype=dtype)


@torch.library.custom_op("sparsefuse::kan_linear_bwd", mutates_args=())
def kan_linear_bwd(x: Tensor, grid: Tensor, base_weight: Tensor, spline_weight: Tensor,
                   spline_scaler: Optional[Tensor], gy: Tensor, k: int, dtype: torch.dtype,
                   need_x: bool, need_weights: bool) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """(d x, d base_weight, d spline_weight, d scaler) of :func:`kan_linear`; a gradient that
    is not asked for (or a scaler the layer does not have) comes back empty."""
    x, grid = _contiguous(x, grid)
    p = layer.plan(dtype, x.device, spline_weight.shape[2], spline_weight.shape[0])
    grads = layer.backward(x, grid, base_weight, spline_weight, spline_scaler, gy, k, p, None, (need_x, need_weights))
    return tuple(g if g is not None else x.new_empty(0) for g in grads)


@kan_linear_bwd.register_fake
def _(x, grid, base_weight, spline_weight, spline_scaler, gy, k, dtype, need_x, need_weights):
    def like(t, want):
        return torch.empty_like(t) if want and t is not None else x.new_empty(0)

    return (like(x, need_x), like(base_weight, need_weights), like(spline_weight, need_weights),
            like(spline_scaler, need_weights))


def _layer_setup(ctx, inputs, output):
    ctx.save_for_backward(*inputs[:5])
    ctx.k, ctx.dtype = inputs[5], inputs[6]


def _layer_backward(ctx, gy):
    x, grid, bw, sw, sc = ctx.saved_tensors
    need = ctx.needs_input_grad
    grads = torch.ops.sparsefuse.kan_linear_bwd(x, grid, bw, sw, sc, gy, ctx.k, ctx.dtype, need[0], any(need[2:5]))
    gx, gbw, gsw, gsc = (g if want else None for g, want in zip(grads, (need[0], need[2], need[3], need[4])))
    return gx, None, gbw, gsw, gsc if sc is not None else None, None, None


def _bwd_setup(ctx, inputs, output):
    ctx.save_for_backward(*inputs[:6])
    ctx.k, ctx.dtype = inputs[6], inputs[7]
    ctx.set_materialize_grads(False)  # a gradient left unused is None, not a tensor of zeros


def _bwd_backward(ctx, a, b, csw, dsc):
    x, grid, bw, sw, sc, gy = ctx.saved_tensors
    need = ctx.needs_input_grad
    geo = torch.ops.sparsefuse.geometry(grid, compute_dtype_of(x.dtype), torch.promote_types(x.dtype, sw.dtype))
    empty = [t is None or t.numel() == 0 for t in (a, b, csw, dsc)]
    a, b, csw, dsc = (None if e else t for t, e in zip((a, b, csw, dsc), empty))
    gx, gbw, gsw, gsc, ggy = ag.layer_bwd_grads(Registered, x, grid, geo, bw, sw, sc, gy, ctx.k,
                                                (need[0], need[2], need[3], need[4]), a, b, csw, dsc)
    return gx, None, gbw, gsw, gsc, ggy, None, None, None, None


kan_linear.register_autograd(_layer_backward, setup_context=_layer_setup)
kan_linear_bwd.register_autograd(_bwd_backward, setup_context=_bwd_setup)


def primitives():
    """The namespace to call: registered ops while torch.compile traces, Functions otherwise."""
    return Registered if torch.compiler.is_compiling() else ag.Eager
