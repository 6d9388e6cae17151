"""The explorer widget's Python side: table in, JSON state out, bad input named."""
from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from sparsefuse.lab.book.explorer import Explorer


@pytest.fixture
def sweep():
    rows = []
    for G in (3, 5, 10):
        for path, ms in (("linear", 0.1), ("dense", 0.1 * G)):
            for pass_ in ("fwd", "fwd+bwd"):
                rows.append({"path": path, "G": G, "k": 3, "pass": pass_, "median_ms": ms,
                             "status": "ok", "extra": "dropped"})
    rows.append({"path": "fused", "G": 3, "k": 3, "pass": "fwd", "median_ms": math.nan,
                 "status": "OOM", "extra": ""})
    return pd.DataFrame(rows)


def test_state_holds_the_sweep_as_json(sweep):
    w = Explorer(sweep, title="t", baseline="linear")
    state = json.loads(json.dumps(w.get_state()["data"]))  # must be plain JSON (no NaN)
    assert len(state) == len(sweep)
    assert set(state[0]) == {"G", "median_ms", "path", "status", "density", "pass", "k"}
    oom = next(r for r in state if r["status"] == "OOM")
    assert oom["median_ms"] is None
    assert state[0]["density"] == pytest.approx(4 / 6)
    assert w.facet_value == "fwd" and w.baseline == "linear"
    assert "export default" in w._esm and "render" in w._esm


def test_select_moves_the_slider(sweep):
    w = Explorer(sweep)
    assert w.points() == [3, 5, 10]
    w.select(10)
    assert w.index == 2
    with pytest.raises(ValueError, match="x_value"):
        w.select(7)


@pytest.mark.parametrize("kwargs, arg", [
    (dict(x="grid"), "x="), (dict(y="ms"), "y="), (dict(series="impl"), "series="),
    (dict(facet="direction"), "facet="), (dict(baseline="nn.Linear"), "baseline="),
])
def test_bad_columns_are_named(sweep, kwargs, arg):
    with pytest.raises(ValueError, match=arg):
        Explorer(sweep, **kwargs)


def test_density_needs_k_or_density(sweep):
    with pytest.raises(ValueError, match="density"):
        Explorer(sweep.drop(columns=["k"]))
    w = Explorer(sweep.drop(columns=["k"]).assign(density=0.5), facet=None)
    assert w.data[0]["density"] == 0.5 and w.facet == ""
    with pytest.raises(ValueError, match="df"):
        Explorer(sweep.to_dict("records"))
