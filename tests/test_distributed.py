"""The DDP / FSDP2 training path, run for real with 2 gloo processes on CPU.

Each rank keeps its slice of one global batch, so 2-rank DDP and 2-rank FSDP
must end with the same weights as one process trained on the whole batch.
"""
from __future__ import annotations

import pandas as pd
import pytest
import torch

from sparsefuse.lab.experiments import minigpt_distributed as MD

TINY = ["--config", "tiny", "--ffn", "kan", "--steps", "5", "--block-size", "32", "--device", "cpu",
        "--max-chars", "40000", "--eval-batches", "1", "--no-progress", "--lr", "3e-3"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One process on the global batch, then the scaling mode: 2-rank DDP, 2-rank FSDP, and a size this host lacks."""
    d = tmp_path_factory.mktemp("dist")
    MD.main(["--strategy", "none", "--batch-size", "8", "--save-state", str(d / "one.pt"), *TINY])
    code = MD.main(["--scaling", "2,512", "--strategy", "ddp,fsdp", "--batch-size", "4",
                    "--save-state", str(d / "w.pt"), "--out", str(d / "scaling.csv"), *TINY])
    return d, code


@pytest.mark.parametrize("strategy", ["ddp", "fsdp"])
def test_two_gloo_ranks_match_one_process(strategy, runs):
    d, code = runs
    assert code == 0
    df = pd.read_csv(d / "scaling.csv")
    row = df[(df["strategy"] == strategy) & (df["world_size"] == 2)].iloc[0]
    assert row["backend"] == "gloo" and row["status"] == "ok", row["note"]
    assert row["loss_last"] < row["loss_first"]
    assert row["tokens_per_s"] > 0
    ref_state, state = torch.load(d / "one.pt"), torch.load(d / f"w-{strategy}-2.pt")
    # FSDP gave back the unsharded KAN weights: full shapes, same values as the one-process run.
    assert state.keys() == ref_state.keys()
    assert [k for k in state if k.endswith("spline_weight")]
    for k in state:
        assert state[k].shape == ref_state[k].shape, k
        torch.testing.assert_close(state[k], ref_state[k], atol=1e-5, rtol=1e-4, msg=k)
    if strategy == "ddp":
        assert row["params_spread"] == 0.0  # replicas identical across ranks


def test_scaling_mode_skips_sizes_this_host_lacks(runs):
    d, _ = runs
    df = pd.read_csv(d / "scaling.csv")
    big = df[df["world_size"] == 512]
    assert list(big["strategy"]) == ["ddp", "fsdp"]
    assert (big["status"] == "skipped").all() and big["note"].str.contains("512").all()
    assert {"tokens_per_s", "speedup_vs_1", "scaling_efficiency", "peak_mib"} <= set(df.columns)


def test_bad_arguments():
    with pytest.raises(ValueError, match="strategy"):
        MD.main(["--strategy", "zero3", *TINY])
    with pytest.raises(ValueError, match="scaling"):
        MD.main(["--scaling", "0", *TINY])
    with pytest.raises(ValueError, match="needs a process group"):
        from sparsefuse.lab import distributed as D
        D.wrap(torch.nn.Linear(2, 2), "ddp", D.setup("cpu"))


def test_a_hung_launch_is_stopped_with_its_children(tmp_path):
    import sys
    import time

    from sparsefuse.lab.experiments.minigpt_distributed import _run_bounded

    marker = tmp_path / "child_alive"
    child = tmp_path / "child.py"
    child.write_text(f"import time\ntime.sleep(3)\nopen({str(marker)!r}, 'w').write('x')\n")
    parent = tmp_path / "parent.py"  # stands in for torchrun: starts a worker, then hangs
    parent.write_text(f"import subprocess, sys, time\nsubprocess.Popen([sys.executable, {str(child)!r}])\n"
                      "time.sleep(30)\n")
    t0 = time.perf_counter()
    assert _run_bounded([sys.executable, str(parent)], timeout=1.0) is None
    assert time.perf_counter() - t0 < 10
    time.sleep(3.5)
    assert not marker.exists(), "the launcher's child outlived the timeout"
    done = _run_bounded([sys.executable, "-c", "print('ok')"], timeout=30)
    assert done.returncode == 0 and done.stdout.strip() == "ok"
