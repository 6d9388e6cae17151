"""What MiniGPT and the ViT share: the pre-LN block, its attention, and the FFN settings of a config.

The two Transformer chapters differ only in what surrounds the blocks (token and
position embeddings with a tied head; patches with a class token), so the block,
its attention and the fields that choose the FFN are defined once here.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

from sparsefuse.lab.models.ffn import build_ffn


@dataclass(frozen=True)
class TransformerConfig:
    """Width, depth and the FFN of a Transformer; MiniGPT's and the ViT's configs add their inputs."""

    n_layer: int = 4
    n_head: int = 4
    d_model: int = 128
    ffn: str = "mlp"          # "mlp" | "kan" | "gated_kan" | "jhcg" (see sparsefuse.lab.models.ffn)
    ffn_mult: int = 4         # hidden width = ffn_mult * d_model for every FFN kind
    ffn_hidden: int = 0       # > 0: this hidden width instead (the parameter-matched MLP)
    jhcg_rho: float = 0.25    # JHCG: share of the hidden width given to the KAN path
    jhcg_variant: str = "expanded"  # JHCG: "compact" | "expanded"
    impl: str = "auto"        # KANLinear path for KAN FFNs
    grid_size: int = 5
    spline_order: int = 3
    dropout: float = 0.0

    def as_dict(self) -> dict:
        return asdict(self)


def make_config(configs: dict, name: str, **overrides):
    """The config ``configs[name]`` with fields replaced (e.g. ``ffn="kan"``)."""
    if name not in configs:
        raise ValueError(f"config must be one of {sorted(configs)}, got {name!r}")
    return replace(configs[name], **overrides)


class SelfAttention(nn.Module):
    """Multi-head self-attention through ``scaled_dot_product_attention``; causal for MiniGPT, not for the ViT."""

    def __init__(self, d_model: int, n_head: int, dropout: float = 0.0, causal: bool = True):
        super().__init__()
        if d_model % n_head:
            raise ValueError(f"d_model={d_model} must be divisible by n_head={n_head}")
        self.n_head, self.causal, self.dropout = n_head, causal, dropout
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.n_head, d // self.n_head).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=self.causal,
                                           dropout_p=self.dropout if self.training else 0.0)
        return self.proj(y.transpose(1, 2).reshape(b, t, d))


class Block(nn.Module):
    """Pre-LN Transformer block; ``causal=False`` gives the ViT encoder block."""

    def __init__(self, d_model: int, n_head: int, ffn: nn.Module, dropout: float = 0.0, causal: bool = True):
        super().__init__()
        self.ln1 = nn.LayerNorm(d_model)
        self.attn = SelfAttention(d_model, n_head, dropout, causal)
        self.ln2 = nn.LayerNorm(d_model)
        self.ffn = ffn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.ffn(self.ln2(x))


def ffn_for(cfg: TransformerConfig) -> nn.Module:
    """The FFN block ``cfg`` names, at its hidden width."""
    hidden = cfg.ffn_hidden or cfg.ffn_mult * cfg.d_model
    return build_ffn(cfg.ffn, cfg.d_model, hidden, impl=cfg.impl, grid_size=cfg.grid_size,
                     spline_order=cfg.spline_order, dropout=cfg.dropout, rho=cfg.jhcg_rho, variant=cfg.jhcg_variant)


def blocks(cfg: TransformerConfig, *, causal: bool) -> nn.ModuleList:
    """``cfg.n_layer`` blocks, each with its own FFN."""
    return nn.ModuleList(Block(cfg.d_model, cfg.n_head, ffn_for(cfg), cfg.dropout, causal=causal)
                         for _ in range(cfg.n_layer))
