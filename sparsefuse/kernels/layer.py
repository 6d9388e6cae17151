"""The whole KANLinear, SiLU base branch and spline branch, as one contraction: both strategies, any grid.

``y = silu(x) @ base_weight^T + sum_i sum_t B_t(x_i) (spline_weight * spline_scaler)[:, i, t]``
is one contraction over K = in * MB, MB = G + k + 1 slots per feature, when the base
activation is written as one more "basis" slot (slot 0) per feature:

  A[n, (i, 0)] = silu(x[n,i]),     A[n, (i, 1 + t)] = B_t(x[n,i])
  W[o, (i, 0)] = base_weight[o,i], W[o, (i, 1 + t)] = spline_weight[o,i,t] * scaler[o,i]

Forward: one pack launch writes W in the forward's layout, the copy the backward's dX
contracts and the grid's geometry (:mod:`.layout`); then the streamed strategy writes A
chunk by chunk for ``y = A @ W^T`` (cuBLAS), or the gather kernel reads the k+1 active
slots (+ the base slot) per (row, feature).  Backward: dX from ``P = dy @ W_fm`` and the
active columns of P (streamed) or gathered; dW = ``dy^T @ A`` and one unpack launch
(streamed) or the sorted-window kernel (gather).  Seven or eight launches per layer
forward+backward on the streamed strategy instead of ~27 for the composed path: on a host
where a launch costs tens of microseconds that is most of a small layer's time.

Each primitive's strategy comes from the dispatch rule (:mod:`.dispatch`); :func:`plan`
memoises the whole answer per call signature, keyed on ``settings.key`` so that no switch
can leave it stale.  The autograd wiring (eager Functions, registered ops, the
differentiable backward PINNs need) is in :mod:`.ops`.
"""

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from . import _runtime as rt
from . import dispatch
from . import dw as _dw
from . import dx as _dx
from . import fwd as _fwd
from .geometry import alloc_geometry, compute_dtype_of
from .layout import OUT_MAJOR, fwd_block, pack, unpack
from .settings import settings


@dataclass(frozen=True)
class Plan:
    """How one layer call runs: compute dtype, each primitive's strategy and launch config."""

    dtype: torch.dtype
    fwd: str
    dx: str
    dw: str
    fwd_cfg: dict
    dx_cfg: dict
    dw_cfg: dict

    @property
    def dx_layout(self) -> int:
        """The layout of the weight copy dX contracts: feature-major (streamed) or out-major."""
        return 1 if self.dx == "streamed" else OUT_MAJOR


_PLANS = {}  # (bases, out, dtype, fp32 precision, device, settings.key) -> Plan


def plan(dtype: torch.dtype, device, num_bases: int, out: int) -> Plan:
    """The :class:`Plan` of a layer call computing in ``dtype`` with ``num_bases`` = G + k and
    ``out`` outputs; memoised on everything the answer depends on (one dict hit per call)."""
    key = (num_bases, out, dtype, torch.get_float32_matmul_precision(), device, settings.key)
    hit = _PLANS.get(key)
    if hit is None:
        prec = rt.dot_precision(dtype)
        picks = [dispatch.plan(p, num_bases, dtype, prec, None, device, out) for p in dispatch.PRIMITIVES]
        hit = Plan(dtype, *(s for s, _ in picks), *(c for _, c in picks))
        if len(_PLANS) > 1024:
            _PLANS.clear()
        _PLANS[key] = hit
    return hit


def compute_dtype(x_dtype: torch.dtype, weight_dtype: torch.dtype, device_type: str) -> torch.dtype:
    """Autocast's dtype under autocast (float64 excepted, which autocast leaves alone), else the
    promoted dtype of x and the weights (KANLinear makes them equal)."""
    if x_dtype != torch.float64 and torch.is_autocast_enabled(device_type):
        return torch.get_autocast_dtype(device_type)
    return torch.promote_types(x_dtype, weight_dtype)


def _out_major_strides(OUT, MB):
    return (1, MB * OUT, OUT)  # (o, i, slot) of the [in * MB, out] operand


