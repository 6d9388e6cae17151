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
# # Physics-informed KANs
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/sparsefuse/sparsefuse/blob/main/notebooks/08_pinns.ipynb)
#
# ## What this chapter reproduces
#
# **Paper:** SparseFuse (NeurIPS 2026 submission), main paper, kernel and systems results:
# the *PINN runtime, memory and accuracy experiments* (with the appendix's PINN supplements).
#
# **Claim tested:** the fused kernels carry the double backward a physics-informed loss
# needs, so a KAN PINN trains with a cheaper, leaner step than on efficient-kan's algorithm
# and reaches errors competitive with MLP baselines.
#
# **Verdict here**, from {glue:text}`pinns_source`. *Cost:* the fused KAN's training step
# was {glue:text}`pn_cmp_step` and used {glue:text}`pn_cmp_mem` (mean over the problems).
# *Accuracy* (relative $L^2$ error, lower is better): on the 2D Poisson problem the fused
# KAN reached {glue:text}`pn_p2_kan:.3g`, the tanh MLP {glue:text}`pn_p2_mlp:.3g`, the Fourier-feature
# MLP {glue:text}`pn_p2_ff:.3g` (best: {glue:text}`pn_p2_best`); on advection–diffusion
# {glue:text}`pn_ad_kan:.3g`, {glue:text}`pn_ad_mlp:.3g` and {glue:text}`pn_ad_ff:.3g` (best:
# {glue:text}`pn_ad_best`). On the 1D multiscale problem {glue:text}`pn_p1_text`; Fourier
# features, which fix it in Wang, Wang & Perdikaris (2021), {glue:text}`pn_p1_ff_text`
# (relative error {glue:text}`pn_p1_ff:.3g`). The runs were budgeted in time as well as in
# steps: {glue:text}`pn_budget_text`. Failed runs: {glue:text}`pn_failed_text`.
# {glue:text}`pn_acc_text`
#
# ## The problems
#
# A physics-informed network is trained on the PDE itself: the loss is the
# squared residual of the equation at random collocation points plus the
# mismatch with the boundary data. The residual contains $u''$ (or $\Delta u$),
# so every training step differentiates the network twice with respect to its
# input and then once more with respect to the weights. For a KAN that means
# the second derivative of every B-spline edge goes through the layer, and the
# fused kernel must support that double backward.
#
# Three problems, all with closed-form solutions so the error is exact:
#
# | problem | PDE | exact solution |
# |---|---|---|
# | 1D multiscale Poisson | $-u'' = f$ on $[0,1]$, $u(0)=u(1)=0$ | $u = \sin(2\pi x) + 0.1\sin(50\pi x)$ |
# | 2D Poisson | $-\Delta u = f$ on $[-1,1]^2$, Dirichlet data from $u$ | $u = \sin(\pi x)\,\sin(\pi y^2)$ |
# | advection–diffusion | $u_t + a u_x = \nu u_{xx}$ on $[0,1]^2$, $a=1$, $\nu=0.02$; $u(x,0)$, $u(0,t)$, $u(1,t)$ from $u$ | $u = e^{-\nu k^2 t}\sin(k(x-at))$, $k=2\pi$ |
#
# The forcing terms are derived by hand ($f = 4\pi^2\sin 2\pi x + 250\pi^2 \sin 50\pi x$ in 1D,
# $f = \sin(\pi x)\,[(\pi^2 + 4\pi^2y^2)\sin(\pi y^2) - 2\pi\cos(\pi y^2)]$ in 2D) and
# checked against autograd in the tests. The 1D problem is the setup of Wang, Wang &
# Perdikaris (2021), where a plain MLP fails because of spectral bias and random Fourier
# features fix it.
#
# Four networks get the same optimiser (Adam, learning rate decayed 10× over the run)
# and the same step budget, capped by a wall-clock budget per run (the `steps` column
# says how many each ran, `note` why it stopped): a KAN with `impl="auto"` (the fused
# kernel on a GPU; the `impl` column says which path ran), the same KAN pinned to the
# efficient-kan `reference` algorithm, a tanh MLP and a tanh MLP on random Fourier
# features.
#
# ## Run

# %% tags=["parameters"]
profile = "smoke"  # smoke (CPU, seconds) | quick (one GPU, about two minutes) | paper
device = "auto"  # auto | cpu | cuda

# %%
from sparsefuse.lab.book import notebook as nb
from sparsefuse.lab.experiments import pinns as exp

df = nb.experiment(exp, profile, device, keys=["problem", "model"], side={"curves": exp.curves})

# %% [markdown]
# ## How to read it
#
# First panel: relative $L^2$ error $\lVert u_\theta - u\rVert_2/\lVert u\rVert_2$ on a
# dense test grid, per problem and network (log scale, lower is better). Second: the cost
# of one training step including the double backward. Below them (in a run that kept its
# curves and solutions): the training loss of the 1D problem, its solution against the
# exact one, the pointwise error, and the pointwise error of the better KAN on the 2D
# problem. `peak_mib` is the peak GPU memory of the training loop (NaN on CPU, where
# PyTorch keeps no peak statistic). A run whose loss became NaN is stopped and shown as
# `diverged`, not dropped; one stopped by its time budget says so in `note`. The smoke
# profile trains for a handful of steps: its errors are near 1 by design, and only the
# reference results from the GPU say anything about accuracy.
#
# The last logged loss of every run (the whole curves are saved as their own table):

# %%
from sparsefuse.lab.book.tables import show

show(exp.curves(df).groupby(["problem", "model"]).tail(1))
