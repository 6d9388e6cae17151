"""``python -m sparsefuse.lab.book diff FRESH_DIR REFERENCE_DIR``: a fresh run against the reference, table by table.

Every CSV under ``FRESH_DIR`` is matched with the CSV at the same relative path
under ``REFERENCE_DIR`` (so ``results/quick/cuda-h200`` against
``results/quick/cuda-h100-80gb-hbm3`` works, and so do two whole ``results``
roots). In each pair the rows are matched on their descriptive columns (the
implementation, the grid size, the seed ...) and every metric column is
checked with the tolerance of its kind:

- time (``*_ms``, ``ms_per_*``, ``compile_s``): fresh/ref at most a factor (default 1.5), lower is better;
- throughput (``*_per_s``, ``*speedup*``): ref/fresh at most a factor (1.5), higher is better;
- memory (``*_mib``): fresh/ref at most a factor (1.25), lower is better;
- error (``*rmse``, ``*_err``, ``*_diff``): fresh/ref at most a factor (10), lower is better;
- accuracy (``test_acc``, ``accuracy``, ``r2``): at most 0.03 lower (absolute);
- loss (``*loss*``, ``*rel_l2``): at most 0.05 higher (absolute);
- rate (``fitted_rate``, a log-log slope): at most 0.5 higher; count (``graph_breaks``): no increase;
  flag (``bitwise_equal``, ``*_ok``, ``recovered``): no drop;
- value (any other fractional number, e.g. a gate mean): a change above 0.05 either way warns.

Descriptive columns (strings, whole numbers such as ``G`` or ``seed``, and the
fractional sweep parameters in ``KEY_FLOATS``) identify the rows; notes, q20/q80
spreads, wall times and per-step curve values are left out. Timings are compared
as ratios because they scale with the machine; accuracies and losses absolutely,
because a fixed budget should reach about the same value anywhere. A change in
the good direction is reported ("better") but never fails. A row that ran in the
reference and has a failure status in the fresh run (``oom``, ``error``,
``diverged`` ...) is a regression too; one that was only ``skipped`` (a budget, a
missing peer) is a warning, and a table none of whose rows matches the reference
(other sizes, another profile) fails rather than pass unchecked. Exit status: 1 when
any table has a regression, 2 when the folders cannot be read, else 0. Every tolerance can be changed on the
command line, per kind (``--time-factor 2``) or per column (``--tol median_ms=1.3x``).
"""
from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from .diff_rules import (DEFAULT_TOLERANCES, IGNORE, KEY_FLOATS, KINDS, NAMED_BY, SOFT_STATUSES,  # noqa: F401
                         STATUS, Rule, classify, parse_tolerance, rules_from)


# ---------------------------------------------------------------- one table


@dataclass
class Finding:
    """One compared value (or a row) outside its tolerance, or a row present on one side only."""

    level: str  # regression | warning | better
    row: str
    column: str
    text: str


@dataclass
class TableReport:
    path: str
    matched: int = 0
    only_reference: int = 0
    only_fresh: int = 0
    compared: int = 0
    keys: list[str] = field(default_factory=list)
    metrics: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    error: str | None = None

    def count(self, level: str) -> int:
        return sum(f.level == level for f in self.findings)

    @property
    def regressed(self) -> bool:
        return self.error is None and self.count("regression") > 0

    @property
    def verdict(self) -> str:
        if self.error:
            return "UNREADABLE"
        if self.regressed:
            return f"REGRESSION ({self.count('regression')})"
        if self.count("warning"):
            return f"ok, {self.count('warning')} warning(s)"
        return "ok"


def _fractional(col: pd.Series) -> bool:
    """A numeric column holding some non-whole number (a measurement, not a count or a size)."""
    if not pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col):
        return False
    v = col.dropna()
    return bool(len(v)) and bool(((v - v.round()).abs() > 0).any())


def _number(value) -> float:
    if isinstance(value, str):
        low = value.strip().lower()
        if low in ("true", "false"):
            return 1.0 if low == "true" else 0.0
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _key_text(value) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if value.is_integer():
            return str(int(value))
        return f"{value:.9g}"
    return str(value)


def _short(text) -> str:
    try:
        v = float(text)
    except (TypeError, ValueError):
        return str(text)
    return str(text) if v.is_integer() else f"{v:.4g}"


def _row_label(keys: list[str], row) -> str:
    parts = [f"{k}={_short(row[k])}" for k in keys if k in row and str(row[k]) not in ("", "nan")]
    return " ".join(parts) or "(single row)"


def _soft(status) -> bool:
    s = str(status).strip().lower()
    return any(s.startswith(x) for x in SOFT_STATUSES)


def _is_ok(status) -> bool:
    s = str(status).strip().lower()
    return s in ("", "nan") or s.startswith("ok")


