"""The GPU benchmark scripts' CPU smoke modes (TRITON_INTERPRET=1): they must at least run.

They are what a GPU run executes; a bug in their bookkeeping would otherwise show only
on the GPU machine.
"""
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(*args, timeout=300):
    env = dict(os.environ, TRITON_INTERPRET="1", PYTHONPATH=ROOT)
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


def test_gpu_tune_smoke_rewrites_a_copy_of_dispatch():
    before = open(os.path.join(ROOT, "sparsefuse", "kernels", "dispatch.py")).read()
    res = _run("benchmarks/gpu_tune.py", "--smoke")
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    assert "rewrite of a copy of dispatch.py: ok" in res.stdout
    assert "Suggested CONFIGS" in res.stdout and "Best per (primitive, strategy, precision class)" in res.stdout
    assert open(os.path.join(ROOT, "sparsefuse", "kernels", "dispatch.py")).read() == before


@pytest.mark.parametrize("extra", [[], ["--crossover"]], ids=["table", "crossover"])
def test_gpu_layer_bench_smoke(tmp_path, extra):
    res = _run("benchmarks/gpu_layer_bench.py", "--smoke", "--out", str(tmp_path), *extra)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    name = "gpu_strategy_crossover.csv" if extra else "gpu_layer_bench.csv"
    lines = (tmp_path / name).read_text().splitlines()
    assert len(lines) > 1
    if not extra:
        assert any(",kan-fused," in line for line in lines[1:])


def test_gpu_kernel_check_smoke_passes():
    res = _run("benchmarks/gpu_kernel_check.py", "--smoke")
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    assert "checks passed" in res.stdout and "FAIL" not in res.stdout
