"""Notebook helpers: device choice, and publish showing fresh results beside the reference."""
from __future__ import annotations

import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from sparsefuse.lab.book import notebook as nb  # noqa: E402
from sparsefuse.lab.book import page  # noqa: E402
from sparsefuse.lab.book import results  # noqa: E402


def test_use_device(monkeypatch):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert nb.use_device("auto") == expected
    assert nb.use_device("cpu") == "cpu"
    import os

    assert os.environ["TRITON_INTERPRET"] == "1"
    with pytest.raises(ValueError, match="device"):
        nb.use_device("gpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="cuda"):
            nb.use_device("cuda")


@pytest.fixture
def shown(monkeypatch):
    captured = []
    import IPython.display

    monkeypatch.setattr(IPython.display, "display", lambda obj, **kw: captured.append(getattr(obj, "data", obj)))
    return captured


def _gpu_reference(root):
    folder = root / "quick" / "cuda-h100-80gb-hbm3"
    folder.mkdir(parents=True)
    pd.DataFrame({"path": ["linear"], "G": [5], "median_ms": [0.3]}).to_csv(folder / "demo.csv", index=False)
    fig, ax = plt.subplots()
    (folder / "demo.png").write_bytes(results.figure_bytes(fig, "png"))
    plt.close(fig)
    (folder / "demo.json").write_text(json.dumps({"name": "demo", "profile": "quick",
                                                  "gpu_name": "NVIDIA H100 80GB HBM3"}))


def test_publish_saves_and_shows_reference_beside(tmp_path, monkeypatch, shown):
    monkeypatch.setenv("SPARSEFUSE_RESULTS", str(tmp_path / "fresh"))
    monkeypatch.setenv("SPARSEFUSE_REFERENCE", str(tmp_path / "ref"))
    df = pd.DataFrame({"path": ["linear"], "G": [5], "median_ms": [0.02]})
    fig, ax = plt.subplots()
    nb.publish("demo", df, fig, profile="smoke", device="cpu", params={"N": 1})
    assert (tmp_path / "fresh" / "smoke" / "cpu" / "demo.json").exists()
    html = shown[-1]
    assert "No reference result is committed" in html and html.count("<img") == 1

    _gpu_reference(tmp_path / "ref")
    fig, ax = plt.subplots()
    nb.publish("demo", df, fig, profile="smoke", device="cpu")
    html = shown[-1]
    assert "differ in kind" in html and "NVIDIA H100" in html
    assert html.count("<img") == 2 and "data:image/png;base64," in html
    assert "Table — reference" in html and "Table — this run" in html


def test_publish_without_showing(tmp_path, monkeypatch, shown):
    monkeypatch.setenv("SPARSEFUSE_RESULTS", str(tmp_path))
    nb.publish("demo", pd.DataFrame({"a": [1]}), None, profile="smoke", device="cpu", show=False)
    assert not shown and (tmp_path / "smoke" / "cpu" / "demo.csv").exists()


def test_comparison_note_for_comparable_runs(tmp_path):
    _gpu_reference(tmp_path)
    ref = results.reference("demo", root=tmp_path)
    note, comparable = page.comparison_note("quick", "cuda-h100-80gb-hbm3", ref, "profile quick on H100")
    assert comparable and "ratio" in note and "the same GPU model" in note
    note, comparable = page.comparison_note("quick", "cuda-a100-sxm4-40gb", ref, "profile quick on A100")
    assert comparable and "a different GPU model" in note
    note, comparable = page.comparison_note("paper", "cuda-h100-80gb-hbm3", ref, "profile paper on H100")
    assert not comparable and "differ in kind" in note
    note, comparable = page.comparison_note("quick", "cpu", ref, "profile quick on a CPU")
    assert not comparable and "CPU quick against GPU quick" in note


def test_experiment_publishes_the_parameters_it_ran_with(tmp_path, monkeypatch, shown):
    from sparsefuse.lab.experiments import layer_microbench as exp

    monkeypatch.setenv("SPARSEFUSE_RESULTS", str(tmp_path))
    monkeypatch.setenv("SPARSEFUSE_REFERENCE", str(tmp_path / "none"))
    df = nb.experiment(exp, "smoke", "cpu", keys=["path", "G", "pass"], grid_sizes=[3], paths=["linear"],
                       N=None, side={"fast": lambda d: d[d["pass"] == "forward"]})
    assert list(df["path"].unique()) == ["linear"]
    meta = json.loads((tmp_path / "smoke" / "cpu" / f"{exp.NAME}.json").read_text())
    assert meta["parameters"]["grid_sizes"] == [3] and meta["parameters"]["paths"] == ["linear"]
    assert meta["parameters"]["N"] == exp.PROFILES["smoke"]["N"]  # None keeps the profile's value
    side = json.loads((tmp_path / "smoke" / "cpu" / f"{exp.NAME}_fast.json").read_text())
    assert side["rows"] == 1 and side["parameters"]["grid_sizes"] == [3]


def test_show_committed_says_missing_only_when_nothing_is_committed(tmp_path, monkeypatch, shown):
    monkeypatch.setenv("SPARSEFUSE_REFERENCE", str(tmp_path))
    nb.show_committed("demo", missing="Nothing committed yet.")
    assert "Nothing committed yet." in str(shown[-1])
    _gpu_reference(tmp_path)
    shown.clear()
    nb.show_committed("demo", missing="Nothing committed yet.", note="Ran elsewhere.",
                      describe=lambda table, meta: f"{len(table)} row from {meta['gpu_name']}.")
    words = str(shown[0])
    assert "Nothing committed yet." not in words
    assert "Ran elsewhere." in words and "commit unknown" in words and "1 row from NVIDIA H100 80GB HBM3." in words
    assert "nan" not in str(shown[1]).lower()


def test_scaling_table_is_read_honestly():
    from sparsefuse.lab.experiments import minigpt_distributed as dist

    df = pd.DataFrame({"strategy": ["ddp", "ddp", "ddp"], "world_size": [1, 2, 4],
                       "speedup_vs_1": [1.0, 2.2, float("nan")], "scaling_efficiency": [1.0, 1.1, float("nan")],
                       "status": ["ok", "ok", "skipped"], "note": [None, None, "needs 4 GPUs, 2 here"]})
    words = dist.describe_scaling(df, {"git_commit": None, "parameters": {"steps": 30}})
    assert "ddp on 2 GPUs: 2.2×" in words and "above 1, which weak scaling cannot exceed" in words
    assert "4 GPUs: skipped (needs 4 GPUs, 2 here)" in words and "names no commit" in words
    assert "Note" not in dist.describe_scaling(df.iloc[:1], {"git_commit": "abc"})