def _check(rule: Rule, fresh: float, ref: float) -> tuple[str | None, str]:
    """(None | 'regression' | 'better' | 'warning', description) of one value against its reference."""
    if rule.better == "none":
        text = f"{ref:.4g} → {fresh:.4g} ({fresh - ref:+.3g}; allowed {rule.describe()})"
        return ("warning" if abs(fresh - ref) > rule.tol + 1e-12 * max(abs(ref), abs(fresh), 1.0) else None), text
    if rule.mode == "ratio":
        if ref <= 0 or fresh <= 0:
            return None, ""
        ratio = fresh / ref
        worse = ratio if rule.better == "lower" else 1.0 / ratio
        text = f"{ref:.3g} → {fresh:.3g} (×{ratio:.3g}; allowed {rule.describe()})"
        if worse > rule.tol:
            return "regression", text
        if 1.0 / worse > rule.tol:
            return "better", text
        return None, text
    delta = fresh - ref
    worse = delta if rule.better == "lower" else -delta
    text = f"{ref:.4g} → {fresh:.4g} ({delta:+.3g}; allowed {rule.describe()})"
    tol = rule.tol + 1e-12 * max(abs(ref), abs(fresh), 1.0)  # printed values at the limit pass
    if worse > tol:
        return "regression", text
    if -worse > tol:
        return "better", text
    return None, text


def compare_tables(fresh: pd.DataFrame, ref: pd.DataFrame, *, path: str = "", rules: dict[str, Rule] | None = None,
                   overrides: dict[str, Rule | str] | None = None, allow_unmatched: bool = False) -> TableReport:
    """Match the rows of two result tables and check every metric against its tolerance."""
    rules = rules or rules_from()
    overrides = overrides or {}
    report = TableReport(path)
    common = [c for c in fresh.columns if c in ref.columns]
    kinds: dict[str, str | Rule | None] = {}
    for c in common:
        o = overrides.get(c)
        if isinstance(o, Rule):
            kinds[c] = o
        elif o == "key":
            kinds[c] = None
        elif o == "ignore":
            kinds[c] = "ignore"
        elif isinstance(o, str):
            kinds[c] = rules[o]
        else:
            k = classify(c)
            if k is None and c not in KEY_FLOATS and (_fractional(fresh[c]) or _fractional(ref[c])):
                k = "value"  # a measured number nobody named: compared, but it only warns
            kinds[c] = rules[k] if k in rules else k
        if c in NAMED_BY and NAMED_BY[c] in common and c not in overrides:
            kinds[c] = "named"
    keys = [c for c in common if kinds[c] is None]
    metrics = [c for c in common if isinstance(kinds[c], Rule) or kinds[c] == "named"]
    report.keys, report.metrics = keys, metrics
    if not keys:
        fresh, ref = fresh.assign(_row=range(len(fresh))), ref.assign(_row=range(len(ref)))
        keys = ["_row"]
    f = fresh.copy()
    r = ref.copy()
    for d in (f, r):
        for k in keys:
            d[k] = d[k].map(_key_text)
        d["_dup"] = d.groupby(keys, dropna=False).cumcount()
    cols = keys + ["_dup"]
    merged = f.merge(r, on=cols, how="outer", suffixes=("", "__ref"), indicator=True)
    shown_keys = [k for k in keys if k != "_row"]
    for _, row in merged.iterrows():
        label = _row_label(shown_keys, row) if shown_keys else f"row {row['_row']}"
        if row["_merge"] == "right_only":
            report.only_reference += 1
            report.findings.append(Finding("warning", label, "", "in the reference, not in this run"))
            continue
        if row["_merge"] == "left_only":
            report.only_fresh += 1
            continue
        report.matched += 1
        f_status = row.get(STATUS, "ok") if STATUS in common else "ok"
        r_status = row.get(STATUS + "__ref", "ok") if STATUS in common else "ok"
        if _is_ok(r_status) and not _is_ok(f_status):
            level = "warning" if _soft(f_status) else "regression"
            report.findings.append(Finding(level, label, STATUS, f"{r_status} → {f_status}"))
            continue
        if not (_is_ok(r_status) and _is_ok(f_status)):
            continue  # neither side measured this row
        for c in metrics:
            rule = kinds[c]
            if rule == "named":
                name = str(row[NAMED_BY[c]])
                kind = classify(name)
                rule = rules.get(kind) if kind in rules else None
                if rule is None:
                    continue
            fv, rv = _number(row[c]), _number(row[c + "__ref"])
            if math.isnan(fv) or math.isnan(rv):
                continue
            report.compared += 1
            level, text = _check(rule, fv, rv)
            if level:
                report.findings.append(Finding(level, label, c, text))
    if report.matched == 0 and len(fresh) and len(ref) and not allow_unmatched:
        # nothing was compared: different sizes or profiles, or keys that differ; passing would be vacuous
        report.findings.insert(0, Finding("regression", "(every row)", "", "no row of this run matches a row of "
                                          "the reference: other sizes or another profile? (--allow-unmatched)"))
    return report


# ---------------------------------------------------------------- folders


def _csvs(root: Path) -> dict[str, Path]:
    return {p.relative_to(root).as_posix(): p for p in sorted(root.rglob("*.csv")) if p.is_file()}


