"""MiniGPT-KAN under torchrun: DDP or FSDP2 training, and the 1 -> 2 -> 4 GPU tokens/s scaling table.

One training run (every rank runs this; rank 0 writes one CSV row)::

    torchrun --nproc_per_node=2 -m sparsefuse.lab.experiments.minigpt_distributed \
        --strategy fsdp --config scale-a --ffn kan --impl auto --steps 50 --out run.csv

The scaling table (this process launches torchrun once per GPU count and strategy;
without ``--out`` it is saved with provenance as the book result ``minigpt_scaling``
under ``results/<profile>/<device-tag>/``)::

    python -m sparsefuse.lab.experiments.minigpt_distributed --scaling 1,2,4 --strategy ddp,fsdp \
        --config scale-a --ffn kan --steps 30 --profile quick

The per-rank batch is fixed (weak scaling), so ideal tokens/s grows linearly
with the number of GPUs. Every rank draws the same global batch and keeps its
slice, so a 2-rank run computes the same optimisation as one process with
twice the batch: the CPU test checks exactly that.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

import pandas as pd
import torch

from sparsefuse.lab import distributed as D
from sparsefuse import status as S
from sparsefuse.lab import profiles, text_data
from sparsefuse.lab.book.atomic import atomic_write
from sparsefuse.lab.experiments._page import page_figure
from sparsefuse.lab.experiments.minigpt import eval_lm, train_lm
from sparsefuse.lab.models import minigpt as M
from sparsefuse.lab.measure import count_parameters, seed_everything
from ..words import joined

COLUMNS = ["strategy", "world_size", "backend", "device", "config", "ffn", "impl", "params", "steps",
           "batch_size_per_rank", "block_size", "tokens_per_s", "tokens_per_s_per_rank", "peak_mib",
           "loss_first", "loss_last", "val_loss", "params_spread", "wall_s", "seed", "status", "note"]
#: Book result name of the scaling table (results/<profile>/<device-tag>/minigpt_scaling.csv + provenance).
SCALING_NAME = "minigpt_scaling"
SCALING_COLUMNS = ["strategy", "world_size", "tokens_per_s", "speedup_vs_1", "scaling_efficiency", "peak_mib",
                   "loss_last", "status", "note"]
NO_SCALING = ("No multi-GPU scaling result is committed yet: it needs a host with 2 to 4 GPUs "
              "(run the `--scaling` command above there).")


def describe_scaling(df: pd.DataFrame, meta: dict) -> str:
    """Read the committed scaling table: the speed-up per strategy and world size, and what in it cannot be taken
    at face value (an efficiency above 1, world sizes the host did not have, a missing commit)."""
    parts, odd = [], []
    ok = df[df["status"] == S.OK]
    for strategy, rows in ok.groupby("strategy", sort=False):
        multi = rows[rows["world_size"] > 1]
        for r in multi.itertuples():
            parts.append(f"{strategy} on {int(r.world_size)} GPUs: {r.speedup_vs_1:.3g}× the one-GPU tokens/s "
                         f"(scaling efficiency {r.scaling_efficiency:.3g})")
            if r.scaling_efficiency > 1.02:
                odd.append(f"the {strategy} efficiency of {r.scaling_efficiency:.3g} is above 1, which weak "
                           "scaling cannot exceed: its one-GPU run was slower per step than each rank of the "
                           f"{int(r.world_size)}-GPU run (a short run: {meta.get('parameters', {}).get('steps', '?')} "
                           "steps), so read it as linear scaling, not better")
    skipped = df[df["status"] == S.SKIPPED]
    if len(skipped):
        odd.append(f"{joined(sorted({int(w) for w in skipped['world_size']}))} GPUs: skipped "
                   f"({skipped['note'].dropna().iloc[0] if skipped['note'].notna().any() else 'not run'})")
    if str(meta.get("git_commit") or "unknown") == "unknown":
        odd.append("its provenance names no commit (the run's copy of the repository had no git metadata), "
                   "so the code it measured is known only by its date")
    text = ("Measured: " + "; ".join(parts) + ".") if parts else "No multi-GPU row ran."
    return text + (" Note: " + "; ".join(odd) + "." if odd else "")


def train(args) -> dict:
    """One run inside the (possibly single-process) group; returns the summary row on every rank."""
    env = D.setup(args.device)
    text, prov = text_data.load_corpus(max_chars=args.max_chars)
    tok = text_data.CharTokenizer.from_text(text)
    train_ids, val_ids = text_data.split(tok.encode(text), 0.1)
    seed_everything(args.seed)  # same seed on every rank: identical initial weights before wrapping
    cfg = M.make_config(args.config, ffn=args.ffn, impl=args.impl, vocab_size=tok.vocab_size,
                        block_size=max(args.block_size, M.CONFIGS[args.config].block_size))
    model = M.MiniGPT(cfg)
    n_params = count_parameters(model)
    model = D.wrap(model, args.strategy, env)
    if env.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(env.device)
    t0 = time.perf_counter()
    res, tps = train_lm(model, train_ids, steps=args.steps, batch_size=args.batch_size,
                        block_size=args.block_size, lr=args.lr, seed=args.seed, device=env.device,
                        rank=env.rank, world_size=env.world_size, progress=not args.no_progress,
                        desc=f"{args.strategy} x{env.world_size}", all_reduce=D.all_reduce_mean)
    val = eval_lm(model, val_ids, batches=args.eval_batches, batch_size=args.batch_size,
                  block_size=args.block_size, seed=args.seed, device=env.device) if res.status == S.OK else float("nan")
    val = float(D.all_reduce_mean(torch.tensor([val], device=env.device)).item())
    wall = time.perf_counter() - t0
    peak = torch.cuda.max_memory_allocated(env.device) / 2**20 if env.device.type == "cuda" else float("nan")
    peak = D.all_reduce_max(peak, env.device)
    spread = D.params_spread(model, env.device)
    if args.save_state:
        state = D.full_state_dict(model)  # collective under FSDP: every rank calls it
        if env.is_main:
            os.makedirs(os.path.dirname(os.path.abspath(args.save_state)), exist_ok=True)
            tmp = args.save_state + ".tmp"
            torch.save(state, tmp)
            os.replace(tmp, args.save_state)
    curve = res.curve
    row = dict(strategy=args.strategy, world_size=env.world_size, backend=env.backend or "none",
               device=torch.cuda.get_device_name(env.device) if env.device.type == "cuda" else "cpu",
               config=args.config, ffn=args.ffn, impl=args.impl, params=n_params, steps=res.steps,
               batch_size_per_rank=args.batch_size, block_size=args.block_size, tokens_per_s=tps,
               tokens_per_s_per_rank=tps / env.world_size, peak_mib=peak,
               loss_first=float(curve["loss"].iloc[0]) if len(curve) else float("nan"),
               loss_last=res.final_loss, val_loss=val, params_spread=spread, wall_s=wall, seed=args.seed,
               status=res.status, note=f"corpus={prov['source']}")
    if env.is_main and args.out:
        atomic_write(args.out, pd.DataFrame([row], columns=COLUMNS).to_csv(index=False))
    D.teardown()
    return row


def _run_bounded(cmd, timeout: float):
    """Run ``cmd`` in its own session; on timeout kill the whole group (torchrun and its
    workers) and return None, so that one hung rank cannot stall the table."""
    import signal

    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.communicate()
        return None
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def scaling(args) -> pd.DataFrame:
    """Launch one torchrun per (strategy, world size); collect the rows; write ``args.out``."""
    counts = [int(n) for n in args.scaling.split(",") if n]
    if not counts or min(counts) < 1:
        raise ValueError(f"--scaling must be a comma-separated list of positive ints, got {args.scaling!r}")
    strategies = args.strategy.split(",")
    for s in strategies:
        if s not in ("ddp", "fsdp"):
            raise ValueError(f"--strategy for --scaling must be ddp and/or fsdp, got {s!r}")
    use_cuda = torch.cuda.is_available() if args.device == "auto" else args.device == "cuda"
    available = torch.cuda.device_count() if use_cuda else os.cpu_count() or 1
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for strategy in strategies:
            for n in counts:
                base = dict(strategy=strategy, world_size=n, config=args.config, ffn=args.ffn, impl=args.impl,
                            steps=args.steps, batch_size_per_rank=args.batch_size, block_size=args.block_size,
                            seed=args.seed)
                if n > available:
                    rows.append(dict(base, status=S.SKIPPED,
                                     note=f"needs {n} {'GPUs' if use_cuda else 'processes'}, {available} here"))
                    continue
                out = os.path.join(tmp, f"{strategy}-{n}.csv")
                cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={n}",
                       "-m", "sparsefuse.lab.experiments.minigpt_distributed", "--strategy", strategy,
                       "--out", out, *_passthrough(args)]
                if args.save_state:
                    stem, ext = os.path.splitext(args.save_state)
                    cmd += ["--save-state", f"{stem}-{strategy}-{n}{ext or '.pt'}"]
                proc = _run_bounded(cmd, args.launch_timeout)
                if proc is None:
                    rows.append(dict(base, status=S.TIMEOUT,
                                     note=f"no result within {args.launch_timeout:g} s; stopped"))
                    continue
                if proc.returncode == 0 and os.path.exists(out):
                    rows.append(pd.read_csv(out).iloc[0].to_dict())
                else:
                    err = (proc.stderr or proc.stdout).strip().splitlines()
                    oom = any("out of memory" in line.lower() for line in err)
                    rows.append(dict(base, status=S.OOM if oom else S.ERROR,
                                     note=(err[-1] if err else f"exit {proc.returncode}")[:200]))
    df = pd.DataFrame(rows, columns=COLUMNS)
    one = df[(df["world_size"] == 1) & (df["status"] == S.OK)].set_index("strategy")["tokens_per_s"]
    df["speedup_vs_1"] = [r.tokens_per_s / one[r.strategy] if r.strategy in one.index else float("nan")
                          for r in df.itertuples()]
    df["scaling_efficiency"] = df["speedup_vs_1"] / df["world_size"]
    if args.out:
        atomic_write(args.out, df.to_csv(index=False))
    else:
        from sparsefuse.lab.book import results

        results.save(SCALING_NAME, df, plot_scaling(df), profile=args.profile,
                     device="cuda" if use_cuda else "cpu", params=vars(args))
    return df


@page_figure
def plot_scaling(df: pd.DataFrame):
    """Tokens/s against the number of GPUs for each strategy, with the ideal linear line."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.0, 3.6), layout="constrained")
    ok = df[df["status"] == S.OK]
    for strategy, g in ok.groupby("strategy", sort=False):
        g = g.sort_values("world_size")
        line, = ax.plot(g["world_size"], g["tokens_per_s"], marker="o", label=strategy.upper())
        base = g[g["world_size"] == 1]["tokens_per_s"]
        if len(base):
            ax.plot(g["world_size"], base.iloc[0] * g["world_size"], ls=":", color=line.get_color())
    ax.set_xlabel("processes (GPUs)")
    ax.set_ylabel("tokens/s (all ranks)")
    ax.set_title("MiniGPT-KAN weak scaling (dotted: linear)")
    if ax.lines:
        ax.legend()
    return fig


