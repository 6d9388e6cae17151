"""What the book calls on an experiment module, declared once.

A chapter's notebook hands its experiment module to :func:`~.notebook.experiment`,
which runs it, plots it, publishes the result under ``NAME`` and glues its
verdict; ``python -m sparsefuse.lab.book redraw`` finds a module by ``NAME`` and
plots a committed table with it. :class:`Experiment` is what every such module
has; :class:`Plotted` and :class:`KeyNumbered` are what some add (a module
without ``plot`` publishes a table and no figure). :func:`problems` holds a
module to these signatures, which ``isinstance`` alone does not look at.
"""
from __future__ import annotations

import importlib
import inspect
import pkgutil
import types
from typing import TYPE_CHECKING, Mapping, Protocol, runtime_checkable

from .. import profiles

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure


@runtime_checkable
class Experiment(Protocol):
    """One chapter's experiment module."""

    #: the result's name: its files are ``<NAME>.csv/.json/.png`` and its glued values are read beside it
    NAME: str
    #: the settings of each profile in :data:`sparsefuse.lab.profiles.NAMES`, every profile with the same keys
    PROFILES: Mapping[str, Mapping[str, object]]

    def run(self, profile: str = "smoke", device: str = "cpu", progress: bool = True,
            **overrides) -> pd.DataFrame:
        """The result table; ``overrides`` replace settings of the profile (a notebook's parameters)."""

    def verdict_numbers(self, df: pd.DataFrame) -> dict:
        """The numbers and words the chapter's prose quotes, read from ``df`` alone (NaN where missing).

        Further keywords, each with a default, may take side tables saved beside the
        reference (``nb.experiment(..., related={"curves": ...})``).
        """


@runtime_checkable
class Plotted(Protocol):
    def plot(self, df: pd.DataFrame) -> Figure:
        """The chapter's figure, drawn from ``df`` alone (the redraw gives it a committed table)."""


@runtime_checkable
class KeyNumbered(Protocol):
    def key_numbers(self, df: pd.DataFrame) -> dict:
        """More glued values, read from the table the page shows first."""


def _fits(name: str, wanted: inspect.Signature, have: inspect.Signature) -> list[str]:
    """Why a function with signature ``have`` cannot be called as the protocol's ``wanted`` is (none: it can).

    Each positional parameter of ``wanted`` without a default is taken at the same place; each
    with a default by name, with a default of its own; ``**`` is taken when ``wanted`` has it; any
    further parameter of ``have`` needs a default.
    """
    wanted_params = list(wanted.parameters.values())[1:]  # less self
    params = list(have.parameters.values())
    by_name = have.parameters
    out, used = [], set()
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    for i, w in enumerate(wanted_params):
        if w.kind is w.VAR_KEYWORD:
            if not any(p.kind is p.VAR_KEYWORD for p in params):
                out.append(f"{name} takes no **{w.name}")
            continue
        if w.default is w.empty:
            if i >= len(positional):
                out.append(f"{name} takes no positional parameter {i + 1} ({w.name})")
            else:
                used.add(positional[i].name)
            continue
        p = by_name.get(w.name)
        if p is None or p.kind not in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
            out.append(f"{name} takes no keyword {w.name}")
        elif p.default is p.empty:
            out.append(f"{name}: {w.name} has no default")
        else:
            used.add(p.name)
    for p in params:
        if p.name not in used and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) and p.default is p.empty:
            out.append(f"{name}: {p.name} is required but the book does not pass it")
    return out


def _members(protocol) -> list[str]:
    return [m for m in protocol.__dict__ if callable(protocol.__dict__[m]) and not m.startswith("_")]


def problems(module) -> list[str]:
    """What keeps ``module`` from being an :class:`Experiment` (and a :class:`Plotted` / :class:`KeyNumbered`
    where it has ``plot`` / ``key_numbers``); empty when nothing does."""
    out = []
    name = getattr(module, "NAME", None)
    if not isinstance(name, str) or not name:
        out.append(f"NAME must be a non-empty str, got {name!r}")
    settings = getattr(module, "PROFILES", None)
    if not isinstance(settings, Mapping):
        out.append("PROFILES must be a mapping of profile name to settings")
    elif tuple(settings) != profiles.NAMES:
        out.append(f"PROFILES must have the profiles {profiles.NAMES} in this order, has {tuple(settings)}")
    elif len({frozenset(cfg) for cfg in settings.values()}) != 1:
        out.append("PROFILES: every profile must have the same settings (an override must work at each)")
    optional = [(p, m) for p in (Plotted, KeyNumbered) for m in _members(p) if hasattr(module, m)]
    for protocol, member in [(Experiment, m) for m in _members(Experiment)] + optional:
        fn = getattr(module, member, None)
        if not callable(fn):
            out.append(f"{member} is missing or not callable")
            continue
        out += _fits(member, inspect.signature(getattr(protocol, member)), inspect.signature(fn))
    return out


def experiment_modules() -> list[types.ModuleType]:
    """Every module under :mod:`sparsefuse.lab.experiments` (subpackages included) that has a ``NAME``."""
    from .. import experiments

    found = []
    for info in pkgutil.walk_packages(experiments.__path__, f"{experiments.__name__}."):
        module = importlib.import_module(info.name)
        if hasattr(module, "NAME"):
            found.append(module)
    return found
