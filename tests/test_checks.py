"""Sizes are taken as Python or NumPy integers everywhere, one rule and one message (issue 22, item 7)."""

import numpy as np
import pytest
import torch

import sparsefuse
from sparsefuse.lab import bench, measure, text_data
from sparsefuse.checks import check_int
from sparsefuse.jhcg import SparseFuseJHCG
from sparsefuse.kan_linear import KAN, KANLinear
from sparsefuse.lab.models import ffn, mlp

I = np.int64  # noqa: E741


def test_check_int_takes_numpy_integers_and_returns_python_ints():
    for v in (5, I(5), np.int32(5), np.uint8(5)):
        assert check_int("n", v) == 5 and type(check_int("n", v)) is int
    for bad in (True, np.bool_(True), 5.0, np.float64(5), "5", None, torch.tensor(5), 0, I(0)):
        with pytest.raises(ValueError, match=r"^n: expected an integer >= 1"):
            check_int("n", bad)


def test_numpy_sizes_are_accepted_where_sizes_are_taken():
    """``KANLinear(2, 2, grid_size=np.int64(5))`` was refused while ``uniform_grid`` and the JHCG block took it."""
    lay = KANLinear(I(2), I(3), grid_size=I(5), spline_order=I(3))
    assert (lay.in_features, lay.out_features, lay.grid_size, lay.spline_order) == (2, 3, 5, 3)
    assert all(type(v) is int for v in (lay.in_features, lay.out_features, lay.grid_size, lay.spline_order))
    model = KAN([I(2), I(4), 1], grid_size=I(5), spline_order=I(2))
    assert [m.in_features for m in model.layers] == [2, 4] and type(model.grid_size) is int
    lay.extend_grid(I(7), num_samples=I(300))
    assert lay.grid_size == 7 and type(lay.grid_size) is int
    model.extend_grid(I(6))
    assert model.grid_size == 6 and type(model.grid_size) is int
    x = torch.rand(16, 2)
    res = sparsefuse.fit(model, (x, x[:, :1]), I(2), batch_size=I(8), log_every=I(1), progress=False)
    assert res.steps == 2
    assert model.layers[0].plot(x, n=I(10), max_panels=I(64)) is not None
    SparseFuseJHCG(I(8), grid_size=I(5), hidden=I(16), spline_order=I(3))
    assert mlp.matched_mlp_width(2, 1, I(40), depth=I(2)) >= 1
    assert ffn.build_ffn("mlp", I(8), I(16)) is not None
    assert mlp.MLP(I(2), [I(4)], I(1)) is not None
    with measure.cpu_threads(I(1)):
        pass
    assert bench.benchmark(lambda: None, device="cpu", warmup=I(0), rep=I(1)) is not None
    assert len(text_data.load_corpus(max_chars=I(100))[0]) <= 100


@pytest.mark.parametrize("call,name", [
    (lambda: KANLinear(2, 2, grid_size=2.0), "grid_size"), (lambda: KANLinear(True, 2), "in_features"),
    (lambda: KAN([2, 0]), "out_features"), (lambda: KANLinear(2, 2).extend_grid(np.float64(7)), "new_grid_size"),
    (lambda: KANLinear(2, 2).plot(n=1), "n"), (lambda: KANLinear(2, 2).plot(max_panels=0), "max_panels"),
])
def test_bad_sizes_name_the_argument(call, name):
    with pytest.raises(ValueError, match=rf"^{name}: expected an integer"):
        call()
