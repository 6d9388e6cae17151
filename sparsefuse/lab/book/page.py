"""A result as its page shows it: the evidence first, the other run beside it or collapsed.

The HTML that :func:`sparsefuse.lab.book.notebook.publish` displays under a chapter's
code cell: figures inline, tables folded when long, a provenance line under each
run, the comparison with the reference and its per-table difference. Kept apart
from the notebook calls because it is all layout and words, and tested as such.
"""
from __future__ import annotations

import base64
import html
from dataclasses import dataclass

import pandas as pd

from .. import profiles
from . import results


def _png_tag(data: bytes, alt: str) -> str:
    b64 = base64.b64encode(data).decode()
    return f'<img src="data:image/png;base64,{b64}" alt="{html.escape(alt)}" style="max-width:100%;height:auto">'


def _table_html(df: pd.DataFrame, max_rows: int = 60) -> str:
    return df.to_html(index=False, border=0, na_rep="—", max_rows=max_rows,
                      float_format=lambda v: f"{v:.4g}", classes="dataframe sparsefuse-table")


def _details(summary: str, body: str, open_: bool = False) -> str:
    return f"<details{' open' if open_ else ''}><summary>{html.escape(summary)}</summary>{body}</details>"


def comparison_note(fresh_profile: str, fresh_tag: str, ref: results.Result | None, fresh_desc: str,
                    *, replaces: bool = False) -> tuple[str, bool]:
    """(note, comparable). Comparable: the same profile, both on a GPU.

    ``replaces``: this run was saved into the reference's own folder (a GPU run of the
    book writes ``results/``), so it is compared with the committed result it overwrote.
    """
    if replaces:
        if ref is None:
            return (f"This run: {fresh_desc}. It is the first result of its kind in the reference folder: "
                    "there is no earlier reference to compare it with.", False)
        return (f"This run: {fresh_desc}. It was saved into the reference folder itself, so it is compared "
                f"with the committed result it replaces ({ref.describe()}, commit "
                f"{str(ref.meta.get('git_commit') or 'unknown')[:7]}): the difference per table below holds each "
                "number against that result (timings as a ratio, accuracies as a difference) and its tolerance.",
                True)
    if ref is None:
        return (f"This run: {fresh_desc}. No reference result is committed for this experiment yet.", False)
    if ref.profile == fresh_profile and fresh_tag.startswith("cuda"):
        same = "the same GPU model" if ref.tag == fresh_tag else "a different GPU model"
        return (f"This run: {fresh_desc}. Reference: {ref.describe()}, {same}. The difference per table "
                "below holds each number against the reference (timings as a ratio, accuracies as a "
                "difference) and its tolerance.", True)
    kind = "GPU" if fresh_tag.startswith("cuda") else "CPU"
    return (f"This run: {fresh_desc}. Reference: {ref.describe()}. They differ in kind "
            f"({kind} {fresh_profile} against GPU {ref.profile}), so the numbers are not compared"
            + (": a smoke run on CPU only proves that the code path works" if kind == "CPU" else "")
            + ". Read the shape of the reference curves, not the ratio.", False)


@dataclass(frozen=True)
class Replaced:
    """The committed result a GPU run overwrote in the reference folder, read before the save."""

    ref: results.Result
    table: pd.DataFrame | None
    png: bytes | None

    @classmethod
    def read(cls, ref: results.Result | None) -> "Replaced | None":
        if ref is None:
            return None
        try:
            table = ref.table()
        except (OSError, ValueError, pd.errors.ParserError):
            table = None
        return cls(ref, table, ref.png.read_bytes() if ref.png is not None else None)


def local_run_title(profile: str, device_tag: str) -> str:
    """The summary of the collapsed section that holds a run which is not the page's evidence."""
    kind = "GPU" if str(device_tag).startswith("cuda") else "CPU"
    why = ("checks that the code runs, numbers not comparable" if kind == "CPU" or profile not in profiles.MEASURING
           else "no row measured; the reference is shown instead")
    return f"This machine's run ({kind} {profile}: {why})"


