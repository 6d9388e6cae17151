"""Provenance: the commit, dirtiness and hardware tag recorded with every result."""
from __future__ import annotations

from sparsefuse.lab.book import provenance


def test_git_state_can_be_given_for_a_copy_without_git(monkeypatch):
    monkeypatch.setenv("SPARSEFUSE_GIT_COMMIT", "abc123")
    monkeypatch.setenv("SPARSEFUSE_GIT_DIRTY", "0")
    assert provenance.git_state() == ("abc123", False)


def test_device_tag_names_the_hardware(monkeypatch):
    assert provenance.device_tag("cpu") == "cpu"
    monkeypatch.setattr(provenance, "gpu_name", lambda device="cuda": "NVIDIA H100 80GB HBM3")
    assert provenance.device_tag("cuda") == "cuda-h100-80gb-hbm3"
    assert provenance.device_tag("cuda:1") == "cuda-h100-80gb-hbm3"


def test_git_state_counts_code_changes_not_result_files(tmp_path, monkeypatch):
    import subprocess

    monkeypatch.delenv("SPARSEFUSE_GIT_COMMIT", raising=False)
    monkeypatch.delenv("SPARSEFUSE_GIT_DIRTY", raising=False)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(tmp_path)]
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / "sparsefuse").mkdir()
    (tmp_path / "sparsefuse" / "a.py").write_text("x = 1\n")
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "r.csv").write_text("a\n1\n")
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "init"], check=True)
    commit, dirty = provenance.git_state(tmp_path)
    assert len(commit) == 40 and dirty is False
    (tmp_path / "results" / "r.csv").write_text("a\n2\n")  # a rerun rewrote a result
    assert provenance.git_state(tmp_path)[1] is False
    (tmp_path / "sparsefuse" / "b.py").write_text("y = 2\n")  # a module not committed yet
    assert provenance.git_state(tmp_path)[1] is True
