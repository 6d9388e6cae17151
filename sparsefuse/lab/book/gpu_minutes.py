"""What the committed GPU reference cost to make: device minutes per notebook, from the provenance.

The Reproducing page quotes these so that a reader with a GPU knows what a run of the
book at ``quick`` takes before starting one; they are read from the sidecars of the
committed results (``wall_s``: from the notebook's first call to the result's save), never typed.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from . import results


@dataclass(frozen=True)
class NotebookCost:
    notebook: str
    gpu: str
    commits: tuple[str, ...]
    wall_s: float  # the longest wall time among the notebook's results (its last save)
    results: tuple[str, ...]
    runner_s: float = float("nan")  # the runner's wall time (kernel start included), from book_run.log


RUN_LOG = "book_run.log"  # the runner's summary tables of the reference run, saved beside its results


def runner_walls(folder: Path) -> dict[str, float]:
    """``notebook -> wall s`` from the runner's summary tables in ``folder/book_run.log`` (none: {})."""
    path = Path(folder) / RUN_LOG
    walls = {}
    if not path.exists():
        return walls
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[1] == "ok":
            try:
                walls[parts[0]] = float(parts[2])
            except ValueError:
                continue
    return walls


def reference_costs(root: Path | None = None, profile: str = "quick") -> list[NotebookCost]:
    """One row per notebook whose committed GPU reference (``results.reference``) was made at ``profile``."""
    root = Path(root) if root is not None else results.reference_root()
    names = sorted({r.name for r in results.iter_results(root) if r.is_gpu and r.profile == profile})
    by_nb: dict[str, list[results.Result]] = {}
    for name in names:
        ref = results.reference(name, root)
        if ref is None or ref.profile != profile or not ref.meta.get("notebook"):
            continue
        by_nb.setdefault(str(ref.meta["notebook"]), []).append(ref)
    rows = []
    for nb, refs in sorted(by_nb.items()):
        walls = [float(r.meta["wall_s"]) for r in refs if r.meta.get("wall_s") is not None]
        runner = [w for r in refs if (w := runner_walls(r.folder).get(nb)) is not None]
        rows.append(NotebookCost(
            notebook=nb,
            gpu=", ".join(sorted({str(r.meta.get("gpu_name") or r.tag) for r in refs})),
            commits=tuple(sorted({str(r.meta.get("git_commit") or "unknown")[:7] for r in refs})),
            wall_s=max(walls) if walls else float("nan"),
            results=tuple(sorted(r.name for r in refs)),
            runner_s=max(runner) if runner else float("nan")))
    return rows


def markdown(root: Path | None = None, profile: str = "quick") -> str:
    """The Reproducing page's table of device minutes per notebook and the sentence above it."""
    rows = reference_costs(root, profile)
    if not rows:
        return f"No GPU reference at profile {profile} is committed yet.\n"
    total = sum(r.wall_s for r in rows if r.wall_s == r.wall_s)
    runner = [r.runner_s for r in rows if r.runner_s == r.runner_s]
    gpus = sorted({r.gpu for r in rows})
    commits = sorted({c for r in rows for c in r.commits})
    lines = [
        f"The committed reference: {len(rows)} notebooks at profile `{profile}` on {' and '.join(gpus)}, "
        f"commit{'s' if len(commits) > 1 else ''} {', '.join(commits)}; together "
        f"{total / 60:.1f} minutes of experiment time (the provenance's wall time of each notebook's "
        "last result)"
        + (f", {sum(runner) / 60:.1f} minutes as the runner timed the {len(runner)} notebooks it logged "
           f"(kernel start and imports included, `{RUN_LOG}` beside the results)." if runner else "."),
        "",
        "| notebook | results | GPU | commit | experiment min | runner min |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        run = "—" if r.runner_s != r.runner_s else f"{r.runner_s / 60:.1f}"
        lines.append(f"| {r.notebook} | {', '.join(r.results)} | {r.gpu} | {', '.join(r.commits)} | "
                     f"{r.wall_s / 60:.1f} | {run} |")
    return "\n".join(lines) + "\n"
