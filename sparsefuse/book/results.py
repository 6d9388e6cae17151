"""Result files with provenance: results/<profile>/<device-tag>/<name>.{csv,png,svg,json}.

Every number in the book must say where it came from, so each table is saved
with a JSON sidecar naming the commit, the machine and the software. Files are
written to temporary names first and renamed into place only once all of them
exist: a run that fails half way leaves the previous results untouched.
"""
from __future__ import annotations

import io
import json
import math
import os
import platform
import re
import subprocess
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

PROFILES = ("smoke", "quick", "paper")
REPO_ROOT = Path(__file__).resolve().parents[2]
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def results_root() -> Path:
    """Where fresh results go: ``$SPARSEFUSE_RESULTS`` or the repository's results/."""
    env = os.environ.get("SPARSEFUSE_RESULTS")
    return Path(env) if env else REPO_ROOT / "results"


def reference_root() -> Path:
    """Where the committed reference results live (``$SPARSEFUSE_REFERENCE`` overrides)."""
    env = os.environ.get("SPARSEFUSE_REFERENCE")
    return Path(env) if env else REPO_ROOT / "results"


def check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ValueError(f"name must be a plain file stem (letters, digits, _ . -), got {name!r}")
    return name


def check_profile(profile: str) -> str:
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {PROFILES}, got {profile!r}")
    return profile


# ---------------------------------------------------------------- machine facts

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


# ---------------------------------------------------------------- atomic writes

def atomic_write(path: str | os.PathLike, data: bytes | str) -> Path:
    """Write ``data`` to ``path`` via a temporary file in the same folder and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _write_temp(path, data)
    os.replace(tmp, path)
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _write_temp(path: Path, data: bytes | str) -> Path:
    raw = data.encode() if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; results are meant to be shared
        with os.fdopen(fd, "wb") as fh:
            fh.write(raw)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        os.unlink(tmp)
        raise
    return Path(tmp)


def atomic_write_many(files: dict[Path, bytes | str]) -> list[Path]:
    """All files or none: every temporary is written before the first rename."""
    temps: list[tuple[Path, Path]] = []
    try:
        for path, data in files.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            temps.append((_write_temp(path, data), path))
    except BaseException:
        for tmp, _ in temps:
            tmp.unlink(missing_ok=True)
        raise
    for tmp, path in temps:
        os.replace(tmp, path)
    return [p for _, p in temps]


def _jsonable(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if hasattr(value, "item"):  # numpy scalars
        return _jsonable(value.item())
    return str(value)


def figure_bytes(fig, fmt: str) -> bytes:
    """A figure as PNG or SVG bytes, without the creation date, so reruns diff cleanly."""
    import matplotlib

    buf = io.BytesIO()
    with matplotlib.rc_context({"svg.hashsalt": "sparsefuse"}):
        meta = {"Date": None} if fmt == "svg" else {"Software": None}
        fig.savefig(buf, format=fmt, dpi=110, bbox_inches="tight", metadata=meta)
    return buf.getvalue()


@dataclass(frozen=True)
class Saved:
    """Paths of one saved result."""

    csv: Path
    json: Path
    png: Path | None
    svg: Path | None


def result_dir(profile: str, tag: str, root: Path | None = None) -> Path:
    return (root or results_root()) / check_profile(profile) / tag


class NothingSucceeded(RuntimeError):
    """A run in which every row failed: it must not replace a result that exists."""


def no_row_succeeded(df: pd.DataFrame) -> bool:
    """True when ``df`` has a ``status`` column and none of its rows is ``ok``."""
    if "status" not in df.columns or df.empty:
        return False
    return not df["status"].astype(str).str.strip().str.lower().str.startswith("ok").any()


def save(name: str, df: pd.DataFrame, fig=None, *, profile: str, device: str,
         params: dict | None = None, wall_s: float | None = None, notebook: str | None = None,
         root: str | os.PathLike | None = None) -> Saved:
    """Save one experiment's table (+ figure) with its provenance sidecar."""
    check_name(name)
    check_profile(profile)
    if not isinstance(df, pd.DataFrame):
        raise ValueError(f"df must be a pandas DataFrame, got {type(df).__name__}")
    env = environment(device)
    folder = result_dir(profile, env["device_tag"], Path(root) if root is not None else None)
    if no_row_succeeded(df) and (folder / f"{name}.json").exists():
        raise NothingSucceeded(f"{name}: no row of this run has status 'ok'; the result already in "
                               f"{folder} is kept")
    files: dict[Path, bytes | str] = {folder / f"{name}.csv": df.to_csv(index=False)}
    if fig is not None:
        files[folder / f"{name}.png"] = figure_bytes(fig, "png")
        files[folder / f"{name}.svg"] = figure_bytes(fig, "svg")
    meta = {
        "name": name,
        "notebook": notebook or os.environ.get("SPARSEFUSE_NOTEBOOK"),
        "profile": profile,
        "parameters": _jsonable(params or {}),
        "wall_s": None if wall_s is None else round(float(wall_s), 3),
        "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "rows": int(len(df)),
        "files": sorted(p.name for p in files),
        **env,
    }
    # the sidecar goes last: a result is complete when its JSON names its files
    files[folder / f"{name}.json"] = json.dumps(_jsonable(meta), indent=2, sort_keys=True) + "\n"
    atomic_write_many(files)
    has_fig = fig is not None
    return Saved(folder / f"{name}.csv", folder / f"{name}.json",
                 folder / f"{name}.png" if has_fig else None, folder / f"{name}.svg" if has_fig else None)


