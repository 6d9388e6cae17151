"""Evidence first: which run a chapter page leads with, and what it puts beside or below it.

One decision (``verdict.evidence``) picks the run; ``page.page_html`` lays the page out
from it and ``nb.experiment`` returns that run's table for the headline tables and
explorers. A CPU smoke build leads with the committed GPU reference and collapses its own
run; a GPU run at quick leads with itself and shows the reference and the difference.
"""
from __future__ import annotations

import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from sparsefuse.lab.book import notebook as nb  # noqa: E402
from sparsefuse.lab.book import page as result_page  # noqa: E402
from sparsefuse.lab.book import results, verdict  # noqa: E402

LOCAL = "This machine's run (CPU smoke: checks that the code runs, numbers not comparable)"


@pytest.fixture
def shown(monkeypatch):
    captured = []
    import IPython.display

    monkeypatch.setattr(IPython.display, "display", lambda obj, **kw: captured.append(getattr(obj, "data", obj)))
    return captured


def _reference(root, name="demo", table=None, tag="cuda-h200", gpu="NVIDIA H200", commit="abc1234def",
               stamp="2026-12-02T10:00:00+00:00"):
    folder = root / "quick" / tag
    folder.mkdir(parents=True, exist_ok=True)
    table = table if table is not None else pd.DataFrame(
        {"path": ["fused", "reference"], "G": [5, 5], "median_ms": [0.30, 0.90], "status": ["ok", "ok"]})
    table.to_csv(folder / f"{name}.csv", index=False)
    fig, ax = plt.subplots()
    (folder / f"{name}.png").write_bytes(results.figure_bytes(fig, "png"))
    plt.close(fig)
    (folder / f"{name}.json").write_text(json.dumps({"name": name, "profile": "quick", "gpu_name": gpu,
                                                     "git_commit": commit, "torch": "2.11.0", "timestamp": stamp,
                                                     "parameters": {"N": 4096}}))
    return results.reference(name, root=root)


FRESH = pd.DataFrame({"path": ["fused", "reference"], "G": [5, 5], "median_ms": [40.0, 2.0], "status": ["ok", "ok"]})
META = {"profile": "smoke", "device_tag": "cpu", "cpu_model": "Some CPU", "git_commit": "fff0000", "torch": "2.13"}


def test_the_newest_gpu_reference_wins(tmp_path):
    # an older GPU's folder left in place (alphabetically first) does not shadow a newer run
    _reference(tmp_path, tag="cuda-h200", gpu="NVIDIA H200", stamp="2026-12-02T10:00:00+00:00")
    assert _reference(tmp_path, tag="cuda-h100", gpu="NVIDIA H100",
                      stamp="2026-11-24T04:00:00+00:00").meta["gpu_name"] == "NVIDIA H200"
    assert _reference(tmp_path, tag="cuda-h100", gpu="NVIDIA H100",
                      stamp="2026-12-03T04:00:00+00:00").meta["gpu_name"] == "NVIDIA H100"


def test_smoke_on_cpu_picks_the_gpu_reference(tmp_path):
    ref = _reference(tmp_path)
    ev = verdict.evidence("demo", FRESH, profile="smoke", device="cpu", reference=ref)
    assert not ev.fresh and ev.measured and ev.reference is ref
    assert list(ev.table["median_ms"]) == [0.30, 0.90]
    assert "NVIDIA H200" in ev.source and "abc1234" in ev.source
    assert ev.label.startswith("reference:") and "NVIDIA H200" in ev.label


def test_smoke_without_a_reference_shows_this_run_labelled(tmp_path):
    ev = verdict.evidence("demo", FRESH, profile="smoke", device="cpu", reference=None)
    assert ev.fresh and not ev.measured and "not comparable" in ev.source


def test_gpu_quick_picks_this_run(tmp_path):
    ref = _reference(tmp_path)
    ev = verdict.evidence("demo", FRESH, profile="quick", device="cuda", reference=ref)
    assert ev.fresh and ev.measured and ev.table is FRESH
    # a GPU run in which nothing was measured falls back to the reference
    failed = FRESH.assign(status="oom")
    assert not verdict.evidence("demo", failed, profile="quick", device="cuda", reference=ref).fresh


def test_page_leads_with_the_reference_on_a_cpu_smoke_build(tmp_path):
    ref = _reference(tmp_path)
    ev = verdict.evidence("demo", FRESH, profile="smoke", device="cpu", reference=ref)
    page = result_page.page_html(ev, FRESH, fresh_png=b"png", fresh_meta=META, fresh_where="smoke/cpu/demo.csv",
                                 ref=ref)
    assert 'data-evidence="reference"' in page
    head, local = page.split("<details class=\"sparsefuse-local-run\">", 1)
    assert LOCAL.replace("'", "&#x27;") in local
    # the first figure, table and provenance line are the reference's; this run's numbers only in the collapsed part
    assert head.index("Reference — profile quick on NVIDIA H200") < len(head)
    assert "0.3" in head and "40" not in head.split("Table — reference", 1)[1]
    assert "commit abc1234def" in head and "NVIDIA H200" in head.split('class="sparsefuse-provenance"')[1]
    assert "fff0000" not in head and "fff0000" in local and "40" in local


