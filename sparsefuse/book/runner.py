"""Execute the book's notebooks with papermill, one subprocess each.

A notebook is the jupytext ``.py`` in notebooks/; papermill cannot read those,
so the source is parsed with jupytext and handed over as a NotebookNode. Each
notebook runs in its own process group, so a per-notebook timeout can stop
it together with its kernel, and one failing notebook cannot stop the others.
An executed notebook replaces the previous one only when it succeeded.
With several GPUs, notebooks run side by side, each pinned to one GPU through
``CUDA_VISIBLE_DEVICES``, so no two of them share a device or time one another.
"""
from __future__ import annotations

import ast
import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path

from .results import PROFILES, REPO_ROOT

NOTEBOOK_DIR = REPO_ROOT / "notebooks"
# Where the book reads executed notebooks from (git-ignored, see _toc.yml).
EXECUTED_DIR = REPO_ROOT / "book" / "executed"
LIBRARY_DIR = REPO_ROOT / "sparsefuse"
DEVICES = ("auto", "cpu", "cuda")
# Switches that keep NVLink multicast off; inherited by every notebook as they are, never turned on.
NO_MULTICAST = ("NCCL_NVLS_ENABLE", "TORCH_SYMM_MEM_DISABLE_MULTICAST", "NVSHMEM_DISABLE_NVLS")


@dataclass
class RunResult:
    """What became of one notebook."""

    notebook: str
    status: str  # ok | failed | timeout | skipped
    wall_s: float = 0.0
    device: str = ""
    output: str | None = None
    cell: int | None = None
    error: str | None = None
    gpu: str = ""  # the CUDA_VISIBLE_DEVICES it was pinned to; empty when not pinned

    def line(self) -> str:
        where = f" (cell {self.cell})" if self.cell is not None else ""
        return f"{self.notebook}: {self.status}{where}: {self.error}" if self.error else f"{self.notebook}: {self.status}"


# ---------------------------------------------------------------- discovery

def notebooks(folder: Path | None = None) -> list[Path]:
    """The book's notebook sources, in reading order."""
    return sorted(p for p in Path(folder or NOTEBOOK_DIR).glob("*.py") if not p.name.startswith("_"))


def resolve(names: list[str] | None, folder: Path | None = None) -> list[Path]:
    """Notebook paths from names: a path, a stem (``01_layer_microbenchmarks``) or its number (``01``)."""
    available = notebooks(folder)
    if not names:
        return available
    chosen = []
    for name in names:
        path = Path(name)
        if path.suffix == ".py" and path.exists():
            chosen.append(path.resolve())
            continue
        stem = path.stem if path.suffix in (".py", ".ipynb") else path.name
        hits = [p for p in available if p.stem == stem] or [p for p in available if p.stem.split("_")[0] == stem]
        if len(hits) != 1:
            raise ValueError(f"notebook {name!r} matches {len(hits)} of {[p.stem for p in available]}")
        chosen.append(hits[0])
    return chosen


def read_source(path: Path):
    import jupytext

    return jupytext.read(str(path), fmt="py:percent")


def parameters(path: Path) -> dict:
    """The defaults in the notebook's ``parameters`` cell (simple assignments only)."""
    nb = read_source(path)
    for cell in nb.cells:
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            out = {}
            for node in ast.parse(cell.source).body:
                if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                    try:
                        out[node.targets[0].id] = ast.literal_eval(node.value)
                    except ValueError:
                        out[node.targets[0].id] = ast.unparse(node.value)
            return out
    return {}


def parse_param(text: str) -> tuple[str, object]:
    """``key=value`` from the command line; the value as a Python literal when it is one."""
    if "=" not in text:
        raise ValueError(f"parameter must look like key=value, got {text!r}")
    key, raw = text.split("=", 1)
    if not key.isidentifier():
        raise ValueError(f"parameter name must be an identifier, got {key!r}")
    try:
        value = ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        value = raw
    return key, value


def resolve_device(device: str) -> str:
    if device not in DEVICES:
        raise ValueError(f"device must be one of {DEVICES}, got {device!r}")
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _visible_gpus() -> list[str] | None:
    """The parent's ``CUDA_VISIBLE_DEVICES`` entries, or None when it does not restrict them."""
    text = os.environ.get("CUDA_VISIBLE_DEVICES")
    if text is None:
        return None
    return [part.strip() for part in text.split(",") if part.strip()]


