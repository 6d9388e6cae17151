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
# features fix it; it is the hard case here too.
#
# Four networks get the same optimiser (Adam, learning rate decayed 10× over the run)
# and the same number of steps: a KAN with `impl="auto"` (the fused kernel on a GPU;
# the `impl` column says which path ran), the same KAN pinned to the efficient-kan
# `reference` algorithm, a tanh MLP and a tanh MLP on random Fourier features.

# %% tags=["remove-cell"]
# In Colab: install this repository (torch and triton are already there).
import sys

if "google.colab" in sys.modules:
    import subprocess

    subprocess.run([sys.executable, "-m", "pip", "install", "-q",
                    "sparsefuse[colab] @ git+https://github.com/sparsefuse/sparsefuse"], check=True)
    import torch

    if not torch.cuda.is_available():
        print("No GPU: choose Runtime > Change runtime type > GPU to train at the 'quick' profile. "
              "On CPU this notebook runs the tiny 'smoke' profile only.")

# %% tags=["parameters"]
profile = "smoke"  # smoke (CPU, seconds) | quick (one GPU, about two minutes) | paper
device = "auto"  # auto | cpu | cuda

# %%
from sparsefuse.book import notebook as nb
from sparsefuse.experiments import pinns as exp

dev = nb.resolve_device(device)
df = exp.run(profile=profile, device=dev)
fig = exp.plot(df)
nb.publish(exp.NAME, df, fig, profile=profile, device=dev, params=exp.PROFILES[profile],
           keys=["problem", "model"])

# %% [markdown]
# **How to read it.** Top left: relative $L^2$ error $\lVert u_\theta - u\rVert_2/\lVert u\rVert_2$
# on a dense test grid, per problem and network (log scale, lower is better); top middle:
# the cost of one training step including the double backward; top right: the training
# loss of the 1D problem. Bottom: the 1D solution against the exact one, its pointwise
# error, and the pointwise error of the better KAN on the 2D problem. `peak_mib` is the
# peak GPU memory of the training loop (NaN on CPU, where PyTorch keeps no peak
# statistic). A run whose loss became NaN is stopped and shown as `diverged`, not
# dropped. The smoke profile trains for a handful of steps: its errors are near 1 by
# design, and only the reference results from the GPU say anything about accuracy.
#
# The loss curves behind the top-right panel are saved as their own table:

# %%
nb.publish(exp.NAME + "_curves", exp.curves(df), None, profile=profile, device=dev,
           params=exp.PROFILES[profile], show=False)
exp.curves(df).groupby(["problem", "model"]).tail(1)
