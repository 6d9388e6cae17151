"""Plain PyTorch reference for the fused primitives (any float dtype, float64 for tests).

Builds the full dense basis ``[N, in, G+k]`` by Cox–de Boor on the actual knots (so
it does not assume a uniform grid) and its derivatives by the knot recurrence
``B'_{t,p} = p * (B_{t,p-1} / (t_{t+p} - t_t) - B_{t+1,p-1} / (t_{t+p+1} - t_{t+1}))``.
Slow and memory-hungry on purpose: it is the readable definition.
"""

import torch


def _cox_de_boor(x, grid, p):
    """Order-p bases on the full knot vector: [N, in, K - 1 - p] for K knots."""
    xe = x.unsqueeze(-1)
    g = grid.unsqueeze(0).to(x.dtype)
    # Half-open intervals [t_j, t_{j+1}); (x - x) turns a NaN/Inf input into NaN everywhere.
    b = ((xe >= g[..., :-1]) & (xe < g[..., 1:])).to(x.dtype) + (xe - xe)
    for q in range(1, p + 1):
        b = ((xe - g[..., : -(q + 1)]) / (g[..., q:-1] - g[..., : -(q + 1)]) * b[..., :-1]
             + (g[..., q + 1:] - xe) / (g[..., q + 1:] - g[..., 1:-q]) * b[..., 1:])
    return b


def basis(x, grid, k, d=0):
    """d-th derivative of the order-k B-spline bases at x [N, in]: [N, in, G + k]."""
    n_bases = grid.shape[1] - 1 - k
    if d > k:
        return torch.zeros((*x.shape, n_bases), dtype=x.dtype, device=x.device)
    if d == 0:
        return _cox_de_boor(x, grid, k)
    lower = basis(x, grid, k - 1, d - 1)
    g = grid.unsqueeze(0).to(x.dtype)
    left = g[..., k:-1] - g[..., : -(k + 1)]
    right = g[..., k + 1:] - g[..., 1:-k]
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


def rel_err(a, b) -> float:
    """max |a - b| / max |b| in float64 (0 for empty tensors): the error every kernel check reports."""
    a, b = a.double().cpu(), b.double().cpu()
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-30)).item() if b.numel() else 0.0
