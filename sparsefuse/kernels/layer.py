"""The whole KANLinear forward and backward as one autograd.Function on the dense strategy.

``y = silu(x) @ base_weight^T + sum_i sum_t B_t(x_i) (spline_weight * spline_scaler)[:, i, t]``
is one GEMM over K = in * (1 + G + k) when the base activation is written as one more
"basis" column per feature:

  A[n, i*MB]       = silu(x[n,i]),      A[n, i*MB + 1 + t] = B_t(x[n,i])      (MB = G + k + 1)
  W[o, i*MB]       = base_weight[o,i],  W[o, i*MB + 1 + t] = spline_weight[o,i,t] * scaler[o,i]

Forward: pack W (one kernel), write A chunk by chunk, ``y = A @ W^T`` (cuBLAS).  Backward:
``P = dy @ W``, dx from the active columns of P (one kernel, the SiLU' term included),
``dW = dy^T @ A``, then one kernel splits dW into the three parameter gradients.  Eight
launches per layer forward+backward instead of ~27 for the composed path: on a host where a
launch costs tens of microseconds that is most of a small layer's time (measured in
results/gpu/README.md).

Higher derivatives (PINNs) need a differentiable backward: when backward runs with grad
mode on (``create_graph=True``) it writes the same gradients with torch ops and the
composable primitives of :mod:`.ops` (no recomputed forward), so every order keeps working.
(The H200 run in results/gpu recomputed the forward there instead: its PINN row predates this.)
"""

import torch
import triton
import triton.language as tl

from . import _runtime as rt
from . import dispatch, ops, streamed


