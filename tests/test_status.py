"""The one status vocabulary: how a failure of any kind is named in every table."""
import torch

from sparsefuse import status as S


def test_failure_tells_oom_from_other_errors():
    assert S.failure(torch.cuda.OutOfMemoryError("CUDA out of memory. Tried 80 GiB")) == (
        "oom", "OutOfMemoryError: CUDA out of memory. Tried 80 GiB")
    assert S.failure(MemoryError())[0] == "oom"
    assert S.failure(RuntimeError("DefaultCPUAllocator: can't allocate memory: 1 TB"))[0] == "oom"
    assert S.failure(ValueError("bad shape\nsecond line")) == ("error", "ValueError: bad shape")
    assert S.failure(KeyError())[1] == "KeyError: "
    assert len(S.failure(RuntimeError("x" * 500))[1]) < 230


def test_failure_keeps_the_reason_of_what_cannot_run():
    assert S.failure(S.Unavailable(S.PEER_MISSING, "inkan is not installed")) == ("peer-missing", "inkan is not installed")
    status, note = S.failure(NotImplementedError("no backward\nfor this layout"))
    assert status == S.UNSUPPORTED and note == "not implemented: no backward"


def test_is_oom_reads_the_message_only_of_runtime_errors():
    assert not S.is_oom(ValueError("out of memory"))
    assert S.is_oom(RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 1 TB"))
