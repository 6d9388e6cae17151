"""The few calls a book notebook makes: pick the device, run an experiment, publish the result.

Kept thin on purpose: a notebook should read as prose plus a few calls, and
everything that must be the same in every notebook (where files go, what
provenance is recorded, how fresh numbers are set beside the reference) lives
here once.
"""
from __future__ import annotations

import json
import os
import time

import pandas as pd

from .. import profiles
from . import provenance, results
from .contract import Experiment, KeyNumbered, Plotted, problems
from .layout import resolve_device
from .page import Replaced, page_html

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
        from sparsefuse.lab.side_tables import attach_tables

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


def publish(name: str, df: pd.DataFrame, fig=None, *, profile: str, device: str,
            params: dict | None = None, keys: list[str] | None = None,
            wall_s: float | None = None, show: bool = True) -> None:
    """Save ``df``/``fig`` with provenance, then show the evidence first (:func:`.page.page_html`).

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
