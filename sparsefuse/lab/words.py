"""Words that turn on numbers: the few a chapter's verdict glues into its prose.

"2.35× faster than", "as much memory as", "at G = 30 and 300, not at 1": each is
computed from the measured ratio with its threshold stated here, so a sentence
cannot say more than its numbers do. The experiments' ``verdict_numbers`` make
them; the book only glues what they return.
"""
from __future__ import annotations

import math


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
