"""Every file beside the package's modules ships in the wheel (pyproject.toml's package data).

setuptools puts only ``.py`` files into a wheel unless told otherwise: without the
package data the kernels would find no measured configs and the explorer no script
on an installed copy, while every test run from the checkout still passed.
"""
from __future__ import annotations

import subprocess
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def unshipped(package_data: dict[str, list[str]], files: list[str]) -> list[str]:
    """The data files (paths relative to the repository) that no ``package_data`` glob covers."""
    def covered(path: Path) -> bool:
        return any(path.match(str(Path(*pkg.split(".")) / glob)) for pkg, globs in package_data.items()
                   for glob in globs)

    return [name for name in files if not covered(Path(name))]


def data_files() -> list[str]:
    """The files git tracks under sparsefuse/ that are not Python modules."""
    out = subprocess.run(["git", "ls-files", "sparsefuse"], cwd=ROOT, capture_output=True, text=True, check=True)
    return [f for f in out.stdout.split() if not f.endswith(".py")]


def test_every_data_file_of_the_package_ships():
    package_data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    files = data_files()
    assert "sparsefuse/lab/book/explorer.js" in files and "sparsefuse/kernels/configs/default.json" in files
    assert unshipped(package_data, files) == []


def test_a_file_no_glob_covers_is_found():
    data = {"pkg.kernels": ["configs/*.json"]}
    assert unshipped(data, ["pkg/kernels/configs/a.json", "pkg/kernels/b.json", "pkg/lab/x.js"]) == [
        "pkg/kernels/b.json", "pkg/lab/x.js"]
