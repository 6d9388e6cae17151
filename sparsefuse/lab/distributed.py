"""PyTorch's own data-parallel engines for SparseFuse models: DDP and FSDP2.

Nothing here is home-made parallelism: ``setup`` reads the environment that
``torchrun`` sets, ``wrap`` hands the model to ``DistributedDataParallel`` or to
FSDP2's ``fully_shard``. For FSDP2 every Transformer block is its own shard
group, so each KAN FFN's ``base_weight``, ``spline_weight`` and
``spline_scaler`` are split along their first dimension across ranks and only
gathered around that block's forward and backward. The KAN grid is a buffer
and stays replicated (it is tiny: ``in x (G+2k+1)``).

Backend: NCCL on CUDA, gloo on CPU (how the distributed path is tested).
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

STRATEGIES = ("none", "ddp", "fsdp")


@dataclass(frozen=True)
class DistEnv:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    backend: str | None  # None when running as a single plain process

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup(device: str = "auto") -> DistEnv:
    """Join the process group described by torchrun's ``RANK``/``WORLD_SIZE``/``LOCAL_RANK``.

    Without those variables this is a single plain process (no group). ``device``
    is ``"auto"`` (CUDA when visible), ``"cuda"`` or ``"cpu"``.
    """
    if device not in ("auto", "cpu", "cuda"):
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', got {device!r}")
    use_cuda = torch.cuda.is_available() if device == "auto" else device == "cuda"
    if use_cuda and not torch.cuda.is_available():
        raise ValueError("device is 'cuda' but CUDA is not available")
    if "WORLD_SIZE" not in os.environ:
        dev = torch.device("cuda", torch.cuda.current_device()) if use_cuda else torch.device("cpu")
        return DistEnv(0, 1, 0, dev, None)
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local = int(os.environ.get("LOCAL_RANK", rank))
    if use_cuda:
        torch.cuda.set_device(local)
        dev = torch.device("cuda", local)
    else:
        dev = torch.device("cpu")
    backend = "nccl" if use_cuda else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend, device_id=dev if use_cuda else None)
    return DistEnv(rank, world, local, dev, backend)


def teardown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def wrap(model: nn.Module, strategy: str, env: DistEnv, shard_modules=None) -> nn.Module:
    """Return the model under ``strategy``: ``"none"``, ``"ddp"`` or ``"fsdp"`` (FSDP2 ``fully_shard``).

    ``shard_modules`` are the sub-modules that become their own FSDP group
    (default: every entry of ``model.blocks``); the root takes what is left.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
    model = model.to(env.device)
    if strategy == "none":
        return model
    if env.backend is None:
        raise ValueError(f"strategy={strategy!r} needs a process group: launch with torchrun")
    if strategy == "ddp":
        from torch.nn.parallel import DistributedDataParallel as DDP

        return DDP(model, device_ids=[env.device.index] if env.device.type == "cuda" else None)
    from torch.distributed.fsdp import fully_shard

    groups = list(shard_modules) if shard_modules is not None else list(getattr(model, "blocks", []))
    for m in groups:
        fully_shard(m)
    fully_shard(model)
    return model


def all_reduce_mean(t: torch.Tensor) -> torch.Tensor:
    """Mean over ranks (identity without a process group)."""
    if not (dist.is_available() and dist.is_initialized()):
        return t
    t = t.clone()
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t / dist.get_world_size()


def all_reduce_max(value: float, device) -> float:
    if not (dist.is_available() and dist.is_initialized()):
        return value
    t = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return float(t.item())


def full_state_dict(model: nn.Module) -> dict:
    """Unsharded, unwrapped CPU state dict (every rank must call it under FSDP)."""
    inner = getattr(model, "module", model)
    out = {}
    for k, v in inner.state_dict().items():
        if hasattr(v, "full_tensor"):
            v = v.full_tensor()
        out[k] = v.detach().cpu()
    return out


def params_spread(model: nn.Module, device) -> float:
    """Largest difference of any parameter between ranks (0 when replicas agree).

    Under DDP each rank holds a full replica, so this checks that gradient
    synchronisation really kept them identical. Under FSDP each rank holds a
    different shard, so the check is not meaningful and NaN is returned.
    """
    if not (dist.is_available() and dist.is_initialized()):
        return 0.0
    if any(hasattr(p, "full_tensor") for p in model.parameters()):
        return float("nan")
    flat = torch.cat([p.detach().reshape(-1).float() for p in model.parameters()]).to(device)
    lo, hi = flat.clone(), flat.clone()
    dist.all_reduce(lo, op=dist.ReduceOp.MIN)
    dist.all_reduce(hi, op=dist.ReduceOp.MAX)
    return float((hi - lo).max().item()) if flat.numel() else 0.0
