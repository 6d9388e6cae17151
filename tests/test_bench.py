"""The timing harness on CPU (the CUDA branch runs on the GPU machine only)."""
from __future__ import annotations

import math
import time

import pytest
import torch

from sparsefuse.lab import bench


def test_cpu_benchmark_reports_ordered_quantiles():
    calls = []

    def fn():
        calls.append(1)
        time.sleep(0.002)

    res = bench.benchmark(fn, device="cpu", warmup=2, rep=5)
    assert len(calls) == 7
    assert res.q20_ms <= res.median_ms <= res.q80_ms
    assert 1.5 < res.median_ms < 200
    assert math.isnan(res.peak_mib) and res.status == "ok"
    assert set(res.as_dict()) == {"median_ms", "q20_ms", "q80_ms", "peak_mib", "status"}


@pytest.mark.parametrize("kwargs, arg", [
    (dict(warmup=-1), "warmup"), (dict(rep=0), "rep"), (dict(rep=2.5), "rep"), (dict(device="mps"), "device"),
])
def test_bad_arguments(kwargs, arg):
    with pytest.raises(ValueError, match=arg):
        bench.benchmark(lambda: None, **({"device": "cpu"} | kwargs))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only error")
def test_cuda_without_gpu_is_a_value_error():
    with pytest.raises(ValueError, match="device"):
        bench.benchmark(lambda: None, device="cuda")


def test_oom_becomes_a_row_and_other_errors_raise():
    def oom():
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    res = bench.try_benchmark(oom, device="cpu", warmup=0, rep=1)
    assert res.status == "oom" and math.isnan(res.median_ms)
    assert bench.try_benchmark(lambda: (_ for _ in ()).throw(MemoryError()), device="cpu").status == "oom"

    def broken():
        raise RuntimeError("shape mismatch")

    with pytest.raises(RuntimeError, match="shape"):
        bench.try_benchmark(broken, device="cpu")


def test_precision_modes_set_and_restore_the_matmul_precision():
    old = torch.get_float32_matmul_precision()
    for mode, want in (("fp32-ieee", "highest"), ("tf32", "high"), ("bf16", "high")):
        with bench.precision(mode):
            assert torch.get_float32_matmul_precision() == want
            assert torch.backends.cudnn.allow_tf32 == (mode == "tf32")
        assert torch.get_float32_matmul_precision() == old
    with pytest.raises(ValueError, match="mode"):
        with bench.precision("fp16"):
            pass
    with bench.autocast("bf16", "cpu"):
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.bfloat16
    with bench.autocast("tf32", "cpu"):
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.float32
