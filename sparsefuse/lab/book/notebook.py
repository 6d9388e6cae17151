"""The few calls a book notebook makes: pick the device, run an experiment, publish the result.

Kept thin on purpose: a notebook should read as prose plus a few calls, and
everything that must be the same in every notebook (where files go, what
provenance is recorded, how fresh numbers are set beside the reference) lives
here once.
"""
from __future__ import annotations

import base64
import html
import json
import os
import time
from dataclasses import dataclass

import pandas as pd

from .. import profiles
from . import provenance, results
from .contract import Experiment, KeyNumbered, Plotted, problems
from .layout import resolve_device

_started = time.perf_counter()


def use_device(device: str = "auto") -> str:
    """The device a notebook runs on (``auto``: a GPU when torch sees one), checked to be there.

    On CPU the Triton kernels can only run through the interpreter, so
    ``TRITON_INTERPRET=1`` is set unless the caller chose otherwise. Also
    starts the clock that :func:`publish` reports as wall time.
    """
    import torch

    global _started
    device = resolve_device(device)
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("device is 'cuda' but no CUDA GPU is visible (torch.cuda.is_available() is False)")
    if device == "cpu":
        os.environ.setdefault("TRITON_INTERPRET", "1")
    _started = time.perf_counter()
    return device


def choose_colab_profile(choice: str = "auto") -> str:
    """The profile of a Colab run: ``auto`` is quick on a GPU runtime, smoke without one."""
    import torch

    gpu = torch.cuda.is_available()
    if not gpu:
        print("No GPU: choose Runtime > Change runtime type > GPU for meaningful numbers. "
              "Without one only the tiny 'smoke' profile finishes in reasonable time.")
    profile = profiles.check(("quick" if gpu else "smoke") if choice == "auto" else choice)
    print(f"profile: {profile} ({torch.cuda.get_device_name() if gpu else 'CPU'})")
    return profile


def experiment(exp: Experiment, profile: str, device: str = "auto", *, keys: list[str] | None = None,
               side: dict | None = None, only_measured: bool = False, related: dict[str, str] | None = None,
               **overrides) -> pd.DataFrame:
    """Run one chapter's experiment, plot it, publish it, glue its verdict; return the table the page leads with.

    ``overrides`` left at ``None`` keep the profile's value (a notebook parameter
    that was not set). ``side`` names derived tables published beside it, e.g.
    ``{"curves": exp.curves}`` as ``<NAME>_curves``. With ``only_measured`` a run
    in which no row is ``ok`` is not saved: the committed result is shown instead.

    ``exp`` is held to :mod:`.contract` before anything runs.

    The returned table is the *evidence* (:func:`sparsefuse.lab.book.verdict.evidence`,
    the one place that decides): this run when it measured on a GPU at quick/paper,
    else the committed GPU reference (its side tables attached), else this run. The
    headline tables and explorers the notebook builds from it therefore show the
    same run as the figure, the verdict and the provenance line above them;
    ``df.attrs["evidence"]`` says which run it is. The verdict numbers the prose quotes
    (``exp.verdict_numbers``, with ``related`` side tables: :func:`sparsefuse.lab.book.verdict.verdict_values`)
    are glued from the same table.
    """
    from . import verdict

    wrong = problems(exp)
    if wrong:
        raise TypeError(f"{getattr(exp, '__name__', exp)!r} is not an experiment module: {'; '.join(wrong)}")
    dev = use_device(device)
    df = exp.run(profile=profile, device=dev, **{k: v for k, v in overrides.items() if v is not None})
    if only_measured and results.no_row_succeeded(df):
        show_committed(exp.NAME, note=f"Not measured in this run ({df['note'].iloc[0]}); no result is saved.")
        glue_all(verdict.verdict_values(verdict.evidence(exp.NAME, df, profile=profile, device=dev),
                                        exp.NAME, exp.verdict_numbers, related=related))
        return df
    fig = exp.plot(df) if isinstance(exp, Plotted) else None
    ev = _publish(exp.NAME, df, fig, profile=profile, device=dev, keys=keys)
    for suffix, derive in (side or {}).items():
        publish(f"{exp.NAME}_{suffix}", derive(df), None, profile=profile, device=dev,
                params=df.attrs.get("parameters"), show=False)
    shown = evidence_frame(ev, df, side=list(side or {}), name=exp.NAME)
    glue_all(verdict.verdict_values(ev, exp.NAME, exp.verdict_numbers, related=related))
    if isinstance(exp, KeyNumbered):
        glue_all(exp.key_numbers(shown))
    return shown


