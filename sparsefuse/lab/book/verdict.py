"""The numbers a chapter's verdict quotes, and where they come from.

Each chapter opens with what the SparseFuse paper claims and what this book
measured. The measured numbers are glued into that prose (``{glue:text}`name```),
never typed, and they are read from the table that carries the evidence:

1. this run, when it measured on a GPU at profile ``quick`` or ``paper``;
2. otherwise the committed GPU reference of the same result (``results/quick|paper/cuda-*``);
3. otherwise this run, labelled as what it is (a smoke run on CPU proves that the
   code runs; its numbers say nothing about the claim).

Each experiment module provides ``verdict_numbers(table) -> dict`` (a pure
function of a result table, NaN where a number cannot be read from it, and a
few words such as "faster"/"slower" where the sentence turns on the numbers, from
:mod:`sparsefuse.lab.words`);
``nb.experiment`` picks the evidence once (:func:`evidence`), lays the page out
from it (the evidence first, the other run beside it or collapsed), returns its
table for the headline tables and explorers, and glues every verdict entry plus
``<name>_source``, the words that say which run the numbers are from
(:func:`verdict_values`). Glued values show only where the prose quotes them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import pandas as pd

from .. import profiles
from . import results


@dataclass(frozen=True)
class Evidence:
    """The table a verdict is read from."""

    table: pd.DataFrame
    source: str  # words for the prose: "the committed reference run (profile quick on ...)"
    fresh: bool  # the table is this run's
    measured: bool  # a GPU run at quick/paper: its numbers can be held against the paper's claim
    reference: object | None = None  # the results.Result read, when the table is the reference
    label: str = ""  # a few words for an explorer or a caption: "reference: profile quick on ..., commit ..."

    def related(self, name: str) -> pd.DataFrame | None:
        """Another table saved beside the reference (``<name>_curves`` ...); None for a fresh table."""
        if self.reference is None:
            return None
        path = self.reference.folder / f"{name}.csv"
        return pd.read_csv(path) if path.exists() else None


def _ok_rows(df: pd.DataFrame) -> bool:
    if df is None or df.empty:
        return False
    if "status" not in df.columns:
        return True
    return df["status"].astype(str).str.lower().str.startswith("ok").any()


def _reference(name: str):
    try:
        return results.reference(name)
    except (OSError, ValueError):
        return None


def _describe_reference(ref) -> str:
    commit = str(ref.meta.get("git_commit") or "unknown")[:7]
    return f"the committed reference run ({ref.describe()}, commit {commit})"


def _label_reference(ref) -> str:
    commit = str(ref.meta.get("git_commit") or "unknown")[:7]
    return f"reference: {ref.describe()}, commit {commit}"


def evidence(name: str, fresh: pd.DataFrame, *, profile: str, device: str, reference=None) -> Evidence:
    """This run's table when it is a GPU measurement at quick/paper, else the committed reference, else this run."""
    device = _resolve(device)
    on_gpu = device.startswith("cuda")
    if on_gpu and profile in profiles.MEASURING and _ok_rows(fresh):
        words = f"profile {profile} on {_gpu_words(device)}"
        return Evidence(fresh, f"this run ({words})", True, True, label=f"this run: {words}")
    ref = reference if reference is not None else _reference(name)
    if ref is not None:
        try:
            table = ref.table()
        except (OSError, ValueError, pd.errors.ParserError):
            table = None
        if table is not None and _ok_rows(table):
            return Evidence(table, _describe_reference(ref), False, ref.is_gpu and ref.profile in profiles.MEASURING,
                            ref, label=_label_reference(ref))
    what = "GPU" if on_gpu else "CPU"
    measuring = on_gpu and profile in profiles.MEASURING
    why = ("no GPU reference is committed for it yet" if measuring
           else "a check that the code runs; its numbers are not comparable with the paper's")
    return Evidence(fresh, f"this run (profile {profile} on {what}: {why})", True, measuring,
                    label=f"this run: profile {profile} on {what}"
                    + ("" if measuring else " (smoke: numbers not comparable)"))


def _resolve(device) -> str:
    device = str(device)
    if device == "auto":
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def _gpu_words(device: str) -> str:
    try:
        import torch

        if torch.cuda.is_available():
            return torch.cuda.get_device_name(torch.device(device))
    except Exception:  # noqa: BLE001 - words for the prose only
        pass
    return "a CUDA GPU"


def clean(values: dict) -> dict:
    """Numbers as plain floats/ints (NaN where missing), strings as they are: what glue can format."""
    out = {}
    for key, value in values.items():
        if value is None:
            out[key] = math.nan
        elif isinstance(value, str):
            out[key] = value
        elif hasattr(value, "item"):
            out[key] = value.item()
        else:
            out[key] = value
    return out


def verdict_values(ev: Evidence, name: str, numbers: Callable[..., dict], *,
                   related: dict[str, str] | None = None) -> dict:
    """``numbers(ev.table, **related_tables)`` cleaned for glue, plus ``<name>_source`` (which run they are from).

    ``related`` maps a keyword of ``numbers`` to the name of another table saved
    beside the reference (e.g. ``{"curves": "pinns_curves"}``); for a fresh table the
    keyword is passed as None and ``numbers`` reads the table attached to it.
    ``nb.experiment`` glues these with the evidence it showed first.
    """
    extra = {kw: ev.related(table) for kw, table in (related or {}).items()}
    return {**clean(numbers(ev.table, **extra)), f"{name}_source": ev.source}