# ---------------------------------------------------------------- reading back

@dataclass(frozen=True)
class Result:
    """One saved result, read back."""

    name: str
    profile: str
    tag: str
    folder: Path
    meta: dict

    @property
    def csv(self) -> Path:
        return self.folder / f"{self.name}.csv"

    @property
    def png(self) -> Path | None:
        p = self.folder / f"{self.name}.png"
        return p if p.exists() else None

    def table(self) -> pd.DataFrame:
        return pd.read_csv(self.csv)

    @property
    def is_gpu(self) -> bool:
        return self.tag.startswith("cuda")

    def describe(self) -> str:
        hw = self.meta.get("gpu_name") or self.meta.get("cpu_model") or self.tag
        return f"profile {self.profile} on {hw}"


def iter_results(root: str | os.PathLike | None = None) -> list[Result]:
    """Every result under ``root`` (sidecars that parse and whose CSV exists)."""
    root = Path(root) if root is not None else results_root()
    found = []
    for meta_path in sorted(root.glob("*/*/*.json")):
        profile, tag = meta_path.parent.parent.name, meta_path.parent.name
        if profile not in PROFILES:
            continue
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        res = Result(meta_path.stem, profile, tag, meta_path.parent, meta)
        if res.csv.exists():
            found.append(res)
    return found


def load(name: str, profile: str, tag: str, root: str | os.PathLike | None = None) -> Result:
    folder = result_dir(profile, tag, Path(root) if root is not None else None)
    meta_path = folder / f"{check_name(name)}.json"
    if not meta_path.exists():
        raise FileNotFoundError(meta_path)
    return Result(name, profile, tag, folder, json.loads(meta_path.read_text()))


def reference(name: str, root: str | os.PathLike | None = None) -> Result | None:
    """The committed GPU result of ``name``: profile quick first, then paper."""
    root = Path(root) if root is not None else reference_root()
    for profile in ("quick", "paper"):
        for meta_path in sorted((root / profile).glob(f"cuda-*/{check_name(name)}.json")):
            try:
                return load(name, profile, meta_path.parent.name, root)
            except (OSError, json.JSONDecodeError):
                continue
    return None


def compare(fresh: pd.DataFrame, ref: pd.DataFrame, keys: list[str] | None = None) -> pd.DataFrame:
    """Fresh vs reference, row by row: each float column with its ratio fresh/reference.

    ``keys`` (default: the columns that are not floats) identify a row in both.
    """
    if keys is None:
        keys = [c for c in fresh.columns if not pd.api.types.is_float_dtype(fresh[c])]
    missing = [k for k in keys if k not in fresh.columns or k not in ref.columns]
    if missing:
        raise ValueError(f"keys {missing} are not columns of both tables")
    values = [c for c in fresh.columns if c not in keys and c in ref.columns
              and pd.api.types.is_numeric_dtype(fresh[c]) and pd.api.types.is_numeric_dtype(ref[c])]
    merged = fresh[keys + values].merge(ref[keys + values], on=keys, how="outer",
                                        suffixes=("", "_ref"))
    for c in values:
        merged[f"{c}_ratio"] = merged[c] / merged[f"{c}_ref"]
    ordered = keys + [x for c in values for x in (c, f"{c}_ref", f"{c}_ratio")]
    return merged[ordered]

