"""Which contraction path or layer a row measures, and why it cannot run here when it cannot.

Our paths, the fused kernels and the peer packages each have their own limits;
they all end as :class:`sparsefuse.status.Unavailable` with the reason, so a
table says ``unsupported`` or ``peer-missing`` instead of failing.
"""
from __future__ import annotations

import os
from typing import Callable

import torch

from .. import peers
from sparsefuse.kan_linear import KANLinear
from sparsefuse.paths import get_path
from sparsefuse.status import PEER_MISSING, UNSUPPORTED, Unavailable

PATHS = ("reference", "dense", "sparse", "fused")
PEERS = ("inkan", "flashkan", "kanditioned", "pykan")


def fused_available(device) -> tuple[bool, str]:
    """Whether the fused Triton path can run on ``device``, and why not."""
    from sparsefuse import kernels  # imported on first use: TRITON_INTERPRET must be set before triton loads

    if not kernels.available(torch.device(device)):
        return False, "fused kernels need triton, and CUDA or TRITON_INTERPRET=1"
    return True, ""


def interpreted(device) -> bool:
    """True when a fused run would go through the (slow) Triton interpreter."""
    return torch.device(device).type == "cpu"


def interpreter_budget_ok(device, work: int, limit: int) -> tuple[bool, str]:
    """Under the CPU Triton interpreter only tiny fused problems finish in a smoke run."""
    if not interpreted(device):
        return True, ""
    if os.environ.get("TRITON_INTERPRET") != "1":
        return False, "fused on CPU needs TRITON_INTERPRET=1"
    if work > limit:
        return False, f"skipped under the Triton interpreter (work {work} > smoke limit {limit})"
    return True, ""


def contract_path(name: str, device) -> Callable:
    """``spline_contract(x, grid, coeff, spline_order)`` of one path, or ``Unavailable``."""
    if name == "fused":
        ok, why = fused_available(device)
        if not ok:
            raise Unavailable(UNSUPPORTED, why)
        from sparsefuse import kernels

        return kernels.spline_contract
    if name not in PATHS:
        raise ValueError(f"path must be one of {PATHS}, got {name!r}")
    return get_path(name)


def make_layer(impl: str, in_features: int, out_features: int, grid_size: int, spline_order: int = 3, *,
               device="cpu", dtype=torch.float32, seed: int = 0) -> torch.nn.Module:
    """Our ``KANLinear`` with a forced path, ``nn.Linear``, or a peer layer; ``Unavailable`` when it can't run."""
    torch.manual_seed(seed)
    if impl == "linear":
        return torch.nn.Linear(in_features, out_features).to(device, dtype)
    if impl in PEERS:
        return peer_layer(impl, in_features, out_features, grid_size, spline_order, device=device, dtype=dtype)
    if impl not in PATHS:
        raise ValueError(f"impl must be one of {PATHS + PEERS + ('linear',)}, got {impl!r}")
    if impl == "fused":
        ok, why = fused_available(device)
        if not ok:
            raise Unavailable(UNSUPPORTED, why)
    layer = KANLinear(in_features, out_features, grid_size=grid_size, spline_order=spline_order, impl=impl)
    return layer.to(device, dtype)


def peer_layer(name: str, in_features: int, out_features: int, grid_size: int, spline_order: int = 3, *,
               device="cpu", dtype=torch.float32) -> torch.nn.Module:
    """A peer layer from ``sparsefuse.lab.peers`` with its absence or limits turned into ``Unavailable``."""
    try:
        return peers.make_peer(name, in_features, out_features, grid_size, spline_order, device=device, dtype=dtype)
    except peers.PeerUnavailable as exc:
        raise Unavailable(PEER_MISSING, str(exc)) from None
    except peers.PeerUnsupported as exc:
        raise Unavailable(UNSUPPORTED, str(exc)) from None
