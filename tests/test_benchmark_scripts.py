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


def _config_files():
    folder = os.path.join(ROOT, "sparsefuse", "kernels", "configs")
    return {name: open(os.path.join(folder, name), "rb").read() for name in sorted(os.listdir(folder))}


def test_gpu_tune_smoke_sweeps_and_writes_only_a_temp_table(tmp_path):
    before = _config_files()
    res = _run("benchmarks/gpu_tune.py", "--smoke", "--write", "--out", str(tmp_path), timeout=120)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    out = res.stdout
    assert "Best per (entry, precision class)" in out
    table = out[out.index("Best per (entry, precision class)"):].splitlines()[1:]
    for entry in ("fwd/gather", "dx/gather", "dw/gather", "all/streamed:basis", "all/streamed:reduce"):
        for cls in ("ieee", "bf16"):  # TF32 is skipped on CPU
            line = next((ln for ln in table if ln.split()[:2] == [entry, cls]), None)
            assert line is not None, (entry, cls, out[-3000:])
            assert "current" in line and "best" in line and "(2 tried, 0 rejected)" in line, line
    assert "GPU file update:" in out
    assert "temp write of Smoke_GPU.json" in out and ": ok" in out.split("temp write of")[1].splitlines()[0]
    assert "--write: nothing written (--smoke)" in out
    rows = (tmp_path / "gpu_tune.csv").read_text().splitlines()
    assert rows[0].startswith("group,precision,cls,G,primitive,candidate,config,median_ms,rel_err")
    # (4 one-primitive groups + the basis group on fwd and dw) x 2 candidates x 1 G x 2 precisions
    assert len(rows) - 1 == (4 * 2 + 2 * 2) * 2 * 1 and all(",ok" in r for r in rows[1:])
    assert _config_files() == before  # no file under kernels/configs written, changed or added


@pytest.mark.parametrize("extra", [[], ["--rounds", "2", "--precision", "bf16"], ["--crossover"], ["--pinn"],
                                   ["--impls", "kan-auto", "kan-auto-compiled", "kan-reference-compiled", "kan-dense"]],
                         ids=["table", "table-rounds", "crossover", "pinn", "compiled"])
def test_gpu_layer_bench_smoke(tmp_path, extra):
    before = _config_files()
    res = _run("benchmarks/gpu_layer_bench.py", "--smoke", "--out", str(tmp_path), *extra)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    name = {"--crossover": "gpu_strategy_crossover.csv", "--pinn": "pinn_host.csv"}.get(
        extra[0] if extra else None, "gpu_layer_bench.csv")
    lines = (tmp_path / name).read_text().splitlines()
    assert len(lines) > 1
    if not extra or extra[0] == "--rounds":  # our default path, the forced strategies, the GEMM floor
        for impl in ("kan-auto", "fused-streamed", "fused-gather", "cublas-floor"):
            assert any(f",{impl}," in line and ",ok," in line for line in lines[1:]), impl
        assert all(",adaptive," in line for line in lines[1:])  # the smoke layer runs after update_grid
        if extra:  # one row per implementation and precision, the median of two interleaved rounds
            import csv

            rows = list(csv.DictReader(lines))
            kan = [r for r in rows if r["impl"] == "kan-auto"]
            assert len(kan) == len({r["precision"] for r in rows})
            assert all(r["rounds"] == "2" and float(r["fwdbwd_spread"]) >= 1 for r in kan)
    elif extra[0] == "--impls":  # eager vs compiled rows (aot_eager on CPU)
        for impl in extra[1:]:
            assert any(f",{impl}," in line and ",ok," in line for line in lines[1:]), impl
    elif extra == ["--crossover"]:
        assert "Measured streamed_max_bases" in res.stdout
    else:
        assert "host overhead of kan-auto over nn.Linear" in res.stdout
        assert any(",kan-auto," in line and ",ok," in line for line in lines[1:])
    assert _config_files() == before


def test_gpu_kernel_check_smoke_passes():
    res = _run("benchmarks/gpu_kernel_check.py", "--smoke")
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    assert "checks passed" in res.stdout and "FAIL" not in res.stdout


def test_gpu_report_states_each_target_and_the_commits(tmp_path):
    """The kernel-benchmark page opens with a verdict generated from the committed table."""
    import shutil

    folder = tmp_path / "gpu"
    shutil.copytree(os.path.join(ROOT, "results", "gpu"), folder)
    res = _run("benchmarks/gpu_report.py", str(folder), timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    text = (folder / "README.md").read_text()
    verdict = text[text.index("## Verdict"):text.index("How to read the rows")]
    assert "**Floor, at least the best peer in every row**: met" in verdict
    for prec in ("fp32-ieee", "tf32", "bf16"):
        assert f"the best peer in {prec}**: missed" in verdict
    assert "**≥ 3× at G = 100**: missed" in verdict and "rows come from 2 commits" in verdict
    assert text == open(os.path.join(ROOT, "results", "gpu", "README.md")).read()  # the committed page is current


def test_gpu_uniform_ab_smoke():
    res = _run("benchmarks/gpu_uniform_ab.py", "--smoke", "--tag", "t", "--header", "--precisions", "fp32-ieee",
               timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    lines = res.stdout.strip().splitlines()
    assert lines[0].startswith("tag,round,N") and lines[1].startswith("t,1,64,8,6,5,fp32-ieee,")


def test_every_kernel_launch_compiles_for_the_gpu_offline():
    # the interpreter accepts Python the GPU compiler may refuse: compile each recorded launch for sm90
    pytest.importorskip("triton.backends.nvidia")
    res = _run("benchmarks/compile_offline.py", "--targets", "90", "--orders", "3", timeout=600)
    assert res.returncode == 0 and ", 0 failed" in res.stdout, res.stdout[-3000:] + res.stderr[-2000:]


def test_gpu_report_states_the_kernel_v3_targets():
    """The kernel page states each kernel-v3 target with its number, from results/gpu/v3/, regenerated."""
    sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
    from report_v3 import section, sweep_rows

    text = open(os.path.join(ROOT, "results", "gpu", "README.md")).read()
    v3 = text[text.index("## Kernel v3"):text.index("How to read the rows")]
    assert v3.strip() == "\n".join(section(os.path.join(ROOT, "results", "gpu"))).strip()  # README is current
    rows = sweep_rows(os.path.join(ROOT, "results", "gpu", "v3"))
    assert len(rows) == 54 and set(rows["precision"]) == {"bf16", "tf32"}  # 27 shapes x 2 precisions
    below = (rows["speedup"] < 1).sum()
    assert f"{54 - below} of 54 sweep rows" in v3
    assert "**Compiled ≤ 1.05× eager**: missed" in v3 and "**Adaptive grid within 1.15× of uniform**: met" in v3
    assert "**Eager host overhead ≤ 0.3 ms above nn.Linear** (N=1024, 64→64; goal 0.1 ms): missed" in v3