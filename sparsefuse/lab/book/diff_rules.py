"""The tolerances of ``python -m sparsefuse.lab.book diff``: which kind each result column is and
how far a fresh value may move from the reference before it counts (see :mod:`.diff`)."""
from __future__ import annotations

import re
from dataclasses import dataclass



@dataclass(frozen=True)
class Rule:
    """How one metric column is compared: ``mode`` ratio (``tol`` is a factor ≥ 1) or abs (``tol`` ≥ 0)."""

    kind: str
    mode: str  # "ratio" | "abs"
    tol: float
    better: str  # "lower" | "higher" | "none" (a change either way is only a warning)

    def __post_init__(self):
        if self.mode not in ("ratio", "abs"):
            raise ValueError(f"mode must be 'ratio' or 'abs', got {self.mode!r}")
        if self.better not in ("lower", "higher", "none"):
            raise ValueError(f"better must be 'lower', 'higher' or 'none', got {self.better!r}")
        if self.mode == "ratio" and not self.tol >= 1.0:
            raise ValueError(f"a ratio tolerance is a factor >= 1, got {self.tol!r}")
        if self.mode == "abs" and not self.tol >= 0.0:
            raise ValueError(f"an absolute tolerance is >= 0, got {self.tol!r}")

    def describe(self) -> str:
        return f"×{self.tol:g}" if self.mode == "ratio" else f"±{self.tol:g}"


DEFAULT_TOLERANCES = {
    "time": 1.5, "throughput": 1.5, "memory": 1.25, "error": 10.0,  # factors
    "accuracy": 0.03, "loss": 0.05, "rate": 0.5, "count": 0.0, "flag": 0.0, "value": 0.05,  # absolute
}
KINDS = {
    "time": ("ratio", "lower"), "throughput": ("ratio", "higher"), "memory": ("ratio", "lower"),
    "error": ("ratio", "lower"), "accuracy": ("abs", "higher"), "loss": ("abs", "lower"),
    "rate": ("abs", "lower"), "count": ("abs", "lower"), "flag": ("abs", "higher"), "value": ("abs", "none"),
}

# Columns that describe a run but neither identify a row nor measure the claim: notes, spreads of a
# median, wall-clock totals, per-step curve values (the final values are compared instead), counts
# that depend on a time budget. Checked first.
IGNORE = re.compile(
    r"^(note|notes|break_reasons|formula|expected|corpus|device|dtype|resolved_impl|label|nanochat_commit"
    r"|q\d+_ms|wall_s|time_s|steps|step_of_max|pde|bc|params_spread|timestamp|loss(_(first|eager|compiled))?)$")
# Column name -> kind, first match wins.
PATTERNS: list[tuple[str, str]] = [
    (r"(_ms(_per_\w+)?|^ms_per_\w+|^ms|^compile_s|_call_s)$", "time"),
    (r"(_per_s(_\w+)?|(^|_)speedup(_\w+)?|^scaling_efficiency|^pct_of_floor)$", "throughput"),
    (r"_mib$", "memory"),
    (r"(^|_)(rmse|err|diff)$", "error"),
    (r"^(test_acc|acc|accuracy|val_acc|train_acc|r2)$", "accuracy"),
    (r"(^|_)loss(_\w+)?$|(^|_)rel_l2$", "loss"),
    (r"^fitted_rate$", "rate"),
    (r"^graph_(breaks|count)$", "count"),
    (r"^(bitwise_equal|recovered|\w+_ok)$", "flag"),
]
# Fractional columns that are sweep parameters, so they identify a row (whole numbers always do).
KEY_FLOATS = ("rho", "density", "theory_rate", "size_param", "lr", "nu")
STATUS = "status"
# Statuses that mean "did not run, by choice or for want of something", not "broke".
SOFT_STATUSES = ("skipped", "peer-missing", "unsupported", "time budget")
# Generic result columns whose kind is named by another column (ch12: metric_name = accuracy | r2 | test_rmse).
NAMED_BY = {"metric": "metric_name", "train_metric": "metric_name"}


def rules_from(tolerances: dict[str, float] | None = None) -> dict[str, Rule]:
    """One :class:`Rule` per kind, the defaults overridden by ``tolerances`` (kind -> value)."""
    tol = dict(DEFAULT_TOLERANCES)
    for kind, value in (tolerances or {}).items():
        if kind not in KINDS:
            raise ValueError(f"unknown metric kind {kind!r}; kinds are {sorted(KINDS)}")
        tol[kind] = float(value)
    return {kind: Rule(kind, mode, tol[kind], better) for kind, (mode, better) in KINDS.items()}


def classify(column: str) -> str | None:
    """The metric kind of a column name, ``"ignore"``, or None for a descriptive (key) column."""
    if column == STATUS:
        return STATUS
    if IGNORE.match(column):
        return "ignore"
    for pattern, kind in PATTERNS:
        if re.search(pattern, column):
            return kind
    return None


def parse_tolerance(text: str) -> tuple[str, Rule | str]:
    """``COLUMN=1.3x`` (ratio, lower is better), ``COLUMN=0.02`` (absolute, lower is better),
    ``COLUMN=kind`` (a kind's rule), ``COLUMN=ignore`` or ``COLUMN=key``; prefix the value with
    ``+`` to mark higher as better (``test_acc=+0.02``)."""
    if "=" not in text:
        raise ValueError(f"expected COLUMN=VALUE, got {text!r}")
    column, value = (s.strip() for s in text.split("=", 1))
    if not column or not value:
        raise ValueError(f"expected COLUMN=VALUE, got {text!r}")
    if value in ("ignore", "key") or value in KINDS:
        return column, value
    better = "lower"
    if value[0] == "+":
        better, value = "higher", value[1:]
    try:
        if value.lower().endswith("x"):
            return column, Rule("custom", "ratio", float(value[:-1]), better)
        return column, Rule("custom", "abs", float(value), better)
    except ValueError:
        raise ValueError(f"tolerance for {column!r} must be like 1.5x, 0.02, +0.02, a kind "
                         f"({', '.join(sorted(KINDS))}), 'ignore' or 'key'; got {value!r}") from None


