"""The three sizes every experiment runs at, named here and nowhere else.

``smoke``: tiny sizes that finish in seconds on a CPU; proves the code path,
measures nothing. ``quick``: one GPU, minutes per notebook; the committed
reference. ``paper``: the full sweeps. Each experiment's ``PROFILES`` gives its
settings under exactly these names (the experiment contract checks it).

A profile is checked where it enters: the runner (its command line and
``runner.execute``), an experiment's ``run`` (a notebook's ``profile`` parameter
arrives there first), the Colab chooser, and the one function that turns a
profile into a results folder (``results.result_dir``).
"""
from __future__ import annotations

NAMES = ("smoke", "quick", "paper")
#: the profiles whose GPU numbers can be held against the paper's claims (smoke only proves the code runs)
MEASURING = ("quick", "paper")


def check(profile: str) -> str:
    """``profile`` when it is one of :data:`NAMES`; a ``ValueError`` that lists them otherwise."""
    if profile not in NAMES:
        raise ValueError(f"profile must be one of {NAMES}, got {profile!r}")
    return profile
