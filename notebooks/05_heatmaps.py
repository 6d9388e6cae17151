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
# # Speedup and memory heatmaps
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/sparsefuse/sparsefuse/blob/main/notebooks/05_heatmaps.ipynb)
#
# A single workload says little about where a kernel wins. This notebook
# measures the fused path against the efficient-kan algorithm (`reference`)
# across two planes of layer shapes — batch size × width at a fixed grid, and
# grid size × width at a fixed batch — and shows the ratios as heatmaps, so you
# can find your own layer and read off the gain in time and in peak memory.

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
target = None  # the path being assessed; None keeps "fused"
baseline = None  # what it is compared with; None keeps "reference" (any path or peer name works)
batches = None  # batch sizes of the (batch, width) plane; None keeps the profile's
widths = None  # widths (in = out) of both planes; None keeps the profile's
grid_sizes = None  # grid sizes of the (G, width) plane; None keeps the profile's

# %%
from sparsefuse.book import notebook as nb
from sparsefuse.experiments import heatmaps as exp

dev = nb.resolve_device(device)
overrides = {k: v for k, v in dict(target=target, baseline=baseline, batches=batches, widths=widths,
                                   grid_sizes=grid_sizes).items() if v is not None}
df = exp.run(profile=profile, device=dev, **overrides)
fig = exp.plot(df)
nb.publish(exp.NAME, df, fig, profile=profile, device=dev, params={**exp.PROFILES[profile], **overrides},
           keys=["plane", "impl", "n", "width", "grid_size"])

# %% [markdown]
# **How to read it.** Each cell is baseline ÷ target: above 1× the target
# (`fused`) is faster (top row) or needs less peak memory (bottom row) than the
# baseline at that shape. The colour scale is logarithmic and centred on 1×: red
# cells are gains, blue cells losses, white is parity. In the (batch, width)
# plane expect the smallest gains in the bottom-left corner, where the problem is
# so small that kernel launches dominate both sides. In the (G, width) plane the
# gain should grow with $G$, since the baseline's work and memory grow with $G$
# and the fused path's do not. A dash marks a shape where one side did not run
# (out of memory, or skipped); the table says which. Peak memory is not measured
# on CPU, so the memory panels are empty in the smoke profile.
#
# The ratio table behind the heatmaps:

# %%
exp.headline(df)
