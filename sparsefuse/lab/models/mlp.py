"""Plain MLP and Fourier-feature MLP: the baselines every KAN chapter is compared against.

The Fourier-feature MLP (Tancik et al. 2020; Wang, Wang & Perdikaris 2021)
maps inputs through fixed random sinusoids first, which is the standard fix
for the spectral bias of MLP PINNs on multiscale solutions.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

from sparsefuse.checks import check_int

__all__ = ["MLP", "FourierFeatures", "FourierMLP", "mlp_param_count", "matched_mlp_width"]

_ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU, "silu": nn.SiLU, "gelu": nn.GELU}


def _activation(name):
    if isinstance(name, type) and issubclass(name, nn.Module):
        return name
    if name not in _ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(_ACTIVATIONS)} or an nn.Module class, got {name!r}")
    return _ACTIVATIONS[name]


def _check_width(name: str, v) -> int:
    return check_int(name, v)


class MLP(nn.Sequential):
    """``in -> hidden[0] -> ... -> out`` with an activation between linear layers."""

    def __init__(self, in_features: int, hidden: Sequence[int], out_features: int, activation="tanh"):
        _check_width("in_features", in_features)
        _check_width("out_features", out_features)
        hidden = list(hidden)
        for h in hidden:
            _check_width("hidden", h)
        act = _activation(activation)
        widths = [in_features, *hidden, out_features]
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(widths, widths[1:])):
            layers.append(nn.Linear(a, b))
            if i < len(widths) - 2:
                layers.append(act())
        super().__init__(*layers)
        self.in_features, self.out_features = in_features, out_features


class FourierFeatures(nn.Module):
    """``x -> [cos(2π x Bᵀ), sin(2π x Bᵀ)]`` with a fixed Gaussian ``B ~ N(0, sigma²)``.

    ``B`` is a buffer (not trained), drawn from its own seeded generator so the
    features do not depend on the global RNG state.
    """

    def __init__(self, in_features: int, n_features: int, sigma: float = 1.0, seed: int = 0):
        super().__init__()
        _check_width("in_features", in_features)
        _check_width("n_features", n_features)
        if not (isinstance(sigma, (int, float)) and math.isfinite(sigma) and sigma > 0):
            raise ValueError(f"sigma must be a positive finite number, got {sigma!r}")
        g = torch.Generator().manual_seed(int(seed))
        self.register_buffer("B", torch.randn(n_features, in_features, generator=g) * float(sigma))
        self.in_features, self.out_features = in_features, 2 * n_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = 2 * math.pi * x @ self.B.to(x.dtype).T
        return torch.cat([torch.cos(z), torch.sin(z)], dim=-1)


class FourierMLP(nn.Sequential):
    """Fourier features followed by an :class:`MLP`."""

    def __init__(self, in_features: int, hidden: Sequence[int], out_features: int, n_features: int = 64,
                 sigma: float = 1.0, activation="tanh", seed: int = 0):
        ff = FourierFeatures(in_features, n_features, sigma, seed)
        super().__init__(ff, MLP(ff.out_features, hidden, out_features, activation))
        self.in_features, self.out_features = in_features, out_features


def mlp_param_count(in_features: int, width: int, depth: int, out_features: int) -> int:
    """Parameters of an MLP with ``depth`` hidden layers of ``width`` units."""
    if depth == 0:
        return in_features * out_features + out_features
    return (in_features + 1) * width + (depth - 1) * (width + 1) * width + (width + 1) * out_features


def matched_mlp_width(in_features: int, out_features: int, target_params: int, depth: int = 2) -> int:
    """Hidden width whose MLP parameter count is closest to ``target_params`` (a fair baseline)."""
    _check_width("depth", depth)
    target_params = check_int("target_params", target_params)
    w = 1
    while mlp_param_count(in_features, w, depth, out_features) < target_params:
        w += 1
    below = mlp_param_count(in_features, w - 1, depth, out_features) if w > 1 else None
    if below is not None and target_params - below < mlp_param_count(in_features, w, depth, out_features) - target_params:
        return w - 1
    return w
