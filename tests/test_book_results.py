"""Result files: provenance sidecar, atomic writes, failed runs leave old results alone."""
from __future__ import annotations

import json
import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from sparsefuse.lab.book import results  # noqa: E402


@pytest.fixture
def table():
    return pd.DataFrame({"path": ["linear", "dense"], "G": [5, 5], "median_ms": [0.5, math.nan]})


@pytest.fixture
def figure():
    fig, ax = plt.subplots()
    ax.plot([1, 2], [3, 4])
    yield fig
    plt.close(fig)


def test_save_writes_table_figures_and_provenance(tmp_path, table, figure):
    saved = results.save("demo", table, figure, profile="smoke", device="cpu",
                         params={"N": 4, "bad": math.inf}, wall_s=1.23456, root=tmp_path)
    folder = tmp_path / "smoke" / "cpu"
    assert saved.csv == folder / "demo.csv"
    assert sorted(p.name for p in folder.iterdir()) == ["demo.csv", "demo.json", "demo.png", "demo.svg"]
    assert saved.png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert b"<svg" in saved.svg.read_bytes()
    meta = json.loads(saved.json.read_text())
    for key in ("git_commit", "git_dirty", "cpu_model", "torch", "triton", "python", "profile",
                "parameters", "wall_s", "timestamp", "device_tag"):
        assert key in meta, key
    assert meta["profile"] == "smoke" and meta["device_tag"] == "cpu"
    assert meta["parameters"] == {"N": 4, "bad": None}  # JSON has no Inf
    assert meta["wall_s"] == pytest.approx(1.235)
    back = pd.read_csv(saved.csv)
    assert list(back.columns) == ["path", "G", "median_ms"] and math.isnan(back["median_ms"][1])
    assert not list(folder.glob(".*.tmp")), "temporary files left behind"


def test_results_root_follows_environment(tmp_path, monkeypatch, table):
    monkeypatch.setenv("SPARSEFUSE_RESULTS", str(tmp_path / "elsewhere"))
    assert results.results_root() == tmp_path / "elsewhere"
    saved = results.save("demo", table, profile="quick", device="cpu")
    assert saved.csv.parent == tmp_path / "elsewhere" / "quick" / "cpu"
    assert saved.png is None and not (saved.csv.parent / "demo.png").exists()


@pytest.mark.parametrize("kwargs, arg", [
    (dict(name="../escape"), "name"),
    (dict(name=""), "name"),
    (dict(profile="fast"), "profile"),
    (dict(device="tpu"), "device"),
])
def test_bad_arguments_name_themselves(tmp_path, table, kwargs, arg):
    args = dict(name="demo", profile="smoke", device="cpu") | kwargs
    with pytest.raises(ValueError, match=arg):
        results.save(args.pop("name"), table, root=tmp_path, **args)


def test_df_must_be_a_dataframe(tmp_path):
    with pytest.raises(ValueError, match="df"):
        results.save("demo", [1, 2], profile="smoke", device="cpu", root=tmp_path)


def test_failed_save_keeps_previous_result(tmp_path, table, figure):
    first = results.save("demo", table, figure, profile="smoke", device="cpu", root=tmp_path)
    before = {p.name: p.read_bytes() for p in first.csv.parent.iterdir()}

    class BrokenFigure:
        def savefig(self, *args, **kwargs):
            raise RuntimeError("renderer crashed")

    changed = table.assign(G=[7, 7])
    with pytest.raises(RuntimeError, match="renderer crashed"):
        results.save("demo", changed, BrokenFigure(), profile="smoke", device="cpu", root=tmp_path)
    after = {p.name: p.read_bytes() for p in first.csv.parent.iterdir()}
    assert after == before


