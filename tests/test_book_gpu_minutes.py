"""Device minutes per notebook of the committed GPU reference, read from the provenance."""
from __future__ import annotations

import json

import pandas as pd

from sparsefuse.lab.book import gpu_minutes


def _result(root, tag, name, notebook, wall, commit="abcdef1234", stamp="2026-12-04T00:00:00+00:00"):
    folder = root / "quick" / tag
    folder.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"x": [1], "status": ["ok"]}).to_csv(folder / f"{name}.csv", index=False)
    meta = {"name": name, "profile": "quick", "gpu_name": "NVIDIA H200", "git_commit": commit, "wall_s": wall,
            "timestamp": stamp, "notebook": notebook}
    (folder / f"{name}.json").write_text(json.dumps(meta))
    return folder


def test_minutes_per_notebook_from_the_newest_reference(tmp_path):
    folder = _result(tmp_path, "cuda-h200", "a", "01_a", 60.0)
    _result(tmp_path, "cuda-h200", "a_curves", "01_a", 90.0)
    _result(tmp_path, "cuda-h200", "b", "02_b", 30.0)
    _result(tmp_path, "cuda-h200", "orphan", None, 5.0)  # a torchrun result: no notebook, not counted
    _result(tmp_path, "cuda-h100", "b", "02_b", 999.0, commit="0ld", stamp="2026-11-01T00:00:00+00:00")
    (folder / gpu_minutes.RUN_LOG).write_text("notebook  status  wall s  device\n01_a  ok  100.5  cuda\n"
                                              "02_b  failed  3.0  cuda\n")
    rows = {r.notebook: r for r in gpu_minutes.reference_costs(tmp_path)}
    assert set(rows) == {"01_a", "02_b"}
    assert rows["01_a"].wall_s == 90.0 and rows["01_a"].results == ("a", "a_curves")
    assert rows["01_a"].runner_s == 100.5
    assert rows["02_b"].wall_s == 30.0 and rows["02_b"].commits == ("abcdef1",)  # the H100 row is older
    assert rows["02_b"].runner_s != rows["02_b"].runner_s  # a failed notebook's time is not a cost
    text = gpu_minutes.markdown(tmp_path)
    assert "2 notebooks at profile `quick` on NVIDIA H200, commit abcdef1" in text
    assert "2.0 minutes of experiment time" in text and "| 01_a | a, a_curves | NVIDIA H200 | abcdef1 | 1.5 | 1.7 |" in text


def test_no_reference(tmp_path):
    assert gpu_minutes.markdown(tmp_path) == "No GPU reference at profile quick is committed yet.\n"


def test_the_committed_reference_is_one_commit_of_every_notebook():
    from sparsefuse.lab.book import layout

    rows = gpu_minutes.reference_costs()
    assert {r.notebook for r in rows} == {p.stem for p in layout.notebooks()}
    assert len({c for r in rows for c in r.commits}) == 1
    assert all(r.wall_s > 0 and r.runner_s >= r.wall_s for r in rows)
