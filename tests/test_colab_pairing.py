"""Every notebook has an up-to-date paired .ipynb without outputs, and the template's parts."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from sparsefuse.book import runner, sync

SOURCES = runner.notebooks()
COLAB = "https://colab.research.google.com/github/sparsefuse/sparsefuse/blob/main/notebooks/{}.ipynb"


@pytest.mark.parametrize("src", SOURCES, ids=[p.stem for p in SOURCES])
def test_paired_ipynb_is_in_sync_and_clean(src: Path):
    paired = sync.paired_path(src)
    assert paired.exists(), f"{paired.name} missing: run `python -m sparsefuse.book sync`"
    assert paired.read_text() == sync.render_ipynb(src), (
        f"{paired.name} drifted from {src.name}: run `python -m sparsefuse.book sync`")
    nb = json.loads(paired.read_text())
    for cell in nb["cells"]:
        assert not cell.get("outputs") and cell.get("execution_count") is None


@pytest.mark.parametrize("src", SOURCES, ids=[p.stem for p in SOURCES])
def test_notebook_follows_the_template(src: Path):
    nb = runner.read_source(src)
    first = nb.cells[0]
    assert first.cell_type == "markdown" and first.source.lstrip().startswith("# "), "starts with a title"
    assert COLAB.format(src.stem) in first.source, "Open in Colab badge with this notebook's path"
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    assert any('"google.colab" in sys.modules' in c and "torch.cuda.is_available()" in c for c in code), \
        "guarded Colab install cell with a GPU-runtime check"
    params = runner.parameters(src)
    assert params.get("profile") == "smoke" and params.get("device") == "auto"


def test_drift_is_detected_and_sync_repairs_it(tmp_path):
    src = tmp_path / "01_x.py"
    src.write_text("# %% [markdown]\n# # Title\n\n# %%\nprint(1)\n")
    assert sync.out_of_sync(tmp_path) == [src]
    assert sync.sync(tmp_path) == [tmp_path / "01_x.ipynb"]
    assert sync.out_of_sync(tmp_path) == [] and sync.sync(tmp_path) == []
    src.write_text(src.read_text().replace("print(1)", "print(2)"))
    assert sync.out_of_sync(tmp_path) == [src]
    rendered = json.loads(sync.render_ipynb(src))
    assert rendered["metadata"]["kernelspec"]["name"] == "python3" and "jupytext" not in rendered["metadata"]
    assert len({c["id"] for c in rendered["cells"]}) == len(rendered["cells"])
