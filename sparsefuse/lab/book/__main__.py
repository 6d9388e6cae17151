"""``python -m sparsefuse.lab.book``: run the book's notebooks, list them, sync pairs, prepare the site."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .. import profiles
from . import layout, runner
from .gpus import resolve_gpus


def _cmd_run(args) -> int:
    try:
        params = dict(runner.parse_param(p) for p in args.param)
    except ValueError as exc:
        raise SystemExit(f"error: {exc}") from None
    for reserved in ("profile", "device"):
        if reserved in params:
            raise SystemExit(f"error: set {reserved} with --{reserved}, not -p")
    try:
        sources = layout.resolve(args.notebooks)
        gpus = resolve_gpus(args.gpus, args.device)
    except ValueError as exc:
        raise SystemExit(f"error: {exc}") from None
    if not sources:
        print("no notebooks found", file=sys.stderr)
        return 1
    results = runner.run(sources, profile=args.profile, device=args.device, params=params,
                         timeout=args.timeout, output_dir=Path(args.output_dir), resume=args.resume,
                         progress=not args.no_progress, gpus=gpus)
    print(runner.summary(results))
    if args.json:
        Path(args.json).write_text(runner.as_json(results))
    return 0 if all(r.status in ("ok", "skipped") for r in results) else 1


def _cmd_list(args) -> int:
    for src in layout.notebooks():
        params = layout.parameters(src)
        shown = ", ".join(f"{k}={v!r}" for k, v in params.items())
        print(f"{src.stem}  [{shown}]")
    return 0


def _cmd_sync(args) -> int:
    from . import sync

    if args.check:
        stale = sync.out_of_sync()
        for src in stale:
            print(f"out of sync: {sync.paired_path(src)} (run: python -m sparsefuse.lab.book sync)")
        return 1 if stale else 0
    for path in sync.sync():
        print(f"wrote {path}")
    return 0


def _cmd_site(args) -> int:
    from . import site

    return site.prepare(require_executed=not args.allow_missing)


def _cmd_redraw(args) -> int:
    from . import redraw

    try:
        for name in args.names:
            print(f"redrew {redraw.redraw(name)}")
    except ValueError as exc:
        raise SystemExit(f"error: {exc}") from None
    return 0


def _cmd_execute(args) -> int:
    """Internal: the child process of one notebook run."""
    from .atomic import atomic_write

    params = json.loads(args.params)
    report = runner.execute_in_process(Path(args.src), Path(args.out), params, Path(args.src).parent)
    atomic_write(args.report, json.dumps(report))
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sparsefuse.lab.book", description=__doc__)
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("run", help="execute notebooks with papermill")
    p.add_argument("notebooks", nargs="*", help="names, numbers or paths (default: all)")
    p.add_argument("--profile", choices=profiles.NAMES, default="smoke")
    p.add_argument("--device", choices=layout.DEVICES, default="auto")
    p.add_argument("-p", "--param", action="append", default=[], metavar="KEY=VALUE",
                   help="extra notebook parameter (repeatable)")
    p.add_argument("--resume", action="store_true", help="skip notebooks whose executed output is current")
    p.add_argument("--gpus", metavar="N|auto",
                   help="run N notebooks at once, each pinned to its own GPU with device cuda; "
                        "auto = every GPU found, none found = one after the other (default)")
    p.add_argument("--timeout", type=float, default=1800.0, help="seconds per notebook (default 1800)")
    p.add_argument("--output-dir", default=str(layout.EXECUTED_DIR),
                   help="where executed notebooks go (default: where the book reads them)")
    p.add_argument("--json", help="also write the results as JSON to this file")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_cmd_run)
    p = sub.add_parser("list", help="notebooks and their parameters")
    p.set_defaults(func=_cmd_list)
    p = sub.add_parser("sync", help="regenerate the paired .ipynb of every notebook")
    p.add_argument("--check", action="store_true", help="only report drift (exit 1 if any)")
    p.set_defaults(func=_cmd_sync)
    p = sub.add_parser("site", help="prepare the book build: vendored JS, provenance page")
    p.add_argument("--allow-missing", action="store_true", help="build even if a notebook was never executed")
    p.set_defaults(func=_cmd_site)
    from . import diff

    p = sub.add_parser("diff", help="compare a fresh results folder with the reference, table by table")
    diff.add_arguments(p)
    p.set_defaults(func=diff.run)
    p = sub.add_parser("redraw", help="redraw committed reference figures from their tables with the current plot()")
    p.add_argument("names", nargs="+", help="result names, e.g. jhcg_fastpath")
    p.set_defaults(func=_cmd_redraw)
    p = sub.add_parser("_execute")
    for name in ("src", "out", "report", "params"):
        p.add_argument(name)
    p.set_defaults(func=_cmd_execute)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
