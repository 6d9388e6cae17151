"""The book's layout: which notebooks there are, how a name picks one, what its parameters are, the badge."""
from __future__ import annotations

import pytest

from sparsefuse.lab.book import layout

PARAMS = '# %% tags=["parameters"]\nprofile = "smoke"  # smoke | quick\ndevice = "auto"\nscale = 2  # a factor\n'


@pytest.fixture
def nbdir(tmp_path):
    folder = tmp_path / "notebooks"
    folder.mkdir()
    (folder / "01_ok.py").write_text(PARAMS + "\n# %%\nprint(scale)\n")
    (folder / "02_bad.py").write_text(PARAMS)
    (folder / "_helper.py").write_text("x = 1\n")
    return folder


def test_resolve_by_stem_number_and_path(nbdir):
    assert [p.name for p in layout.notebooks(nbdir)] == ["01_ok.py", "02_bad.py"]
    assert layout.resolve(None, nbdir) == layout.notebooks(nbdir)
    assert layout.resolve(["02"], nbdir)[0].name == "02_bad.py"
    assert layout.resolve(["01_ok"], nbdir)[0].name == "01_ok.py"
    assert layout.resolve(["01_ok.ipynb"], nbdir)[0].name == "01_ok.py"
    assert layout.resolve([str(nbdir / "02_bad.py")], nbdir)[0].name == "02_bad.py"
    with pytest.raises(ValueError, match="notebook"):
        layout.resolve(["03"], nbdir)


def test_parameters_cell_is_read(nbdir):
    assert layout.parameters(nbdir / "01_ok.py") == {"profile": "smoke", "device": "auto", "scale": 2}

def test_badge_is_generated_and_localized():
    badge = layout.badge("01_ok")
    assert layout.colab_url("01_ok") in badge and layout.BADGE_URL in badge
    assert layout.without_badge(f"# T\n\n{badge}\n\nProse.") == "# T\n\nProse."
    assert layout.LOCAL_BADGE in layout.localize_badge(badge) and layout.BADGE_URL not in layout.localize_badge(badge)


def test_resolve_device():
    assert layout.resolve_device("cpu") == "cpu" and layout.resolve_device("cuda:1") == "cuda:1"
    assert layout.resolve_device("auto") in ("cpu", "cuda")
    with pytest.raises(ValueError, match="device"):
        layout.resolve_device("tpu")
