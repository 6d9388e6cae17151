"""Words for the JHCG appendix pages that turn on numbers: computed from the numbers, with the thresholds stated.

A page never types "faster", "within noise" or "of the same order": it glues the
words these functions make from its evidence table (``verdict_numbers`` of each
JHCG experiment), so a sentence cannot say more than its numbers do. The
thresholds are module constants, and the pages quote them from here.

* :func:`spread` — how a set of ratios (uncached ÷ cached, one per block) sits
  around 1×: how many points were below 1×, the range, and whether the effect is
  consistent (every point beyond ``RATIO_TOL`` on the same side of 1×).
* :func:`order` — two magnitudes compared as a ratio; "of the same order" only
  within a factor ``ORDER_FACTOR``.
* :func:`moved` — "rose from a to b" / "fell from a to b".
* :func:`evidence_note` — the sentence that says what the evidence shown first can
  prove: it follows from :func:`sparsefuse.lab.book.verdict.evidence`, never typed.
"""
from __future__ import annotations

import math

from ...words import joined  # noqa: F401  (W.joined: the lab's one list-in-words helper)

#: a ratio within this of 1× is no measurable effect; a consistent speed-up has every point at or above 1 + RATIO_TOL
RATIO_TOL = 0.05
#: two magnitudes are "of the same order" when neither is more than this factor of the other
ORDER_FACTOR = 10.0


def finite(x) -> bool:
    try:
        return x is not None and math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


def signed(x: float, digits: int = 4) -> str:
    """``+0.0288`` / ``−0.0673`` (a true minus sign), ``—`` when missing."""
    if not finite(x):
        return "—"
    text = f"{float(x):+.{digits}f}"
    return text.replace("-", "−")


def ratio(x: float) -> str:
    """``1.176×`` (three decimals below 10, so that 1.002× and 1.006× stay apart; else three figures), ``—``."""
    if not finite(x):
        return "—"
    return f"{float(x):.3f}×" if abs(float(x)) < 10 else f"{float(x):.3g}×"


