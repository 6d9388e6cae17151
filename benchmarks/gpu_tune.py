"""Launch-config sweep for the fused primitives on one GPU (fills dispatch.CONFIGS).

For each primitive (fwd_0, dx_1, dw_0), strategy (dense, sparse), precision
(fp32-ieee, tf32, bf16) and G in (5, 20, 100) at k=3 it times a small grid of
launch configs with ``triton.testing.do_bench`` (median ms):

  BLOCK_N, BLOCK_O in {32, 64, 128} (BLOCK_O up to 256 for dense), BLOCK_K in {32, 64, 128} (dense),
  BLOCK_I in {4, 8, 16} (dx sparse), WINDOW in {16, 32, 64} (dw sparse),
  num_warps in {4, 8}, num_stages in {default, 2, 3, 4}.

Compiles dominate the cost, so the search is two-phase: block shapes first (at
the current num_warps, Triton's default num_stages), then num_warps x num_stages
around the two fastest shapes.  Each (primitive, strategy, precision, G) gets at
most ``--budget`` seconds and the whole run at most ``--total-budget`` seconds
(the share per group shrinks to fit).  Configs that give the same launch (e.g.
every BLOCK_K <= next_pow2(G+k)) are timed once.  Every candidate's output (into
NaN-filled buffers) is compared with the current config's; a wrong or
incomplete result disqualifies it, and compile errors / out-of-resources are
recorded and skipped.  Then the few per-group winners are timed on every group
of their (primitive, strategy), and the config with the smallest sum of medians
over all swept G and precisions is suggested (``--write`` puts it into
sparsefuse/kernels/dispatch.py, atomically, with the GPU and date).

  python benchmarks/gpu_tune.py --out results/gpu --write     # ~8 minutes on an H100
  python benchmarks/gpu_tune.py --primitives fwd --budget 60 --total-budget 540
  python benchmarks/gpu_tune.py --smoke                       # CPU, TRITON_INTERPRET=1
"""

import argparse
import csv
import datetime
import itertools
import math
import os
import random
import re
import sys
import tempfile
import time

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from sparsefuse.bench import PRECISIONS, precision  # noqa: E402

ORDER = 3
PRIMITIVES = {"fwd": 0, "dx": 1, "dw": 0}  # derivative order timed per primitive
STRATEGIES = ("dense", "sparse")
GRIDS = (5, 20, 100)
BLOCKS = (32, 64, 128)
EXTRA = {"BLOCK_I": (4, 8, 16), "WINDOW": (16, 32, 64)}
# The dense tile builds its basis once per output tile: wider output tiles amortize it.
DENSE_BLOCK_O = (32, 64, 128, 256)
WARPS = (4, 8)
STAGES = (2, 3, 4)
MAX_TILE = 128 * 128  # elements of the largest register tile a program may hold
# Largest max|a - b| / max|b| against the current config's output.  Configs differ
# only in summation order (and, for bf16 outputs, one rounding of the result).
TOL = {"fp32-ieee": 1e-4, "tf32": 2e-3, "bf16": 2e-2}
CLASS = {"fp32-ieee": "ieee", "tf32": "tf32", "bf16": "bf16"}


def next_pow2(n):
    return 1 << max(0, (int(n) - 1).bit_length())


# ---- the candidate space ---------------------------------------------------------------

def shape_space(prim, strat):
    """Block-shape dicts for one (primitive, strategy), obviously bad ones pruned."""
    from sparsefuse.kernels import dispatch

    def values_of(key):
        if key == "BLOCK_O" and strat == "dense":
            return DENSE_BLOCK_O
        return EXTRA.get(key, BLOCKS)

    keys = [k for k in dispatch.CONFIG_KEYS[(prim, strat)] if k not in ("num_warps", "num_stages")]
    out = []
    for values in itertools.product(*[values_of(k) for k in keys]):
        c = dict(zip(keys, values))
        if c["BLOCK_N"] * c["BLOCK_O"] > MAX_TILE:
            continue  # accumulator alone would spill
        if c["BLOCK_N"] * c.get("BLOCK_I", 1) * c["BLOCK_O"] > MAX_TILE:
            continue  # dx sparse gathers a [BLOCK_N, BLOCK_I, BLOCK_O] tile
        out.append(c)
    return out


