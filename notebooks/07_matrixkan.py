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
# # MatrixKAN comparison
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/sparsefuse/sparsefuse/blob/main/notebooks/07_matrixkan.ipynb)
#
# On a uniform grid every knot interval carries the same $k+1$ polynomial pieces,
# so the active B-spline values at $x$ are one small matrix product,
# $[1, u, \dots, u^k]\,M_k$ with $u$ the position inside the interval — the idea of
# MatrixKAN. This notebook compares three ways of evaluating the same bases, by
# spline degree $k$:
#
# - `cox-de-boor`: the full recursion over all $G+k$ bases (efficient-kan);
# - `power-dense`: MatrixKAN's power form, written out to all $G+k$ bases;
# - `local`: the same matrix form for the $k+1$ active bases only — what the
#   sparse and fused paths consume.
#
# Each is timed forward and forward+backward (gradient to $x$), with its peak
# memory and its float32 error against a float64 Cox–de Boor evaluation.

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
degrees = None  # spline degrees, e.g. [1, 2, 3, 5, 7]; None keeps the profile's
grid_size = None  # G; None keeps the profile's
n = None  # batch size N; None keeps the profile's

# %%
from sparsefuse.book import notebook as nb
from sparsefuse.experiments import matrixkan as exp

dev = nb.resolve_device(device)
overrides = {k: v for k, v in dict(degrees=degrees, grid_size=grid_size, n=n).items() if v is not None}
df = exp.run(profile=profile, device=dev, **overrides)
fig = exp.plot(df)
nb.publish(exp.NAME, df, fig, profile=profile, device=dev, params={**exp.PROFILES[profile], **overrides},
           keys=["method", "degree", "mode"])

# %% [markdown]
# **How to read it.** The x axis is the spline degree $k$ in every panel. The
# Cox–de Boor recursion does $O(k)$ passes over all $G+k$ bases, so its time
# grows with $k$ at a rate set by $G$; the power form replaces the recursion by
# one $(k+1)\times(k+1)$ product but still writes $G+k$ values per input; the
# local form writes only $k+1$. The gap between `power-dense` and `local` is the
# cost of materializing the zeros, the gap between `cox-de-boor` and
# `power-dense` the cost of the recursion itself. The third panel shows the
# memory this costs in a training step (GPU only). The last panel checks that
# the faster forms are not less accurate: all three should stay within a few
# float32 ulps of the float64 reference at every degree; the power form's
# monomials lose a little precision as $k$ grows, which this panel would show.
#
# The headline table: forward+backward time in ms per method and degree, and
# each method's float32 error.

# %%
exp.headline(df)
