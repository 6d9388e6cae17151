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
# # Cross-basis scaling
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/sparsefuse/sparsefuse/blob/main/notebooks/06_cross_basis.ipynb)
#
# ## What this chapter reproduces
#
# **Paper:** SparseFuse (NeurIPS 2026 submission), appendix experiments: *cross-basis
# scaling*.
#
# **Claim tested:** at the same number of basis functions per edge $n_b$ (the same parameter
# count), a B-spline KAN layer through the fused path grows far more slowly in cost with
# $n_b$ than the global bases (Chebyshev, Fourier, RBF) evaluated densely, because only
# $k+1$ of its bases are non-zero.
#
# **Verdict here**, from {glue:text}`cross_basis_source`: from $n_b$ = {glue:text}`cb_nb_lo:.0f`
# to {glue:text}`cb_nb_hi:.0f` the fused B-spline layer's forward+backward time grew
# {glue:text}`cb_fused_growth_text`, the Chebyshev layer's {glue:text}`cb_cheb_growth_text`; at
# $n_b$ = {glue:text}`cb_nb_hi:.0f` the Chebyshev layer took {glue:text}`cb_fused_vs_cheb_text`
# the fused B-spline's time. {glue:text}`cb_cheaper_text` Accuracy is another matter: the most accurate basis in the 1D
# least-squares fit at $n_b$ = {glue:text}`cb_fit_nb:.0f` was {glue:text}`cb_acc_text`. The
# 2D trained errors depend on the optimiser as much as on the basis (see below).
#
# ## The question
#
# KAN variants replace the B-spline by other bases: Chebyshev polynomials
# (ChebyKAN), Gaussian radial basis functions (FastKAN), Fourier features
# (FourierKAN), or evaluate the same B-splines in MatrixKAN's power form. The fair
# comparison fixes the number of basis functions per edge, $n_b$, which fixes
# the parameter count $\mathrm{out}\cdot\mathrm{in}\cdot n_b$ for every basis
# ($n_b = G+k$ for splines, degree $+1$ for Chebyshev, the number of centres for
# RBF, twice the number of frequencies for Fourier). For each basis and $n_b$ this
# notebook measures:
#
# - **cost**: forward+backward time of one layer evaluated densely, plus the
#   B-spline through the `sparse` and `fused` paths, which use that only $k+1$
#   of its bases are non-zero;
# - **1D accuracy**: the least-squares optimum on $f(x) = e^{\sin \pi x} + 0.2\sin 6\pi x$
#   (so only the basis is compared, not an optimizer);
# - **2D accuracy**: a two-layer $[2, h, 1]$ KAN trained with Adam on the KAN
#   paper's $f(x, y) = e^{\sin \pi x + y^2}$.
#
# ## Run

# %% tags=["parameters"]
profile = "smoke"  # smoke (CPU, seconds) | quick (one GPU, under a minute) | paper (full sweep)
device = "auto"  # auto | cpu | cuda
num_basis = None  # sizes for the cost sweep, e.g. [6, 12, 24, 48, 96]; None keeps the profile's
fit_num_basis = None  # sizes for the two fits; None keeps the profile's
fit2d_steps = None  # Adam steps of the 2D fit; None keeps the profile's

# %%
from sparsefuse.lab.book import notebook as nb
from sparsefuse.lab.experiments import cross_basis as exp

df = nb.experiment(exp, profile, device, keys=["part", "series", "num_basis"],
                   num_basis=num_basis, fit_num_basis=fit_num_basis, fit2d_steps=fit2d_steps)

# %% [markdown]
# ## How to read it
#
# All three panels share the x axis, basis functions per edge on a log scale. Top,
# cost: every densely evaluated basis grows with $n_b$, because the contraction
# multiplies an $N\times\mathrm{in}\cdot n_b$ matrix; the global bases (Chebyshev,
# Fourier, RBF) have no sparsity to exploit. The B-spline through the `fused` path
# grows little; the `sparse` path is nearly flat too, but pays a fixed gather cost at
# every size, so at these sizes it is the slowest line. The power form (dashed)
# computes exactly the same B-splines as the Cox–de Boor form, so only its cost may
# differ. Middle, the 1D least-squares error: it falls with $n_b$ at a rate set by the
# basis' smoothness and locality (algebraically for the splines, faster for a global
# basis on a smooth target); B-spline and power form coincide by construction, which
# doubles as a check. Bottom, the 2D error after training: here optimisation matters
# too, so read it as "what a user gets with the same budget", not as the basis' best.
# Together the panels answer the practical question: for a target accuracy, which
# basis is cheapest — and whether the local support of the B-spline, which the fused
# path turns into speed, is worth its slower convergence against a global basis.
#
# The headline tables, one per panel: cost, then both fit errors per basis and size.

# %%
from sparsefuse.lab.book.tables import show

head = exp.headline(df)
show(head["cost (ms)"], caption="cost: forward+backward time of one layer (ms)")

# %%
show(head["1D RMSE"], caption="1D fit: test RMSE of the least-squares optimum")

# %%
show(head["2D RMSE"], caption="2D fit: test RMSE after training")