def _fake_result(root, profile, tag, name="demo", df=None, gpu="NVIDIA H100 80GB HBM3"):
    folder = root / profile / tag
    folder.mkdir(parents=True)
    (df if df is not None else pd.DataFrame({"G": [1], "median_ms": [2.0]})).to_csv(folder / f"{name}.csv", index=False)
    meta = {"name": name, "profile": profile, "gpu_name": gpu, "git_commit": "f" * 40, "git_dirty": False,
            "torch": "2.11.0", "triton": "3.6.0", "python": "3.12.3", "wall_s": 12.5,
            "timestamp": "2026-11-24T00:00:00+00:00", "notebook": "01_demo"}
    (folder / f"{name}.json").write_text(json.dumps(meta))
    return folder


def test_reference_prefers_gpu_quick_results(tmp_path):
    assert results.reference("demo", root=tmp_path) is None
    _fake_result(tmp_path, "smoke", "cpu", gpu=None)
    assert results.reference("demo", root=tmp_path) is None  # CPU results are never the reference
    _fake_result(tmp_path, "paper", "cuda-h100-80gb-hbm3")
    assert results.reference("demo", root=tmp_path).profile == "paper"
    _fake_result(tmp_path, "quick", "cuda-h100-80gb-hbm3")
    ref = results.reference("demo", root=tmp_path)
    assert (ref.profile, ref.tag, ref.is_gpu) == ("quick", "cuda-h100-80gb-hbm3", True)
    assert ref.table()["median_ms"].tolist() == [2.0]
    assert "H100" in ref.describe()


def test_iter_results_skips_broken_sidecars(tmp_path):
    _fake_result(tmp_path, "quick", "cuda-h100-80gb-hbm3")
    bad = tmp_path / "quick" / "cpu"
    bad.mkdir(parents=True)
    (bad / "demo.json").write_text("{not json")
    (bad / "demo.csv").write_text("G\n1\n")
    (tmp_path / "quick" / "cuda-h100-80gb-hbm3" / "orphan.json").write_text("{}")  # no CSV
    found = results.iter_results(tmp_path)
    assert [(r.name, r.tag) for r in found] == [("demo", "cuda-h100-80gb-hbm3")]


def test_compare_gives_ratios_per_row():
    fresh = pd.DataFrame({"path": ["a", "b", "c"], "G": [5, 5, 5], "median_ms": [2.0, 3.0, 1.0]})
    ref = pd.DataFrame({"path": ["a", "b"], "G": [5, 5], "median_ms": [1.0, 6.0]})
    cmp = results.compare(fresh, ref)
    assert list(cmp.columns) == ["path", "G", "median_ms", "median_ms_ref", "median_ms_ratio"]
    ratios = dict(zip(cmp["path"], cmp["median_ms_ratio"]))
    assert ratios["a"] == 2.0 and ratios["b"] == 0.5 and math.isnan(ratios["c"])
    with pytest.raises(ValueError, match="keys"):
        results.compare(fresh, ref, keys=["nope"])


def test_run_where_every_row_failed_keeps_the_existing_result(tmp_path):
    good = pd.DataFrame({"path": ["a", "b"], "ms": [1.0, 2.0], "status": ["ok", "ok"]})
    saved = results.save("exp", good, profile="smoke", device="cpu", root=tmp_path)
    before = saved.csv.read_bytes(), saved.json.read_bytes()
    failed = pd.DataFrame({"path": ["a", "b"], "ms": [math.nan, math.nan], "status": ["oom", "error: boom"]})
    with pytest.raises(results.NothingSucceeded, match="kept"):
        results.save("exp", failed, profile="smoke", device="cpu", root=tmp_path)
    assert (saved.csv.read_bytes(), saved.json.read_bytes()) == before
    # with nothing to protect, a failed run is still recorded (its rows say why)
    other = results.save("other", failed, profile="smoke", device="cpu", root=tmp_path)
    assert "oom" in other.csv.read_text()
    # one good row is enough to replace the result
    results.save("exp", pd.concat([failed, good.iloc[:1]]), profile="smoke", device="cpu", root=tmp_path)
    assert "oom" in saved.csv.read_text()
