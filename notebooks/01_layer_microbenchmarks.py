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
# # Layer microbenchmarks
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/sparsefuse/sparsefuse/blob/main/notebooks/01_layer_microbenchmarks.ipynb)
#
# ## What this chapter reproduces
#
# **Paper:** SparseFuse (NeurIPS 2026 submission), main paper, kernel and systems results:
# the *layer microbenchmark and kernel summary*.
#
# **Claim tested:** a KAN layer whose kernels touch only the $k+1$ active B-spline bases per input
# costs nearly the same at every grid size $G$, while efficient-kan's dense formulation
# grows with $G$.
#
# **Verdict here**, from {glue:text}`layer_microbench_source`: from $G$ = {glue:text}`lm_g_lo:.0f`
# to $G$ = {glue:text}`lm_g_hi:.0f` the training step (forward+backward) of the fused path
# grew {glue:text}`lm_fused_growth:.2f`× and the reference's {glue:text}`lm_ref_growth:.2f`×:
# {glue:text}`lm_flat`. The fused path was {glue:text}`lm_cmp_lo` at
# $G$ = {glue:text}`lm_g_lo:.0f` and {glue:text}`lm_cmp_hi` at $G$ = {glue:text}`lm_g_hi:.0f`.
# A KAN layer is still no linear layer: at $G$ = {glue:text}`lm_g_hi:.0f` the fused step took
# {glue:text}`lm_vs_linear_text` the time of the `torch.nn.Linear` it replaces. The side-by-side
# comparison with the other KAN packages is on the [kernel benchmark page](../kernel_benchmark.md).
#
# ## The question
#
# What does a KAN layer cost next to the `torch.nn.Linear` it replaces, and how
# does that cost grow with the grid size $G$? Each input activates only $k+1$ of
# the $G+k$ B-spline bases of order $k$, so a dense formulation spends most of its
# work on zeros once $G$ grows: the useful share, the *density*, is $(k+1)/(G+k)$.
# This notebook times a linear layer and every path of the KAN layer (`reference`:
# efficient-kan's algorithm; `dense`, `sparse`, `fused`: see the README) over a sweep
# of $G$, forward and forward+backward.
#
# ## Run

# %% tags=["parameters"]
profile = "smoke"  # smoke (CPU, seconds) | quick (one GPU, about a minute) | paper
device = "auto"  # auto | cpu | cuda

# %%
from sparsefuse.lab.book import notebook as nb
from sparsefuse.lab.experiments import layer_microbench as exp

df = nb.experiment(exp, profile, device, keys=["path", "G", "pass"])

# %% [markdown]
# ## How to read it
#
# The top panel is inference (forward only), the bottom one training
# (forward+backward); both axes are logarithmic. The linear layer is flat in $G$:
# it has no grid. A dense KAN path grows with $G$ (at large $G$ nearly in proportion),
# because it multiplies an $N \times \mathrm{in}\cdot(G+k)$ basis matrix that is mostly zeros;
# the gap between it and the paths that touch only the $k+1$ active bases is the
# cost of the wasted density. On the CPU smoke profile the sizes are tiny and the
# times mostly measure Python overhead: only the GPU reference says anything about
# the claim.
#
# ## Explore the sweep
#
# Move the grid-size slider, or the density slider (the two select the same
# points), to read each path's time at that point and its ratio to the linear
# layer. The widget carries the whole sweep, so it also works in the static book.

# %%
exp.explorer(df)