def _passthrough(args) -> list[str]:
    out = ["--config", args.config, "--ffn", args.ffn, "--impl", args.impl, "--steps", str(args.steps),
           "--batch-size", str(args.batch_size), "--block-size", str(args.block_size), "--lr", str(args.lr),
           "--seed", str(args.seed), "--device", args.device, "--eval-batches", str(args.eval_batches),
           "--no-progress"]
    if args.max_chars is not None:
        out += ["--max-chars", str(args.max_chars)]
    return out


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m sparsefuse.lab.experiments.minigpt_distributed",
                                description=__doc__.split("\n")[0])
    p.add_argument("--strategy", default="ddp", help="none | ddp | fsdp (with --scaling: comma list of ddp,fsdp)")
    p.add_argument("--config", default="scale-a", choices=sorted(M.CONFIGS))
    p.add_argument("--ffn", default="kan", choices=["mlp", "kan", "gated_kan", "jhcg"])
    p.add_argument("--impl", default="auto", help="KANLinear path (default auto: fused on CUDA)")
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=8, help="sequences per rank per step")
    p.add_argument("--block-size", type=int, default=256)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--max-chars", type=int, default=None, help="truncate the corpus (tests)")
    p.add_argument("--eval-batches", type=int, default=4)
    p.add_argument("--out", default=None, help="CSV written by rank 0 (with --scaling: the table; default: the "
                                               "book result minigpt_scaling with provenance)")
    p.add_argument("--profile", default="quick", choices=profiles.NAMES,
                   help="results folder of the --scaling table when --out is not given")
    p.add_argument("--save-state", default=None, help="rank 0 saves the full (unsharded) state dict here "
                                                     "(with --scaling: PATH-<strategy>-<n>.pt per run)")
    p.add_argument("--scaling", default=None, help="comma list of world sizes, e.g. 1,2,4: run the scaling table")
    p.add_argument("--launch-timeout", type=float, default=1800.0,
                   help="with --scaling: seconds one torchrun may take before it is stopped and recorded")
    p.add_argument("--no-progress", action="store_true")
    return p


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    if args.steps < 1:
        raise ValueError(f"--steps must be >= 1, got {args.steps}")
    if args.scaling:
        df = scaling(args)
        with pd.option_context("display.width", 200, "display.max_columns", 30):
            print(df[["strategy", "world_size", "tokens_per_s", "speedup_vs_1", "scaling_efficiency",
                      "peak_mib", "loss_last", "status", "note"]].to_string(index=False))
        return 0 if (df["status"].isin([S.OK, S.SKIPPED])).all() else 1
    if args.strategy not in D.STRATEGIES:
        raise ValueError(f"--strategy must be one of {D.STRATEGIES}, got {args.strategy!r}")
    row = train(args)
    if row.get("world_size", 1) == 1 or int(os.environ.get("RANK", "0")) == 0:
        print(", ".join(f"{k}={row[k]:.4g}" if isinstance(row[k], float) else f"{k}={row[k]}"
                        for k in ("strategy", "world_size", "tokens_per_s", "peak_mib", "loss_first", "loss_last",
                                  "params_spread", "status")))
    return 0 if row["status"] == S.OK else 1


if __name__ == "__main__":
    sys.exit(main())