def gpu_count() -> int:
    """GPUs this process may use, counted with ``nvidia-smi -L`` so the runner need not import torch."""
    try:
        done = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=60)
    except FileNotFoundError:  # no driver tools: ask torch, which honours CUDA_VISIBLE_DEVICES itself
        try:
            import torch
        except ImportError:
            return 0
        return torch.cuda.device_count()
    except (OSError, subprocess.TimeoutExpired):
        return 0
    # MIG instances are listed indented below their GPU; one notebook per physical GPU
    count = sum(line.startswith("GPU ") for line in done.stdout.splitlines()) if done.returncode == 0 else 0
    visible = _visible_gpus()
    return count if visible is None else min(count, len(visible))


def resolve_gpus(gpus, device: str = "auto") -> int:
    """How many notebooks run at once, one per GPU; 0 = one after the other, unpinned.

    ``"auto"`` counts the GPUs (none, or ``device="cpu"``: 0). An explicit count is
    trusted as given, so the parallel path can be exercised without a GPU.
    """
    if device not in DEVICES:
        raise ValueError(f"device must be one of {DEVICES}, got {device!r}")
    if gpus is None:
        return 0
    if gpus == "auto":
        return 0 if device == "cpu" else gpu_count()
    try:
        count = int(gpus)
    except (TypeError, ValueError):
        raise ValueError(f"gpus must be a non-negative integer or 'auto', got {gpus!r}") from None
    if isinstance(gpus, float) or isinstance(gpus, bool) or count < 0:
        raise ValueError(f"gpus must be a non-negative integer or 'auto', got {gpus!r}")
    if count and device == "cpu":
        raise ValueError(f"gpus={gpus!r} pins notebooks to GPUs; it needs device 'cuda' or 'auto', not 'cpu'")
    return count


def gpu_ids(count: int) -> list[str]:
    """The ``CUDA_VISIBLE_DEVICES`` value of each slot: indices, or the parent's own list when it sets one."""
    visible = _visible_gpus()
    if visible is None:
        return [str(i) for i in range(count)]
    if len(visible) < count:
        raise ValueError(f"gpus={count} but CUDA_VISIBLE_DEVICES={os.environ['CUDA_VISIBLE_DEVICES']!r} "
                         f"names {len(visible)}")
    return visible[:count]


# ---------------------------------------------------------------- resume

def _newest_mtime(paths) -> float:
    return max((p.stat().st_mtime for p in paths), default=0.0)


def is_current(src: Path, out: Path, params: dict, library: Path | None = None, *, exact: bool = False) -> bool:
    """True when ``out`` was executed with ``params`` after the last change of ``src`` and the library.

    With ``exact`` the stored parameters must be ``params`` and nothing more: an
    output made with an extra ``-p`` value is not current for a run without it.
    Values are compared as JSON, the form papermill stores them in.
    """
    if not out.exists():
        return False
    newest = max(src.stat().st_mtime, _newest_mtime(Path(library or LIBRARY_DIR).rglob("*.py")))
    if out.stat().st_mtime <= newest:
        return False
    try:
        done = json.loads(out.read_text())["metadata"]["papermill"]["parameters"]
    except (OSError, KeyError, json.JSONDecodeError):
        return False
    wanted = json.loads(json.dumps(params))
    if exact:
        return done == wanted
    return all(done.get(k) == v for k, v in wanted.items())


# ---------------------------------------------------------------- execution

