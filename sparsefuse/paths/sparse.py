"""Sparse path: only the ``k + 1`` active coefficient rows per ``(n, i)`` are read.

The spline layer is a sparse matrix (``in * (k+1)`` non-zeros per sample row out of
``in * (G+k)`` columns) times the coefficient table ``[in*(G+k), out]``. That is
exactly ``embedding_bag`` with per-sample weights: bags are samples, indices are the
active rows, weights are the basis values. Work is O(N * in * (k+1) * out),
independent of G, and no ``N * in * (G+k)`` tensor exists.

``embedding_bag`` has no double backward, so when a graph of the gradient is asked
for (``create_graph=True``, e.g. PINN losses) the gradient is taken through
``gather_contract``, a readable plain-autograd twin (chunked over N). Compiled code
calls ``embedding_bag`` directly: Dynamo cannot trace the ``autograd.grad`` calls of
that backward, and compiled graphs have no double backward anyway.

Under autocast the contraction runs in the autocast dtype, like the ``F.linear`` of
the other paths, so every path returns the same dtype.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..basis.bspline import local
from ._checks import check_inputs

CHUNK_ELEMENTS = 1 << 22  # gathered coefficients held at once by the twin (32 MiB in float64)


def active_rows(first: torch.Tensor, k1: int, num_basis: int) -> torch.Tensor:
    """Row ``i * (G+k) + first + r`` of the coefficient table for each ``(n, i, r)``, as ``[N, in*(k+1)]``."""
    n, n_in = first.shape
    base = first + torch.arange(n_in, device=first.device) * num_basis
    return (base.unsqueeze(-1) + torch.arange(k1, device=first.device)).reshape(n, n_in * k1)


def coeff_table(coeff: torch.Tensor) -> torch.Tensor:
    """``[out, in, G+k] -> [in*(G+k), out]``: row ``i*(G+k) + j`` holds ``coeff[:, i, j]``."""
    out, n_in, nb = coeff.shape
    return coeff.permute(1, 2, 0).reshape(n_in * nb, out).contiguous()  # row-major: embedding_bag is 100x slower on a strided table


def gather_contract(values: torch.Tensor, table: torch.Tensor, rows: torch.Tensor,
                    chunk_elements: int = CHUNK_ELEMENTS) -> torch.Tensor:
    """``y[n] = sum_l values[n, l] * table[rows[n, l]]`` by explicit gathers (naive, any-order autograd)."""
    n, width = rows.shape
    out = table.shape[1]
    step = max(1, chunk_elements // max(1, width * out))
    parts = []
    for s in range(0, max(n, 1), step):
        picked = table[rows[s : s + step].reshape(-1)].view(-1, width, out)
        parts.append(torch.bmm(values[s : s + step].unsqueeze(1), picked).squeeze(1))
    return parts[0] if len(parts) == 1 else torch.cat(parts)


class _BagContract(torch.autograd.Function):
    """``embedding_bag`` forward; first-order backward native, higher orders through the twin."""

    @staticmethod
    def forward(ctx, values, table, rows):
        ctx.save_for_backward(values, table, rows)
        return F.embedding_bag(rows, table, per_sample_weights=values, mode="sum")

    @staticmethod
    def backward(ctx, grad):
        values, table, rows = ctx.saved_tensors
        need = [i for i in (0, 1) if ctx.needs_input_grad[i]]
        if torch.is_grad_enabled():  # create_graph=True: keep the gradient differentiable
            inputs = [(values, table)[i] for i in need]
            y = gather_contract(values, table, rows)
            got = torch.autograd.grad(y, inputs, grad, create_graph=True, allow_unused=True)
        else:
            with torch.enable_grad():
                v = values.detach().requires_grad_(0 in need)
                t = table.detach().requires_grad_(1 in need)
                y = F.embedding_bag(rows, t, per_sample_weights=v, mode="sum")
                got = torch.autograd.grad(y, [(v, t)[i] for i in need], grad)
        out = [None, None, None]
        for i, g in zip(need, got):
            out[i] = g
        return tuple(out)


def bag_contract(values: torch.Tensor, table: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """``y[n] = sum_l values[n, l] * table[rows[n, l]]`` through ``embedding_bag``."""
    if values.dtype != table.dtype:
        raise ValueError(f"values: dtype {values.dtype} differs from the coefficients' {table.dtype}")
    if rows.shape[0] == 0 or rows.shape[1] == 0:
        return gather_contract(values, table, rows)
    if torch.compiler.is_compiling():
        return F.embedding_bag(rows, table, per_sample_weights=values, mode="sum")
    return _BagContract.apply(values, table, rows)


def spline_contract(x: torch.Tensor, grid: torch.Tensor, coeff: torch.Tensor, spline_order: int,
                    uniform: bool | None = None) -> torch.Tensor:
    check_inputs(x, grid, coeff, spline_order)
    first, values = local(x, grid.to(x.dtype), spline_order, uniform=uniform)
    k1, nb = spline_order + 1, coeff.shape[2]
    rows = active_rows(first, k1, nb)
    values, table = values.reshape(rows.shape), coeff_table(coeff)
    dev = x.device.type
    if torch.is_autocast_enabled(dev) and x.dtype != torch.float64:  # what autocast does to F.linear
        values, table = values.to(torch.get_autocast_dtype(dev)), table.to(torch.get_autocast_dtype(dev))
    return bag_contract(values, table, rows)