def evidence_frame(ev, fresh: pd.DataFrame, *, side: list[str] = (), name: str = "") -> pd.DataFrame:
    """The table a page shows first (``ev.table``), with ``attrs`` a notebook's later cells read.

    A reference table gets the side tables saved beside it (``<name>_curves`` ...) attached,
    as a fresh run has them, and the fresh run's other attrs (target names ...) where it has none.
    """
    if ev is None or ev.fresh:
        out = fresh
    else:
        from sparsefuse.training import attach_tables

        out = ev.table.copy()
        out.attrs.update({k: v for k, v in fresh.attrs.items() if k != "tables"})
        out.attrs["parameters"] = dict(ev.reference.meta.get("parameters") or {})
        held = {s: t for s in side if (t := ev.related(f"{name}_{s}")) is not None}
        if held:
            attach_tables(out, **held)
    out.attrs["evidence"] = ev.source if ev is not None else "this run"
    out.attrs["evidence_measured"] = bool(ev.measured) if ev is not None else False
    out.attrs["evidence_label"] = ev.label if ev is not None else "this run"
    return out


def show_committed(name: str, *, columns: list[str] | None = None, plot=None, missing: str = "",
                   note: str = "", describe=None) -> None:
    """Show the committed result ``name`` (its table and, with ``plot``, its figure), or say there is none.

    ``missing`` is said only when nothing is committed; ``note`` always; ``describe(table, meta) -> str``
    gives the words that read the committed table (what it shows, what in it is odd).
    """
    from IPython.display import Markdown, display

    from .tables import show

    ref = results.reference(name)
    if ref is None:
        display(Markdown(" ".join(filter(None, [note, missing or "No result is committed."]))))
        return
    table = ref.table()
    commit = str(ref.meta.get("git_commit") or "unknown")[:7]
    when = str(ref.meta.get("timestamp") or "")[:10]
    head = f"Committed result: {ref.describe()}, commit {commit}" + (f", {when}" if when else "") + "."
    words = describe(table, ref.meta) if describe is not None else ""
    display(Markdown(" ".join(filter(None, [note, head, words]))))
    display(show(table[columns] if columns else table))
    if plot is not None:
        import matplotlib.pyplot as plt

        fig = plot(table)
        display(fig)
        plt.close(fig)


GLUE_PREFIX = "application/papermill.record/"


def glue(name: str, value) -> None:
    """Keep ``value`` for the prose: ``{glue:text}`name:.2f``` in a markdown cell shows it in the book.

    The output is exactly what ``myst_nb.glue(name, value, display=False)`` writes;
    it is made here so that running a notebook needs neither myst-nb nor docutils
    (the GPU machine runs the notebooks without the book's toolchain).
    """
    import numbers

    from IPython.core.formatters import format_display_data
    from IPython.display import display

    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        value = int(value)  # numpy scalars would print as np.int64(3), which a format spec cannot read
    elif isinstance(value, numbers.Real):
        value = float(value)
    bundle, metadata = format_display_data(value)
    metadata["scrapbook"] = dict(name=name, mime_prefix=GLUE_PREFIX)
    display({GLUE_PREFIX + k: v for k, v in bundle.items()}, raw=True, metadata=metadata)