def execute_in_process(src: Path, out: Path, params: dict, cwd: Path) -> dict:
    """Run one notebook here (the child side); returns a report dict, never raises."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    try:
        papermill.execute_notebook(read_source(src), str(out), parameters=params, kernel_name="python3",
                                   cwd=str(cwd), progress_bar=False, log_output=False)
    except PapermillExecutionError as exc:
        return {"status": "failed", "cell": exc.exec_count, "cell_index": exc.cell_index,
                "error": f"{exc.ename}: {exc.evalue}"}
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which goes on
        return {"status": "failed", "error": f"{type(exc).__name__}: {exc}"}
    _name_source(out, src)
    return {"status": "ok"}


def _name_source(out: Path, src: Path) -> None:
    """Record the source's path (papermill stores a NotebookNode input whole); point the badge home."""
    import nbformat

    from .results import atomic_write

    nb = nbformat.read(str(out), as_version=4)
    meta = nb.metadata.get("papermill", {})
    try:
        meta["input_path"] = Path(src).resolve().relative_to(REPO_ROOT).as_posix()
    except ValueError:
        meta["input_path"] = str(src)
    meta.pop("output_path", None)
    from .site import BADGE_URL, LOCAL_BADGE  # the book loads nothing off-host

    atomic_write(out, nbformat.writes(nb).replace(BADGE_URL, LOCAL_BADGE))


