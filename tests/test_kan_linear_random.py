"""Randomized correctness of every KANLinear path against a float64 reference.

Each configuration draws the spline order, odd sizes, a grid (fresh, per-feature, or
updated to data), where x lies (inside the grid, beyond it, exactly on knots), the
dtype and the path. The oracle is the reference path in float64 on the same
parameters. Tolerance (flash-attention's rule): a path's error, in the output and in
the gradients, may be at most twice that of the reference path run at the same
precision, plus a few epsilons of the output scale.
"""

import os
import random

import pytest
import torch
from torch.autograd import gradcheck, gradgradcheck

if not torch.cuda.is_available():  # the fused path runs on CPU under the Triton interpreter
    os.environ.setdefault("TRITON_INTERPRET", "1")

from sparsefuse.grid import is_uniform  # noqa: E402
from sparsefuse.kan_linear import KANLinear  # noqa: E402

IMPLS = ("reference", "dense", "sparse", "fused")
N_CONFIGS = 64


def _fused_ok():
    from sparsefuse import kernels  # imports without triton; available() says whether it can run
    return kernels.available("cpu")


FUSED = _fused_ok()


def _configs(n, seed=13):
    rng = random.Random(seed)
    out = []
    for i in range(n):
        impl = IMPLS[i % len(IMPLS)]
        grids = ["fresh", "shifted", "updated"]
        out.append(dict(
            seed=i, impl=impl, k=rng.choice([1, 2, 3, 5]),
            n_in=rng.choice([1, 3, 5, 7]), n_out=rng.choice([1, 3, 5]), n=rng.choice([1, 7, 33]),
            g=rng.choice([1, 2, 3, 5, 7, 11]), grid=rng.choice(grids),
            where=rng.choice(["inside", "outside", "knots"]), dtype=rng.choice([torch.float32, torch.float64]),
            standalone=rng.random() < 0.8))
    return out


def _id(c):
    return (f"{c['impl']}-k{c['k']}-{c['n']}x{c['n_in']}->{c['n_out']}-G{c['g']}-{c['grid']}-{c['where']}-"
            f"{str(c['dtype'])[6:]}")


def _layer(c, dtype=torch.float64):
    """The configuration's layer in float64, then cast: every dtype sees the same parameters."""
    torch.manual_seed(c["seed"])
    lo = -1.0 if c["grid"] != "shifted" else -0.3 - torch.rand(()).item()
    lay = KANLinear(c["n_in"], c["n_out"], grid_size=c["g"], spline_order=c["k"], grid_range=[lo, lo + 1.7],
                    enable_standalone_scale_spline=c["standalone"], dtype=torch.float64)
    with torch.no_grad():
        lay.spline_weight.normal_()  # a spline of unit size, not init noise
    if c["grid"] == "updated":
        lay.grid_eps = random.Random(c["seed"]).choice([0.02, 0.5])
        lay.update_grid(torch.randn(64, c["n_in"], dtype=torch.float64) * 0.7)
    return lay.to(dtype)


def _inputs(c, grid):
    """``x [n, in]`` placed relative to each feature's knots."""
    gen = torch.Generator().manual_seed(1000 + c["seed"])
    k, n = c["k"], c["n"]
    g = grid.double()
    u = torch.rand(n, g.shape[0], generator=gen, dtype=torch.float64)
    if c["where"] == "inside":
        x = g[:, k] + (g[:, -k - 1] - g[:, k]) * u
    elif c["where"] == "outside":  # the whole support and a spacing beyond it on each side
        h = (g[:, -1] - g[:, 0]) / (g.shape[1] - 1)
        x = g[:, 0] - h + (g[:, -1] - g[:, 0] + 2 * h) * u
    else:  # exactly on knots, both ends included
        idx = torch.randint(0, g.shape[1], (n, g.shape[0]), generator=gen)
        x = g[torch.arange(g.shape[0]), idx]
    return x.to(grid.dtype)


def _run(lay, impl, x):
    lay.impl = impl
    lay.zero_grad()
    xr = x.clone().requires_grad_()
    y = lay(xr)
    gy = torch.cos(torch.arange(y.numel(), dtype=y.dtype)).reshape(y.shape)  # a fixed, non-trivial cotangent
    (y * gy).sum().backward()
    return [y.detach(), xr.grad, lay.spline_weight.grad, lay.base_weight.grad]


@pytest.mark.parametrize("c", _configs(N_CONFIGS), ids=_id)
def test_path_matches_float64_reference(c):
    lay = _layer(c, c["dtype"])
    x = _inputs(c, lay.grid)
    if c["impl"] == "fused" and not FUSED:
        pytest.skip("fused kernels need triton (CPU interpreter)")
    oracle = _run(lay.to(torch.float64), "reference", x.double())
    lay = lay.to(c["dtype"])
    torch_err = [(a.double() - b).abs().max() for a, b in zip(_run(lay, "reference", x), oracle)]
    got = _run(lay, c["impl"], x)
    eps = torch.finfo(c["dtype"]).eps
    for name, a, b, te in zip(("y", "dy/dx", "dy/dspline_weight", "dy/dbase_weight"), got, oracle, torch_err):
        assert a.dtype == c["dtype"], name
        if name == "dy/dx" and c["k"] == 1 and c["where"] == "knots":
            continue  # a linear spline has no derivative at its knots: paths may take either side
        err = (a.double() - b).abs().max()
        assert err <= 2 * te + 64 * eps * (1 + b.abs().max()), (name, float(err), float(te))


def test_configurations_cover_the_space():
    cs = _configs(N_CONFIGS)
    for key, values in (("k", {1, 2, 3, 5}), ("impl", set(IMPLS)), ("grid", {"fresh", "shifted", "updated"}),
                        ("where", {"inside", "outside", "knots"}), ("dtype", {torch.float32, torch.float64})):
        assert {c[key] for c in cs} == values, key
    fused = [c for c in cs if c["impl"] == "fused"]
    assert sum(not is_uniform(_layer(c, c["dtype"]).grid) for c in fused) >= 4  # adaptive grids run fused
    assert sum(c["dtype"] == torch.float64 for c in fused) >= 4


SMALL = [dict(seed=s, k=k, n_in=2, n_out=3, n=4, g=3, grid=grid, where="outside", dtype=torch.float64,
              standalone=True) for s, (k, grid) in enumerate([(1, "fresh"), (2, "updated"), (3, "shifted"), (5, "fresh")])]


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("c", SMALL, ids=lambda c: f"k{c['k']}-{c['grid']}")
def test_gradcheck_and_gradgradcheck(c, impl):
    lay = _layer(c)
    lay.impl = impl
    if impl == "fused" and not FUSED:
        pytest.skip("fused: needs triton")
    x = _inputs(c, lay.grid).requires_grad_()
    names = ["base_weight", "spline_weight", "spline_scaler"]

    def f(x, *ps):
        return torch.func.functional_call(lay, dict(zip(names, ps)), (x,))

    assert gradcheck(f, (x, *[getattr(lay, n) for n in names]))
    assert gradgradcheck(lambda x: lay(x), (x,))
