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
few words such as "faster"/"slower" where the sentence turns on the numbers);
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


# ---------------------------------------------------------------- words that turn on the numbers

def times(ratio: float) -> str:
    """``2.35×``, ``1.10×`` (three significant figures, as the tables print them), ``—`` when not measured."""
    if ratio is None or not math.isfinite(ratio):
        return "—"
    if ratio >= 1000:
        return f"{ratio:,.0f}×"
    text = f"{ratio:#.3g}"
    return (text[:-1] if text.endswith(".") else text) + "×"


#: a ratio of two measurements this close to 1 reads "as fast as", "as much memory as"
SAME_WITHIN = 0.02


def _ratio_words(ratio: float, *, unmeasured: str, same: str, above: str, below: str) -> str:
    """``ratio`` in words: ``unmeasured`` when it is no ratio, ``same`` within :data:`SAME_WITHIN` of 1, else
    ``"2.35× " + above`` or, for a ratio below 1, its inverse and ``below``."""
    if ratio is None or not math.isfinite(ratio) or ratio <= 0:
        return unmeasured
    if abs(ratio - 1.0) < SAME_WITHIN:
        return same
    return f"{times(ratio)} {above}" if ratio > 1 else f"{times(1.0 / ratio)} {below}"


def faster(speedup: float, than: str = "") -> str:
    """``speedup`` = other's time / this time, as words: "2.35× faster than", "1.2× slower than"."""
    tail = f" {than}" if than else ""
    return _ratio_words(speedup, unmeasured=f"not measured against{tail}", same=f"as fast as{tail}",
                        above=f"faster than{tail}", below=f"slower than{tail}")


def less(ratio: float, noun: str = "memory", than: str = "") -> str:
    """``ratio`` = other / this, as "6.5× less memory than" or "1.3× more memory than"."""
    tail = f" {than}" if than else ""
    return _ratio_words(ratio, unmeasured=f"{noun} not measured against{tail}", same=f"as much {noun} as{tail}",
                        above=f"less {noun} than{tail}", below=f"more {noun} than{tail}")


def joined(items, last: str = "and") -> str:
    """``a, b and c`` (``—`` for none)."""
    items = [str(i) for i in items]
    if not items:
        return "—"
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} {last} {items[-1]}"


def where_wins(wins: dict, label: str, fmt: str = "{:g}") -> str:
    """Words for a per-point win/loss map ``{point: bool}``: "at every G", "at no G", "at G = 30 and 300 (not at 1, 3)".

    A range such as "up to density 0.3" would claim every point below it; this lists the points.
    """
    pts = sorted(wins)
    if not pts:
        return f"at no {label} measured"
    won = [fmt.format(p) for p in pts if wins[p]]
    lost = [fmt.format(p) for p in pts if not wins[p]]
    if not lost:
        return f"at every {label} measured ({joined(won)})" if len(won) > 1 else f"at the one {label} measured ({won[0]})"
    if not won:
        return f"at no {label} measured ({joined(lost, 'or')})"
    return f"at {label} = {joined(won)}, not at {joined(lost)}"


FLAT_GROWTH = 2.0  # "nearly the same at every G": grew by at most this factor over a chapter's whole G sweep


def flat_in_g(growth: float, ref_growth: float, what: str = "time") -> str:
    """Whether the fused path's ``what`` stayed nearly flat in G (the paper's claim), from its growth and the
    reference's; the sentence around it quotes the two growths."""
    rule = f"at most {FLAT_GROWTH:g}× over the sweep counts as flat"
    if growth is None or not math.isfinite(growth):
        return f"the fused {what}'s growth could not be measured"
    if growth <= FLAT_GROWTH:
        return f"the fused {what} is nearly flat in G ({rule}), as the paper claims"
    if ref_growth is not None and math.isfinite(ref_growth) and growth < 0.5 * ref_growth:
        tail = ", though it grew less than half as much as the reference's"
    elif ref_growth is not None and math.isfinite(ref_growth):
        tail = ", and it grew about as much as the reference's"
    else:
        tail = ""
    return f"the claim of a nearly G-independent {what} does not hold here ({rule}){tail}"


def speed_change(ratio: float) -> str:
    """``ratio`` = time before / time after, as "3.74× faster", "1.83× slower" or "about as fast"."""
    return _ratio_words(ratio, unmeasured="not measured", same="about as fast", above="faster", below="slower")
