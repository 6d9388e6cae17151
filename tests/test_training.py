"""Training utilities: seeding, the loop's divergence handling, side tables."""

import math

import time
import pandas as pd
import pytest
import torch

from sparsefuse.lab.measure import count_parameters, PeakMemory, seed_everything
from sparsefuse.lab.side_tables import attach_tables, attached_table, curves_to_frame
from sparsefuse.training import train_loop


def test_seed_everything_repeats_draws():
    seed_everything(7)
    a = torch.rand(5)
    seed_everything(7)
    assert torch.equal(a, torch.rand(5))
    g1, g2 = seed_everything(3), seed_everything(3)
    assert torch.equal(torch.rand(4, generator=g1), torch.rand(4, generator=g2))


@pytest.mark.parametrize("bad", [-1, 1.5, "0", True])
def test_seed_everything_rejects_bad_seed(bad):
    with pytest.raises(ValueError, match="seed"):
        seed_everything(bad)


def test_train_loop_logs_and_finishes():
    w = torch.nn.Parameter(torch.tensor(3.0))
    opt = torch.optim.SGD([w], lr=0.1)

    def step(i):
        opt.zero_grad()
        loss = w**2
        loss.backward()
        opt.step()
        return {"loss": loss.item(), "w": w.item()}

    res = train_loop(step, 20, progress=False, log_every=5)
    assert res.status == "ok" and res.steps == 20 and res.diverged_at is None
    assert list(res.curve["step"]) == [0, 5, 10, 15, 19]  # the last step is always logged
    assert {"loss", "w", "time_s"} <= set(res.curve.columns)
    assert res.final_loss < 9.0 * 0.8**19 * 1.01
    assert res.wall_s >= 0


def test_train_loop_stops_on_nan_and_records_it():
    calls = []

    def step(i):
        calls.append(i)
        return float("nan") if i == 4 else 1.0 / (i + 1)

    res = train_loop(step, 100, progress=False, log_every=10)
    assert res.status == "diverged" and res.diverged_at == 4 and res.steps == 5
    assert calls == [0, 1, 2, 3, 4]  # stopped, not continued
    assert res.note == "non-finite or exploding loss at step 4"
    assert math.isnan(res.curve["loss"].iloc[-1]) and res.curve["step"].iloc[-1] == 4


def test_train_loop_stops_on_explosion_and_handles_zero_steps():
    res = train_loop(lambda i: 10.0 ** (3 * i), 50, progress=False, divergence_threshold=1e8)
    assert res.status == "diverged" and res.diverged_at == 3
    empty = train_loop(lambda i: 1.0, 0, progress=False)
    assert empty.status == "ok" and empty.steps == 0 and empty.curve.empty
    with pytest.raises(ValueError, match="n_steps"):
        train_loop(lambda i: 1.0, -1)
    with pytest.raises(ValueError, match="loss"):
        train_loop(lambda i: {"mse": 1.0}, 1, progress=False)


def test_count_parameters_and_peak_memory_on_cpu():
    m = torch.nn.Linear(3, 2)
    assert count_parameters(m) == 8
    m.bias.requires_grad_(False)
    assert count_parameters(m) == 6 and count_parameters(m, trainable_only=False) == 8
    with PeakMemory("cpu") as mem:
        torch.ones(10)
    assert math.isnan(mem.mib)


def test_curves_and_attached_tables_survive_pandas_operations():
    c = curves_to_frame([({"model": "a"}, pd.DataFrame({"step": [0, 1], "loss": [2.0, 1.0]})),
                         ({"model": "b"}, pd.DataFrame({"step": [0], "loss": [3.0]}))])
    assert list(c["model"]) == ["a", "a", "b"]
    assert curves_to_frame({}).empty
    df = attach_tables(pd.DataFrame({"x": [1, 2, 3]}), curves=c)
    sub = df[df["x"] > 1].reset_index(drop=True)  # attrs travel through indexing
    assert attached_table(sub, "curves").equals(c)
    assert attached_table(sub, "missing").empty
    both = pd.concat([df, df])  # equal attrs are kept, no ambiguous DataFrame comparison
    assert len(both) == 6


def test_cpu_threads_is_restored():
    from sparsefuse.lab.measure import cpu_threads

    before = torch.get_num_threads()
    with cpu_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with cpu_threads(None):
        assert torch.get_num_threads() == before
    with pytest.raises(ValueError, match="^n: expected an integer"):
        with cpu_threads(0):
            pass


def test_one_thread_on_cpu_only_where_asked():
    import torch

    from sparsefuse.lab.measure import one_thread_on_cpu

    before = torch.get_num_threads()
    with one_thread_on_cpu("cpu"):
        assert torch.get_num_threads() == 1
    with one_thread_on_cpu("cpu", when=False):
        assert torch.get_num_threads() == before
    with one_thread_on_cpu("cuda"):  # nothing to change for a GPU run
        assert torch.get_num_threads() == before
    assert torch.get_num_threads() == before


def test_train_loop_time_budget_stops_and_says_so():
    def step(i):
        time.sleep(0.02)
        return 1.0 / (i + 1)

    res = train_loop(step, 1000, progress=False, log_every=100, time_budget_s=0.1)
    assert res.status == "time budget" and 3 <= res.steps < 1000
    assert res.curve["step"].iloc[-1] == res.steps - 1  # the last step done is logged
    assert res.note == f"stopped by its 0.1 s budget after {res.steps} of 1000 steps"
    full = train_loop(lambda i: 1.0, 5, progress=False, time_budget_s=60)
    assert full.status == "ok" and full.steps == 5
    with pytest.raises(ValueError, match="time_budget_s"):
        train_loop(lambda i: 1.0, 5, progress=False, time_budget_s=0)


def test_train_loop_stopped_early_leaves_no_failed_progress_bar(monkeypatch):
    """A notebook bar closed with n < total turns red ('danger'); a budget stop is no failure."""
    import tqdm.auto

    closed = []

    class Recording(tqdm.auto.tqdm):
        def close(self):
            closed.append((self.n, self.total))
            super().close()

    monkeypatch.setattr(tqdm.auto, "tqdm", Recording)

    def step(i):
        time.sleep(0.02)
        return 1.0

    res = train_loop(step, 1000, progress=True, time_budget_s=0.05)
    assert res.status == "time budget" and res.steps < 1000
    assert closed and all(n == total for n, total in closed)
    res = train_loop(lambda i: float("nan"), 10, progress=True)
    assert res.status == "diverged" and closed[-1][0] == closed[-1][1]
