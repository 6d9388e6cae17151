"""Atomic files: a reader sees the old file or the new one, never half of one."""
from __future__ import annotations

import pytest

from sparsefuse.lab.book import atomic


def test_atomic_write_many_is_all_or_nothing(tmp_path):
    (tmp_path / "a.txt").write_text("old a")
    with pytest.raises(TypeError):
        atomic.atomic_write_many({tmp_path / "a.txt": "new a", tmp_path / "b.txt": object()})
    assert (tmp_path / "a.txt").read_text() == "old a"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]
    atomic.atomic_write_many({tmp_path / "a.txt": "new a", tmp_path / "sub" / "b.txt": b"b"})
    assert (tmp_path / "a.txt").read_text() == "new a" and (tmp_path / "sub" / "b.txt").read_bytes() == b"b"


def test_atomic_write_replaces_whole_file(tmp_path):
    target = tmp_path / "x.json"
    atomic.atomic_write(target, "1" * 1000)
    atomic.atomic_write(target, "2")
    assert target.read_text() == "2"
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]
    assert target.stat().st_mode & 0o044 == 0o044, "readable by others, like any file written with open()"
