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
# # Sparse vs dense contraction
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/sparsefuse/sparsefuse/blob/main/notebooks/02_sparse_vs_dense.ipynb)
#
# ## What this chapter reproduces
#
# **Paper:** SparseFuse (NeurIPS 2026 submission), main paper, kernel and systems results:
# the *sparse-vs-dense contraction* (with the padded geometry).
#
# **Claim tested:** at the sparsity of a B-spline basis, a contraction that exploits the
# zeros beats the dense GEMM once it picks the right strategy for the density, and the
# fused kernel's automatic choice finds that strategy at every grid size.
#
# **Verdict here**, from {glue:text}`sparse_vs_dense_source`, forward pass: the fused kernel
# was {glue:text}`sd_cmp_lo` at $G$ = {glue:text}`sd_g_lo:.0f` and {glue:text}`sd_cmp_hi` at
# $G$ = {glue:text}`sd_g_hi:.0f`. Its automatic choice {glue:text}`sd_auto_text`.
# The structured `gather` path {glue:text}`sd_gather_text`, and CSR built from
# the active indices on every call {glue:text}`sd_csr_text`. With the matrix pre-built (the
# synthetic sweep), CSR {glue:text}`sd_syn_text`. These are the numbers of one GPU and one
# layer shape, listed point by point: on this GPU the faster method changes more than once
# along the sweep, so there is no single crossover density.
#
# ## The question
#
# The spline part of a KAN layer is one matrix product, $y = B\,W$, with the basis
# matrix $B \in \mathbb{R}^{N \times \mathrm{in}\cdot(G+k)}$ and the coefficient table
# $W \in \mathbb{R}^{\mathrm{in}\cdot(G+k) \times \mathrm{out}}$. Only $k+1$ of the
# $G+k$ bases of each input are non-zero, so $B$ has density $(k+1)/(G+k)$: 57 % at
# $G=4$, 4 % at $G=100$ for cubic splines. Which way of computing $BW$ is fastest
# depends on that density:
#
# - `dense` — scatter the local bases into $B$ and run one GEMM (tensor cores, but
#   all the zeros are multiplied);
# - `csr`, `bsr` — PyTorch's generic sparse formats built from the active indices;
# - `padded` — read a fixed tile of coefficient rows per input ($k+1$ padded to the
#   tile width, as a tiled kernel would);
# - `gather` — the library's `sparse` path: gather exactly the $k+1$ active rows;
# - `fused` — the Triton kernels, which choose between the dense formulation (a
#   Triton kernel writes the basis of a chunk of rows, cuBLAS multiplies it while it
#   is in L2: `fused-dense`) and a sparse gather of the active coefficients
#   (`fused-sparse`); both strategies are also shown forced.
#
# A second, synthetic sweep times only the multiply $B\,W$ with pre-built random
# matrices of a chosen density — dense GEMM against CSR (non-zeros in one
# contiguous run per row, like a B-spline, or scattered) and BSR — to show the
# crossover of the formats themselves, without the basis evaluation.
#
# ## Run

# %% tags=["parameters"]
profile = "smoke"  # smoke (CPU, seconds) | quick (one GPU, under a minute) | paper (full sweep)
device = "auto"  # auto | cpu | cuda
grid_sizes = None  # G values of the spline sweep; None keeps the profile's
densities = None  # densities of the synthetic sweep; None keeps the profile's
padded_tile = None  # tile width of the padded method, at least k+1; None keeps 8

# %%
from sparsefuse.lab.book import notebook as nb
from sparsefuse.lab.experiments import sparse_vs_dense as exp

df = nb.experiment(exp, profile, device, keys=["sweep", "method", "mode", "grid_size", "density"],
                   grid_sizes=grid_sizes, densities=densities, padded_tile=padded_tile)

# %% [markdown]
# ## How to read it
#
# All axes are logarithmic. In the spline panel the x axis is the basis density
# (bottom) and the grid size it corresponds to (top): density falls as $G$ grows, so
# the right edge is a coarse grid and the left edge a fine one. A method whose line
# lies below `dense` at some density exploits the sparsity profitably there; the
# density where two lines cross is the *crossover*. The generic formats pay for
# building indices on every call (the basis depends on $x$), which is why the
# structured `gather` and the fused kernel, which never build a format, are the ones
# to watch. The gap between `fused-dense` and `fused-sparse` at each $G$ is the
# evidence behind the fused kernel's automatic choice (`fused`), which should track
# the lower of the two. BSR is built by converting CSR, which PyTorch does on the
# CPU; it is dropped from the sweep once one call takes longer than the profile's
# `max_call_ms` (the `note` column says where). The `paper` profile also times
# forward+backward, in a panel of its own, where CSR and BSR are recorded as
# unsupported (no backward through those products). The last panel is the format
# question alone: the time of $B\,W$ against density with $B$ already built.
#
# The headline table: forward time per call in ms per method and grid size, and the
# largest density at which each method beat the dense GEMM.

# %%
from sparsefuse.lab.book.tables import show

show(exp.headline(df), caption="forward time per call (ms); last row: the grid sizes where each method beat dense")

# %% [markdown]
# ## Explore the sweep
#
# Move the grid-size slider, or the density slider (they select the same points),
# to read each method's time at that point and its ratio to the dense GEMM; the
# pass selector lists the passes the data holds ({glue:text}`sd_modes`). The
# widget carries the whole sweep, so it also works in the static book without a
# kernel.

# %%
exp.explorer(df)
