"""Every Python snippet of README.md runs verbatim, each in a fresh namespace (issue 22, item 7).

A reader pastes one section's snippet into a fresh session: it must not lean on names from
another snippet (``efficient_kan_layer`` and ``x`` used to be undefined). Snippets that need
CUDA are skipped on machines without it, saying so.
"""
import re
from pathlib import Path

import pytest
import torch

README = Path(__file__).resolve().parents[1] / "README.md"


def python_snippets(text: str) -> list[tuple[int, str]]:
    """``(line, code)`` of every fenced block marked ``python``."""
    return [(text[:m.start()].count("\n") + 1, m.group(1))
            for m in re.finditer(r"^```python\n(.*?)^```", text, flags=re.S | re.M)]


SNIPPETS = python_snippets(README.read_text())


def test_the_readme_has_python_snippets():
    assert len(SNIPPETS) >= 3
    assert python_snippets("a\n```python\nx = 1\n```\n```bash\nls\n```\n") == [(2, "x = 1\n")]


@pytest.mark.parametrize("line,code", SNIPPETS, ids=[f"README.md:{line}" for line, _ in SNIPPETS])
def test_snippet_runs_verbatim(line, code):
    if "cuda" in code and not torch.cuda.is_available():
        pytest.skip(f"README.md:{line} needs CUDA")
    import matplotlib

    matplotlib.use("Agg")
    torch.manual_seed(0)
    exec(compile(code, f"README.md:{line}", "exec"), {"__name__": "__readme__"})
