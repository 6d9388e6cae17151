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
import sys
import time

import pandas as pd

from . import results
from .layout import check_profile, resolve_device

_started = time.perf_counter()


def in_colab() -> bool:
    return "google.colab" in sys.modules


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
    profile = check_profile(("quick" if gpu else "smoke") if choice == "auto" else choice)
    print(f"profile: {profile} ({torch.cuda.get_device_name() if gpu else 'CPU'})")
    return profile


def experiment(exp, profile: str, device: str = "auto", *, keys: list[str] | None = None,
               side: dict | None = None, only_measured: bool = False, **overrides) -> pd.DataFrame:
    """Run one chapter's experiment, plot it and publish it with the parameters it resolved.

    ``overrides`` left at ``None`` keep the profile's value (a notebook parameter
    that was not set). ``side`` names derived tables published beside it, e.g.
    ``{"curves": exp.curves}`` as ``<NAME>_curves``. With ``only_measured`` a run
    in which no row is ``ok`` is not saved: the committed result is shown instead.
    """
    dev = use_device(device)
    df = exp.run(profile=profile, device=dev, **{k: v for k, v in overrides.items() if v is not None})
    if only_measured and results.no_row_succeeded(df):
        show_committed(exp.NAME, missing=f"Not measured in this run ({df['note'].iloc[0]}); no result is saved.")
        return df
    fig = exp.plot(df) if hasattr(exp, "plot") else None
    publish(exp.NAME, df, fig, profile=profile, device=dev, keys=keys)
    for suffix, derive in (side or {}).items():
        publish(f"{exp.NAME}_{suffix}", derive(df), None, profile=profile, device=dev,
                params=df.attrs.get("parameters"), show=False)
    if hasattr(exp, "key_numbers"):
        glue_all(exp.key_numbers(df))
    return df


def show_committed(name: str, *, columns: list[str] | None = None, plot=None, missing: str = "") -> None:
    """Show the committed result ``name`` (its table and, with ``plot``, its figure), or say there is none."""
    from IPython.display import Markdown, display

    ref = results.reference(name)
    if ref is None:
        display(Markdown(" ".join(filter(None, [missing, "No result is committed."]))))
        return
    table = ref.table()
    display(Markdown(" ".join(filter(None, [missing, f"Committed result: {ref.describe()}."]))))
    display(table[columns] if columns else table)
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


def comparison_note(fresh_profile: str, fresh_tag: str, ref: results.Result | None, fresh_desc: str) -> tuple[str, bool]:
    """(note, comparable). Comparable: the same profile, both on a GPU."""
    if ref is None:
        return (f"This run: {fresh_desc}. No reference result is committed for this experiment yet.", False)
    if ref.profile == fresh_profile and fresh_tag.startswith("cuda"):
        same = "the same GPU model" if ref.tag == fresh_tag else "a different GPU model"
        return (f"This run: {fresh_desc}. Reference: {ref.describe()}, {same}. The table below "
                "gives each number beside the reference and their ratio (this run / reference).", True)
    kind = "GPU" if fresh_tag.startswith("cuda") else "CPU"
    return (f"This run: {fresh_desc}. Reference: {ref.describe()}. They differ in kind "
            f"({kind} {fresh_profile} against GPU {ref.profile}), so the numbers are not comparable"
            + (": a smoke run on CPU only proves that the code path works" if kind == "CPU" else "")
            + ". Read the shape of the reference curves, not the ratio.", False)


def publish(name: str, df: pd.DataFrame, fig=None, *, profile: str, device: str,
            params: dict | None = None, keys: list[str] | None = None,
            wall_s: float | None = None, show: bool = True) -> None:
    """Save ``df``/``fig`` with provenance, then show them beside the reference result.

    ``params`` add to the parameters the experiment resolved (``df.attrs["parameters"]``).
    Returns nothing, so that the call can end a cell without echoing a value;
    ``results.save`` is the programmatic form.
    """
    if wall_s is None:
        wall_s = time.perf_counter() - _started
    params = {**df.attrs.get("parameters", {}), **(params or {})}
    saved = results.save(name, df, fig, profile=profile, device=device, params=params, wall_s=wall_s)
    if not show:
        return
    from IPython.display import HTML, display

    meta = json.loads(saved.json.read_text())
    hw = meta.get("gpu_name") or meta.get("cpu_model") or meta["device_tag"]
    fresh_desc = f"profile {profile} on {hw}"
    ref = results.reference(name)
    note, comparable = comparison_note(profile, meta["device_tag"], ref, fresh_desc)
    figures = []
    if saved.png is not None:
        figures.append(("This run — " + fresh_desc, saved.png.read_bytes()))
    if ref is not None and ref.png is not None and ref.folder.resolve() != saved.json.parent.resolve():
        figures.append(("Reference — " + ref.describe(), ref.png.read_bytes()))
    parts = [f'<p class="sparsefuse-note"><strong>Results.</strong> {html.escape(note)}</p>']
    if figures:
        cells = "".join(
            f'<figure style="flex:1 1 380px;margin:0">{_png_tag(data, cap)}'
            f"<figcaption>{html.escape(cap)}</figcaption></figure>" for cap, data in figures)
        parts.append(f'<div class="sparsefuse-figures" style="display:flex;flex-wrap:wrap;gap:1em">{cells}</div>')
    if comparable and ref is not None:
        parts.append(_details("Comparison with the reference", _table_html(results.compare(df, ref.table(), keys)), True))
    else:
        parts.append(_details("Table — this run", _table_html(df), open_=len(df) <= 20 or not figures))
        if ref is not None:
            parts.append(_details("Table — reference (" + ref.describe() + ")", _table_html(ref.table())))
    parts.append(f'<p class="sparsefuse-provenance"><small>Saved {html.escape(saved.csv.name)} '
                 f"under {html.escape(profile)}/{html.escape(meta['device_tag'])} · commit "
                 f"{html.escape(str(meta['git_commit'])[:10])}{' (dirty)' if meta.get('git_dirty') else ''} · "
                 f"torch {html.escape(meta['torch'])} · wall {meta['wall_s']} s</small></p>")
    display(HTML("\n".join(parts)))
    if fig is not None:
        import matplotlib.pyplot as plt

        plt.close(fig)  # shown above; keep the inline backend from drawing it twice
