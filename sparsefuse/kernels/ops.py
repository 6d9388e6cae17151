"""The fused kernels as registered torch ops: what torch.compile captures, differentiable to any order.

``torch.ops.sparsefuse``:
  geometry(grid, dtype)                                   the per-feature geometry (:mod:`.geometry`)
  fwd / dx / dw(x, grid, geo, ...)                        the three primitives (:mod:`.autograd`)
  kan_linear(x, grid, base_weight, spline_weight, spline_scaler, k, dtype)
                                                          the whole layer, base branch included
                                                          (y, and what its backward reuses)
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
from .layout import OUT_MAJOR, operand


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
               k: int, dtype: torch.dtype) -> tuple[Tensor, Tensor, Tensor]:
    """(y, geometry, the weight copy dX contracts): y = silu(x) @ base_weight^T + the spline
    branch, in ``dtype`` (autocast's, or the layer's); the other two outputs are what the
    forward's pack launch wrote, kept for :func:`kan_linear_bwd` so that the compiled backward
    does not pack again.  The out-major copy (gather dX) comes back as [in, MB, out] and the
    feature-major one (streamed dX) as [out, in*MB]: the backward tells them apart by rank."""
    x, grid = _contiguous(x, grid)
    p = layer.plan(dtype, x.device, spline_weight.shape[2], spline_weight.shape[0])
    y, (geo, Wdx, _) = layer.forward(x, grid, base_weight, spline_weight, spline_scaler, k, p, keep_basis=False)
    return y, geo, _ranked(Wdx, p, spline_weight)


def _ranked(Wdx, p, spline_weight):
    OUT, IN, M = spline_weight.shape
    return Wdx.view(IN, M + 1, OUT) if p.dx_layout == OUT_MAJOR else Wdx


@kan_linear.register_fake
def _(x, grid, base_weight, spline_weight, spline_scaler, k, dtype):
    OUT, IN, M = spline_weight.shape
    p = layer.plan(dtype, x.device, int(M), int(OUT))  # the layout depends on them: a weight shape is static
    Wdx, _, _ = operand(OUT, IN * (M + 1), p.dtype, x.device, p.dx_layout)
    return (x.new_empty((x.shape[0], OUT), dtype=dtype), grid.new_empty((4, IN), dtype=compute_dtype_of(x.dtype)),
            _ranked(Wdx, p, spline_weight))


@torch.library.custom_op("sparsefuse::kan_linear_bwd", mutates_args=())
def kan_linear_bwd(x: Tensor, grid: Tensor, base_weight: Tensor, spline_weight: Tensor,
                   spline_scaler: Optional[Tensor], geo: Tensor, Wdx: Tensor, gy: Tensor, k: int, dtype: torch.dtype,
                   need_x: bool, need_weights: bool) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """(d x, d base_weight, d spline_weight, d scaler) of :func:`kan_linear`, from its saved
    geometry and weight copy (packed again when this call's plan wants the other layout: a
    strategy forced between the forward and the backward); a gradient that is not asked for
    (or a scaler the layer does not have) comes back empty."""
    x, grid = _contiguous(x, grid)
    p = layer.plan(dtype, x.device, spline_weight.shape[2], spline_weight.shape[0])
    fits = (Wdx.dim() == 3) == (p.dx_layout == OUT_MAJOR) and Wdx.dtype == p.dtype
    saved = (geo, Wdx, None) if fits else None
    grads = layer.backward(x, grid, base_weight, spline_weight, spline_scaler, gy, k, p, saved, (need_x, need_weights))
    return tuple(g if g is not None else x.new_empty(0) for g in grads)


@kan_linear_bwd.register_fake
def _(x, grid, base_weight, spline_weight, spline_scaler, geo, Wdx, gy, k, dtype, need_x, need_weights):
    def like(t, want):
        return torch.empty_like(t) if want and t is not None else x.new_empty(0)

    return (like(x, need_x), like(base_weight, need_weights), like(spline_weight, need_weights),
            like(spline_scaler, need_weights))


def _layer_setup(ctx, inputs, output):
    ctx.save_for_backward(*inputs[:5], *output[1:])
    ctx.k, ctx.dtype = inputs[5], inputs[6]
    ctx.mark_non_differentiable(*output[1:])
    ctx.set_materialize_grads(False)


def _layer_backward(ctx, gy, _geo, _wdx):
    x, grid, bw, sw, sc, geo, Wdx = ctx.saved_tensors
    need = ctx.needs_input_grad
    if gy is None:
        return None, None, None, None, None, None, None
    grads = torch.ops.sparsefuse.kan_linear_bwd(x, grid, bw, sw, sc, geo, Wdx, gy, ctx.k, ctx.dtype, need[0],
                                                any(need[2:5]))
    gx, gbw, gsw, gsc = (g if want else None for g, want in zip(grads, (need[0], need[2], need[3], need[4])))
    return gx, None, gbw, gsw, gsc if sc is not None else None, None, None


def _bwd_setup(ctx, inputs, output):
    ctx.save_for_backward(*inputs[:6], inputs[7])
    ctx.k, ctx.dtype = inputs[8], inputs[9]
    ctx.set_materialize_grads(False)  # a gradient left unused is None, not a tensor of zeros


def _bwd_backward(ctx, a, b, csw, dsc):
    x, grid, bw, sw, sc, geo, gy = ctx.saved_tensors
    need = ctx.needs_input_grad
    empty = [t is None or t.numel() == 0 for t in (a, b, csw, dsc)]
    a, b, csw, dsc = (None if e else t for t, e in zip((a, b, csw, dsc), empty))
    gx, gbw, gsw, gsc, ggy = ag.layer_bwd_grads(Registered, x, grid, geo, bw, sw, sc, gy, ctx.k,
                                                (need[0], need[2], need[3], need[4]), a, b, csw, dsc)
    return gx, None, gbw, gsw, gsc, None, None, ggy, None, None, None, None


kan_linear.register_autograd(_layer_backward, setup_context=_layer_setup)
kan_linear_bwd.register_autograd(_bwd_backward, setup_context=_bwd_setup)


def primitives():
    """The namespace to call: registered ops while torch.compile traces, Functions otherwise."""
    return Registered if torch.compiler.is_compiling() else ag.Eager
