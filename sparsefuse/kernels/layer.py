"""The whole KANLinear forward and backward as one autograd.Function on the dense strategy.

``y = silu(x) @ base_weight^T + sum_i sum_t B_t(x_i) (spline_weight * spline_scaler)[:, i, t]``
is one GEMM over K = in * (1 + G + k) when the base activation is written as one more
"basis" slot per feature (MB = G + k + 1 slots, slot 0 the base branch):

  A[n, (i, 0)] = silu(x[n,i]),     A[n, (i, 1 + t)] = B_t(x[n,i])
  W[o, (i, 0)] = base_weight[o,i], W[o, (i, 1 + t)] = spline_weight[o,i,t] * scaler[o,i]

in the column order of :mod:`.streamed` (basis-major for A and the forward's W,
feature-major for the copy dX contracts).  Forward: pack both copies of W (one kernel),
write A chunk by chunk, ``y = A @ W^T`` (cuBLAS).  Backward: ``P = dy @ W_fm``, dx from the
active columns of P (one kernel, the SiLU' term included), ``dW = dy^T @ A``, then one
kernel splits dW into the three parameter gradients.  Seven or eight launches per layer
forward+backward instead of ~27 for the composed path: on a host where a launch costs
tens of microseconds that is most of a small layer's time (results/gpu/README.md).

Higher derivatives (PINNs) need a differentiable backward: when backward runs with grad
mode on (``create_graph=True``) it writes the same gradients with torch ops and the
composable primitives of :mod:`.ops` (no recomputed forward), so every order keeps working.
"""

import torch

from . import _runtime as rt
from . import dispatch, ops, streamed


def _composed(x, t0, ih, base_weight, spline_weight, scaler, k):
    """The same layer through the composable primitives (any derivative order)."""
    coeff = spline_weight if scaler is None else spline_weight * scaler.unsqueeze(-1)
    y = torch.nn.functional.linear(torch.nn.functional.silu(x), base_weight.to(x.dtype))
    return y + ops.primitives().fwd(x, t0, ih, coeff.to(x.dtype), None, k, 0).to(y.dtype)


def _differentiable_grads(x, base_weight, spline_weight, scaler, t0, ih, k, gy, need):
    """The layer's gradients written with torch ops and the composable primitives of
    :mod:`.ops`, so that they can be differentiated again (PINNs: to any order)."""
    dt = torch.promote_types(x.dtype, spline_weight.dtype)
    gy = gy.to(dt)
    P = ops.primitives()
    coeff = spline_weight if scaler is None else spline_weight * scaler.unsqueeze(-1)
    coeff = coeff.to(dt)
    gx = gbw = gsw = gsc = None
    if need[0]:
        sg = torch.sigmoid(x)
        gx = P.dx(x, t0, ih, coeff, gy, k, 1) + (gy @ base_weight.to(dt)) * (sg * (1 + x * (1 - sg)))
    if need[1]:
        gbw = gy.t() @ torch.nn.functional.silu(x).to(dt)
    if need[2] or need[3]:
        gc = P.dw(x, t0, ih, gy, None, k, 0, spline_weight.shape[2])
        if scaler is None:
            gsw = gc
        else:
            gsw = gc * scaler.unsqueeze(-1) if need[2] else None
            gsc = (gc * spline_weight).sum(-1) if need[3] else None
    return gx, gbw, gsw, gsc


