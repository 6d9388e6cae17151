"""Execute the book's notebooks with papermill, one subprocess each.

A notebook is the jupytext ``.py`` in notebooks/, executed in the form Colab
opens (``sync.render``: badge and Colab cell included), so the book shows what
a reader gets. Each notebook runs in its own process group, so a per-notebook
timeout can stop it together with its kernel, and one failing notebook cannot
stop the others. An executed notebook replaces the previous one only when it
succeeded. With several GPUs, notebooks run side by side (``gpus``).
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

import psutil

from .atomic import atomic_write
from .gpus import gpu_ids, resolve_gpus
from .. import profiles
from .layout import EXECUTED_DIR, LIBRARY_DIR, REPO_ROOT, localize_badge, resolve_device

# NVLink multicast stays as the caller set it (NCCL_NVLS_ENABLE, TORCH_SYMM_MEM_DISABLE_MULTICAST,
# NVSHMEM_DISABLE_NVLS): every notebook inherits the environment and never turns it on.


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


# ---------------------------------------------------------------- parameters

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

    from .sync import render

    try:
        papermill.execute_notebook(render(src), str(out), parameters=params, kernel_name="python3",
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

    nb = nbformat.read(str(out), as_version=4)
    meta = nb.metadata.get("papermill", {})
    try:
        meta["input_path"] = Path(src).resolve().relative_to(REPO_ROOT).as_posix()
    except ValueError:
        meta["input_path"] = str(src)
    meta.pop("output_path", None)
    atomic_write(out, localize_badge(nbformat.writes(nb)))


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
    try:
        below = [child.pid for child in psutil.Process(proc.pid).children(recursive=True)]
    except psutil.Error:  # already gone
        below = []
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
    profiles.check(profile)
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
    cmd = [sys.executable, "-m", "sparsefuse.lab.book", "_execute", str(src), str(tmp), str(report),
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
