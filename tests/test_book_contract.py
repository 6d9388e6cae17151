"""Every experiment module is what the book calls it as (sparsefuse.lab.book.contract).

The notebooks hand these modules to ``nb.experiment`` and the redraw finds them by
``NAME``; a renamed keyword, a missing default or a profile missing from ``PROFILES``
would otherwise show only when that notebook runs.
"""
from __future__ import annotations

import ast
import re
import types
from pathlib import Path

import pytest

from sparsefuse.lab import profiles
from sparsefuse.lab.book import contract, layout
from sparsefuse.lab.book import notebook as nb

MODULES = contract.experiment_modules()


def _module(**members) -> types.ModuleType:
    mod = types.ModuleType("fake_experiment")
    mod.__dict__.update(members)
    return mod


def _run(profile="smoke", device="cpu", progress=True, **overrides):
    return None


def _numbers(df, curves=None):
    return {}


GOOD = dict(NAME="fake", PROFILES={p: {"n": 1} for p in profiles.NAMES}, run=_run, verdict_numbers=_numbers)


def test_there_are_experiment_modules_and_their_names_differ():
    names = [m.NAME for m in MODULES]
    assert len(names) >= 19 and len(set(names)) == len(names)
    assert "sparsefuse.lab.experiments.jhcg.fastpath" in {m.__name__ for m in MODULES}


@pytest.mark.parametrize("module", MODULES, ids=[m.__name__.rpartition("experiments.")[2] for m in MODULES])
def test_every_experiment_module_keeps_the_contract(module):
    assert isinstance(module, contract.Experiment)
    assert contract.problems(module) == []


def test_every_module_a_notebook_runs_is_found():
    """What the notebooks pass to nb.experiment is what the test above checks."""
    found = {m.__name__ for m in MODULES}
    for src in layout.notebooks():
        tree = ast.parse(src.read_text())
        aliases = {a.asname or a.name: f"{node.module}.{a.name}" for node in ast.walk(tree)
                   if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sparsefuse.lab.experiments")
                   for a in node.names}
        for call in ast.walk(tree):
            if (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) and call.func.attr == "experiment"
                    and isinstance(call.args[0], ast.Name)):
                assert aliases[call.args[0].id] in found, (src.name, call.args[0].id)


def test_a_module_that_keeps_the_contract_has_no_problems():
    assert contract.problems(_module(**GOOD)) == []
    assert contract.problems(_module(**GOOD, plot=lambda df: None, key_numbers=lambda df, variant="x": {})) == []


@pytest.mark.parametrize("change, problem", [
    (dict(NAME=None), "NAME"),
    (dict(PROFILES={"smoke": {}, "quick": {}}), "PROFILES must have the profiles"),
    (dict(PROFILES={"smoke": {"n": 1}, "quick": {"n": 1}, "paper": {"m": 1}}), "same settings"),
    (dict(run=None), "run is missing"),
    (dict(run=lambda profile="smoke", device="cpu", progress=True: None), "run takes no **overrides"),
    (dict(run=lambda profile, device="cpu", progress=True, **o: None), "run: profile has no default"),
    (dict(run=lambda profile="smoke", dev="cpu", progress=True, **o: None), "run takes no keyword device"),
    (dict(verdict_numbers=lambda: {}), "verdict_numbers takes no positional parameter 1"),
    (dict(verdict_numbers=lambda df, curves: {}), "verdict_numbers: curves is required"),
    (dict(plot=lambda df, ax: None), "plot: ax is required"),
    (dict(key_numbers=lambda: {}), "key_numbers takes no positional parameter 1"),
])
def test_a_broken_module_is_named(change, problem):
    found = contract.problems(_module(**(GOOD | change)))
    assert any(problem in p for p in found), found


def test_nb_experiment_refuses_a_module_outside_the_contract():
    with pytest.raises(TypeError, match="fake_experiment.*verdict_numbers"):
        nb.experiment(_module(**(GOOD | dict(verdict_numbers=None))), "smoke", "cpu")


def test_profile_names_live_in_one_place():
    root = Path(profiles.__file__).resolve().parents[1]
    listed = re.compile(r"""[(\[]\s*["']smoke["'],\s*["']quick["'],\s*["']paper["']""")
    written = [p for p in root.rglob("*.py") if p.name != "profiles.py" and listed.search(p.read_text())]
    assert written == []
    assert listed.search('choices=["smoke", "quick", "paper"]')
    with pytest.raises(ValueError, match="profile must be one of"):
        profiles.check("huge")