def glue_all(values: dict) -> None:
    """:func:`glue` every ``name: value`` pair (NaN where a number could not be measured)."""
    for name, value in values.items():
        glue(name, value)


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
    parts = []
    if ev.fresh:
        if same_folder:
            note, _ = comparison_note(profile, tag, replaced.ref if replaced else None, fresh_desc, replaces=True)
        else:
            note, _ = comparison_note(profile, tag, ref, fresh_desc)
        parts.append(f'<p class="sparsefuse-note sparsefuse-evidence" data-evidence="fresh"><strong>Evidence shown '
                     f"first: {html.escape(ev.source)}.</strong> {html.escape(note)}</p>")
        if fresh_png is not None:
            parts.append(_figure(fresh_png, "This run — " + fresh_desc))
        parts.append(_details("Table — this run", _table_html(fresh), open_=len(fresh) <= 20 or fresh_png is None))
        parts.append(_provenance_line("This run", fresh_where, fresh_meta))
        if ref is not None and not same_folder:
            body = []
            try:
                ref_table = ref.table()
            except (OSError, ValueError, pd.errors.ParserError):
                ref_table = None
            if ref_table is not None and ev.measured:
                body.append(diff_html(fresh, ref_table, path=f"{ref.profile}/{ref.tag}/{ref.name}.csv"))
            if ref.png is not None:
                body.append(_figure(ref.png.read_bytes(), "Reference — " + ref.describe()))
            if ref_table is not None:
                body.append(_details("Table — reference", _table_html(ref_table)))
            body.append(_provenance_line("Reference", f"results/{ref.profile}/{ref.tag}/{ref.name}.csv", ref.meta))
            parts.append(_details(f"Reference ({ref.describe()}) and the difference per table", "".join(body),
                                  open_=ev.measured))
        elif same_folder and replaced is not None:
            old = replaced.ref
            body = []
            if replaced.table is not None and ev.measured:
                body.append(diff_html(fresh, replaced.table, path=f"{old.profile}/{old.tag}/{old.name}.csv"))
            if replaced.png is not None:
                body.append(_figure(replaced.png, "Replaced reference — " + old.describe()))
            if replaced.table is not None:
                body.append(_details("Table — replaced reference", _table_html(replaced.table)))
            body.append(_provenance_line("Replaced reference", f"results/{old.profile}/{old.tag}/{old.name}.csv "
                                         "(as committed before this run)", old.meta))
            commit = str(old.meta.get("git_commit") or "unknown")[:7]
            parts.append(_details(f"The committed result this run replaces (commit {commit}) and the difference "
                                  "per table", "".join(body), open_=ev.measured))
    else:
        rr = ev.reference
        parts.append(f'<p class="sparsefuse-note sparsefuse-evidence" data-evidence="reference"><strong>Evidence '
                     f"shown first: {html.escape(ev.source)}.</strong> The figure, the tables, the explorer and "
                     "the numbers in the text come from it; this machine's run is in the collapsed section "
                     "below.</p>")
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
    return '<div class="sparsefuse-result">' + "\n".join(parts) + "</div>"


def publish(name: str, df: pd.DataFrame, fig=None, *, profile: str, device: str,
            params: dict | None = None, keys: list[str] | None = None,
            wall_s: float | None = None, show: bool = True) -> None:
    """Save ``df``/``fig`` with provenance, then show the evidence first (:func:`page_html`).

    ``params`` add to the parameters the experiment resolved (``df.attrs["parameters"]``).
    Returns nothing, so that the call can end a cell without echoing a value;
    ``results.save`` is the programmatic form.
    """
    _publish(name, df, fig, profile=profile, device=device, params=params, keys=keys, wall_s=wall_s, show=show)


def _publish(name: str, df: pd.DataFrame, fig=None, *, profile: str, device: str,
             params: dict | None = None, keys: list[str] | None = None,
             wall_s: float | None = None, show: bool = True):
    from . import verdict

    if wall_s is None:
        wall_s = time.perf_counter() - _started
    params = {**df.attrs.get("parameters", {}), **(params or {})}
    # A GPU run of the book writes into the reference folder itself: keep what it overwrites to compare with.
    prior = results.reference(name) if show else None
    target = results.result_dir(profile, provenance.device_tag(device))
    before = Replaced.read(prior) if prior is not None and prior.folder.resolve() == target.resolve() else None
    saved = results.save(name, df, fig, profile=profile, device=device, params=params, wall_s=wall_s)
    ref = results.reference(name)
    ev = verdict.evidence(name, df, profile=profile, device=device, reference=ref)
    if not show:
        return ev
    from IPython.display import HTML, display

    meta = json.loads(saved.json.read_text())
    where = f"{profile}/{meta['device_tag']}/{saved.csv.name}"
    same = ref is not None and ref.folder.resolve() == saved.json.parent.resolve()
    replaced = before if same else None
    display(HTML(page_html(ev, df, fresh_png=saved.png.read_bytes() if saved.png is not None else None,
                           fresh_meta=meta, fresh_where=where, ref=ref, keys=keys, same_folder=same,
                           replaced=replaced)))
    if fig is not None:
        import matplotlib.pyplot as plt

        plt.close(fig)  # shown above; keep the inline backend from drawing it twice
    return ev
