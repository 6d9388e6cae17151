"""`python -m sparsefuse.lab.book diff`: per-table comparison of a fresh results folder with the reference."""
from __future__ import annotations

import pandas as pd
import pytest

from sparsefuse.lab.book import diff
from sparsefuse.lab.book.__main__ import main as book_main


def _timing(scale_fused: float = 1.0, fused_status: str = "ok") -> pd.DataFrame:
    return pd.DataFrame({
        "impl": ["reference", "fused", "reference", "fused"],
        "grid_size": [10, 10, 100, 100],
        "density": [4 / 13, 4 / 13, 4 / 103, 4 / 103],
        "median_ms": [8.0, 2.0 * scale_fused, 40.0, 2.5 * scale_fused],
        "q20_ms": [7.0, 1.0, 39.0, 2.0],  # spreads are never compared
        "peak_mib": [500.0, 20.0, 2000.0, 30.0],
        "status": ["ok", "ok", "ok", fused_status],
        "note": ["", "", "", ""],
    })


def _accuracy(acc_kan: float = 0.93, loss_kan: float = 2.40) -> pd.DataFrame:
    return pd.DataFrame({
        "model": ["kan", "mlp"], "seed": [0, 0],
        "test_acc": [acc_kan, 0.95], "val_loss": [loss_kan, 2.42],
        "tokens_per_s": [1.0e5, 5.0e5], "steps": [400, 400], "status": ["ok", "ok"],
    })


def _write(root, rel, df):
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(path, index=False)


@pytest.fixture
def folders(tmp_path):
    fresh, ref = tmp_path / "fresh", tmp_path / "ref"
    _write(ref, "timing.csv", _timing())
    _write(ref, "sub/accuracy.csv", _accuracy())
    return fresh, ref


def test_classify_names():
    assert diff.classify("median_ms") == "time"
    assert diff.classify("q20_ms") == "ignore"
    assert diff.classify("tokens_per_s") == "throughput"
    assert diff.classify("tokens_per_s_eager") == "throughput"
    assert diff.classify("peak_mib") == "memory"
    assert diff.classify("test_acc") == "accuracy"
    assert diff.classify("val_loss") == "loss" and diff.classify("val_loss_compiled") == "loss"
    assert diff.classify("loss") == "ignore"  # per-step curve values
    assert diff.classify("rel_l2") == "loss" and diff.classify("test_rel_l2") == "loss"
    assert diff.classify("test_rmse") == "error" and diff.classify("max_abs_err") == "error"
    assert diff.classify("graph_breaks") == "count"
    assert diff.classify("grid_size") is None and diff.classify("impl") is None


def test_identical_tables_pass(folders, capsys):
    fresh, ref = folders
    _write(fresh, "timing.csv", _timing())
    _write(fresh, "sub/accuracy.csv", _accuracy())
    assert diff.main([str(fresh), str(ref)]) == 0
    out = capsys.readouterr().out
    assert "== timing.csv: ok — 4 rows matched" in out
    assert "== sub/accuracy.csv: ok" in out
    assert "2 tables compared: 0 with a regression" in out


def test_timing_within_factor_passes_and_beyond_fails(folders, capsys):
    fresh, ref = folders
    _write(fresh, "timing.csv", _timing(scale_fused=1.4))
    assert diff.main([str(fresh), str(ref)]) == 0
    _write(fresh, "timing.csv", _timing(scale_fused=1.6))
    assert diff.main([str(fresh), str(ref)]) == 1
    out = capsys.readouterr().out
    assert "REGRESSION (2)" in out
    assert "impl=fused grid_size=100 density=0.03883: median_ms: 2.5 → 4 (×1.6; allowed ×1.5)" in out
    # a looser factor on the command line, or per column, lets it pass
    assert diff.main([str(fresh), str(ref), "--time-factor", "2"]) == 0
    assert diff.main([str(fresh), str(ref), "--tol", "median_ms=1.7x"]) == 0


def test_faster_is_reported_not_failed(folders, capsys):
    fresh, ref = folders
    _write(fresh, "timing.csv", _timing(scale_fused=0.3))
    assert diff.main([str(fresh), str(ref)]) == 0
    out = capsys.readouterr().out
    assert "better" in out and "×0.3" in out
    assert diff.main([str(fresh), str(ref), "--no-better"]) == 0
    assert "   better" not in capsys.readouterr().out


