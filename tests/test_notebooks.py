"""Every notebook in notebooks/ runs end to end with papermill at profile=smoke on CPU.

Results go to a temporary root, never to the committed results/. The executed
notebooks go to a temporary folder, or to $SPARSEFUSE_NOTEBOOK_OUTPUT when set
(`make test` points it at the folder the book is built from).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from sparsefuse.lab.book import layout, runner

pytestmark = pytest.mark.slow

SOURCES = layout.notebooks()


def test_there_are_notebooks():
    assert SOURCES, "notebooks/ holds no .py notebook"


@pytest.mark.parametrize("src", SOURCES, ids=[p.stem for p in SOURCES])
def test_notebook_runs_at_smoke_on_cpu(src: Path, tmp_path, monkeypatch):
    monkeypatch.setenv("SPARSEFUSE_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    out_dir = Path(os.environ.get("SPARSEFUSE_NOTEBOOK_OUTPUT") or tmp_path / "executed")
    res = runner.execute(src, profile="smoke", device="cpu", timeout=600, output_dir=out_dir)
    assert res.status == "ok", res.line()
    nb = json.loads(Path(res.output).read_text())
    errors = [o for c in nb["cells"] for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    assert nb["metadata"]["papermill"]["parameters"]["profile"] == "smoke"
    sidecars = list((tmp_path / "results" / "smoke" / "cpu").glob("*.json"))
    assert sidecars, "the notebook published no result (nb.publish)"
    for path in sidecars:
        meta = json.loads(path.read_text())
        assert meta["notebook"] == src.stem and meta["profile"] == "smoke"


def test_a_notebook_override_is_in_the_provenance(tmp_path, monkeypatch):
    monkeypatch.setenv("SPARSEFUSE_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    src = next(p for p in SOURCES if p.stem == "07_matrixkan")
    res = runner.execute(src, profile="smoke", device="cpu", timeout=600, output_dir=tmp_path / "executed",
                         params={"degrees": [1], "n": 16})
    assert res.status == "ok", res.line()
    meta = json.loads((tmp_path / "results" / "smoke" / "cpu" / "matrixkan.json").read_text())
    assert meta["parameters"]["degrees"] == [1] and meta["parameters"]["n"] == 16
