"""Launch-side helpers shared by the kernels: output allocation, precision, devices, sizes."""

import contextlib
import os

import torch

from .settings import settings


def interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def alloc(shape, dtype, device):
    """A kernel output: uninitialised, or NaN-filled while ``settings.poison`` is on (tests)."""
    if settings.poison:
        return torch.full(shape, float("nan"), dtype=dtype, device=device)
    return torch.empty(shape, dtype=dtype, device=device)


def dot_precision(dot_dtype: torch.dtype) -> str:
    """tl.dot input precision: float32 honours torch's matmul precision setting."""
    if dot_dtype == torch.float32 and torch.get_float32_matmul_precision() != "highest":
        return "tf32"
    return "ieee"


def upcast_dots(dot_dtype: torch.dtype) -> bool:
    # The CPU interpreter mis-evaluates tl.dot on 16-bit operands; upcast there only.
    return interpreting() and dot_dtype in (torch.float16, torch.bfloat16)


def device_guard(t: torch.Tensor):
    """Launch on the tensor's own CUDA device (non-default devices included)."""
    if t.is_cuda:
        return torch.cuda.device(t.device)
    return contextlib.nullcontext()


def cdiv(a: int, b: int) -> int:
    """Ceiling division in plain Python: ``triton.cdiv`` (like ``triton.next_power_of_2``) is a
    JIT function whose host-side call costs microseconds, several times per layer step."""
    return -(-a // b)


def next_pow2(n: int) -> int:
    """Smallest power of two >= n, in plain Python (see :func:`cdiv`)."""
    return 1 << max(0, int(n) - 1).bit_length()


def log2_ceil(n: int) -> int:
    """Steps of a binary search over ``n`` cells."""
    return max(0, int(n) - 1).bit_length()


def num_sms(device) -> int:
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).multi_processor_count
    return 1
