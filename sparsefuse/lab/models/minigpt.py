"""MiniGPT: a small decoder-only Transformer whose FFN is pluggable (MLP, KAN, gated KAN, JHCG).

Pre-LayerNorm blocks, causal ``scaled_dot_product_attention``, learned position
embeddings and a tied output head: the plainest GPT that still trains well, so
the FFN is the only thing that differs between the chapter's rows.

Configs: ``tiny`` (tests and CPU smoke runs), ``scale-a`` (small; trains in
minutes on one GPU) and ``scale-b`` (GPT-2-small width and depth at sequence
length 1024: the feasibility point where the reference KAN path's basis
tensors decide whether one GPU suffices).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from sparsefuse.lab.models import transformer
from sparsefuse.lab.text_data import CharTokenizer  # noqa: F401  (the chapter's tokenizer, re-exported)


@dataclass(frozen=True)
class GPTConfig(transformer.TransformerConfig):
    vocab_size: int = 128
    block_size: int = 128


CONFIGS = {
    "tiny": GPTConfig(block_size=32, n_layer=1, n_head=2, d_model=32, ffn_mult=2),
    "scale-a": GPTConfig(block_size=256, n_layer=4, n_head=4, d_model=256),
    "scale-b": GPTConfig(block_size=1024, n_layer=12, n_head=12, d_model=768),
}
def make_config(name: str, **overrides) -> GPTConfig:
    """A named config with fields replaced (e.g. ``ffn="kan"``, ``vocab_size=...``)."""
    return transformer.make_config(CONFIGS, name, **overrides)


class MiniGPT(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        if cfg.vocab_size < 1 or cfg.block_size < 1:
            raise ValueError(f"cfg: vocab_size and block_size must be >= 1, got {cfg.vocab_size}, {cfg.block_size}")
        self.cfg = cfg
        self.tok = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.pos = nn.Embedding(cfg.block_size, cfg.d_model)
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = transformer.blocks(cfg, causal=True)
        self.ln_f = nn.LayerNorm(cfg.d_model)
        self.head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        self.head.weight = self.tok.weight  # tied: fewer parameters, better small-data perplexity
        self._init_weights()

    def _init_weights(self):
        # GPT-2 style for the non-KAN modules; KANLinear keeps its own (efficient-kan) initialisation.
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Embedding):
                nn.init.normal_(m.weight, std=0.02)
        for blk in self.blocks:
            nn.init.normal_(blk.attn.proj.weight, std=0.02 / math.sqrt(2 * self.cfg.n_layer))

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        """``idx [B, T]`` token ids -> ``(logits [B, T, V], loss or None)``."""
        if idx.dim() != 2:
            raise ValueError(f"idx must be [batch, time], got shape {tuple(idx.shape)}")
        t = idx.shape[1]
        if t > self.cfg.block_size:
            raise ValueError(f"idx has length {t} > block_size {self.cfg.block_size}")
        x = self.drop(self.tok(idx) + self.pos(torch.arange(t, device=idx.device)))
        for blk in self.blocks:
            x = blk(x)
        logits = self.head(self.ln_f(x))
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
        return logits, loss

    @torch.no_grad()
    def generate(self, idx: torch.Tensor, max_new_tokens: int, temperature: float = 1.0,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        """Sample continuations (for a look at what the model learned, not for measurement)."""
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature!r}")
        for _ in range(max_new_tokens):
            logits, _ = self(idx[:, -self.cfg.block_size:])
            probs = torch.softmax(logits[:, -1] / temperature, dim=-1)
            nxt = torch.multinomial(probs, 1, generator=generator)
            idx = torch.cat([idx, nxt], dim=1)
        return idx


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
