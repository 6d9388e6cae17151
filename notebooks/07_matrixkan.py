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
# ## What this chapter reproduces
#
# **Paper:** SparseFuse (NeurIPS 2026 submission), appendix experiments: the *MatrixKAN
# comparison*.
#
# **Claim tested:** evaluating only the $k+1$ active B-spline bases in MatrixKAN's matrix
# (power) form is faster than both the Cox–de Boor recursion and the power form written out
# to all $G+k$ bases, at every spline degree, and no less accurate.
#
# **Verdict here**, from {glue:text}`matrixkan_source`, {glue:text}`mk_mode`: at degree
# $k$ = {glue:text}`mk_k:.0f` the local form was {glue:text}`mk_cmp_cdb` and
# {glue:text}`mk_cmp_power`; at $k$ = {glue:text}`mk_k_hi:.0f` it was {glue:text}`mk_cmp_cdb_hi`.
# {glue:text}`mk_speed_text` {glue:text}`mk_acc_text` (Errors are measured against a float64
# Cox–de Boor evaluation.)
#
# ## The question
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
#
# ## Run

# %% tags=["parameters"]
profile = "smoke"  # smoke (CPU, seconds) | quick (one GPU, under a minute) | paper (full sweep)
device = "auto"  # auto | cpu | cuda
degrees = None  # spline degrees, e.g. [1, 2, 3, 5, 7]; None keeps the profile's
grid_size = None  # G; None keeps the profile's
n = None  # batch size N; None keeps the profile's

# %%
from sparsefuse.lab.book import notebook as nb
from sparsefuse.lab.experiments import matrixkan as exp

df = nb.experiment(exp, profile, device, keys=["method", "degree", "mode"],
                   degrees=degrees, grid_size=grid_size, n=n)

# %% [markdown]
# ## How to read it
#
# The x axis is the spline degree $k$ in every panel. The Cox–de Boor recursion does
# $O(k)$ passes over all $G+k$ bases, so its time grows with $k$ at a rate set by $G$;
# the power form replaces the recursion by one $(k+1)\times(k+1)$ product but still
# writes $G+k$ values per input; the local form writes only $k+1$. The gap between
# `power-dense` and `local` is the cost of materialising the zeros, the gap between
# `cox-de-boor` and `power-dense` the cost of the recursion itself. The memory panel
# shows what this costs in a training step (GPU only). The error panel checks that
# the faster forms are not less accurate: every method should stay within a small
# multiple of float32's rounding (about $6\times10^{-8}$ relative) of the float64
# values; a power form whose monomials lost precision as $k$ grows would show a
# rising line there.
#
# The headline table: forward+backward time in ms per method and degree, and each
# method's largest float32 error.

# %%
from sparsefuse.lab.book.tables import show

show(exp.headline(df))
