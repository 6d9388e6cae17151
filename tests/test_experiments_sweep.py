"""A sweep's caps: a spent budget or a too-slow series becomes skipped rows that say why."""
import time

import pytest

from sparsefuse import status as S
from sparsefuse.lab.experiments import _guard, _sweep


def test_budget_and_slow_guard_turn_points_into_skipped_rows():
    spent = _sweep.Budget(0.0)
    time.sleep(0.01)
    slow = _sweep.SlowGuard(0.005)
    row = _sweep.capped(spent, slow, "a", "G=3", lambda: pytest.fail("must not run"))
    assert row["status"] == S.SKIPPED and "budget" in row["note"]
    free = _sweep.Budget(None)

    def slow_point():
        time.sleep(0.02)
        return dict(_guard.EMPTY, status=S.OK)
    # The first point of a series may be slow (a JIT compile); the second slow one drops the series.
    assert _sweep.capped(free, slow, "a", "G=3", slow_point)["status"] == S.OK
    assert _sweep.capped(free, slow, "a", "G=10", slow_point)["status"] == S.OK
    again = _sweep.capped(free, slow, "a", "G=30", lambda: pytest.fail("must not run"))
    assert again["status"] == S.SKIPPED and "G=10" in again["note"]
    assert _sweep.capped(free, slow, "b", "G=3", lambda: dict(_guard.EMPTY, status=S.OK))["status"] == S.OK
    per_call = _sweep.SlowGuard(None, max_call_ms=5.0)
    _sweep.capped(free, per_call, "c", "G=1", lambda: dict(_guard.EMPTY, status=S.OK, median_ms=50.0))
    assert "50 ms" in _sweep.capped(free, per_call, "c", "G=3", lambda: pytest.fail("must not run"))["note"]
