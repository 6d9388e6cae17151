"""One module per section of the book (``jhcg/``: the JHCG appendix), and what they share.

Each chapter's module is what :class:`sparsefuse.lab.book.contract.Experiment` says:
``NAME``, ``PROFILES`` (settings per profile of :mod:`sparsefuse.lab.profiles`),
``run(profile, device, progress, **overrides) -> DataFrame`` (its ``attrs["parameters"]``
the settings it resolved), ``verdict_numbers(df)`` and mostly ``plot(df) -> Figure``;
the notebook of that section hands the module to ``sparsefuse.lab.book.notebook.experiment``.
Here: :func:`recorded` turns a ``run(cfg, ...)`` into that ``run``.
"""
from __future__ import annotations

import functools
import inspect

from ..profiles import check as check_profile


def resolve_profile(profiles: dict, profile: str, overrides: dict) -> dict:
    """The settings of ``profile`` with ``overrides`` applied.

    Unknown profile names and unknown override keys are errors: a typo in a
    papermill parameter must not silently run the default sweep.
    """
    cfg = dict(profiles[check_profile(profile)])
    for key, value in overrides.items():
        if key not in cfg:
            raise ValueError(f"unknown override {key!r} for this experiment; known: {sorted(cfg)}")
        cfg[key] = value
    return cfg


def check_choices(cfg: dict, key: str, allowed) -> None:
    """Every entry of ``cfg[key]`` is one of ``allowed``; a typo names the key and what is known."""
    unknown = [v for v in cfg[key] if v not in allowed]
    if unknown:
        raise ValueError(f"{key}: unknown {unknown}; known: {list(allowed)}")


def recorded(profiles: dict, *, one_thread_at_smoke: bool = False):
    """Make ``run(cfg, device, progress)`` the experiment's ``run(profile, device, progress, **overrides)``.

    The profile is resolved here once, and the table carries what ran in
    ``df.attrs["parameters"]`` (plus what ``run`` put there itself, e.g. the
    corpus), so a notebook publishes exactly that instead of rebuilding it.
    Keyword parameters of ``run`` beyond the three (``root``, ``profile``) are passed through.
    With ``one_thread_at_smoke`` a smoke run on the CPU keeps torch on one thread
    (:func:`sparsefuse.lab.measure.one_thread_on_cpu`: its models are too small to gain from more).
    """
    def wrap(run):
        extra = [p for p in inspect.signature(run).parameters if p not in ("cfg", "device", "progress")]

        @functools.wraps(run)
        def recording(profile: str = "smoke", device="cpu", progress: bool = True, **overrides):
            kwargs = {k: overrides.pop(k) for k in extra if k in overrides}
            if "profile" in extra:
                kwargs["profile"] = profile
            cfg = resolve_profile(profiles, profile, overrides)
            from sparsefuse.lab.measure import one_thread_on_cpu  # torch: not needed to list the experiments

            with one_thread_on_cpu(device, when=one_thread_at_smoke and profile == "smoke"):
                df = run(cfg, device, progress, **kwargs)
            df.attrs["parameters"] = {**cfg, **df.attrs.get("parameters", {})}
            return df
        del recording.__wrapped__  # callers see (profile, device, progress, **overrides)
        return recording
    return wrap
