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
# ## What this chapter reproduces
#
# **Paper:** SparseFuse (NeurIPS 2026 submission), appendix experiments: the *heatmaps* of
# speedup and peak memory over layer shapes.
#
# **Claim tested:** the fused path's gain over efficient-kan's algorithm is not one lucky
# shape: it holds across batch sizes, widths and grid sizes, growing with $G$, and its
# memory saving holds everywhere.
#
# **Verdict here**, from {glue:text}`heatmaps_source`: {glue:text}`hm_target` was faster than
# {glue:text}`hm_baseline` {glue:text}`hm_all_win`; the time ratio (baseline ÷ target) ran from
# {glue:text}`hm_speedup_min:.2f`× at {glue:text}`hm_worst_shape` to
# {glue:text}`hm_speedup_max:.2f`× at {glue:text}`hm_best_shape` (median
# {glue:text}`hm_speedup_median:.2f`×), and {glue:text}`hm_mem_text`. {glue:text}`hm_loss_text`
# {glue:text}`hm_growth_text`
#
# ## The question
#
# A single workload says little about where a kernel wins. This notebook measures
# the fused path against the efficient-kan algorithm (`reference`) across two planes
# of layer shapes — batch size × width at a fixed grid, and grid size × width at a
# fixed batch — and shows the ratios as heatmaps, so you can find your own layer and
# read off the gain in time and in peak memory.
#
# ## Run

# %% tags=["parameters"]
profile = "smoke"  # smoke (CPU, seconds) | quick (one GPU, under a minute) | paper (full sweep)
device = "auto"  # auto | cpu | cuda
target = None  # the path being assessed; None keeps "fused"
baseline = None  # what it is compared with; None keeps "reference" (any path or peer name works)
batches = None  # batch sizes of the (batch, width) plane; None keeps the profile's
widths = None  # widths (in and out alike) of both planes; None keeps the profile's
grid_sizes = None  # grid sizes of the (G, width) plane; None keeps the profile's

# %%
from sparsefuse.lab.book import notebook as nb
from sparsefuse.lab.experiments import heatmaps as exp

df = nb.experiment(exp, profile, device, keys=["plane", "impl", "n", "width", "grid_size"],
                   target=target, baseline=baseline, batches=batches, widths=widths, grid_sizes=grid_sizes)

# %% [markdown]
# ## How to read it
#
# Each cell is baseline ÷ target: above 1× the target (`fused`) is faster (left
# column) or needs less peak memory (right column) than the baseline at that shape.
# The colour scale is logarithmic and centred on 1×: red cells are gains, blue cells
# losses, white is parity. In the (batch, width) plane expect the smallest gains in
# the bottom-left corner, where the problem is so small that kernel launches dominate
# both sides. In the (G, width) plane expect the gain to grow with $G$, since the
# baseline's work and memory grow with $G$ and the fused path's do not; a column where
# it does not is a shape where something else (launches, the GEMM's own efficiency)
# dominates. A dash marks a shape
# where one side did not run (out of memory, or skipped); the table says which. Peak
# memory is not measured on CPU, so the memory panels are empty in the smoke
# profile.
#
# The ratio table behind the heatmaps:

# %%
from sparsefuse.lab.book.tables import show

show(exp.headline(df))
