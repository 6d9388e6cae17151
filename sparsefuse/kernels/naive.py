"""Plain PyTorch float64 reference for the fused primitives: the readable definition.

The dense basis ``[N, in, G+k]`` comes from the library's Cox–de Boor on the actual knots
(:func:`sparsefuse.basis.bspline.cox_de_boor`), so uniform, per-feature and adaptive grids
are all covered; derivatives follow the knot recurrence
``B'_{t,p} = p * (B_{t,p-1} / (t_{t+p} - t_t) - B_{t+1,p-1} / (t_{t+p+1} - t_{t+1}))``.
A NaN/Inf input gives NaN in every basis of its feature, as the kernels do.  Slow and
memory-hungry on purpose.
"""

import torch

from ..basis.bspline import cox_de_boor


def basis(x, grid, k, d=0):
    """d-th derivative of the order-k B-spline bases at x [N, in]: [N, in, G + k]."""
    n_bases = grid.shape[1] - 1 - k
    if d > k:
        return torch.zeros((*x.shape, n_bases), dtype=x.dtype, device=x.device)
    g = grid.to(x.dtype)
    if d == 0:
        return cox_de_boor(x, g, k) + (x - x).unsqueeze(-1)
    lower = basis(x, grid, k - 1, d - 1)
    left = g[:, k:-1] - g[:, : -(k + 1)]
    right = g[:, k + 1:] - g[:, 1:-k]
    return k * (lower[..., :-1] / left - lower[..., 1:] / right)


def fwd(x, grid, coeff, k, d=0, s=None):
    """y[n,o] = sum_i s[n,i] sum_t B^(d)_t(x[n,i]) coeff[o,i,t]."""
    b = basis(x, grid, k, d)
    if s is not None:
        b = b * s.unsqueeze(-1)
    return torch.einsum("nit,oit->no", b, coeff.to(b.dtype))


def dx(x, grid, coeff, g, k, d=0):
    """u[n,i] = sum_o g[n,o] sum_t B^(d)_t(x[n,i]) coeff[o,i,t]."""
    b = basis(x, grid, k, d)
    return torch.einsum("no,oit,nit->ni", g.to(b.dtype), coeff.to(b.dtype), b)


def dw(x, grid, g, k, d=0, s=None):
    """W[o,i,t] = sum_n g[n,o] s[n,i] B^(d)_t(x[n,i])."""
    b = basis(x, grid, k, d)
    if s is not None:
        b = b * s.unsqueeze(-1)
    return torch.einsum("no,nit->oit", g.to(b.dtype), b)


def spline_contract(x, grid, coeff, spline_order):
    """Reference for :func:`sparsefuse.kernels.spline_contract`: (..., in) -> (..., out)."""
    x2 = x.reshape(-1, x.shape[-1])
    y = fwd(x2, grid, coeff, spline_order, 0)
    return y.reshape(*x.shape[:-1], coeff.shape[0])


def kan_linear(x, grid, base_weight, spline_weight, spline_scaler, spline_order):
    """Reference for :func:`sparsefuse.kernels.kan_linear`."""
    coeff = spline_weight if spline_scaler is None else spline_weight * spline_scaler.unsqueeze(-1)
    return torch.nn.functional.linear(torch.nn.functional.silu(x), base_weight) + spline_contract(
        x, grid, coeff, spline_order)


def rel_err(a, b) -> float:
    """max |a - b| / max |b| in float64 (0 for empty tensors): the error every kernel check reports."""
    a, b = a.double().cpu(), b.double().cpu()
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-30)).item() if b.numel() else 0.0
