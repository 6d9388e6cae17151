"""Feed-forward blocks for Transformers: the MLP baseline, two KAN variants and the JHCG hybrid.

The Transformer chapters swap only this block, so attention, embeddings and
the training loop stay identical and every difference in speed, memory or loss
is the FFN's.

* ``mlp``  — ``Linear(d, h) -> GELU -> Linear(h, d)``, the standard block.
* ``kan``  — ``KANLinear(d, h) -> KANLinear(h, d)``. No activation in between:
  each KAN layer is already a learned per-edge nonlinearity.
* ``gated_kan`` — a gated KAN FFN (GLU-style): ``KANLinear_down(KANLinear_up(x) * sigmoid(W_g x))``.
  The linear gate lets each token switch hidden units off, which a plain
  KAN FFN can only approximate through its splines; the gate costs one
  ``d x h`` matrix, small next to the two KAN projections.
* ``jhcg`` — :class:`sparsefuse.jhcg.SparseFuseJHCG`: the hidden width ``h`` split
  between an MLP path and a KAN path (share ``rho``, variant ``compact`` or
  ``expanded``), mixed by a learned per-channel gate.

KAN grids default to ``[-2, 2]``: the FFN input comes out of a LayerNorm, so
about 95% of it lies within two standard deviations; outside the grid only the
base (SiLU) branch acts.
"""
from __future__ import annotations

import torch
from torch import nn

from sparsefuse.checks import check_int

FFN_KINDS = ("mlp", "kan", "gated_kan", "jhcg")
IMPLS = ("auto", "reference", "dense", "sparse", "fused")


def _kan_linear(in_features: int, out_features: int, *, grid_size: int, spline_order: int,
                grid_range, impl: str) -> nn.Module:
    from sparsefuse.kan_linear import KANLinear  # imported late: the core library is optional for MLP runs

    return KANLinear(in_features, out_features, grid_size=grid_size, spline_order=spline_order,
                     grid_range=list(grid_range), impl=impl)


class MLPFFN(nn.Module):
    """The baseline Transformer FFN."""

    def __init__(self, d_model: int, d_hidden: int, dropout: float = 0.0):
        super().__init__()
        self.up = nn.Linear(d_model, d_hidden)
        self.act = nn.GELU()
        self.down = nn.Linear(d_hidden, d_model)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.down(self.act(self.up(x))))


class KANFFN(nn.Module):
    """Two KAN layers, ``d -> h -> d``; tokens are flattened so the layer sees a 2-D batch.

    ``gated``: the hidden units are multiplied by ``sigmoid(W_g x)`` (:class:`GatedKANFFN`).
    """

    def __init__(self, d_model: int, d_hidden: int, *, grid_size: int = 5, spline_order: int = 3,
                 grid_range=(-2.0, 2.0), impl: str = "auto", dropout: float = 0.0, gated: bool = False):
        super().__init__()
        kw = dict(grid_size=grid_size, spline_order=spline_order, grid_range=grid_range, impl=impl)
        self.up = _kan_linear(d_model, d_hidden, **kw)
        self.gate = nn.Linear(d_model, d_hidden) if gated else None  # made between the two: the seeded init order
        self.down = _kan_linear(d_hidden, d_model, **kw)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lead = x.shape[:-1]
        x2 = x.reshape(-1, x.shape[-1])
        h = self.up(x2)
        if self.gate is not None:
            h = h * torch.sigmoid(self.gate(x2))
        return self.drop(self.down(h)).reshape(*lead, self.down.out_features)


class GatedKANFFN(KANFFN):
    """Gated KAN FFN: KAN up-projection, times a sigmoid gate of the input, then KAN down-projection."""

    def __init__(self, d_model: int, d_hidden: int, **kan):
        super().__init__(d_model, d_hidden, gated=True, **kan)


def build_ffn(kind: str, d_model: int, d_hidden: int, *, impl: str = "auto", grid_size: int = 5,
              spline_order: int = 3, grid_range=(-2.0, 2.0), dropout: float = 0.0, rho: float = 0.25,
              variant: str = "expanded") -> nn.Module:
    """One FFN block by name (``"mlp"``, ``"kan"``, ``"gated_kan"`` or ``"jhcg"``).

    ``rho`` and ``variant`` apply to ``jhcg`` only; its hidden width is ``d_hidden``.
    """
    if kind not in FFN_KINDS:
        raise ValueError(f"kind must be one of {FFN_KINDS}, got {kind!r}")
    d_model, d_hidden = check_int("d_model", d_model), check_int("d_hidden", d_hidden)
    if kind == "mlp":
        return MLPFFN(d_model, d_hidden, dropout)
    if impl not in IMPLS:
        raise ValueError(f"impl must be one of {IMPLS}, got {impl!r}")
    if kind == "jhcg":
        from sparsefuse.jhcg import SparseFuseJHCG

        return SparseFuseJHCG(d_model, rho, grid_size, variant, hidden=d_hidden, spline_order=spline_order,
                              grid_range=grid_range, impl=impl, dropout=dropout)
    cls = KANFFN if kind == "kan" else GatedKANFFN
    return cls(d_model, d_hidden, grid_size=grid_size, spline_order=spline_order, grid_range=grid_range,
               impl=impl, dropout=dropout)
