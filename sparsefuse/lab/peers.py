"""Other KAN implementations from PyPI, behind one constructor.

The benchmarks compare against these peers side by side. They are an optional
extra (``pip install sparsefuse[peers]``); every caller must cope with
:class:`PeerUnavailable` and record the peer as skipped rather than fail.

Each adapter builds a layer mapping ``(N, in) -> (N, out)`` with the closest
equivalent of an efficient-kan layer with ``grid_size`` intervals and spline
order ``spline_order``. Where a peer cannot express a configuration (inkan is
cubic-only, kanditioned is an order-1 lookup table) the adapter raises
:class:`PeerUnsupported` with the reason, so the table can say why.
"""

from __future__ import annotations

import importlib

import torch
from torch import nn

MODULES = {"inkan": "inkan", "flashkan": "flashkan", "kanditioned": "KANditioned", "pykan": "kan"}  # peer -> import name
PEERS = tuple(MODULES)


class PeerUnavailable(RuntimeError):
    """The peer's package is not installed."""


class PeerUnsupported(RuntimeError):
    """The peer is installed but cannot express the requested configuration."""


def _import(peer: str):
    try:
        return importlib.import_module(MODULES[peer])
    except ImportError as exc:  # pragma: no cover - depends on the extra
        raise PeerUnavailable(
            f"{peer} is not installed (pip install 'sparsefuse[peers]')"
        ) from exc


class _FirstOutput(nn.Module):
    """pykan layers return (y, preacts, postacts, postspline); keep y."""

    def __init__(self, layer: nn.Module):
        super().__init__()
        self.layer = layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x)[0]


def available() -> dict[str, bool]:
    """Which peers can be imported here."""
    out = {}
    for peer, module in MODULES.items():
        try:
            importlib.import_module(module)
            out[peer] = True
        except Exception:
            out[peer] = False
    return out


RECOMPILE_LIMIT = 256


def _allow_recompiles() -> None:
    """flashkan's basis is a module-level ``torch.compile``d function: every new shape,
    dtype or grad mode in one process is a recompile, and past Dynamo's default limit (8)
    it silently runs eager (measured on an H100: 5-10x slower, 10x the memory).  A sweep
    must time the compiled peer, so the limit is raised for the process."""
    cfg = torch._dynamo.config
    for key in ("recompile_limit", "cache_size_limit", "accumulated_recompile_limit",
                "accumulated_cache_size_limit"):
        if hasattr(cfg, key) and getattr(cfg, key) < RECOMPILE_LIMIT:
            setattr(cfg, key, RECOMPILE_LIMIT)


def make_peer(
    name: str,
    in_features: int,
    out_features: int,
    grid_size: int = 5,
    spline_order: int = 3,
    *,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
) -> nn.Module:
    """Build peer ``name``'s layer on ``device``.

    Raises ``ValueError`` for an unknown name, :class:`PeerUnavailable` when the
    package is missing and :class:`PeerUnsupported` for configurations the peer
    cannot run.
    """
    if name not in PEERS:
        raise ValueError(f"name must be one of {PEERS}, got {name!r}")
    if name == "inkan":
        mod = _import(name)
        if spline_order != 3:
            raise PeerUnsupported("inkan supports cubic splines (spline_order=3) only")
        # eager basis: comparable to the other eager paths and double-backward safe
        layer = mod.KANLayer(in_features, out_features, grid_size=grid_size, spline_order=3,
                             compile_basis=False)
    elif name == "flashkan":
        mod = _import(name)
        _allow_recompiles()
        layer = mod.KANLayer(in_features, out_features, grid_size=grid_size, spline_order=spline_order)
    elif name == "kanditioned":
        mod = _import(name)
        # An order-1 lookup table; give it as many coefficients per edge as the
        # B-spline layer has (G + k) so parameter counts match.
        layer = mod.KANLayer(in_features, out_features, init="random_normal",
                             num_control_points=grid_size + spline_order, impl="embedding_bag")
    else:  # pykan
        mod = _import(name)
        layer = _FirstOutput(
            mod.KANLayer(in_dim=in_features, out_dim=out_features, num=grid_size, k=spline_order,
                         save_plot_data=False, device=str(device))
        )
    return layer.to(device=device, dtype=dtype)