def forward(x, grid, base_weight, spline_weight, scaler, k, p: Plan, keep_basis: bool):
    """``(y, saved)`` of the layer on 2-D ``x``; ``saved`` = (geometry, the weight copy dX
    contracts, the basis A when ``keep_basis`` and it was built in one piece and is small)."""
    N, IN = x.shape
    OUT, _, M = spline_weight.shape
    MB = M + 1
    geo = alloc_geometry(grid, compute_dtype_of(x.dtype))
    y = rt.alloc((N, OUT), p.dtype, x.device)
    A = None
    with rt.device_guard(x):
        if p.fwd == "streamed":
            cfg = p.fwd_cfg
            fb = fwd_block(N, IN, MB, OUT, p.dtype.itemsize, cfg)
            W, Wdx = pack(spline_weight, scaler, base_weight, p.dtype, fb, p.dx_layout, grid=grid, geo=geo)
            if N and OUT:
                A = _fwd.streamed(x, grid, geo, W, None, k, 0, M, True, y, cfg, fb)
            if A is not None and (not keep_basis or A.numel() * A.element_size() > cfg["save_basis_mib"] * 2**20):
                A = None  # recomputed in backward: memory stays O(chunk) for a stack of layers
        else:
            if p.dx_layout == OUT_MAJOR:  # dX gathers from the forward's own operand
                Wg = Wdx = pack(spline_weight, scaler, base_weight, p.dtype, OUT_MAJOR, grid=grid, geo=geo)
            else:
                Wg, Wdx = pack(spline_weight, scaler, base_weight, p.dtype, OUT_MAJOR, p.dx_layout, grid=grid, geo=geo)
            if N and OUT:
                _fwd.gathered(x, grid, geo, Wg, _out_major_strides(OUT, MB), None, k, 0, M, True, y, p.fwd_cfg)
    return y, (geo, Wdx, A)


def backward(x, grid, base_weight, spline_weight, scaler, gy, k, p: Plan, saved=None, need=(True, True)):
    """``(d x, d base_weight, d spline_weight, d scaler)`` of :func:`forward` (first order: not
    differentiable, see :mod:`.ops`); ``saved`` from the forward, recomputed when None;
    ``need`` = (d x wanted, weight gradients wanted)."""
    N, IN = x.shape
    OUT, _, M = spline_weight.shape
    MB = M + 1
    with rt.device_guard(x):
        if saved is None:
            geo = alloc_geometry(grid, compute_dtype_of(x.dtype))
            saved = (geo, pack(spline_weight, scaler, base_weight, p.dtype, p.dx_layout, grid=grid, geo=geo), None)
        geo, Wdx, A = saved
        if gy.dtype != p.dtype:
            gy = gy.to(p.dtype)
        if not gy.is_contiguous():
            gy = gy.contiguous()
        f64 = x.dtype == torch.float64 or p.dtype == torch.float64
        gx = gbw = gsw = gsc = None
        if need[0]:
            gx = rt.alloc(x.shape, x.dtype, x.device)
            if N == 0 or OUT == 0:
                gx.zero_()
            elif p.dx == "streamed":
                _dx.streamed(x, grid, geo, Wdx, gy, k, 1, M, True, gx, f64, p.dx_cfg)
            else:
                _dx.gathered(x, grid, geo, Wdx, _out_major_strides(OUT, MB), gy, k, 1, M, True, gx, f64, p.dx_cfg)
        if need[1]:
            if p.dw == "streamed" and N:
                dW, fb = _dw.streamed(x, grid, geo, gy, None, k, 0, M, True, p.dw_cfg, A)
                gbw, gsw, gsc = unpack(dW, fb, M, spline_weight, scaler, base_weight)
            else:
                gbw, gsw, gsc = _gathered_weight_grads(x, grid, geo, base_weight, spline_weight, scaler, gy, k,
                                                       p.dw_cfg)
    return gx, gbw, gsw, gsc


def _gathered_weight_grads(x, grid, geo, base_weight, spline_weight, scaler, gy, k, cfg):
    """Weight gradients with the spline's from the sorted-window kernel, the rest by torch."""
    OUT, IN, M = spline_weight.shape
    if x.shape[0] == 0:
        gc = torch.zeros((OUT, IN, M), dtype=torch.float32, device=x.device)
    else:
        gc = _dw.gathered(x, grid, geo, gy, None, k, 0, M, cfg)
    wide = gc.dtype
    gbw = (gy.t().to(wide) @ F.silu(x.to(wide))).to(base_weight.dtype)
    if scaler is None:
        return gbw, gc.to(spline_weight.dtype), None
    gsw = (gc * scaler.to(wide).unsqueeze(-1)).to(spline_weight.dtype)
    gsc = (gc * spline_weight.to(wide)).sum(-1).to(scaler.dtype)
    return gbw, gsw, gsc
