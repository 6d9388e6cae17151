"""`python -m sparsefuse.lab.book redraw NAME`: a committed figure redrawn from its committed table."""
from __future__ import annotations

import json
import shutil

import pytest

from sparsefuse.lab.book import redraw, results


def test_redraw_rewrites_figure_and_records_it(tmp_path):
    ref = results.reference("heatmaps")
    folder = tmp_path / ref.profile / ref.tag
    folder.mkdir(parents=True)
    for ext in ("csv", "json", "png", "svg"):
        shutil.copy(ref.folder / f"heatmaps.{ext}", folder)
    (folder / "heatmaps.png").write_bytes(b"old")
    before = json.loads((folder / "heatmaps.json").read_text())
    png = redraw.redraw("heatmaps", root=tmp_path)
    assert png.read_bytes().startswith(b"\x89PNG")
    meta = json.loads((folder / "heatmaps.json").read_text())
    assert meta["figure_redrawn"]["how"] == "python -m sparsefuse.lab.book redraw heatmaps"
    assert {k: v for k, v in meta.items() if k != "figure_redrawn"} == before  # the measurement's provenance kept
    assert (folder / "heatmaps.csv").read_bytes() == (ref.folder / "heatmaps.csv").read_bytes()


def test_redraw_side_tables_and_bad_names(tmp_path):
    ref = results.reference("pinns")
    folder = tmp_path / ref.profile / ref.tag
    folder.mkdir(parents=True)
    for f in ref.folder.glob("pinns*"):
        shutil.copy(f, folder)
    assert redraw.redraw("pinns", root=tmp_path).exists()  # its plot reads the attached curves
    with pytest.raises(ValueError, match="name"):
        redraw.redraw("no_such_result", root=tmp_path)
    with pytest.raises(ValueError, match="name: no experiment module"):
        redraw.plotter("minigpt_scaling")


def test_the_page_names_the_redraw():
    from sparsefuse.lab.book import page

    line = page._provenance_line("Reference", "quick/cuda-h200/x.csv",
                                 {"git_commit": "c1c5bad", "figure_redrawn": {"commit": "2f73df874a6a"}})
    assert "commit c1c5bad" in line and "figure redrawn from this table at commit 2f73df874a" in line