def test_accuracy_and_loss_are_absolute(folders, capsys):
    fresh, ref = folders
    _write(fresh, "sub/accuracy.csv", _accuracy(acc_kan=0.91, loss_kan=2.44))  # within 0.03 / 0.05
    assert diff.main([str(fresh), str(ref)]) == 0
    _write(fresh, "sub/accuracy.csv", _accuracy(acc_kan=0.85))
    assert diff.main([str(fresh), str(ref)]) == 1
    assert "model=kan seed=0: test_acc: 0.93 → 0.85 (-0.08; allowed ±0.03)" in capsys.readouterr().out
    _write(fresh, "sub/accuracy.csv", _accuracy(loss_kan=2.50))
    assert diff.main([str(fresh), str(ref)]) == 1
    assert diff.main([str(fresh), str(ref), "--loss-abs", "0.2"]) == 0


def test_status_regressions_and_soft_statuses(folders, capsys):
    fresh, ref = folders
    _write(fresh, "timing.csv", _timing(fused_status="oom"))
    assert diff.main([str(fresh), str(ref)]) == 1
    assert "status: ok → oom" in capsys.readouterr().out
    _write(fresh, "timing.csv", _timing(fused_status="skipped"))
    assert diff.main([str(fresh), str(ref)]) == 0  # a skipped row only warns
    assert "warning" in capsys.readouterr().out


def test_rows_and_tables_on_one_side_only(folders, capsys):
    fresh, ref = folders
    _write(fresh, "timing.csv", _timing().iloc[:3])
    _write(fresh, "new.csv", _accuracy())
    assert diff.main([str(fresh), str(ref)]) == 0
    out = capsys.readouterr().out
    assert "1 only in the reference" in out
    assert "== sub/accuracy.csv: only in the reference" in out
    assert "== new.csv: only in this run" in out


def test_named_metric_column_uses_the_kind_in_metric_name():
    ref = pd.DataFrame({"case": ["wine", "diabetes", "toy"], "metric_name": ["accuracy", "r2", "test_rmse"],
                        "metric": [1.0, 0.10, 1e-3], "status": ["ok"] * 3})
    fresh = ref.assign(metric=[0.95, 0.09, 5e-3])
    rep = diff.compare_tables(fresh, ref, path="t.csv")
    assert [(f.row, f.column) for f in rep.findings if f.level == "regression"] == [("case=wine metric_name=accuracy",
                                                                                    "metric")]


def test_unnamed_fractional_columns_only_warn():
    ref = pd.DataFrame({"variant": ["a"], "rho": [0.25], "gate_mean": [0.5], "status": ["ok"]})
    rep = diff.compare_tables(ref.assign(gate_mean=0.9), ref)
    assert rep.keys == ["variant", "rho"] and not rep.regressed and rep.count("warning") == 1


def test_bad_input(tmp_path, capsys):
    assert diff.main([str(tmp_path / "nope"), str(tmp_path)]) == 2
    assert diff.main([str(tmp_path), str(tmp_path), "--tol", "median_ms"]) == 2
    with pytest.raises(ValueError):
        diff.parse_tolerance("median_ms=fast")
    with pytest.raises(ValueError):
        diff.Rule("time", "ratio", 0.5, "lower")


def test_wired_into_the_book_command(folders, capsys):
    fresh, ref = folders
    _write(fresh, "timing.csv", _timing(scale_fused=3.0))
    assert book_main(["diff", str(fresh), str(ref)]) == 1
    assert "REGRESSION" in capsys.readouterr().out


def test_a_table_with_no_matching_row_fails(folders, capsys):
    fresh, ref = folders
    _write(fresh, "timing.csv", _timing().assign(grid_size=[3, 3, 5, 5]))  # another sweep
    assert diff.main([str(fresh), str(ref)]) == 1
    assert "no row of this run matches a row of the reference" in capsys.readouterr().out
    assert diff.main([str(fresh), str(ref), "--allow-unmatched"]) == 0


def test_the_committed_reference_against_itself_and_a_perturbed_copy(tmp_path, capsys):
    """The Reproducing page's command on the real reference: itself passes, slower timings fail."""
    import shutil

    from sparsefuse.lab.book import results

    ref = results.reference_root() / "quick" / "cuda-h200"
    tables = sorted(p.name for p in ref.glob("*.csv"))
    assert len(tables) >= 15, "the H200 reference is committed"
    assert diff.main([str(ref), str(ref)]) == 0
    out = capsys.readouterr().out
    assert f"{len(tables)} tables compared: 0 with a regression" in out

    slow = tmp_path / "slow"
    shutil.copytree(ref, slow)
    df = pd.read_csv(slow / "layer_microbench.csv")
    df["median_ms"] = df["median_ms"] * 2.0
    df.to_csv(slow / "layer_microbench.csv", index=False)
    assert diff.main([str(slow), str(ref)]) == 1
    out = capsys.readouterr().out
    assert "== layer_microbench.csv: REGRESSION (60)" in out and "median_ms:" in out
    assert "1 with a regression" in out