def _descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (Linux ``/proc``; empty elsewhere)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        ppid = int(text.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


# Notebook processes now running, so an interrupted parallel run can stop them all.
_LIVE: set[subprocess.Popen] = set()
_LIVE_LOCK = threading.Lock()
_STOPPING = threading.Event()  # set when an interrupted run is being torn down


def _kill_tree(proc: subprocess.Popen) -> None:
    """Kill the child's process group and every process below it.

    The kernel that papermill starts runs in a session of its own, so killing
    the child's group alone would leave it running (and writing results) after
    the notebook was reported as timed out.
    """
    _signal_tree(proc)
    proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()


def _signal_tree(proc: subprocess.Popen) -> None:
    """SIGKILL ``proc``, its group and everything below it, without waiting (safe from another thread)."""
    below = _descendants(proc.pid)
    for pid in [proc.pid, *below]:
        try:
            if os.getpgid(pid) == pid:  # a group leader: take its own children too
                os.killpg(pid, signal.SIGKILL)
            else:
                os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def execute(src: Path, *, profile: str, device: str, params: dict | None = None,
            timeout: float | None = None, output_dir: Path | None = None,
            resume: bool = False, gpu: str | None = None) -> RunResult:
    """Execute one notebook into ``output_dir/<stem>.ipynb``; ``gpu`` pins it to that one device."""
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {PROFILES}, got {profile!r}")
    if timeout is not None and timeout <= 0:
        raise ValueError(f"timeout must be positive seconds, got {timeout!r}")
    src = Path(src).resolve()
    device = resolve_device(device)
    all_params = {"profile": profile, "device": device, **(params or {})}
    output_dir = Path(output_dir or EXECUTED_DIR)
    output_dir.mkdir(parents=True, exist_ok=True)
    out = output_dir / f"{src.stem}.ipynb"
    if resume and is_current(src, out, all_params, exact=True):
        return RunResult(src.stem, "skipped", 0.0, device, str(out))
    fd, tmp_name = tempfile.mkstemp(prefix=f".{src.stem}.", suffix=".ipynb", dir=output_dir)
    os.close(fd)
    tmp = Path(tmp_name)
    report = tmp.with_suffix(".json")
    env = dict(os.environ, SPARSEFUSE_NOTEBOOK=src.stem, PYTHONUNBUFFERED="1")  # NO_MULTICAST as set
    if gpu is not None:
        env["CUDA_VISIBLE_DEVICES"] = gpu
    if device == "cpu":
        env.setdefault("TRITON_INTERPRET", "1")
    elif device == "cuda":
        env.pop("TRITON_INTERPRET", None)  # GPU runs compile the kernels; the interpreter would only slow them
    cmd = [sys.executable, "-m", "sparsefuse.book", "_execute", str(src), str(tmp), str(report),
           json.dumps(all_params)]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=str(REPO_ROOT), start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    with _LIVE_LOCK:
        _LIVE.add(proc)
        if _STOPPING.is_set():  # started just as the run was interrupted
            _signal_tree(proc)
    try:
        log, _ = proc.communicate(timeout=timeout)
        timed_out = False
    except subprocess.TimeoutExpired:
        _kill_tree(proc)
        log, timed_out = "", True
    finally:
        with _LIVE_LOCK:
            _LIVE.discard(proc)
    wall = time.perf_counter() - t0
    try:
        info = json.loads(report.read_text())
    except (OSError, json.JSONDecodeError):
        last = ((log or "").strip().splitlines() or ["no report"])[-1]
        info = {"status": "failed", "error": f"runner crashed: {last}"}
    report.unlink(missing_ok=True)
    if timed_out:
        info = {"status": "timeout", "error": f"exceeded {timeout:g} s"}
    if info["status"] == "ok":
        os.replace(tmp, out)
        (output_dir / "failed" / out.name).unlink(missing_ok=True)  # an earlier failure is history
        return RunResult(src.stem, "ok", wall, device, str(out), gpu=gpu or "")
    kept = None
    if tmp.exists() and tmp.stat().st_size > 0:
        failed_dir = output_dir / "failed"
        failed_dir.mkdir(exist_ok=True)
        kept = failed_dir / f"{src.stem}.ipynb"
        os.replace(tmp, kept)
    tmp.unlink(missing_ok=True)
    return RunResult(src.stem, info["status"], wall, device, str(kept) if kept else None,
                     info.get("cell"), info.get("error"), gpu or "")


def run(sources: list[Path], *, profile: str, device: str, params: dict | None = None,
        timeout: float | None = None, output_dir: Path | None = None, resume: bool = False,
        progress: bool = True, gpus: int | str | None = None) -> list[RunResult]:
    """Execute ``sources``; a failure does not stop the rest. Results come in the order of ``sources``.

    ``gpus`` (a count or ``"auto"``, see :func:`resolve_gpus`) runs that many
    notebooks at once, each pinned to its own GPU with device ``cuda``; without
    it (or with no GPU found) they run one after the other, as ``device`` says.
    """
    from tqdm.auto import tqdm

    slots = resolve_gpus(gpus, device)
    kwargs = dict(profile=profile, params=params, timeout=timeout, output_dir=output_dir, resume=resume)
    bar = tqdm(total=len(sources), desc="notebooks", unit="nb", disable=not progress)

    def finished(res: RunResult) -> None:
        if res.status not in ("ok", "skipped"):
            bar.write(f"FAILED {res.line()}")
        bar.update(1)

    if not slots:
        results = []
        for src in sources:
            bar.set_postfix_str(Path(src).stem)
            res = execute(src, device=device, **kwargs)
            finished(res)
            results.append(res)
        bar.close()
        return results

    _STOPPING.clear()
    free: queue.Queue[str] = queue.Queue()
    for gpu in gpu_ids(slots):
        free.put(gpu)

    def on_a_free_gpu(src: Path) -> RunResult:
        if _STOPPING.is_set():
            return RunResult(Path(src).stem, "skipped", error="interrupted")
        gpu = free.get()  # never waits long: there are as many workers as GPUs
        try:
            return execute(src, device="cuda", gpu=gpu, **kwargs)
        finally:
            free.put(gpu)

    results: list[RunResult | None] = [None] * len(sources)
    pool = ThreadPoolExecutor(max_workers=slots, thread_name_prefix="notebook")
    try:
        futures = {pool.submit(on_a_free_gpu, src): i for i, src in enumerate(sources)}
        for future in as_completed(futures):
            res = future.result()
            results[futures[future]] = res
            bar.set_postfix_str(res.notebook)
            finished(res)
    except BaseException:  # Ctrl-C: start nothing more and stop what runs, kernels included
        with _LIVE_LOCK:
            _STOPPING.set()
            for proc in list(_LIVE):
                _signal_tree(proc)
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    finally:
        bar.close()
    pool.shutdown()
    return results


def summary(results: list[RunResult]) -> str:
    """A plain-text table: notebook, status, wall time, device, and the GPU when notebooks were pinned."""
    pinned = any(r.gpu for r in results)
    rows = [("notebook", "status", "wall s", "device") + (("gpu",) if pinned else ())]
    rows += [(r.notebook, r.status, f"{r.wall_s:.1f}", r.device) + ((r.gpu or "-",) if pinned else ())
             for r in results]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    failed = [r for r in results if r.status not in ("ok", "skipped")]
    if failed:
        lines.append("")
        lines += [f"FAILED {r.line()}" for r in failed]
    return "\n".join(lines)


def as_json(results: list[RunResult]) -> str:
    return json.dumps([asdict(r) for r in results], indent=2)
