"""ViT with a pluggable FFN, sized for CIFAR-style inputs (32x32x3, 100 classes).

Patches come from one strided convolution, a class token is prepended, and
the encoder is the pre-LN block of :mod:`.transformer` with non-causal attention, so the
two Transformer chapters share one attention implementation.

Configs: ``tiny`` (tests, CPU smoke), ``vit-s`` (ViT-Tiny width, patch 4 ->
64 tokens; the accuracy runs) and ``vit-b`` (ViT-Small width, depth 12: the
throughput/memory feasibility point on one GPU).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from sparsefuse.lab.models import transformer


@dataclass(frozen=True)
class ViTConfig(transformer.TransformerConfig):
    image_size: int = 32
    patch_size: int = 4
    in_chans: int = 3
    num_classes: int = 100


CONFIGS = {
    "tiny": ViTConfig(patch_size=8, d_model=32, n_layer=1, n_head=2, ffn_mult=2),
    "vit-s": ViTConfig(d_model=192, n_layer=6, n_head=3),
    "vit-b": ViTConfig(d_model=384, n_layer=12, n_head=6),
}
def make_config(name: str, **overrides) -> ViTConfig:
    """A named config with fields replaced (e.g. ``ffn="kan"``, ``num_classes=...``)."""
    return transformer.make_config(CONFIGS, name, **overrides)


class ViT(nn.Module):
    def __init__(self, cfg: ViTConfig):
        super().__init__()
        if cfg.image_size % cfg.patch_size:
            raise ValueError(f"cfg: image_size={cfg.image_size} must be divisible by patch_size={cfg.patch_size}")
        self.cfg = cfg
        n_patches = (cfg.image_size // cfg.patch_size) ** 2
        self.patch = nn.Conv2d(cfg.in_chans, cfg.d_model, cfg.patch_size, stride=cfg.patch_size)
        self.cls = nn.Parameter(torch.zeros(1, 1, cfg.d_model))
        self.pos = nn.Parameter(torch.randn(1, n_patches + 1, cfg.d_model) * 0.02)
        self.blocks = transformer.blocks(cfg, causal=False)
        self.ln = nn.LayerNorm(cfg.d_model)
        self.head = nn.Linear(cfg.d_model, cfg.num_classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``images [B, C, H, W]`` -> logits ``[B, num_classes]``."""
        c, s = self.cfg.in_chans, self.cfg.image_size
        if images.dim() != 4 or tuple(images.shape[1:]) != (c, s, s):
            raise ValueError(f"images must be [batch, {c}, {s}, {s}], got shape {tuple(images.shape)}")
        x = self.patch(images).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1) + self.pos
        for blk in self.blocks:
            x = blk(x)
        return self.head(self.ln(x[:, 0]))