def test_page_leads_with_this_run_on_a_gpu_and_shows_the_difference(tmp_path):
    ref = _reference(tmp_path)
    fresh = FRESH.assign(median_ms=[0.31, 2.5])
    meta = dict(META, profile="quick", device_tag="cuda-h200", gpu_name="NVIDIA H200", git_commit="1234567aaa")
    ev = verdict.evidence("demo", fresh, profile="quick", device="cuda", reference=ref)
    page = result_page.page_html(ev, fresh, fresh_png=b"png", fresh_meta=meta, fresh_where="quick/cuda-h200/demo.csv",
                                 ref=ref)
    assert 'data-evidence="fresh"' in page and "sparsefuse-local-run" not in page
    first_provenance = page.split('class="sparsefuse-provenance"')[1]
    assert "1234567aaa" in first_provenance
    assert page.index("This run — ") < page.index("Reference — ")
    assert "Difference from the reference: REGRESSION" in page  # reference 0.90 -> 2.5 ms is beyond tolerance
    assert "median_ms" in page


def test_experiment_returns_the_evidence_table(tmp_path, monkeypatch, shown):
    from sparsefuse.lab.experiments import layer_microbench as exp

    monkeypatch.setenv("SPARSEFUSE_RESULTS", str(tmp_path / "fresh"))
    monkeypatch.setenv("SPARSEFUSE_REFERENCE", str(tmp_path / "ref"))
    table = pd.DataFrame({"path": ["linear", "linear"], "G": [3, 3], "pass": ["forward", "forward+backward"],
                          "k": [3, 3], "median_ms": [0.01, 0.02], "status": ["ok", "ok"]})
    _reference(tmp_path / "ref", name=exp.NAME, table=table)
    _reference(tmp_path / "ref", name=exp.NAME + "_fast", table=table.head(1))
    df = nb.experiment(exp, "smoke", "cpu", keys=["path", "G", "pass"], grid_sizes=[3], paths=["linear"],
                       side={"fast": lambda d: d[d["pass"] == "forward"]})
    assert list(df["median_ms"]) == [0.01, 0.02]  # the reference, not this run
    assert "NVIDIA H200" in df.attrs["evidence"] and df.attrs["parameters"] == {"N": 4096}
    assert df.attrs["tables"]["fast"]["median_ms"].tolist() == [0.01]
    assert (tmp_path / "fresh" / "smoke" / "cpu" / f"{exp.NAME}.csv").exists()  # this run is still saved
    page = next(s for s in shown if isinstance(s, str) and "sparsefuse-result" in s)
    assert 'data-evidence="reference"' in page and "This machine&#x27;s run (CPU smoke" in page
    w = exp.explorer(df)
    assert w.source.startswith("reference:") and "NVIDIA H200" in w.source
    source = [v for s in shown if isinstance(s, dict) for k, v in s.items() if k.startswith(nb.GLUE_PREFIX)]
    assert any("committed reference run" in str(v) and "NVIDIA H200" in str(v) for v in source)


def test_local_run_title():
    assert result_page.local_run_title("smoke", "cpu") == LOCAL
    assert "GPU smoke" in result_page.local_run_title("smoke", "cuda-h200")


def test_verdict_values_come_from_the_evidence(tmp_path):
    ref = _reference(tmp_path)
    ev = verdict.evidence("demo", FRESH, profile="smoke", device="cpu", reference=ref)
    values = verdict.verdict_values(ev, "demo", lambda t: {"demo_fused_ms": t["median_ms"].min()})
    assert values == {"demo_fused_ms": 0.30, "demo_source": ev.source}


def test_a_gpu_run_saved_into_the_reference_folder_is_compared_with_what_it_replaces(tmp_path, monkeypatch, shown):
    """`make book` on a GPU writes results/ itself: the page diffs against the committed result it overwrote."""
    from sparsefuse.lab.book import provenance

    monkeypatch.setenv("SPARSEFUSE_RESULTS", str(tmp_path))
    monkeypatch.setenv("SPARSEFUSE_REFERENCE", str(tmp_path))
    monkeypatch.setattr(provenance, "device_tag", lambda device: "cuda-h200")
    monkeypatch.setattr(verdict, "_gpu_words", lambda device: "NVIDIA H200")
    _reference(tmp_path, commit="0ld0000aaa", stamp="2026-12-01T00:00:00+00:00")
    fresh = FRESH.assign(median_ms=[0.31, 2.5])
    nb._publish("demo", fresh, None, profile="quick", device="cuda")
    page = next(s for s in shown if isinstance(s, str) and "sparsefuse-result" in s)
    assert "compared with the committed result it replaces" in page and "0ld0000" in page
    assert "The committed result this run replaces (commit 0ld0000)" in page
    assert "Difference from the reference: REGRESSION" in page  # 0.90 -> 2.5 ms against what was committed
    shown.clear()
    nb._publish("other", fresh, None, profile="quick", device="cuda")  # nothing committed before
    page = next(s for s in shown if isinstance(s, str) and "sparsefuse-result" in s)
    assert "no earlier reference to compare it with" in page and "Difference from" not in page
