"""Lean launches (kernels/launch.py): the key is as fine as Triton's specialization, every kernel
the library launches can take the lean path, and on CUDA it gives the same results as
Triton's own launch path (bit for bit: the same compiled kernels run)."""

import pytest
import torch

from sparsefuse.kernels import launch as L
from sparsefuse.kernels import settings

KERNEL_MODULES = ("dw", "dx", "fwd", "geometry", "layout", "writer")


def test_fact_separates_what_triton_specializes_on():
    base = torch.zeros(64)
    assert L.fact(base) == L.fact(torch.ones(64))
    assert L.fact(base[1:]) != L.fact(base)  # 4 bytes off 16-byte alignment
    assert L.fact(base[4:]) == L.fact(base)  # 16 bytes off: still aligned
    assert L.fact(base.double()) != L.fact(base)
    assert len({L.fact(v) for v in (1, 2, 16, 2**31, 2**31 + 1)}) == 5
    assert L.fact(2) == L.fact(-3) == L.fact(17) and L.fact(32) == L.fact(16)  # plain 32-bit; multiples of 16
    assert L.fact(0.5) == L.fact(2.0) != L.fact(True)


def test_every_launched_kernel_has_its_constexprs_last():
    """A kernel whose constexprs are not a suffix would silently lose the lean path."""
    import importlib

    from triton.runtime.jit import JITFunction

    kernels = []
    for name in KERNEL_MODULES:
        mod = importlib.import_module(f"sparsefuse.kernels.{name}")
        src = open(mod.__file__).read()
        for attr in dir(mod):
            if attr.endswith("_kernel") and f"launch({attr}," in src:
                fn = getattr(mod, attr)
                kernels.append((attr, L.Lean(JITFunction(getattr(fn, "fn", fn)))))
    assert len(kernels) == 8, [k for k, _ in kernels]
    assert all(lean.ok for _, lean in kernels), [k for k, lean in kernels if not lean.ok]


def test_interpreter_and_cpu_take_tritons_path():
    """On CPU nothing is cached (the launch goes through kernel[grid])."""
    calls = []

    class Fake:
        def __getitem__(self, grid):
            return lambda *a, **k: calls.append((grid, a, k))

    L.launch(Fake(), (3,), torch.zeros(2), 5, BLOCK=4)
    assert calls == [((3,), (calls[0][1][0], 5), {"BLOCK": 4})]


def test_launch_hooks_send_launches_through_triton(monkeypatch):
    """A profiler's hook must see every launch; triton 3.6 keeps an empty hook chain when none is set."""
    from types import SimpleNamespace

    class Chain:
        def __init__(self, calls):
            self.calls = calls

    for enter, hooked in ((None, False), (Chain([]), False), (Chain([print]), True), (print, True)):
        monkeypatch.setattr(L, "_knobs", SimpleNamespace(runtime=SimpleNamespace(launch_enter_hook=enter,
                                                                                   launch_exit_hook=None)))
        assert L._hooked() is hooked, enter


@pytest.mark.skipif(not torch.cuda.is_available(), reason="lean launches run on CUDA only")
@pytest.mark.parametrize("n,inp,out,G", [(1000, 33, 17, 5), (4096, 64, 64, 30), (257, 8, 3, 3)])
def test_lean_launch_matches_tritons_path_on_cuda(n, inp, out, G):
    from sparsefuse import KANLinear

    torch.manual_seed(n)
    lay = KANLinear(inp, out, grid_size=G, impl="fused").cuda()
    x = torch.rand(n + 1, inp, device="cuda")[1:] * 2.4 - 1.2  # a view 4 bytes off alignment
    runs = []
    for lean in (False, True, True):  # Triton's path, then lean: first call compiles, second is cached
        with settings.changed(lean_launch=lean):
            xx = x.detach().requires_grad_()
            lay.zero_grad()
            y = lay(xx)
            y.square().sum().backward()
            runs.append([y, xx.grad] + [p.grad.clone() for p in lay.parameters()])
    for got in runs[1:]:
        for a, b in zip(got, runs[0]):
            assert torch.equal(a, b)
    assert L._LEANS and all(lean.cache for lean in L._LEANS.values() if lean.ok)