def dense_in_reach(prim, G, dispatch):
    """Tune the dense tile only where dispatch could pick it (twice the measured crossover)."""
    limit = max(v for (p, _), v in dispatch.DENSE_MAX_BASES.items() if p == prim)
    return next_pow2(G + ORDER) <= dispatch.DENSE_TILE_LIMIT and G + ORDER <= 2 * limit


def with_launch(shape, warps, stages):
    c = dict(shape, num_warps=warps)
    if stages is not None:
        c["num_stages"] = stages
    return c


def effective(prim, strat, cfg, G, OUT):
    """What the launch actually uses (the wrappers clamp BLOCK_O and derive BLOCK_I/WIN)."""
    tp = next_pow2(G + ORDER)
    e = dict(cfg)
    e["BLOCK_O"] = min(cfg["BLOCK_O"], max(16, next_pow2(OUT)))
    if "BLOCK_K" in e:
        e["BLOCK_K"] = max(1, e["BLOCK_K"] // tp)  # features per tile
    if "WINDOW" in e:
        e["WINDOW"] = max(e["WINDOW"], next_pow2(ORDER + 1))
    e.setdefault("num_stages", None)
    return tuple(sorted(e.items(), key=lambda kv: kv[0]))


def key_of(cfg):
    return tuple(sorted(cfg.items()))


def describe(cfg):
    parts = [f"{k}={v}" for k, v in cfg.items() if k not in ("num_warps", "num_stages")]
    parts.append(f"w{cfg['num_warps']}")
    parts.append(f"s{cfg.get('num_stages', '-')}")
    return " ".join(parts)


# ---- one (primitive, strategy, precision, G) group --------------------------------------

def make_call(prim, strat, mode, G, size, device, seed=0):
    """A no-argument launch of one primitive with the strategy forced."""
    from sparsefuse import kernels as sk
    from sparsefuse.kernels import dw as kdw
    from sparsefuse.kernels import dx as kdx
    from sparsefuse.kernels import fwd as kfwd

    N, IN, OUT = size
    k, M = ORDER, G + ORDER
    gen = torch.Generator().manual_seed(seed)
    grid = (torch.arange(-k, G + k + 1, dtype=torch.float64) * (2.0 / G) - 1.0)
    grid = grid[None].repeat(IN, 1).to(torch.float32).to(device)
    t0, ih = sk.geometry(grid, torch.float32)
    wdt = torch.bfloat16 if mode == "bf16" else torch.float32
    x = (torch.rand(N, IN, generator=gen) * 2 - 1).to(device)
    C = torch.randn(OUT, IN, M, generator=gen).to(device=device, dtype=wdt)
    g = torch.randn(N, OUT, generator=gen).to(device=device, dtype=wdt)
    if not (prim == "dx" and strat == "dense"):
        C = kfwd.o_major(C)  # the layout those launches convert to; time the kernel only
    d = PRIMITIVES[prim]
    if prim == "fwd":
        return lambda: kfwd.fwd(x, t0, ih, C, None, k, d, strategy=strat)
    if prim == "dx":
        return lambda: kdx.dx(x, t0, ih, C, g, k, d, strategy=strat)
    return lambda: kdw.dw(x, t0, ih, g, None, k, d, M, strategy=strat)


def rel_err(a, b):
    a, b = a.double(), b.double()
    if bool(torch.isnan(a).any()):
        return math.inf  # an element left unwritten (outputs start as NaN)
    scale = b.abs().max().clamp_min(1e-30)
    return ((a - b).abs().max() / scale).item()


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_ms(fn, device, smoke):
    if device.type == "cuda":
        from triton.testing import do_bench

        return float(do_bench(fn, warmup=10, rep=60, return_mode="median"))
    times = []
    for _ in range(1 if smoke else 3):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1e3)
    return sorted(times)[len(times) // 2]


class Group:
    """Inputs, reference output and measurements of one (primitive, strategy, precision, G)."""

    def __init__(self, prim, strat, mode, G, args, device):
        from sparsefuse import kernels as sk
        from sparsefuse.kernels import dispatch

        self.prim, self.strat, self.mode, self.G = prim, strat, mode, G
        self.args, self.device = args, device
        self.call = make_call(prim, strat, mode, G, args.size, device)
        self.ms = {}      # effective launch -> median ms (math.inf when disqualified)
        self.raw = {}     # effective launch -> the config that was timed for it
        self.rows = []
        self.default = dict(dispatch.config(prim, strat, CLASS[mode]))
        with precision(mode), sk.poison_outputs():
            self.ref = self.call()
            sync(device)
        self.ref = self.ref.float()

    def label(self):
        return f"{self.prim:<3} {self.strat:<6} {self.mode:<9} G={self.G:<3}"

    def eff(self, cfg):
        return effective(self.prim, self.strat, cfg, self.G, self.args.size[2])

    def measure(self, cfg, phase):
        """Median ms of ``cfg`` (inf if it fails or is wrong); each launch is timed once."""
        from sparsefuse import kernels as sk
        from sparsefuse.kernels import dispatch

        e = self.eff(cfg)
        if e in self.ms:
            return self.ms[e]
        row = dict(primitive=self.prim, strategy=self.strat, precision=self.mode, G=self.G,
                   bases=self.G + ORDER, N=self.args.size[0], inp=self.args.size[1],
                   out=self.args.size[2], phase=phase, config=describe(cfg), **cfg)
        row.setdefault("num_stages", "")
        t = time.perf_counter()
        ms, err = math.inf, math.nan
        try:
            with precision(self.mode), dispatch.override_config(self.prim, self.strat, **cfg):
                with sk.poison_outputs():
                    out = self.call()
                    sync(self.device)
                row["first_call_s"] = round(time.perf_counter() - t, 3)
                err = rel_err(out.float(), self.ref)
                if err <= TOL[self.mode]:
                    ms = median_ms(self.call, self.device, self.args.smoke)
                    status = "ok"
                else:
                    status = "wrong"
        except Exception as exc:  # compile errors, out of resources, OOM: skip the config
            if "illegal" in str(exc).lower() or "misaligned" in str(exc).lower():
                raise  # the CUDA context is gone; nothing after this can be trusted
            status = f"error: {type(exc).__name__}: {str(exc).strip().splitlines()[0][:160] if str(exc).strip() else ''}"
            if self.device.type == "cuda":
                torch.cuda.empty_cache()
        self.ms[e] = ms
        self.raw[e] = dict(cfg)
        row.update(ms=ms, rel_err=err, status=status)
        self.rows.append(row)
        base = self.ms.get(self.eff(self.default), math.nan)
        speed = f"x{base / ms:5.2f}" if ms < math.inf and base == base else "      "
        print(f"{self.label()} {phase:<7} {describe(cfg):<52} {ms:9.4f} ms {speed} {status}", flush=True)
        return ms


def sweep_group(grp, budget, args, rng):
    """Two-phase search of one group within ``budget`` seconds (the default always runs)."""
    start = time.perf_counter()
    grp.measure(grp.default, "default")
    shapes = shape_space(grp.prim, grp.strat)
    rng.shuffle(shapes)  # a budget cut then leaves an even sample, not one corner
    warps0 = grp.default["num_warps"]
    # The smoke run passes an explicit num_stages so that path is exercised too.
    stages0 = 2 if args.smoke else grp.default.get("num_stages")
    tried = 1

    def out_of_time(frac=1.0):
        if args.max_candidates is not None and tried >= args.max_candidates:
            return True
        return time.perf_counter() - start > frac * budget

    for s in shapes:
        if out_of_time(0.65):
            break
        cfg = with_launch(s, warps0, stages0)
        if grp.eff(cfg) not in grp.ms:
            grp.measure(cfg, "shape")
            tried += 1
    # Shapes ranked by their best time so far; refine launch options on the top two.
    tops = []
    for e in sorted((e for e, ms in grp.ms.items() if ms < math.inf), key=grp.ms.get):
        shape = _shape_of(grp.raw[e])
        if shape not in tops:
            tops.append(shape)
        if len(tops) == 2:
            break
    for s in tops:
        for w, st in itertools.product(WARPS, STAGES + (None,)):
            if out_of_time():
                return
            cfg = with_launch(s, w, st)
            if grp.eff(cfg) not in grp.ms:
                grp.measure(cfg, "launch")
                tried += 1


def _shape_of(cfg):
    return {k: v for k, v in cfg.items() if k not in ("num_warps", "num_stages")}


# ---- choosing and writing ---------------------------------------------------------------

def full_space(prim, strat, default):
    space = [with_launch(s, w, st) for s in shape_space(prim, strat)
             for w in WARPS for st in (None,) + STAGES]
    if key_of(default) not in {key_of(c) for c in space}:
        space.append(dict(default))
    return space


def times_of(cfg, groups):
    """Median ms of ``cfg`` in each group (None where it was not timed)."""
    return [grp.ms.get(grp.eff(cfg)) for grp in groups]


def default_times(groups):
    """Each group's median ms with its own current config (it differs per precision class)."""
    return [grp.ms.get(grp.eff(grp.default)) for grp in groups]


def best_over(groups, space):
    """(config, summed ms) with the smallest sum over ``groups`` among fully timed configs.

    Among configs that launch identically here, the current one wins, then one that
    was actually timed (the others only share its launch at these sizes).
    """
    best = None
    timed = [c for grp in groups for c in grp.raw.values()]
    for cfg in [groups[0].default] + timed + space:
        t = times_of(cfg, groups)
        if any(v is None or v == math.inf for v in t):
            continue
        total = sum(t)
        if best is None or total < best[1] - 1e-12:
            best = (cfg, total)
    return best


def fill(groups, space, budget, args):
    """Time the per-group winners on every group of their (primitive, strategy)."""
    start = time.perf_counter()
    default = groups[0].default
    scored = []
    for cfg in space:
        t = times_of(cfg, groups)
        base = default_times(groups)
        ratios = [b / v for v, b in zip(t, base) if v not in (None, math.inf) and b not in (None, math.inf)]
        wins = sum(1 for grp, v in zip(groups, t) if v is not None and v < math.inf
                   and v <= min(grp.ms.values()))
        if ratios and key_of(cfg) != key_of(default):
            geo = math.exp(sum(map(math.log, ratios)) / len(ratios))
            scored.append((wins, geo, cfg))
    scored.sort(key=lambda s: (-s[0], -s[1]))
    seen = set()
    finalists = []
    for wins, geo, cfg in scored:
        sig = tuple(grp.eff(cfg) for grp in groups)
        if wins == 0 or sig in seen:
            continue
        seen.add(sig)
        finalists.append(cfg)
        if len(finalists) == args.finalists:
            break
    for cfg in finalists:
        for grp in groups:
            if grp.eff(cfg) in grp.ms:
                continue
            if time.perf_counter() - start > budget:
                return
            grp.measure(cfg, "fill")


def old_entries(block):
    """Source lines (with the comment lines above them) of each entry of a CONFIGS block."""
    entries, pending = {}, []
    body = block.splitlines()
    body = body[body.index("CONFIGS = {") + 1:-1]
    for line in body:
        m = re.match(r'\s*\("(\w+)", "(\w+)"\):', line)
        if m:
            entries[(m.group(1), m.group(2))] = pending + [line]
            pending = []
        elif line.strip().startswith("#"):
            pending.append(line)
    return entries


def entry_body(prim, strat, cfg):
    """``BLOCK_N=.., ...`` of one dispatch table entry, in the launch's key order."""
    from sparsefuse.kernels import dispatch

    return ", ".join(f"{k}={cfg[k]}" for k in dispatch.CONFIG_KEYS[(prim, strat)] if k in cfg)


def render_configs(configs, comment, block):
    """A CONFIGS block: swept entries from ``configs``, the others as they were."""
    from sparsefuse.kernels import dispatch

    keep = old_entries(block)
    lines = comment + ["CONFIGS = {"]
    for key in dispatch.CONFIG_KEYS:
        if key in configs:
            cfg, note = configs[key]
            body = entry_body(*key, cfg)
            lines += [f"    # {note}", f'    ("{key[0]}", "{key[1]}"): dict({body}),']
        elif key in keep:
            lines += keep[key]
        else:
            cfg = dispatch.CONFIGS[key]
            body = entry_body(*key, cfg)
            lines.append(f'    ("{key[0]}", "{key[1]}"): dict({body}),')
    lines.append("}")
    return "\n".join(lines)


def render_precision_configs(configs, comment):
    """A PRECISION_CONFIGS block: swept (primitive, strategy, class) entries from
    ``configs``, the others as they are in dispatch.py now."""
    from sparsefuse.kernels import dispatch

    lines = comment + ["PRECISION_CONFIGS = {"]
    keys = sorted(set(configs) | set(dispatch.PRECISION_CONFIGS),
                  key=lambda k: (dispatch.PRIMITIVES.index(k[0]), k[1], dispatch.PRECISION_CLASSES.index(k[2])))
    for key in keys:
        cfg, note = configs.get(key, (dispatch.PRECISION_CONFIGS.get(key), None))
        body = entry_body(key[0], key[1], cfg)
        if note:
            lines.append(f"    # {note}")
        lines.append(f'    ("{key[0]}", "{key[1]}", "{key[2]}"): dict({body}),')
    lines.append("}")
    return "\n".join(lines)


def write_configs(configs, path, device, args, precision_configs=None):
    """Replace the CONFIGS (and, when given, PRECISION_CONFIGS) blocks of ``path`` (dispatch.py)
    atomically; returns the new (CONFIGS, PRECISION_CONFIGS)."""
    N, IN, OUT = args.size
    comment = [f"# Tuned: benchmarks/gpu_tune.py --write, N={N}, {IN}->{OUT}, k={ORDER}, "
               f"G in {tuple(args.grids)},",
               f"#   {', '.join(args.precisions)}: a tuned entry minimises the summed median ms "
               "over those (GPU, date above it)."]
    src = open(path).read()
    new, n = re.subn(r"(?:# Tuned:[^\n]*\n(?:#   [^\n]*\n)*)?CONFIGS = \{.*?\n\}",
                     lambda m: render_configs(configs, comment, m.group(0)), src, count=1, flags=re.S)
    if n != 1:
        raise RuntimeError(f"CONFIGS block not found in {path}")
    if precision_configs:
        pcomment = [f"# Tuned per precision class: benchmarks/gpu_tune.py --write, N={N}, {IN}->{OUT}, "
                    f"k={ORDER}, G in {tuple(args.grids)}."]
        new, n = re.subn(r"(?:# Tuned per precision class:[^\n]*\n)?PRECISION_CONFIGS = \{.*?\n\}",
                         lambda m: render_precision_configs(precision_configs, pcomment),
                         new, count=1, flags=re.S)
        if n != 1:
            raise RuntimeError(f"PRECISION_CONFIGS block not found in {path}")
    scope = {"__name__": "dispatch_check"}
    exec(compile(new, path, "exec"), scope)  # parses, and validates every entry on import
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(path)), suffix=".tmp")
    with os.fdopen(fd, "w") as fh:
        fh.write(new)
    os.replace(tmp, path)
    return scope["CONFIGS"], scope["PRECISION_CONFIGS"]


