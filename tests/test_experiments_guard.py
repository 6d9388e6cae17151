"""Guarded measurement: a failure of any kind becomes a status row, never an exception."""
import torch

from sparsefuse import status as S
from sparsefuse.lab.experiments import _guard


def _oom(*_, **__):
    raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 9 GiB")


def test_measure_turns_oom_and_unsupported_into_rows():
    assert _guard.measure(_oom, "cpu", warmup=0, reps=1)["status"] == S.OOM

    def cpu_oom():
        raise RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 1 TB")
    assert _guard.measure(cpu_oom, "cpu", warmup=0, reps=1)["status"] == S.OOM

    def missing():
        raise NotImplementedError("no backward for this layout")
    assert _guard.measure(missing, "cpu", warmup=0, reps=1)["status"] == S.UNSUPPORTED

    def bug():
        raise KeyError("a real bug")
    row = _guard.measure(bug, "cpu", warmup=0, reps=1)
    assert row["status"] == S.ERROR and "KeyError" in row["note"]
    ok = _guard.measure(lambda: torch.ones(3).sum(), "cpu", warmup=0, reps=3)
    assert ok["status"] == S.OK and ok["median_ms"] >= 0