class FusedKANLinear(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, base_weight, spline_weight, scaler, t0, ih, k, dtype, cfg):
        N, IN = x.shape
        OUT, _, M = spline_weight.shape
        fb = streamed.fwd_block(N, IN, M + 1, OUT, dtype.itemsize, cfg)
        # the forward's layout and the feature-major copy dX contracts, in one launch
        W, Wfm = streamed.pack(spline_weight, scaler, base_weight, dtype, fb, fb2=1)
        y = rt.alloc((N, OUT), dtype, x.device)
        A = streamed.fwd_flat(x, t0, ih, W, None, k, 0, M, True, y, cfg, fb)
        if A is not None and A.numel() * A.element_size() > cfg["save_basis_mib"] * 2**20:
            A = None  # recomputed in backward: memory stays O(chunk) for a stack of layers
        ctx.save_for_backward(x, base_weight, spline_weight, scaler, t0, ih, Wfm, A)
        ctx.k, ctx.cfg = k, cfg
        return y

    @staticmethod
    def backward(ctx, gy):
        x, base_weight, spline_weight, scaler, t0, ih, Wfm, A = ctx.saved_tensors
        k, cfg = ctx.k, ctx.cfg
        need = ctx.needs_input_grad
        if torch.is_grad_enabled():  # create_graph: the same gradients from differentiable pieces
            return (*_differentiable_grads(x, base_weight, spline_weight, scaler, t0, ih, k, gy, need),
                    None, None, None, None, None)
        if gy.dtype != Wfm.dtype:
            gy = gy.to(Wfm.dtype)
        if not gy.is_contiguous():
            gy = gy.contiguous()
        M = spline_weight.shape[2]
        f64 = x.dtype == torch.float64 or Wfm.dtype == torch.float64
        gx = gbw = gsw = gsc = None
        if need[0]:
            gx = streamed.dx_flat(x, t0, ih, Wfm, gy, k, 1, M, True, rt.alloc(x.shape, x.dtype, x.device), f64, cfg)
        if need[1] or need[2] or need[3]:
            dW, fb = streamed.dw_flat(x, t0, ih, gy, None, k, 0, M, True, cfg, A)
            gbw, gsw, gsc = streamed.unpack(dW, fb, M, spline_weight, scaler, base_weight)
        return gx, gbw, gsw, gsc, None, None, None, None, None


_PLANS = {}  # (bases, out, x dtype, weight dtype, autocast, fp32 precision, device, forced)
#             -> (config tables, stream override, plan): both checked by identity on every hit


def plan(x, num_bases: int, out: int, weight_dtype=torch.float32):
    """``(compute dtype, stream config)`` of the fused layer for this call, or None where it
    does not apply: compiled code, or a dispatch that picks the sparse strategy for two or
    three of the primitives (the layer runs all three dense; one sparse primitive does not
    outweigh the launches the fused layer saves).  Memoised on everything the answer
    depends on, the config tables and any stream override by identity: it runs once per layer call."""
    if torch.compiler.is_compiling():
        return None
    dev = x.device
    autocast = torch.get_autocast_dtype(dev.type) if torch.is_autocast_enabled(dev.type) else None
    key = (num_bases, out, x.dtype, weight_dtype, autocast, torch.get_float32_matmul_precision(), dev,
           dispatch._forced["value"])
    tables = dispatch.tables(dev)  # a new object whenever a config file is reloaded
    override = dispatch._overrides.get(("stream", "dense"))  # a new object per override_config
    hit = _PLANS.get(key)
    if hit is None or hit[0] is not tables or hit[1] is not override:
        dtype = compute_dtype(x, weight_dtype)
        prec = rt.dot_precision(dtype)
        cls = dispatch.precision_class(dtype, prec)
        dense = sum(dispatch.choose(p, num_bases, cls, dev, out) == "dense" for p in dispatch.PRIMITIVES)
        answer = (dtype, dispatch.plan("fwd", num_bases, dtype, prec, "dense", dev)[1]) if dense >= 2 else None
        if len(_PLANS) > 1024:
            _PLANS.clear()
        hit = _PLANS[key] = (tables, override, answer)
    return hit[2]


def compute_dtype(x, weight_dtype=torch.float32):
    dev = x.device.type
    if torch.is_autocast_enabled(dev) and x.dtype != torch.float64:
        return torch.get_autocast_dtype(dev)
    return torch.promote_types(x.dtype, weight_dtype)


def kan_linear(x, t0, ih, base_weight, spline_weight, scaler, k, planned):
    """SiLU base branch + spline branch of a KANLinear on 2-D ``x``, in the compute dtype
    (autocast's, else x's and the weights' promoted): the fused path of ``impl="fused"``.
    ``planned``: :func:`plan`'s (dtype, config) for this call."""
    dtype, cfg = planned
    if x.shape[0] == 0:
        return _composed(x, t0, ih, base_weight, spline_weight, scaler, k).to(dtype)
    with rt.device_guard(x):
        return FusedKANLinear.apply(x, base_weight, spline_weight, scaler, t0, ih, k, dtype, cfg)