def compare_dirs(fresh_dir, reference_dir, *, rules: dict[str, Rule] | None = None,
                 overrides: dict[str, Rule | str] | None = None,
                 allow_unmatched: bool = False) -> tuple[list[TableReport], list[str], list[str]]:
    """(reports of the tables in both, tables only in the reference, tables only in the fresh folder)."""
    fresh_dir, reference_dir = Path(fresh_dir), Path(reference_dir)
    for d in (fresh_dir, reference_dir):
        if not d.is_dir():
            raise FileNotFoundError(f"{d} is not a folder")
    fresh, ref = _csvs(fresh_dir), _csvs(reference_dir)
    reports = []
    for rel in sorted(fresh.keys() & ref.keys()):
        try:
            f, r = pd.read_csv(fresh[rel]), pd.read_csv(ref[rel])
        except (OSError, ValueError, pd.errors.ParserError) as exc:
            reports.append(TableReport(rel, error=f"{type(exc).__name__}: {exc}"))
            continue
        reports.append(compare_tables(f, r, path=rel, rules=rules, overrides=overrides,
                                      allow_unmatched=allow_unmatched))
    return reports, sorted(ref.keys() - fresh.keys()), sorted(fresh.keys() - ref.keys())


def format_report(reports: list[TableReport], only_reference: list[str] = (), only_fresh: list[str] = (),
                  *, max_lines: int = 12, show_better: bool = True) -> str:
    """The per-table report, worst tables first within the input order kept stable."""
    out = []
    for rep in reports:
        if rep.error:
            out.append(f"== {rep.path}: UNREADABLE: {rep.error}")
            continue
        head = (f"== {rep.path}: {rep.verdict} — {rep.matched} rows matched"
                + (f", {rep.only_reference} only in the reference" if rep.only_reference else "")
                + (f", {rep.only_fresh} only in this run" if rep.only_fresh else "")
                + f", {rep.compared} values compared")
        out.append(head)
        if not rep.metrics:
            out.append("   (no metric columns to compare)")
        levels = ("regression", "warning", "better") if show_better else ("regression", "warning")
        for level in levels:
            found = [f for f in rep.findings if f.level == level]
            for f in found[:max_lines]:
                col = f"{f.column}: " if f.column else ""
                out.append(f"   {level:<10} {f.row}: {col}{f.text}")
            if len(found) > max_lines:
                out.append(f"   {level:<10} … and {len(found) - max_lines} more")
    for rel in only_reference:
        out.append(f"== {rel}: only in the reference (not produced by this run)")
    for rel in only_fresh:
        out.append(f"== {rel}: only in this run (no reference to compare with)")
    n_reg = sum(r.regressed for r in reports)
    n_bad = sum(r.error is not None for r in reports)
    out.append(f"{len(reports)} tables compared: {n_reg} with a regression"
               + (f", {n_bad} unreadable" if n_bad else "")
               + (f"; {len(only_reference)} only in the reference" if only_reference else "")
               + (f"; {len(only_fresh)} only in this run" if only_fresh else ""))
    return "\n".join(out)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("fresh", help="folder of the fresh run, e.g. results/quick/cuda-h200")
    p.add_argument("reference", help="folder of the reference, e.g. results/quick/cuda-h100-80gb-hbm3")
    for kind, (mode, better) in KINDS.items():
        if mode == "ratio":
            p.add_argument(f"--{kind}-factor", type=float, default=DEFAULT_TOLERANCES[kind], metavar="F",
                           help=f"largest allowed {kind} ratio in the bad direction (default {DEFAULT_TOLERANCES[kind]})")
        else:
            what = "change" if better == "none" else "change in the bad direction"
            p.add_argument(f"--{kind}-abs", type=float, default=DEFAULT_TOLERANCES[kind], metavar="A",
                           help=f"largest allowed absolute {kind} {what} (default {DEFAULT_TOLERANCES[kind]})")
    p.add_argument("--tol", action="append", default=[], metavar="COLUMN=SPEC",
                   help="per-column rule: 1.3x (ratio), 0.02 (absolute; +0.02: higher is better), "
                        "a kind name, 'ignore' or 'key' (repeatable)")
    p.add_argument("--max-lines", type=int, default=12, help="findings shown per level and table (default 12)")
    p.add_argument("--no-better", action="store_true", help="do not list improvements")
    p.add_argument("--allow-unmatched", action="store_true",
                   help="a table none of whose rows matches the reference is not a failure")


def run(args) -> int:
    try:
        rules = rules_from({kind: getattr(args, f"{kind}_{'factor' if mode == 'ratio' else 'abs'}")
                            for kind, (mode, _) in KINDS.items()})
        overrides = dict(parse_tolerance(t) for t in args.tol)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        reports, only_ref, only_fresh = compare_dirs(args.fresh, args.reference, rules=rules, overrides=overrides,
                                                     allow_unmatched=args.allow_unmatched)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not reports and not only_ref and not only_fresh:
        print(f"error: no CSV files under {args.fresh} or {args.reference}", file=sys.stderr)
        return 2
    print(format_report(reports, only_ref, only_fresh, max_lines=args.max_lines, show_better=not args.no_better))
    if any(r.error for r in reports):
        return 2
    return 1 if any(r.regressed for r in reports) else 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m sparsefuse.lab.book diff", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(p)
    return run(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