def write_csv(rows, path):
    """Atomic write: temp file in the same folder, then os.replace."""
    if not rows:
        return
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fields = []
    for r in rows:
        fields += [k for k in r if k not in fields]
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(path)), suffix=".tmp")
    with os.fdopen(fd, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=fields, restval="")
        w.writeheader()
        w.writerows(rows)
    os.replace(tmp, path)


# ---- driver -------------------------------------------------------------------------------

def parse(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=None, help="folder for gpu_tune.csv (written atomically)")
    p.add_argument("--size", type=int, nargs=3, metavar=("N", "IN", "OUT"), default=None,
                   help="problem size (default 8192 512 512)")
    p.add_argument("--budget", type=float, default=20.0,
                   help="seconds per (primitive, strategy, precision, G) at most")
    p.add_argument("--total-budget", type=float, default=420.0,
                   help="seconds for the whole sweep; the per-group share shrinks to fit")
    p.add_argument("--primitives", nargs="*", choices=tuple(PRIMITIVES), default=list(PRIMITIVES))
    p.add_argument("--strategies", nargs="*", choices=STRATEGIES, default=list(STRATEGIES))
    p.add_argument("--precisions", nargs="*", choices=PRECISIONS, default=None)
    p.add_argument("--grids", type=int, nargs="*", default=None, help="grid sizes G (default 5 20 100)")
    p.add_argument("--finalists", type=int, default=3,
                   help="per-group winners timed on every group of their primitive/strategy")
    p.add_argument("--max-candidates", type=int, default=None, help="candidates per group at most")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--write", action="store_true",
                   help="rewrite dispatch.CONFIGS with the best config per primitive/strategy")
    p.add_argument("--smoke", action="store_true",
                   help="tiny sizes, 2 candidates per group; runs on CPU under TRITON_INTERPRET=1")
    args = p.parse_args(argv)
    if args.smoke and args.write:
        p.error("--write: interpreter timings mean nothing; the smoke run checks the rewrite on a copy")
    if args.smoke:
        args.size = args.size or [64, 8, 6]
        args.grids = args.grids or [5]
        args.precisions = args.precisions or ["fp32-ieee", "bf16"]  # TF32 means nothing on CPU
        args.max_candidates = 2
        args.finalists = 1
    args.size = args.size or [8192, 512, 512]
    args.grids = args.grids or list(GRIDS)
    args.precisions = args.precisions or list(PRECISIONS)
    for name in ("budget", "total_budget"):
        if getattr(args, name) <= 0:
            p.error(f"--{name.replace('_', '-')}: expected a positive number of seconds")
    return args


