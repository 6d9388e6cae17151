"""Result files with provenance: results/<profile>/<device-tag>/<name>.{csv,png,svg,json}.

Saving, reading back and comparing. Each table is saved with a JSON sidecar
(``provenance``); all files of a result are renamed into place together
(``atomic``), so a run that fails half way leaves the previous result untouched.
"""
from __future__ import annotations

import io
import json
import math
import os
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from .atomic import atomic_write_many
from .. import profiles
from .layout import REPO_ROOT
from .provenance import environment

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


def jsonable(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if hasattr(value, "item"):  # numpy scalars
        return jsonable(value.item())
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
    """The folder of one profile's results on one device: where a profile becomes a path, so it is checked here."""
    return (root or results_root()) / profiles.check(profile) / tag


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
        "parameters": jsonable(params or {}),
        "wall_s": None if wall_s is None else round(float(wall_s), 3),
        "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "rows": int(len(df)),
        "files": sorted(p.name for p in files),
        **env,
    }
    # the sidecar goes last: a result is complete when its JSON names its files
    files[folder / f"{name}.json"] = json.dumps(jsonable(meta), indent=2, sort_keys=True) + "\n"
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
        if profile not in profiles.NAMES:
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
    """The committed GPU result of ``name``: profile quick first, then paper; of several GPUs'
    results the newest (its provenance timestamp), so a new reference run supersedes the
    folders it leaves in place."""
    root = Path(root) if root is not None else reference_root()
    for profile in profiles.MEASURING:
        found = []
        for meta_path in (root / profile).glob(f"cuda-*/{check_name(name)}.json"):
            try:
                found.append(load(name, profile, meta_path.parent.name, root))
            except (OSError, json.JSONDecodeError):
                continue
        if found:
            return max(found, key=lambda r: (str(r.meta.get("timestamp") or ""), r.tag))
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

