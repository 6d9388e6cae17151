"""Triton launches without Triton's per-call binding once a launch of the same specialization compiled.

``kernel[grid](*args, **kw)`` spends most of its host time binding: each argument's
specialization (dtype, 16-byte alignment, an int being 1 / a multiple of 16 / 32-bit),
the options, a cache lookup, hooks, then the compiled kernel's own launcher.  Measured on
the H200's host (triton 3.6, a do-nothing kernel of 22 arguments, benchmarks/host_profile.py):
30.8 us per launch through ``kernel[grid]``, 10.4 us through the compiled kernel's launcher;
a fused layer step makes five to eight launches, on a host-bound step that is its largest
cost after the GEMM calls.  :func:`launch` keys each call on the same facts Triton
specializes on, computed in one pass, and calls the launcher of the kernel that key
compiled; a key not seen before goes through Triton (which compiles if it must) and the
compiled kernel is kept for the next call.

Only on CUDA with a Triton that has ``triton.knobs``; the interpreter, a kernel whose
constexpr parameters do not come last, and a process with launch hooks set (profilers)
take Triton's own path, as does everything while ``settings.lean_launch`` is off.
"""

import torch

from .settings import settings

try:
    from triton import knobs as _knobs
    from triton.runtime.jit import JITFunction
except ImportError:  # pragma: no cover - older Triton: every launch through kernel[grid]
    _knobs = JITFunction = None


def fact(a):
    """What Triton's compiled code depends on for one runtime argument (at least as fine as
    its own specialization: equal facts, same compiled kernel)."""
    if isinstance(a, torch.Tensor):
        return (a.dtype, a.data_ptr() % 16 == 0)
    t = type(a)
    if t is int:
        return (a == 1, a % 16 == 0, -2**31 <= a < 2**31)
    if t is float or t is bool:
        return t
    return (t, a)


class Lean:
    """One kernel's launches: compiled kernels by key, and its constexpr parameter names."""

    __slots__ = ("fn", "cache", "constexprs", "ok")

    def __init__(self, fn):
        self.fn = fn
        self.cache = {}
        names = list(fn.arg_names)
        first = len(names) - len(fn.constexprs)
        self.ok = sorted(fn.constexprs) == list(range(first, len(names)))
        self.constexprs = tuple(names[first:])

    def __call__(self, grid, args, kw):
        a0 = args[0]
        dev = a0.get_device()
        key = (dev, tuple(map(fact, args)), tuple(kw.items()))
        hit = self.cache.get(key)
        if hit is None:
            ck = self.fn[grid](*args, **kw)
            if ck is not None and hasattr(ck, "packed_metadata"):
                self.cache[key] = (ck.run, ck.function, ck.packed_metadata)
            return
        run, function, packed = hit
        g1 = grid[1] if len(grid) > 1 else 1
        g2 = grid[2] if len(grid) > 2 else 1
        run(grid[0], g1, g2, torch._C._cuda_getCurrentRawStream(dev), function, packed, None, None, None,
            *args, *[kw[n] for n in self.constexprs])


_LEANS = {}  # JITFunction -> Lean


def _hooked() -> bool:
    """Whether a launch hook is set: a function (newer Triton), or a hook chain with calls in it
    (triton 3.6 keeps an empty ``HookChain`` there when there is none)."""
    rt = _knobs.runtime
    return any(h is not None and getattr(h, "calls", True) for h in (rt.launch_enter_hook, rt.launch_exit_hook))


def launch(kernel, grid, *args, **kw):
    """``kernel[grid](*args, **kw)``, through the compiled kernel's launcher when one compiled for
    the same key (see the module docstring); ``args[0]`` is a tensor on the launch device."""
    if (_knobs is not None and settings.lean_launch and isinstance(kernel, JITFunction)
            and args[0].is_cuda and not _hooked()):
        lean = _LEANS.get(kernel)
        if lean is None:
            lean = _LEANS[kernel] = Lean(kernel)
        if lean.ok:
            return lean(grid, args, kw)
    kernel[grid](*args, **kw)
