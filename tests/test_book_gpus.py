"""GPU slots of the runner: counted with nvidia-smi, honouring CUDA_VISIBLE_DEVICES."""
from __future__ import annotations

import os

import pytest

from sparsefuse.lab.book import gpus as slots


@pytest.mark.parametrize("gpus, device, expected", [
    (None, "auto", 0), ("0", "auto", 0), ("2", "cuda", 2), (3, "auto", 3), ("auto", "cpu", 0),
])
def test_resolve_gpus(gpus, device, expected, monkeypatch):
    monkeypatch.setattr(slots, "gpu_count", lambda: pytest.fail("counted GPUs"))
    assert slots.resolve_gpus(gpus, device) == expected


@pytest.mark.parametrize("gpus, device", [("-1", "auto"), ("two", "auto"), (1.5, "auto"), (True, "auto"),
                                          ("2", "cpu"), ("2", "tpu")])
def test_resolve_gpus_rejects(gpus, device):
    with pytest.raises(ValueError, match="gpus|device"):
        slots.resolve_gpus(gpus, device)


def test_gpu_count_from_nvidia_smi(tmp_path, monkeypatch):
    smi = tmp_path / "nvidia-smi"
    smi.write_text("#!/bin/sh\necho 'GPU 0: NVIDIA H100 (UUID: GPU-a)'\n"
                   "echo '  MIG 1g.10gb     Device  0: (UUID: MIG-b)'\necho 'GPU 1: NVIDIA H100 (UUID: GPU-c)'\n")
    smi.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert slots.gpu_count() == 2
    assert slots.resolve_gpus("auto") == 2
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    assert slots.gpu_count() == 1
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert slots.gpu_count() == 0
    smi.write_text("#!/bin/sh\necho 'NVIDIA-SMI has failed' >&2\nexit 9\n")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    assert slots.gpu_count() == 0