def _provenance_line(what: str, where: str, meta: dict) -> str:
    hw = meta.get("gpu_name") or meta.get("cpu_model") or meta.get("device_tag", "")
    commit = str(meta.get("git_commit") or "unknown")[:10]
    dirty = " (dirty)" if meta.get("git_dirty") else ""
    wall = f" · wall {meta['wall_s']} s" if meta.get("wall_s") is not None else ""
    drawn = meta.get("figure_redrawn") or {}
    redrawn = (f" · figure redrawn from this table at commit {str(drawn.get('commit'))[:10]}"
               if drawn.get("commit") else "")
    return (f'<p class="sparsefuse-provenance"><small><strong>{html.escape(what)}:</strong> '
            f"{html.escape(where)} · {html.escape(str(hw))} · commit {html.escape(commit)}{dirty} · "
            f"torch {html.escape(str(meta.get('torch')))}{html.escape(wall)}{html.escape(redrawn)}</small></p>")


def _figure(data: bytes, caption: str) -> str:
    return (f'<figure style="margin:0">{_png_tag(data, caption)}'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


def diff_html(fresh: pd.DataFrame, ref: pd.DataFrame, *, path: str = "", max_rows: int = 40) -> str:
    """The per-table difference (``diff.compare_tables``) of this run against the reference, as HTML."""
    from .diff import compare_tables

    try:
        rep = compare_tables(fresh, ref, path=path, allow_unmatched=True)
    except Exception as exc:  # noqa: BLE001 - a table the rules cannot read: say so, keep the page
        return f"<p>The difference could not be computed: {html.escape(str(exc))}</p>"
    head = (f"<p><strong>Difference from the reference: {html.escape(rep.verdict)}</strong> — "
            f"{rep.matched} rows matched, {rep.compared} values compared"
            f"{f', {rep.only_reference} rows only in the reference' if rep.only_reference else ''}"
            f"{f', {rep.only_fresh} rows only in this run' if rep.only_fresh else ''}.</p>")
    if not rep.findings:
        return head + "<p>Every compared value is within its tolerance.</p>"
    rows = pd.DataFrame([dict(level=f.level, row=f.row, column=f.column, change=f.text) for f in rep.findings])
    return head + _table_html(rows, max_rows=max_rows)


def page_html(ev, fresh: pd.DataFrame, *, fresh_png: bytes | None, fresh_meta: dict, fresh_where: str,
              ref: results.Result | None, keys: list[str] | None = None, same_folder: bool = False,
              replaced: Replaced | None = None) -> str:
    """A result as the page shows it: the evidence first, the other run beside it or collapsed.

    ``ev`` (:func:`sparsefuse.lab.book.verdict.evidence`) decides. When it is this run (a GPU
    measurement at quick/paper), the reference and the per-table difference follow it;
    otherwise the reference leads and this run sits in a collapsed section titled
    :func:`local_run_title`. The provenance line under the first figure names the
    GPU and commit of the evidence shown first. When this run was saved into the
    reference folder (``same_folder``), the difference is taken against ``replaced``,
    the committed result it overwrote.
    """
    profile = fresh_meta.get("profile", "")
    tag = fresh_meta.get("device_tag", "")
    fresh_desc = f"profile {profile} on {fresh_meta.get('gpu_name') or fresh_meta.get('cpu_model') or tag}"
    if not ev.fresh:
        parts = _reference_first(ev, fresh, fresh_png=fresh_png, fresh_meta=fresh_meta, fresh_where=fresh_where,
                                 fresh_desc=fresh_desc)
        return '<div class="sparsefuse-result">' + "\n".join(parts) + "</div>"
    if same_folder:
        note, _ = comparison_note(profile, tag, replaced.ref if replaced else None, fresh_desc, replaces=True)
    else:
        note, _ = comparison_note(profile, tag, ref, fresh_desc)
    parts = [f'<p class="sparsefuse-note sparsefuse-evidence" data-evidence="fresh"><strong>Evidence shown '
             f"first: {html.escape(ev.source)}.</strong> {html.escape(note)}</p>"]
    if fresh_png is not None:
        parts.append(_figure(fresh_png, "This run — " + fresh_desc))
    parts.append(_details("Table — this run", _table_html(fresh), open_=len(fresh) <= 20 or fresh_png is None))
    parts.append(_provenance_line("This run", fresh_where, fresh_meta))
    if ref is not None and not same_folder:
        try:
            ref_table = ref.table()
        except (OSError, ValueError, pd.errors.ParserError):
            ref_table = None
        body = _compared_run(fresh, ref, ref_table, ref.png.read_bytes() if ref.png is not None else None,
                             "Reference", measured=ev.measured)
        parts.append(_details(f"Reference ({ref.describe()}) and the difference per table", body, open_=ev.measured))
    elif same_folder and replaced is not None:
        body = _compared_run(fresh, replaced.ref, replaced.table, replaced.png, "Replaced reference",
                             measured=ev.measured, when=" (as committed before this run)")
        commit = str(replaced.ref.meta.get("git_commit") or "unknown")[:7]
        parts.append(_details(f"The committed result this run replaces (commit {commit}) and the difference "
                              "per table", body, open_=ev.measured))
    return '<div class="sparsefuse-result">' + "\n".join(parts) + "</div>"


def _compared_run(fresh: pd.DataFrame, other: results.Result, table: pd.DataFrame | None, png: bytes | None,
                  label: str, *, measured: bool, when: str = "") -> str:
    """The folded section of the committed run this one is held against: the difference per table (when this run
    measured), its figure, its table and its provenance line."""
    where = f"{other.profile}/{other.tag}/{other.name}.csv"
    body = []
    if table is not None and measured:
        body.append(diff_html(fresh, table, path=where))
    if png is not None:
        body.append(_figure(png, f"{label} — {other.describe()}"))
    if table is not None:
        body.append(_details(f"Table — {label.lower()}", _table_html(table)))
    body.append(_provenance_line(label, f"results/{where}{when}", other.meta))
    return "".join(body)


def _reference_first(ev, fresh: pd.DataFrame, *, fresh_png: bytes | None, fresh_meta: dict, fresh_where: str,
                     fresh_desc: str) -> list[str]:
    """The page when the committed reference is the evidence: it leads, this machine's run is folded below it."""
    profile, tag = fresh_meta.get("profile", ""), fresh_meta.get("device_tag", "")
    rr = ev.reference
    parts = [f'<p class="sparsefuse-note sparsefuse-evidence" data-evidence="reference"><strong>Evidence '
             f"shown first: {html.escape(ev.source)}.</strong> The figure, the tables, the explorer and "
             "the numbers in the text come from it; this machine's run is in the collapsed section "
             "below.</p>"]
    if rr.png is not None:
        parts.append(_figure(rr.png.read_bytes(), "Reference — " + rr.describe()))
    parts.append(_details("Table — reference", _table_html(ev.table), open_=len(ev.table) <= 20 or rr.png is None))
    parts.append(_provenance_line("Reference", f"results/{rr.profile}/{rr.tag}/{rr.name}.csv", rr.meta))
    body = [f"<p>{html.escape(comparison_note(profile, tag, rr, fresh_desc)[0])}</p>"]
    if fresh_png is not None:
        body.append(_figure(fresh_png, "This run — " + fresh_desc))
    body.append("<p><strong>Table — this run</strong></p>" + _table_html(fresh))
    body.append(_provenance_line("This run", fresh_where, fresh_meta))
    parts.append(f'<details class="sparsefuse-local-run"><summary>{html.escape(local_run_title(profile, tag))}'
                 f"</summary>{''.join(body)}</details>")
    return parts