@triton.jit
def _pack_weights_kernel(BW, SW, SC, W, IN, M, MB, sbo, sbi, swo, swi, swt, sco, sci, swc,
                         HAS_SC: tl.constexpr, BLOCK: tl.constexpr):
    """W[o, i*MB] = bw[o,i];  W[o, i*MB + 1 + t] = sw[o,i,t] * sc[o,i]  (cast to W's dtype)."""
    o = tl.program_id(0).to(tl.int64)
    c = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    live = c < IN * MB
    i = (c // MB).to(tl.int64)
    t = c % MB
    base = t == 0
    # products in float32 (float64 for float64 weights), one rounding to W's dtype
    if SW.dtype.element_ty == tl.float64:
        wide = tl.float64
    else:
        wide = tl.float32
    bw = tl.load(BW + o * sbo + i * sbi, mask=live & base, other=0.0).to(wide)
    sw = tl.load(SW + o * swo + i * swi + (t - 1).to(tl.int64) * swt, mask=live & (t > 0), other=0.0).to(wide)
    if HAS_SC:
        sw = sw * tl.load(SC + o * sco + i * sci, mask=live & (t > 0), other=0.0).to(wide)
    tl.store(W + o * swc + c, tl.where(base, bw, sw).to(W.dtype.element_ty), mask=live)


@triton.jit
def _unpack_grads_kernel(DW, SW, SC, GBW, GSW, GSC, IN, M, MB, sdo, swo, swi, swt, sco, sci,
                         HAS_SC: tl.constexpr, BLOCK_I: tl.constexpr, TP: tl.constexpr):
    """From dW [out, in*MB]: d base_weight, d spline_weight (= dW * scaler) and
    d scaler (= sum_t dW * spline_weight), computed in float32 (float64 for float64)."""
    o = tl.program_id(0).to(tl.int64)
    i = tl.program_id(1) * BLOCK_I + tl.arange(0, BLOCK_I)
    mi = i < IN
    i64 = i.to(tl.int64)
    t = tl.arange(0, TP)
    m2 = mi[:, None] & (t < M)[None, :]
    row = DW + o * sdo + i64 * MB
    if DW.dtype.element_ty == tl.float64:
        wide = tl.float64
    else:
        wide = tl.float32
    gb = tl.load(row, mask=mi, other=0.0)
    d = tl.load(row[:, None] + 1 + t[None, :], mask=m2, other=0.0).to(wide)
    tl.store(GBW + o * IN + i64, gb.to(GBW.dtype.element_ty), mask=mi)
    gsw_ptr = GSW + o * (IN * M) + i64[:, None] * M + t[None, :]
    if HAS_SC:
        sc = tl.load(SC + o * sco + i64 * sci, mask=mi, other=0.0).to(d.dtype)
        sw = tl.load(SW + o * swo + i64[:, None] * swi + t[None, :] * swt, mask=m2, other=0.0).to(d.dtype)
        tl.store(gsw_ptr, (d * sc[:, None]).to(GSW.dtype.element_ty), mask=m2)
        tl.store(GSC + o * IN + i64, tl.sum(d * sw, axis=1).to(GSC.dtype.element_ty), mask=mi)
    else:
        tl.store(gsw_ptr, d.to(GSW.dtype.element_ty), mask=m2)


def _pack(base_weight, spline_weight, scaler, dtype):
    OUT, IN, M = spline_weight.shape
    MB = M + 1
    W = torch.empty((OUT, IN * MB), dtype=dtype, device=spline_weight.device)
    sc = scaler if scaler is not None else base_weight
    BLOCK = 1024
    _pack_weights_kernel[(OUT, rt.cdiv(IN * MB, BLOCK))](
        base_weight, spline_weight, sc, W, IN, M, MB,
        base_weight.stride(0), base_weight.stride(1),
        spline_weight.stride(0), spline_weight.stride(1), spline_weight.stride(2),
        sc.stride(0), sc.stride(1), W.stride(0),
        HAS_SC=scaler is not None, BLOCK=BLOCK, num_warps=4)
    return W


def _unpack(dW, base_weight, spline_weight, scaler):
    OUT, IN, M = spline_weight.shape
    gbw = torch.empty_like(base_weight, memory_format=torch.contiguous_format)
    gsw = torch.empty_like(spline_weight, memory_format=torch.contiguous_format)
    gsc = torch.empty_like(scaler, memory_format=torch.contiguous_format) if scaler is not None else None
    sc = scaler if scaler is not None else base_weight
    BLOCK_I = max(1, 2048 // rt.next_pow2(M))
    _unpack_grads_kernel[(OUT, rt.cdiv(IN, BLOCK_I))](
        dW, spline_weight, sc, gbw, gsw, gsc if gsc is not None else gbw, IN, M, M + 1, dW.stride(0),
        spline_weight.stride(0), spline_weight.stride(1), spline_weight.stride(2),
        sc.stride(0), sc.stride(1),
        HAS_SC=scaler is not None, BLOCK_I=BLOCK_I, TP=rt.next_pow2(M), num_warps=4)
    return gbw, gsw, gsc


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
        W = _pack(base_weight, spline_weight, scaler, dtype)
        y = rt.alloc((N, OUT), dtype, x.device)
        A = streamed.fwd_flat(x, t0, ih, W, None, k, 0, M, True, y, cfg)
        if A is not None and A.numel() * A.element_size() > cfg["save_basis_mib"] * 2**20:
            A = None  # recomputed in backward: memory stays O(chunk) for a stack of layers
        ctx.save_for_backward(x, base_weight, spline_weight, scaler, t0, ih, W, A)
        ctx.k, ctx.cfg = k, cfg
        return y

    @staticmethod
    def backward(ctx, gy):
        x, base_weight, spline_weight, scaler, t0, ih, W, A = ctx.saved_tensors
        k, cfg = ctx.k, ctx.cfg
        need = ctx.needs_input_grad
        if torch.is_grad_enabled():  # create_graph: the same gradients from differentiable pieces
            return (*_differentiable_grads(x, base_weight, spline_weight, scaler, t0, ih, k, gy, need),
                    None, None, None, None, None)
        gy = gy.to(W.dtype).contiguous()
        M = spline_weight.shape[2]
        f64 = x.dtype == torch.float64 or W.dtype == torch.float64
        gx = gbw = gsw = gsc = None
        if need[0]:
            gx = streamed.dx_flat(x, t0, ih, W, gy, k, 1, M, True, rt.alloc(x.shape, x.dtype, x.device), f64, cfg)
        if need[1] or need[2] or need[3]:
            dW = streamed.dw_flat(x, t0, ih, gy, None, k, 0, M, True, torch.empty_like(W), cfg, A)
            gbw, gsw, gsc = _unpack(dW, base_weight, spline_weight, scaler)
        return gx, gbw, gsw, gsc, None, None, None, None, None


def usable(x, num_bases: int) -> bool:
    """Whether the fused layer path applies: eager code, and the dispatch picks the dense
    strategy for at least two of the three primitives (the layer runs all three dense; one
    sparse primitive does not outweigh the launches the fused layer saves)."""
    if torch.compiler.is_compiling():
        return False
    dtype = compute_dtype(x)
    cls = dispatch.precision_class(dtype, rt.dot_precision(dtype))
    return sum(dispatch.choose(p, num_bases, cls, x.device) == "dense" for p in dispatch.PRIMITIVES) >= 2


def compute_dtype(x, weight_dtype=torch.float32):
    dev = x.device.type
    if torch.is_autocast_enabled(dev) and x.dtype != torch.float64:
        return torch.get_autocast_dtype(dev)
    return torch.promote_types(x.dtype, weight_dtype)


def kan_linear(x, t0, ih, base_weight, spline_weight, scaler, k):
    """SiLU base branch + spline branch of a KANLinear on 2-D ``x``, in the compute dtype
    (autocast's, else x's and the weights' promoted): the fused path of ``impl="fused"``."""
    dtype = compute_dtype(x, spline_weight.dtype)
    prec = rt.dot_precision(dtype)
    _, cfg = dispatch.plan("fwd", spline_weight.shape[2], dtype, prec, "dense", x.device)
    if x.shape[0] == 0:
        return _composed(x, t0, ih, base_weight, spline_weight, scaler, k).to(dtype)
    with rt.device_guard(x):
        return FusedKANLinear.apply(x, base_weight, spline_weight, scaler, t0, ih, k, dtype, cfg)
