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
# # Approximation quality against the grid size
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/sparsefuse/sparsefuse/blob/main/notebooks/11_approximation.ipynb)
#
# Why grow the grid at all? The KAN approximation theorem (Liu et al., 2024) says that
# when a function has a smooth Kolmogorov–Arnold representation, an order-$k$ spline KAN
# with $G$ grid intervals approximates it with error $\le C\,G^{-(k+1)}$, independent of
# the input dimension: $G^{-4}$ for cubic splines. A fast large-$G$ kernel only pays off
# if that rate is real. This notebook measures it on the KAN paper's toy functions
# $J_0(20x)$, $\exp(\sin \pi x)$, $\exp(\sin \pi x + y^2)$ and $xy$, two ways:
#
# * **pure rate** — every univariate function of the known representation is fitted by
#   least squares (`KANLinear.curve2coeff`, float64) and the composition is evaluated;
#   no optimiser is involved, so the slope is the spline's own.
# * **practical curve** — a KAN of the matching shape ($[1,1]$, $[2,1,1]$, $[2,2,1]$) is
#   trained from a random start by L-BFGS at each $G$ on a fixed training set; train and
#   test RMSE are both reported, so overfitting at large $G$ shows as a gap.

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
profile = "smoke"  # smoke (CPU, seconds) | quick (one GPU, about a minute) | paper
device = "auto"  # auto | cpu | cuda

# %%
from sparsefuse.book import notebook as nb
from sparsefuse.experiments import approximation as exp

dev = nb.resolve_device(device)
df = exp.run(profile=profile, device=dev)
fig = exp.plot(df)
nb.publish(exp.NAME, df, fig, profile=profile, device=dev, params=exp.PROFILES[profile],
           keys=["target", "method", "G"])

# %% [markdown]
# **How to read it.** Both error panels are log–log; the dotted black line has the
# theoretical slope $-(k+1) = -4$ and the grey one slope $-1$ for scale. The legend gives
# the least-squares slope of each curve (points with $G \ge 5$, above the float64 floor;
# for trained runs only up to the best $G$). On the left the least-squares fits should
# follow $G^{-4}$ once the grid resolves the function: $J_0(20x)$ oscillates, so it needs
# $G \gtrsim 20$ before the asymptotic regime starts. On the right, training reaches the
# same rate only while the optimiser and the number of samples keep up; where the test
# curve leaves the dashed train curve the grid is fitting the sample, not the function —
# the large-grid quality limit. The right panel shows how the training loss converges
# at each $G$ for $\exp(\sin \pi x + y^2)$.
#
# The fitted slopes beside the theory:

# %%
exp.fitted_rates(df)

# %%
nb.publish(exp.NAME + "_curves", exp.curves(df), None, profile=profile, device=dev,
           params=exp.PROFILES[profile], show=False)
nb.publish(exp.NAME + "_rates", exp.fitted_rates(df), None, profile=profile, device=dev,
           params=exp.PROFILES[profile], show=False);
