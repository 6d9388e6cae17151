"""Prepare the static book before Sphinx runs: vendored JS, provenance table, badges.

The book must work with no network: every script it loads is copied from
node_modules (npm, lockfile committed) and from anywidget's wheel into
build/vendor/, which the Sphinx config serves as a static path. The folder
is not called _static: Jupyter Book would then add every .js in it to every
page and the widget bundle would load twice.
"""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

from . import gpu_minutes, results
from .atomic import atomic_write
from .layout import (BADGE_URL, EXECUTED_DIR, GENERATED_DIR, NODE_MODULES, REPO_ROOT, VENDOR_DIR, localize_badge,
                     notebooks)

AMD_CONFIG = """\
// Resolve anywidget, and the fonts the widget manager finds relative to its own
// module name, from this folder instead of a CDN or the page's folder.
(function () {
  var here = document.currentScript.src.replace(/\\/amd-config\\.js(\\?.*)?$/, "");
  window.requirejs.config({
    paths: {
      anywidget: here + "/anywidget",
      "@jupyter-widgets": here,
      "@jupyter-widgets/html-manager/dist": here
    }
  });
})();
"""

MATHJAX_PARTS = ["tex-chtml.js", "input", "output/chtml", "a11y", "ui", "adaptors"]


def _copy(src: Path, dst: Path) -> None:
    """Copy a file or tree, skipping files that are already identical in size and time."""
    if not src.exists():
        raise FileNotFoundError(f"{src} is missing: run `npm ci` (see Makefile)")
    if src.is_dir():
        for item in src.rglob("*"):
            if item.is_file() and not item.name.endswith(".map"):
                _copy(item, dst / item.relative_to(src))
        return
    if dst.exists() and dst.stat().st_size == src.stat().st_size and dst.stat().st_mtime >= src.stat().st_mtime:
        return
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(src, dst)


def vendor(dest: Path | None = None, node_modules: Path | None = None) -> Path:
    """Copy require.js, the widget html-manager, anywidget's AMD bundle and MathJax into ``dest``."""
    import anywidget

    dest, node_modules = Path(dest or VENDOR_DIR), Path(node_modules or NODE_MODULES)
    widgets = dest / "widgets"
    _copy(node_modules / "requirejs" / "require.js", widgets / "require.js")
    dist = node_modules / "@jupyter-widgets" / "html-manager" / "dist"
    if not dist.exists():
        raise FileNotFoundError(f"{dist} is missing: run `npm ci` (see Makefile)")
    for item in dist.iterdir():
        # embed-amd.js and the fonts/images it references by hashed name
        if item.is_file() and item.name not in ("embed.js", "libembed-amd.js") and not item.name.endswith((".map", ".txt")):
            _copy(item, widgets / item.name)
    _copy(Path(anywidget.__file__).parent / "nbextension" / "index.js", widgets / "anywidget.js")
    atomic_write(widgets / "amd-config.js", AMD_CONFIG)
    for part in MATHJAX_PARTS:
        _copy(node_modules / "mathjax" / "es5" / part, dest / "mathjax" / part)
    return dest


def provenance_markdown(root: Path | None = None) -> str:
    """A MyST table of every committed result and where it came from."""
    root = Path(root) if root is not None else results.reference_root()
    found = results.iter_results(root)
    if not found:
        return "No results are committed yet.\n"
    lines = [
        "| result (notebook) | profile | hardware | commit | torch / triton / python | wall s | UTC | files |",
        "|---|---|---|---|---|---|---|---|",
    ]
    repo = REPO_ROOT.resolve()
    for res in found:
        m = res.meta
        hw = m.get("gpu_name") or m.get("cpu_model") or res.tag
        if m.get("gpu_driver"):
            hw += f", driver {m['gpu_driver']}"
        commit = str(m.get("git_commit", "unknown"))[:10] + (" (dirty)" if m.get("git_dirty") else "")
        soft = f"{m.get('torch')} / {m.get('triton') or '—'} / {m.get('python')}"
        folder = res.folder.resolve()
        if folder.is_relative_to(repo):
            rel = folder.relative_to(repo).as_posix()
            files = " ".join(f"{{download}}`{ext} </{rel}/{res.name}.{ext}>`"
                             for ext in ("csv", "json", "svg") if (res.folder / f"{res.name}.{ext}").exists())
        else:
            files = "—"
        name = res.name + (f" ({m['notebook']})" if m.get("notebook") else "")
        when = str(m.get("timestamp", "—")).replace("+00:00", "").replace("T", " ")
        cells = [name, res.profile, hw, commit, soft,
                 "—" if m.get("wall_s") is None else f"{m['wall_s']:.1f}", when, files]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"


ARCHIVE = "archive"  # results/archive/<profile>/<tag>/: superseded reference runs, kept and linked, never shown first


def write_generated(dest: Path | None = None) -> Path:
    """``provenance.md`` (the reference results, then the archived ones) and ``reference_run.md`` (device minutes)."""
    dest = Path(dest or GENERATED_DIR)
    dest.mkdir(parents=True, exist_ok=True)
    out = dest / "provenance.md"
    archive = results.reference_root() / ARCHIVE
    text = provenance_markdown()
    if archive.is_dir():
        text += ("\n**Archived** (`results/archive/`: earlier reference runs, superseded, kept for comparison "
                 "with `python -m sparsefuse.lab.book diff`):\n\n" + provenance_markdown(archive))
    atomic_write(out, text)
    atomic_write(dest / "reference_run.md", gpu_minutes.markdown())
    return out


def localize_badges(folder: Path | None = None) -> int:
    """Point the Colab badge of executed notebooks at a local copy (the book loads nothing off-host)."""
    changed = 0
    for path in sorted(Path(folder or EXECUTED_DIR).glob("*.ipynb")):
        text = path.read_text()
        if BADGE_URL in text:
            atomic_write(path, localize_badge(text))
            changed += 1
    return changed


def check_executed(folder: Path | None = None, sources: Path | None = None) -> tuple[list[str], list[Path]]:
    """(sources never executed, executed notebooks whose source is gone)."""
    stems = {p.stem for p in notebooks(sources)}
    have = {p.stem: p for p in Path(folder or EXECUTED_DIR).glob("*.ipynb")}
    return sorted(stems - have.keys()), [have[s] for s in sorted(have.keys() - stems)]


def prepare(require_executed: bool = True) -> int:
    """Everything the Sphinx build needs besides the sources; returns an exit code."""
    missing, orphans = check_executed()
    for path in orphans:  # a notebook was removed or renamed: drop its stale page
        path.unlink()
    if missing and require_executed:
        print("not executed yet: " + ", ".join(missing) +
              "\nrun `python -m sparsefuse.lab.book run` (or `make book`) first", file=sys.stderr)
        return 1
    vendor()
    write_generated()
    localize_badges()
    return 0
