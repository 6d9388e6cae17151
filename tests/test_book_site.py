"""Book build preparation: vendored JS, provenance page, badges, config consistency."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from sparsefuse.lab.book import layout, site

ROOT = Path(__file__).resolve().parents[1]
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())
SPHINX = CONFIG["sphinx"]["config"]


@pytest.fixture(scope="module")
def vendored(tmp_path_factory):
    if not (site.NODE_MODULES / "@jupyter-widgets" / "html-manager").exists():
        pytest.skip("node_modules missing: run `npm ci` (make test does)")
    return site.vendor(tmp_path_factory.mktemp("vendor"))


def test_vendor_provides_every_script_the_config_loads(vendored):
    for script in SPHINX["nb_ipywidgets_js"]:
        assert (vendored / script).is_file(), script
    assert (vendored / SPHINX["mathjax_path"]).is_file()
    assert (vendored / "widgets" / "anywidget.js").read_text().count('define(["@jupyter-widgets/base"]') == 1
    config = (vendored / "widgets" / "amd-config.js").read_text()
    assert "anywidget" in config and "@jupyter-widgets/html-manager/dist" in config
    fonts = list((vendored / "widgets").glob("*.woff2"))
    assert fonts, "the widget manager's fonts must be served from the same folder"
    assert not list(vendored.rglob("*.map"))


def test_vendor_is_idempotent(vendored):
    stamp = {p: p.stat().st_mtime_ns for p in vendored.rglob("*.js")}
    site.vendor(vendored)
    assert {p: p.stat().st_mtime_ns for p in vendored.rglob("*.js") if p.name != "amd-config.js"} == {
        p: t for p, t in stamp.items() if p.name != "amd-config.js"}


def test_vendor_needs_node_modules(tmp_path):
    with pytest.raises(FileNotFoundError, match="npm ci"):
        site.vendor(tmp_path / "out", node_modules=tmp_path / "nothing")


def test_static_folder_is_not_underscore_static():
    # a folder named _static at the book root makes every .js load on every page (twice)
    assert all(Path(p).name != "_static" for p in SPHINX["html_static_path"])
    assert not (ROOT / "_static").exists()


def test_toc_reads_every_executed_notebook():
    from sphinx.util.matching import patfilter

    from sparsefuse.lab.book.layout import notebooks

    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    parts = {part["caption"]: [c["glob"] for c in part["chapters"] if "glob" in c] for part in toc["parts"]}
    docs = [f"book/executed/{p.stem}" for p in notebooks()]
    for doc in docs + ["book/executed/14_future_chapter", "book/executed/20_jhcg_more"]:
        hits = [cap for cap, globs in parts.items() for g in globs if patfilter([doc], g)]
        assert len(hits) == 1, (doc, hits)  # every notebook is a page of exactly one part
        assert hits == ["JHCG appendix" if "_jhcg_" in doc else "Notebooks"], (doc, hits)
    assert CONFIG["execute"]["execute_notebooks"] == "off"
    assert "book/executed/failed" in CONFIG["exclude_patterns"]


def _result(root: Path, profile: str, tag: str, name: str, **meta):
    folder = root / profile / tag
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.csv").write_text("G,median_ms\n1,2.0\n")
    (folder / f"{name}.json").write_text(json.dumps({"name": name, "profile": profile, **meta}))


def test_provenance_table_lists_every_result(tmp_path):
    assert site.provenance_markdown(tmp_path) == "No results are committed yet.\n"
    _result(tmp_path, "quick", "cuda-h100-80gb-hbm3", "layer_microbench", gpu_name="NVIDIA H100 80GB HBM3",
            gpu_driver="570.1", git_commit="0123456789abcdef", git_dirty=True, torch="2.11.0",
            triton="3.6.0", python="3.12.3", wall_s=61.04, timestamp="2026-11-24T00:00:00+00:00",
            notebook="01_layer_microbenchmarks")
    _result(tmp_path, "smoke", "cpu", "grid|scaling", cpu_model="AMD EPYC", git_commit="abc", torch="2.13.0",
            python="3.11.7")
    table = site.provenance_markdown(tmp_path).splitlines()
    assert len(table) == 4
    gpu = next(line for line in table if "layer_microbench" in line)
    for part in ("quick", "NVIDIA H100 80GB HBM3, driver 570.1", "0123456789 (dirty)",
                 "2.11.0 / 3.6.0 / 3.12.3", "61.0", "layer_microbench (01_layer_microbenchmarks)",
                 "2026-11-24 00:00:00"):
        assert part in gpu, part
    assert "grid\\|scaling" in table[-1] and "AMD EPYC" in table[-1]  # a | cannot break the table


def test_localize_badges(tmp_path):
    nb = tmp_path / "01_x.ipynb"
    nb.write_text(json.dumps({"cells": [{"source": f"[![Open In Colab]({layout.BADGE_URL})](https://x)"}]}))
    assert site.localize_badges(tmp_path) == 1
    assert layout.BADGE_URL not in nb.read_text() and layout.LOCAL_BADGE in nb.read_text()
    assert site.localize_badges(tmp_path) == 0
    assert (ROOT / "book" / "executed" / layout.LOCAL_BADGE).resolve().is_file()


def test_check_executed_finds_missing_and_orphans(tmp_path):
    src, out = tmp_path / "src", tmp_path / "out"
    src.mkdir(), out.mkdir()
    (src / "01_a.py").write_text("")
    (src / "02_b.py").write_text("")
    (out / "01_a.ipynb").write_text("{}")
    (out / "09_gone.ipynb").write_text("{}")
    missing, orphans = site.check_executed(out, src)
    assert missing == ["02_b"] and orphans == [out / "09_gone.ipynb"]
