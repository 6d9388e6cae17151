"""The papermill runner: parameters, failure reporting, timeout, resume, CLI."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from sparsefuse.lab.book import __main__ as cli
from sparsefuse.lab.book import gpus, layout, runner

HEADER = "# ---\n# jupyter:\n#   kernelspec:\n#     display_name: Python 3\n#     language: python\n#     name: python3\n# ---\n\n"

OK = HEADER + '''# %% [markdown]
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/x)

# %% tags=["parameters"]
profile = "smoke"
device = "auto"
scale = 2

# %%
import os
value = scale * 21
print("answer", value, profile, device, os.environ.get("TRITON_INTERPRET"), os.environ.get("SPARSEFUSE_NOTEBOOK"))
'''

BAD = HEADER + '''# %% tags=["parameters"]
profile = "smoke"
device = "auto"

# %%
x = 1

# %%
raise ZeroDivisionError("deliberate failure")

# %%
print("never")
'''


@pytest.fixture
def nbdir(tmp_path):
    folder = tmp_path / "notebooks"
    folder.mkdir()
    (folder / "01_ok.py").write_text(OK)
    (folder / "02_bad.py").write_text(BAD)
    (folder / "_helper.py").write_text("x = 1\n")
    return folder


@pytest.mark.parametrize("text, expected", [
    ("n=3", ("n", 3)), ("name=abc", ("name", "abc")), ("xs=[1, 2]", ("xs", [1, 2])),
    ("s='a=b'", ("s", "a=b")), ("f=1e-3", ("f", 0.001)),
])
def test_parse_param(text, expected):
    assert runner.parse_param(text) == expected


@pytest.mark.parametrize("text", ["novalue", "1x=2", "=3"])
def test_parse_param_rejects(text):
    with pytest.raises(ValueError, match="parameter"):
        runner.parse_param(text)


def test_bad_profile_device_and_timeout(nbdir, tmp_path):
    with pytest.raises(ValueError, match="profile"):
        runner.execute(nbdir / "01_ok.py", profile="huge", device="cpu", output_dir=tmp_path)
    with pytest.raises(ValueError, match="device"):
        runner.execute(nbdir / "01_ok.py", profile="smoke", device="tpu", output_dir=tmp_path)
    with pytest.raises(ValueError, match="timeout"):
        runner.execute(nbdir / "01_ok.py", profile="smoke", device="cpu", timeout=0, output_dir=tmp_path)


def test_run_reports_failure_continues_and_exits_nonzero(nbdir, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(runner, "LIBRARY_DIR", nbdir)  # resume must not see unrelated edits
    out = tmp_path / "executed"
    out.mkdir()
    previous = out / "02_bad.ipynb"
    previous.write_text("previous good output")
    report = tmp_path / "report.json"
    code = cli.main(["run", str(nbdir / "02_bad.py"), str(nbdir / "01_ok.py"), "--device", "cpu",
                     "--output-dir", str(out), "--no-progress", "-p", "scale=3", "--timeout", "300",
                     "--json", str(report)])
    printed = capsys.readouterr().out
    assert code == 1
    rows = {r["notebook"]: r for r in json.loads(report.read_text())}
    bad, ok = rows["02_bad"], rows["01_ok"]
    assert bad["status"] == "failed" and "ZeroDivisionError: deliberate failure" in bad["error"]
    assert bad["cell"] is not None
    assert ok["status"] == "ok" and ok["device"] == "cpu"
    # the summary table names every notebook with status, wall time and device
    assert "notebook" in printed and "wall s" in printed and "02_bad" in printed and "01_ok" in printed
    assert "FAILED 02_bad: failed (cell" in printed
    # a failed run never replaces an earlier good output; its own output is kept aside
    assert previous.read_text() == "previous good output"
    assert (out / "failed" / "02_bad.ipynb").exists()
    executed = json.loads((out / "01_ok.ipynb").read_text())
    text = "".join("".join(o.get("text", "")) for c in executed["cells"] for o in c.get("outputs", []))
    assert "answer 63 smoke cpu 1 01_ok" in text  # -p, profile, device, CPU interpreter flag, name
    assert executed["metadata"]["papermill"]["parameters"] == {"profile": "smoke", "device": "cpu", "scale": 3}
    assert not list(out.glob(".*")), "temporary files left behind"
    raw = (out / "01_ok.ipynb").read_text()
    assert "assets/colab-badge.svg" not in raw and "../badges/colab-badge.svg" in raw
    assert executed["metadata"]["papermill"]["input_path"].endswith("01_ok.py")

    # --resume skips what is current and re-runs what is not
    results = runner.run([nbdir / "01_ok.py"], profile="smoke", device="cpu", params={"scale": 3},
                         output_dir=out, resume=True, progress=False)
    assert results[0].status == "skipped"
    assert runner.is_current(nbdir / "01_ok.py", out / "01_ok.ipynb", {"scale": 3}, library=nbdir)
    assert not runner.is_current(nbdir / "01_ok.py", out / "01_ok.ipynb", {"scale": 4}, library=nbdir)
    later = time.time() + 5
    os.utime(nbdir / "01_ok.py", (later, later))  # the source changed after the run
    assert not runner.is_current(nbdir / "01_ok.py", out / "01_ok.ipynb", {"scale": 3}, library=nbdir)


def test_timeout_kills_the_notebook(nbdir, tmp_path):
    res = runner.execute(nbdir / "01_ok.py", profile="smoke", device="cpu", timeout=0.3,
                         output_dir=tmp_path)
    assert res.status == "timeout" and "0.3" in res.error
    assert not (tmp_path / "01_ok.ipynb").exists()
    assert not list(tmp_path.glob(".*"))


def test_summary_lists_failures():
    text = runner.summary([runner.RunResult("a", "ok", 1.0, "cpu"),
                           runner.RunResult("b", "timeout", 2.5, "cuda", error="exceeded 2 s")])
    lines = text.splitlines()
    assert lines[0].split() == ["notebook", "status", "wall", "s", "device"]
    assert lines[3].split() == ["b", "timeout", "2.5", "cuda"]
    assert lines[-1] == "FAILED b: timeout: exceeded 2 s"


def test_list_shows_notebooks_and_parameters(capsys):
    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out
    for src in layout.notebooks():
        assert src.stem in out
    assert "profile='smoke'" in out


def test_run_rejects_unknown_notebook_and_reserved_params():
    with pytest.raises(SystemExit, match="notebook"):
        cli.main(["run", "no_such_notebook", "--no-progress"])
    with pytest.raises(SystemExit, match="--profile"):
        cli.main(["run", "-p", "profile=quick", "--no-progress"])
    with pytest.raises(SystemExit, match="key=value"):
        cli.main(["run", "-p", "novalue", "--no-progress"])


def _fake_output(out, params):
    """An executed notebook as papermill leaves it, newer than its source and library."""
    out.write_text(json.dumps({"cells": [], "metadata": {"papermill": {"parameters": params}},
                               "nbformat": 4, "nbformat_minor": 5}))
    later = time.time() + 5
    os.utime(out, (later, later))


def test_resume_requires_the_same_parameters_exactly(nbdir, tmp_path, monkeypatch):
    monkeypatch.setattr(runner, "LIBRARY_DIR", nbdir)
    out = tmp_path / "01_ok.ipynb"
    _fake_output(out, {"profile": "smoke", "device": "cpu", "scale": 3, "xs": [1, 2]})
    src = nbdir / "01_ok.py"
    full = {"profile": "smoke", "device": "cpu", "scale": 3, "xs": (1, 2)}  # a tuple is stored as a list
    assert runner.is_current(src, out, full, exact=True)
    assert not runner.is_current(src, out, {"profile": "smoke", "device": "cpu"}, exact=True)
    # a run without the earlier -p values is not the earlier run: it executes (and here times out at once)
    again = dict(profile="smoke", device="cpu", output_dir=tmp_path, resume=True)
    assert runner.execute(src, params={"scale": 3, "xs": (1, 2)}, **again).status == "skipped"
    res = runner.execute(src, timeout=0.05, **again)
    assert res.status == "timeout"
    assert json.loads(out.read_text())["metadata"]["papermill"]["parameters"]["scale"] == 3  # kept


def _state(pid):
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="needs /proc")
def test_timeout_also_kills_a_kernel_in_its_own_session(tmp_path):
    # papermill's kernel is started with a new session, outside the child's process group
    pidfile = tmp_path / "pid"
    code = ("import subprocess, sys, time; "
            "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'], start_new_session=True); "
            f"open({str(pidfile)!r}, 'w').write(str(p.pid)); time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", code], start_new_session=True, stdout=subprocess.PIPE)
    deadline = time.time() + 10
    while not (pidfile.exists() and pidfile.read_text()) and time.time() < deadline:
        time.sleep(0.05)
    kernel = int(pidfile.read_text())
    try:
        runner._kill_tree(proc)
        deadline = time.time() + 5
        while _state(kernel) not in (None, "Z") and time.time() < deadline:
            time.sleep(0.05)
        assert _state(kernel) in (None, "Z"), "the grandchild outlived the timeout"
    finally:
        try:
            os.kill(kernel, 9)
        except ProcessLookupError:
            pass


# ---------------------------------------------------------------- one notebook per GPU

def _meeting(folder, other):
    """A notebook that records its pinning, but only once ``other`` has started too (so both ran at once)."""
    return HEADER + f'''# %% tags=["parameters"]
profile = "smoke"
device = "auto"

# %%
import json, os, pathlib, time
folder = pathlib.Path({str(folder)!r})
me = os.environ["SPARSEFUSE_NOTEBOOK"]
(folder / (me + ".started")).write_text("")
deadline = time.time() + 30
while not (folder / "{other}.started").exists() and time.time() < deadline:
    time.sleep(0.05)
seen = {{k: os.environ.get(k) for k in ("CUDA_VISIBLE_DEVICES", "NCCL_NVLS_ENABLE", "TRITON_INTERPRET")}}
seen["met"] = (folder / "{other}.started").exists()
seen["device"] = device
(folder / (me + ".json")).write_text(json.dumps(seen))
'''


def test_gpus_run_notebooks_side_by_side_each_pinned(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setenv("NCCL_NVLS_ENABLE", "0")  # multicast stays off in every notebook
    folder = tmp_path / "notebooks"
    folder.mkdir()
    # 01 waits for 03, which can only start once 02 has failed and freed its GPU: 02 finishes first
    (folder / "01_a.py").write_text(_meeting(tmp_path, "03_b"))
    (folder / "02_bad.py").write_text(BAD)
    (folder / "03_b.py").write_text(_meeting(tmp_path, "01_a"))
    out, report = tmp_path / "executed", tmp_path / "report.json"
    code = cli.main(["run", *map(str, layout.notebooks(folder)), "--gpus", "2", "--output-dir", str(out),
                     "--no-progress", "--timeout", "120", "--json", str(report)])
    printed = capsys.readouterr().out
    assert code == 1
    rows = json.loads(report.read_text())
    assert [r["notebook"] for r in rows] == ["01_a", "02_bad", "03_b"]  # notebook order, not finishing order
    assert [r["status"] for r in rows] == ["ok", "failed", "ok"]
    assert "ZeroDivisionError" in rows[1]["error"]
    assert all(r["device"] == "cuda" for r in rows)
    seen = {name: json.loads((tmp_path / f"{name}.json").read_text()) for name in ("01_a", "03_b")}
    assert seen["01_a"]["met"] and seen["03_b"]["met"], "the two notebooks did not run at the same time"
    gpus = {seen[name]["CUDA_VISIBLE_DEVICES"] for name in seen}
    assert gpus == {"0", "1"}
    assert {name: rows[i]["gpu"] for i, name in ((0, "01_a"), (2, "03_b"))} == \
        {name: seen[name]["CUDA_VISIBLE_DEVICES"] for name in seen}
    for name in seen:
        assert seen[name]["device"] == "cuda" and seen[name]["NCCL_NVLS_ENABLE"] == "0"
        assert seen[name]["TRITON_INTERPRET"] is None
    lines = printed.splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("notebook"))  # after progress messages
    assert lines[head].split() == ["notebook", "status", "wall", "s", "device", "gpu"]
    assert [line.split()[0] for line in lines[head + 2:head + 5]] == ["01_a", "02_bad", "03_b"]
    assert "FAILED 02_bad: failed (cell" in printed
    assert (out / "01_a.ipynb").exists() and (out / "03_b.ipynb").exists() and not (out / "02_bad.ipynb").exists()
    assert not list(out.glob(".*")), "temporary files left behind"


def test_gpus_keep_order_bound_concurrency_and_reuse_freed_gpus(monkeypatch, tmp_path):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    busy, most, calls = set(), [0], []
    lock = __import__("threading").Lock()

    def fake_execute(src, *, device, gpu=None, **kwargs):
        with lock:
            assert gpu not in busy, "two notebooks on one GPU"
            busy.add(gpu)
            most[0] = max(most[0], len(busy))
            calls.append((src.stem, device, gpu))
        time.sleep(0.3 if src.stem == "n0" else 0.02)  # the first one finishes last
        with lock:
            busy.discard(gpu)
        return runner.RunResult(src.stem, "failed" if src.stem == "n2" else "ok", 0.1, device,
                                error="boom" if src.stem == "n2" else None, gpu=gpu)

    monkeypatch.setattr(runner, "execute", fake_execute)
    sources = [tmp_path / f"n{i}.py" for i in range(6)]
    results = runner.run(sources, profile="smoke", device="auto", gpus=2, progress=False)
    assert [r.notebook for r in results] == [f"n{i}" for i in range(6)]
    assert [r.status for r in results].count("failed") == 1 and results[2].status == "failed"
    assert most[0] == 2 and {gpu for _, _, gpu in calls} == {"0", "1"}
    assert all(device == "cuda" for _, device, _ in calls)
    # while n0 holds one GPU, everything else goes through the other
    assert {gpu for name, _, gpu in calls if name != "n0"} == {"1" if results[0].gpu == "0" else "0"}

    # a parent CUDA_VISIBLE_DEVICES is honoured: slots are its entries
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")
    calls.clear()
    runner.run(sources[:2], profile="smoke", device="cuda", gpus=2, progress=False)
    assert {gpu for _, _, gpu in calls} == {"3", "5"}
    with pytest.raises(ValueError, match="gpus"):
        runner.run(sources, profile="smoke", device="cuda", gpus=3, progress=False)

    # no GPU found: one after the other, unpinned, with the device asked for
    monkeypatch.setattr(gpus, "gpu_count", lambda: 0)
    calls.clear()
    runner.run(sources[:2], profile="smoke", device="cpu", gpus="auto", progress=False)
    runner.run(sources[:1], profile="smoke", device="auto", gpus="auto", progress=False)
    assert calls == [("n0", "cpu", None), ("n1", "cpu", None), ("n0", "auto", None)]


def test_run_cli_rejects_gpus_on_cpu():
    with pytest.raises(SystemExit, match="gpus"):
        cli.main(["run", "--gpus", "2", "--device", "cpu", "--no-progress"])
    with pytest.raises(SystemExit, match="gpus"):
        cli.main(["run", "--gpus", "many", "--no-progress"])
