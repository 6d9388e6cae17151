"""Where a result came from: the commit, the machine and the software that made it.

Every number in the book must say where it came from; these facts go into the
JSON sidecar of every saved table.
"""
from __future__ import annotations

import os
import platform
import re
import subprocess
from pathlib import Path

from .layout import REPO_ROOT


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def gpu_name(device: str = "cuda") -> str | None:
    import torch

    if not str(device).startswith("cuda") or not torch.cuda.is_available():
        return None
    return torch.cuda.get_device_name(torch.device(device))


def device_tag(device: str) -> str:
    """``cpu`` or ``cuda-<gpu model>``, e.g. ``cuda-h100-80gb-hbm3``.

    The tag names the hardware, not the run, so results of one GPU model
    from different machines land in one folder and can be compared.
    """
    kind = str(device).split(":")[0]
    if kind == "cpu":
        return "cpu"
    if kind != "cuda":
        raise ValueError(f"device must be 'cpu' or 'cuda', got {device!r}")
    name = gpu_name(device) or "unknown"
    slug = _slug(name)
    slug = re.sub(r"^nvidia-", "", slug)
    return f"cuda-{slug}"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _run(cmd: list[str], cwd: Path | None = None) -> str | None:
    try:
        out = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


CODE_PATHS = ("sparsefuse", "notebooks", "benchmarks", "pyproject.toml")


def git_state(repo: Path = REPO_ROOT) -> tuple[str, bool | None]:
    """(commit, dirty). ``$SPARSEFUSE_GIT_COMMIT``/``_DIRTY`` stand in for a copy without .git."""
    commit = os.environ.get("SPARSEFUSE_GIT_COMMIT") or _run(["git", "rev-parse", "HEAD"], repo)
    if os.environ.get("SPARSEFUSE_GIT_DIRTY") is not None:
        dirty: bool | None = os.environ["SPARSEFUSE_GIT_DIRTY"].lower() in ("1", "true", "yes")
    else:
        # Only what can change a result counts: code, notebooks, packaging. A new module not
        # yet committed makes the tree dirty; result files rewritten by earlier runs do not.
        status = _run(["git", "status", "--porcelain", "--untracked-files=all", "--", *CODE_PATHS], repo)
        dirty = None if status is None else bool(status)
    return commit or "unknown", dirty


def environment(device: str) -> dict:
    """The machine and software facts recorded with every result."""
    import torch

    try:
        import triton
        triton_version = triton.__version__
    except ImportError:
        triton_version = None
    commit, dirty = git_state()
    env = {
        "git_commit": commit,
        "git_dirty": dirty,
        "device": str(device),
        "device_tag": device_tag(device),
        "cpu_model": cpu_model(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "triton": triton_version,
        "platform": platform.platform(),
        "triton_interpret": os.environ.get("TRITON_INTERPRET") == "1",
    }
    if str(device).startswith("cuda"):
        env["gpu_name"] = gpu_name(device)
        env["cuda"] = torch.version.cuda
        env["gpu_driver"] = _run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"])
        if env["gpu_driver"]:
            env["gpu_driver"] = env["gpu_driver"].splitlines()[0]
    return env
