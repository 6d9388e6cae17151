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
grid_sizes = None  # G values of the spline sweep; None keeps the profile's
densities = None  # densities of the synthetic sweep; None keeps the profile's
padded_tile = None  # tile width of the padded method (>= k+1); None keeps 8

# %%
from sparsefuse.book import notebook as nb
from sparsefuse.experiments import sparse_vs_dense as exp

dev = nb.resolve_device(device)
overrides = {k: v for k, v in dict(grid_sizes=grid_sizes, densities=densities, padded_tile=padded_tile).items()
             if v is not None}
df = exp.run(profile=profile, device=dev, **overrides)
fig = exp.plot(df)
nb.publish(exp.NAME, df, fig, profile=profile, device=dev, params={**exp.PROFILES[profile], **overrides},
           keys=["sweep", "method", "mode", "grid_size", "density"])

# %% [markdown]
# **How to read it.** All axes are logarithmic. In the spline panels the x axis is
# the basis density (bottom) and the grid size it corresponds to (top): density
# falls as $G$ grows, so the right edge is a coarse grid and the left edge a fine
# one. A method whose line lies below `dense` at some density exploits the
# sparsity profitably there; the density where two lines cross is the
# *crossover*. Expect `dense` to win at high density (small $G$) on tensor cores,
# and the sparse methods to win once most of $B$ is zero; the generic formats pay
# for building indices on every call (the basis depends on $x$), which is why the
# structured `gather` and the fused kernel, which never build a format, are the
# ones to watch. The gap between `fused-dense` and `fused-sparse` at each $G$ is
# the evidence behind the fused kernel's automatic choice (`fused`), which should
# track the lower of the two. CSR and BSR have no backward here, so they are
# recorded as unsupported in the forward+backward panel. BSR is built by converting
# CSR, which PyTorch does on the CPU; it is dropped from the sweep once one call
# takes longer than the profile's `max_call_ms` (the `note` column says where). The
# right panel is the format question alone: time of $B\,W$ against density with
# $B$ already built.
#
# The headline table: forward time in ms per method and grid size, and the
# largest density at which each method beats the dense GEMM.

# %%
exp.headline(df)

# %% [markdown]
# ## Explore the sweep
#
# Move the grid-size slider, or the density slider (they select the same points),
# to read each method's time at that point and its ratio to the dense GEMM; the
# pass selector switches between forward and forward+backward. The widget carries
# the whole sweep, so it also works in the static book without a kernel.

# %%
exp.explorer(df)
