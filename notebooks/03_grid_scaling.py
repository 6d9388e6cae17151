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
# ## What this chapter reproduces
#
# **Paper:** SparseFuse (NeurIPS 2026 submission), main paper, kernel and systems results:
# *grid scaling* (the H100 grid-scaling runs).
#
# **Claim tested:** the time and memory of the fused KAN layer stay nearly flat as the grid
# size $G$ grows into the thousands, while every implementation that builds the dense basis
# grows linearly in $G$ and runs out of memory first.
#
# **Verdict here**, from {glue:text}`grid_scaling_source`, {glue:text}`gs_mode`: from
# $G$ = {glue:text}`gs_g_lo:.0f` to $G$ = {glue:text}`gs_g_hi:.0f` the fused path's time grew
# {glue:text}`gs_growth_text` and the efficient-kan reference's {glue:text}`gs_ref_growth_text`:
# {glue:text}`gs_flat`. Its peak memory grew {glue:text}`gs_fused_mem_growth:.3g`×:
# {glue:text}`gs_mem_flat`. At $G$ = {glue:text}`gs_g_hi:.0f` fused was {glue:text}`gs_cmp_hi`
# and used {glue:text}`gs_mem_hi`. Implementations that ran out of memory:
# {glue:text}`gs_oom_text`. {glue:text}`gs_peers_text`; the least memory at
# $G$ = {glue:text}`gs_g_hi:.0f` took {glue:text}`gs_lowest_mem_text`. Left out:
# {glue:text}`gs_not_run_text`. Which package is fastest depends on the layer shape (see the
# [kernel benchmark page](../kernel_benchmark.md) for the side-by-side runs).
#
# ## The question
#
# How do time and memory of a KAN layer grow with the grid size $G$? A dense
# formulation — the efficient-kan algorithm (`reference`), our `dense` path, and
# every peer package that builds the basis — materialises an
# $N \times \mathrm{in} \times (G+k)$ tensor, so its cost grows linearly in $G$ and it
# eventually runs out of memory. The `sparse` and `fused` paths touch only the $k+1$
# active bases per input, so their cost should stay nearly flat. This notebook sweeps
# $G$ from 3 to the thousands and records, for every implementation, forward+backward
# time and peak memory — and the grid size at which it drops out.
#
# ## Run

# %% tags=["parameters"]
profile = "smoke"  # smoke (CPU, seconds) | quick (one GPU, under a minute) | paper (full sweep)
device = "auto"  # auto | cpu | cuda
grid_sizes = None  # e.g. [3, 10, 100, 1000]; None keeps the profile's sweep
n = None  # batch size N; None keeps the profile's
width = None  # in and out features; None keeps the profile's

# %%
from sparsefuse.lab.book import notebook as nb
from sparsefuse.lab.experiments import grid_scaling as exp

df = nb.experiment(exp, profile, device, keys=["impl", "mode", "grid_size"],
                   grid_sizes=grid_sizes, n=n, in_features=width, out_features=width)

# %% [markdown]
# ## How to read it
#
# Both axes are logarithmic. In the time panel a line of slope 1 means time
# proportional to $G$ (the dense formulations); a flat line means the cost does not
# depend on $G$ (the local paths, up to the growing coefficient table they read). The
# band around each line is the 20–80 % range of the repetitions. The memory panel
# shows the peak extra memory during the call: the dense paths' basis tensor dominates
# and grows with $G$; the fused path keeps its inputs, outputs, gradients and the
# coefficient table, which itself grows with $G$. A dotted vertical line marks the first
# grid size at which an implementation ran out of memory; larger grids of that
# implementation are recorded as `oom` without being tried. Implementations that could
# not run at all (a peer not installed, a configuration a peer cannot express) are
# listed under the figure and in the table. The `quick` profile keeps to about a minute
# of GPU time, so two peers are recorded as skipped there with the reason: `flashkan`
# recompiles itself with `torch.compile` for every new $G$ (about a minute each on an
# H100), and `pykan` initialises each layer with a least-squares fit that alone takes
# ~20 s at $G=300$; both run in `paper`. Any point left out because the profile's time
# budget ran out says so in its `note`.
#
# The headline table: time per call in ms, one column per implementation, with the
# status in place of a number where it did not run.

# %%
from sparsefuse.lab.book.tables import show

show(exp.headline(df), unit="ms")

# %% [markdown]
# ## Explore the sweep
#
# Move the grid-size slider (or the density slider: the same points, density
# $(k+1)/(G+k)$ falling as $G$ grows) to read every implementation's time at that $G$
# and its ratio to `reference`; the pass selector lists the passes the data holds. The
# line under the title names the run the data comes from. The widget carries the
# whole sweep, so it works in the static book without a kernel.

# %%
exp.explorer(df)
