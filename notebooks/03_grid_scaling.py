# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Grid-size scaling
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/sparsefuse/sparsefuse/blob/main/notebooks/03_grid_scaling.ipynb)
#
# How do time and memory of a KAN layer grow with the grid size $G$? A dense
# formulation — the efficient-kan algorithm (`reference`), our `dense` path, and
# every peer package — builds an $N \times \mathrm{in} \times (G+k)$ basis tensor,
# so its cost grows linearly in $G$ and it eventually runs out of memory. The
# `sparse` and `fused` paths touch only the $k+1$ active bases per input, so their
# cost should stay nearly flat. This notebook sweeps $G$ from 3 to the thousands
# and records, for every implementation, forward+backward time and peak memory —
# and the grid size at which it drops out.

# %% tags=["remove-cell"]
# In Colab: install this repository (torch and triton are already there).
import sys

if "google.colab" in sys.modules:
    import subprocess

    subprocess.run([sys.executable, "-m", "pip", "install", "-q",
                    "sparsefuse[colab] @ git+https://github.com/sparsefuse/sparsefuse"], check=True)
    import torch

    if not torch.cuda.is_available():
        print("No GPU: choose Runtime > Change runtime type > GPU for meaningful timings. "
              "On CPU this notebook runs the tiny 'smoke' profile only.")

# %% tags=["parameters"]
profile = "smoke"  # smoke (CPU, seconds) | quick (one GPU, under a minute) | paper (full sweep)
device = "auto"  # auto | cpu | cuda
grid_sizes = None  # e.g. [3, 10, 100, 1000]; None keeps the profile's sweep
n = None  # batch size N; None keeps the profile's
width = None  # in = out features; None keeps the profile's

# %%
from sparsefuse.book import notebook as nb
from sparsefuse.experiments import grid_scaling as exp

dev = nb.resolve_device(device)
overrides = {k: v for k, v in dict(grid_sizes=grid_sizes, n=n, in_features=width, out_features=width).items()
             if v is not None}
df = exp.run(profile=profile, device=dev, **overrides)
fig = exp.plot(df)
nb.publish(exp.NAME, df, fig, profile=profile, device=dev, params={**exp.PROFILES[profile], **overrides},
           keys=["impl", "mode", "grid_size"])

# %% [markdown]
# **How to read it.** Both axes are logarithmic. On the left, a line of slope 1
# means time proportional to $G$ (the dense formulations); a flat line means the
# cost does not depend on $G$ (the local paths, up to the growing coefficient
# table they read). The band around each line is the 20–80 % range of the
# repetitions. On the right, peak extra memory during the call: the dense paths'
# basis tensor dominates and grows with $G$, the fused path should stay at the
# size of its inputs, outputs and gradients. A dotted vertical line marks the
# first grid size at which an implementation ran out of memory; larger grids of
# that implementation are recorded as `oom` without being tried. Implementations
# that could not run at all (a peer not installed, a configuration a peer cannot
# express) are listed under the left panel and in the table. The `quick` profile
# keeps to about a minute of GPU time, so two peers are recorded as skipped there
# with the reason: `flashkan` recompiles itself with `torch.compile` for every new
# $G$ (about a minute each on an H100), and `pykan` initializes each layer with a
# least-squares fit that alone takes ~20 s at $G=300$; both run in `paper`. Any
# point left out because the profile's time budget ran out says so in its `note`.
#
# The headline table: time per call in ms, one column per implementation, with
# the status in place of a number where it did not run.

# %%
exp.headline(df)
