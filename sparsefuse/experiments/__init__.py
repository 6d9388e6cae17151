"""One module per section of the book.

Each module has ``PROFILES`` (``smoke``/``quick``/``paper``), ``run(profile,
device, progress, **overrides) -> DataFrame`` and ``plot(df) -> Figure``; the
notebook of that section calls them and publishes the result.
"""
from __future__ import annotations


def resolve_profile(profiles: dict, profile: str, overrides: dict) -> dict:
    """The settings of ``profile`` with ``overrides`` applied.

    Unknown profile names and unknown override keys are errors: a typo in a
    papermill parameter must not silently run the default sweep.
    """
    if profile not in profiles:
        raise ValueError(f"profile must be one of {sorted(profiles)}, got {profile!r}")
    cfg = dict(profiles[profile])
    for key, value in overrides.items():
        if key not in cfg:
            raise ValueError(f"unknown override {key!r} for this experiment; known: {sorted(cfg)}")
        cfg[key] = value
    return cfg