def main(argv=None):
    args = parse(argv)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type != "cuda" and not args.smoke:
        print("no CUDA device: only --smoke runs here (TRITON_INTERPRET=1)", file=sys.stderr)
        return 2
    import triton

    from sparsefuse.kernels import dispatch

    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"device {gpu}, torch {torch.__version__}, triton {triton.__version__}, "
          f"size {tuple(args.size)}, budget {args.budget:g} s/group, total {args.total_budget:g} s", flush=True)
    blocks = []
    for prim in args.primitives:
        for strat in args.strategies:
            keys = [(mode, G) for mode in args.precisions for G in args.grids
                    if strat == "sparse" or dense_in_reach(prim, G, dispatch)]
            if keys:
                blocks.append(((prim, strat), keys))
    n_groups = sum(len(k) for _, k in blocks)
    deadline = time.perf_counter() + args.total_budget
    fill_share = 0.12 * args.total_budget / max(1, len(blocks))
    rows, results, done = [], {}, 0
    csv_path = os.path.join(args.out, "gpu_tune.csv") if args.out else None
    t_run = time.perf_counter()
    for bi, ((prim, strat), keys) in enumerate(blocks):
        groups = []
        for mode, G in keys:
            left = deadline - time.perf_counter() - fill_share * (len(blocks) - bi)
            share = max(0.0, min(args.budget, left / (n_groups - done)))
            done += 1
            try:
                grp = Group(prim, strat, mode, G, args, device)
            except Exception as exc:  # the current config itself fails: nothing to compare with
                print(f"{prim} {strat} {mode} G={G}: current config failed ({type(exc).__name__}: "
                      f"{str(exc).strip()[:160]}); group skipped", flush=True)
                rows.append(dict(primitive=prim, strategy=strat, precision=mode, G=G,
                                 status=f"error: {type(exc).__name__}"))
                continue
            # Same shape order in every group of a primitive/strategy: more shared
            # compiles (sparse launches do not depend on G) and overlapping coverage.
            sweep_group(grp, share, args, random.Random(f"{args.seed}-{prim}-{strat}"))
            groups.append(grp)
            rows += grp.rows
            grp.rows = []
            if csv_path:
                write_csv(rows, csv_path)  # a run cut short keeps every finished group
        if not groups:
            continue
        left = deadline - time.perf_counter() - fill_share * (len(blocks) - bi - 1)
        space = full_space(prim, strat, groups[0].default)
        fill(groups, space, max(0.0, min(args.budget, left)), args)
        for grp in groups:
            rows += grp.rows
            grp.rows = []
            grp.call = grp.ref = None  # keep the timings, free the inputs
        if csv_path:
            write_csv(rows, csv_path)
        results[(prim, strat)] = (groups, space)
    print(f"\nswept {len(rows)} launches in {time.perf_counter() - t_run:.0f} s")

    print("\nBest per (primitive, strategy, precision class), summed median ms over G "
          f"{tuple(args.grids)} (default's sum in brackets):")
    chosen_cls = {}
    for (prim, strat), (groups, space) in results.items():
        for mode in args.precisions:
            sub = [g for g in groups if g.mode == mode]
            if not sub:
                continue
            best = best_over(sub, space)
            base = sum(default_times(sub))
            if best:
                chosen_cls[(prim, strat, CLASS[mode])] = (
                    best[0], f"{gpu}, {datetime.date.today().isoformat()}: {best[1]:.3f} ms summed "
                             f"over G {tuple(g.G for g in sub)} (was {base:.3f})")
                print(f"  {prim:<3} {strat:<6} {CLASS[mode]:<5} {describe(best[0]):<52} "
                      f"{best[1]:9.4f} ms  [{base:9.4f}]  x{base / best[1]:.2f}")
    chosen = {}
    print("\nSuggested CONFIGS (smallest sum of medians over every swept G and precision):")
    print("CONFIGS = {")
    for (prim, strat), (groups, space) in results.items():
        best = best_over(groups, space)
        base = sum(default_times(groups))
        cfg = best[0] if best else groups[0].default
        total = best[1] if best else base
        chosen[(prim, strat)] = (cfg, f"{gpu}, {datetime.date.today().isoformat()}: "
                                      f"{total:.3f} ms summed (was {base:.3f})")
        body = entry_body(prim, strat, cfg)
        print(f'    ("{prim}", "{strat}"): dict({body}),  # {total:.3f} ms summed (now {base:.3f})')
    print("}")
    if csv_path:
        write_csv(rows, csv_path)
        print(f"wrote {csv_path}")
    if args.write:
        write_configs(chosen, dispatch.__file__, device, args, chosen_cls)
        print(f"wrote CONFIGS into {dispatch.__file__}")
    elif args.smoke:  # prove the rewrite on a copy; the real table stays as it is
        with tempfile.TemporaryDirectory() as tmp:
            copy = os.path.join(tmp, "dispatch.py")
            with open(dispatch.__file__) as src, open(copy, "w") as dst:
                dst.write(src.read())
            new, new_cls = write_configs(chosen, copy, device, args, chosen_cls)
        ok = all(new[key] == cfg for key, (cfg, _) in chosen.items())
        ok = ok and all(new_cls[key] == cfg for key, (cfg, _) in chosen_cls.items())
        print(f"rewrite of a copy of dispatch.py: {'ok' if ok else 'MISMATCH'}")
        if not ok:
            return 1
    bad = [r for r in rows if r["status"] != "ok"]
    print(f"{len(bad)} of {len(rows)} launches disqualified or failed (see status in the CSV)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
