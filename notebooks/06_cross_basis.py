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
num_basis = None  # sizes for the cost sweep, e.g. [6, 12, 24, 48, 96]; None keeps the profile's
fit_num_basis = None  # sizes for the two fits; None keeps the profile's
fit2d_steps = None  # Adam steps of the 2D fit; None keeps the profile's

# %%
from sparsefuse.book import notebook as nb
from sparsefuse.experiments import cross_basis as exp

dev = nb.resolve_device(device)
overrides = {k: v for k, v in dict(num_basis=num_basis, fit_num_basis=fit_num_basis,
                                   fit2d_steps=fit2d_steps).items() if v is not None}
df = exp.run(profile=profile, device=dev, **overrides)
fig = exp.plot(df)
nb.publish(exp.NAME, df, fig, profile=profile, device=dev, params={**exp.PROFILES[profile], **overrides},
           keys=["part", "series", "num_basis"])

# %% [markdown]
# **How to read it.** All three panels share the x axis, basis functions per
# edge on a log scale. Left, cost: every densely evaluated basis grows with
# $n_b$, because the contraction multiplies an $N\times\mathrm{in}\cdot n_b$
# matrix; the global bases (Chebyshev, Fourier, RBF) have no sparsity to exploit,
# while the B-spline through the `sparse` and `fused` paths stays nearly flat.
# The power form (dashed) computes exactly the same B-splines as the Cox–de Boor
# form, so only its cost may differ. Middle, the 1D least-squares error: it falls
# with $n_b$ at a rate set by the basis' smoothness and locality; B-spline and
# power form coincide by construction, which doubles as a check. Right, the 2D
# error after training: here optimization matters too, so read it as "what a
# user gets with the same budget", not as the basis' best. Together the panels
# answer the practical question: for a target accuracy, which basis is cheapest —
# and whether the local support of the B-spline, which the fused path turns into
# speed, is worth its slower convergence against a global basis.
#
# The headline table: cost in ms and both fit errors per basis and size.

# %%
exp.headline(df)