def spread(ratios, *, what: str = "point", tol: float = RATIO_TOL) -> dict:
    """How ``ratios`` (> 1: the first option faster) sit around 1×.

    Returns ``n``, ``below`` (points < 1×), ``lo``, ``hi``, ``median``, ``kind`` (one of
    ``faster``, ``slower``, ``none`` (every point within ``tol`` of 1×), ``mixed``,
    ``small`` (none below 1× but some within ``tol``), ``missing``) and ``words``:
    "from 0.793× to 1.222× over 8 blocks (median 1.044×), 3 of 8 below 1×".
    """
    vals = sorted(float(r) for r in ratios if finite(r))
    n = len(vals)
    if not n:
        return dict(n=0, below=0, lo=math.nan, hi=math.nan, median=math.nan, kind="missing",
                    words=f"not measured at any {what}")
    below = sum(v < 1.0 for v in vals)
    mid = vals[n // 2] if n % 2 else 0.5 * (vals[n // 2 - 1] + vals[n // 2])
    lo, hi = vals[0], vals[-1]
    if lo >= 1 + tol:
        kind = "faster"
    elif hi <= 1 - tol:
        kind = "slower"
    elif lo > 1 - tol and hi < 1 + tol:
        kind = "none"
    elif below == 0:
        kind = "small"
    else:
        kind = "mixed"
    plural = what if n == 1 else f"{what}s"
    rng = f"{ratio(lo)}" if n == 1 else f"from {ratio(lo)} to {ratio(hi)} over {n} {plural} (median {ratio(mid)})"
    words = f"{rng}, {below} of {n} below 1×" if below else f"{rng}, none below 1×"
    return dict(n=n, below=below, lo=lo, hi=hi, median=mid, kind=kind, words=words)


def effect(kind: str, *, tol: float = RATIO_TOL, gain: str = "speed-up") -> str:
    """A :func:`spread` ``kind`` as a plain judgement, with the threshold it used."""
    pct = f"{tol:.0%}"
    return {
        "faster": f"a consistent {gain}: every point at least {pct} above 1×",
        "slower": f"a consistent loss: every point at least {pct} below 1×, i.e. slower",
        "none": f"no measurable effect: every point within {pct} of 1×",
        "small": f"no consistent {gain}: no point below 1×, but some within {pct} of it",
        "mixed": f"no consistent {gain}: the points fall on both sides of 1×",
        "missing": "nothing measured",
    }[kind]


def order(a: float, b: float, a_name: str, b_name: str, *, factor: float = ORDER_FACTOR) -> dict:
    """``a`` against ``b`` as a ratio, in words that follow from it: "549× smaller than the MLP model's, 0.0636
    (ratio 0.00182)"; "of the same order" only within ``factor``. ``a_name`` names ``a`` in the ratio."""
    if not (finite(a) and finite(b)) or b <= 0:
        return dict(ratio=math.nan, kind="missing", words=f"could not be compared with {b_name}")
    r = float(a) / float(b)
    tail = f"{b_name}, {float(b):.3g} (ratio {a_name} ÷ it: {r:.3g})"
    if r == 0:
        return dict(ratio=r, kind="smaller", words=f"zero, against {tail}")
    if r > factor:
        return dict(ratio=r, kind="larger", words=f"{r:.3g}× larger than {tail}, more than {factor:g}× larger")
    if r < 1 / factor:
        return dict(ratio=r, kind="smaller", words=f"{1 / r:.3g}× smaller than {tail}")
    return dict(ratio=r, kind="same", words=f"of the same order as {tail}, within a factor of {factor:g}")


def moved(a: float, b: float, fmt: str = "{:.3f}", *, tol: float = 0.0) -> str:
    """"rose from 0.501 to 0.541" / "fell from ..." / "stayed at ..."."""
    if not (finite(a) and finite(b)):
        return "was not measured"
    if abs(b - a) <= tol or fmt.format(a) == fmt.format(b):
        return f"stayed at {fmt.format(a)}"
    return f"{'rose' if b > a else 'fell'} from {fmt.format(a)} to {fmt.format(b)}"


def higher_lower(diff: float, subject: str = "JHCG") -> str:
    """The sign of ``diff`` (= subject − control) in words."""
    if not finite(diff):
        return "not measured"
    if diff == 0:
        return f"{subject} equal"
    return f"{subject} {'higher' if diff > 0 else 'lower'}"


# ---------------------------------------------------------------- what the evidence shown first can prove

def measured(name: str, table, profile: str, device: str) -> bool:
    """Whether the table a page leads with is a GPU measurement at quick/paper.

    ``table`` is what ``nb.experiment`` returned; its ``attrs["evidence_measured"]`` is read
    when the book machinery sets it, else the decision is taken again by the one function
    that makes it (:func:`sparsefuse.lab.book.verdict.evidence`), on the same inputs.
    """
    flag = getattr(table, "attrs", {}).get("evidence_measured")
    if flag is not None:
        return bool(flag)
    from ...book import verdict

    return bool(verdict.evidence(name, table, profile=profile, device=device).measured)


def evidence_note(is_measured: bool) -> str:
    """The sentence after a verdict: what its numbers can and cannot prove."""
    if is_measured:
        return "These are GPU measurements, so they can be held against the claim."
    return ("No GPU result of this experiment is committed, so these numbers are this run's, a check that the "
            "code runs: they say nothing about the claim.")


def reference_note(name: str) -> str:
    """Whether a GPU result of ``name`` is committed (:func:`sparsefuse.lab.book.results.reference`), in words."""
    from ...book import results

    ref = results.reference(name)
    if ref is None:
        return "No GPU result of it is committed"
    commit = str(ref.meta.get("git_commit") or "unknown")[:7]
    return f"A GPU result of it is committed ({ref.describe()}, commit {commit})"
