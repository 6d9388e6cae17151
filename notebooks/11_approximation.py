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
# ## What this chapter reproduces
#
# **Paper:** SparseFuse (NeurIPS 2026 submission), appendix experiments: the *convergence
# curves* and *grid-quality probes* (large-grid quality).
#
# **Claim tested:** a larger grid buys accuracy at the rate the KAN approximation theorem
# predicts, $G^{-(k+1)}$ ($G^{-4}$ for cubic splines), so the large-$G$ regime a fast kernel
# opens is worth reaching; a trained KAN reaches that rate only while optimisation and data
# keep up.
#
# **Verdict here**, from {glue:text}`approximation_source`: the least-squares fits fell with
# fitted slopes from {glue:text}`ap_ls_min:.2f` to {glue:text}`ap_ls_max:.2f` against the theory's
# {glue:text}`ap_theory:.0f` ({glue:text}`ap_ls_n:.0f` targets), {glue:text}`ap_ls_text`.
# {glue:text}`ap_tr_text` {glue:text}`ap_collapse_text` (The table of slopes is below the
# figure.)
#
# ## The question
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
#
# ## Run

# %% tags=["parameters"]
profile = "smoke"  # smoke (CPU, seconds) | quick (one GPU, about a minute) | paper
device = "auto"  # auto | cpu | cuda

# %%
from sparsefuse.lab.book import notebook as nb
from sparsefuse.lab.experiments import approximation as exp

df = nb.experiment(exp, profile, device, keys=["target", "method", "G"],
                   side={"curves": exp.curves, "rates": exp.fitted_rates})

# %% [markdown]
# ## How to read it
#
# Both error panels are log–log; the dotted black line has the theoretical slope
# $-(k+1) = -4$ and the grey one slope $-1$ for scale. The legend gives the
# least-squares slope of each curve (points with $G \ge 5$, above the float64 floor; for
# trained runs only up to the best $G$). In the first panel the least-squares fits
# follow $G^{-4}$ once the grid resolves the function: $J_0(20x)$ oscillates, so it needs
# $G \gtrsim 20$ before the asymptotic regime starts. In the second, training reaches the
# same rate only while the optimiser and the number of samples keep up; where the test
# curve leaves the dashed train curve the grid is fitting the sample, not the function —
# the large-grid quality limit. The third panel (in a run that kept its curves) shows how
# the training loss converges at each $G$ for $\exp(\sin \pi x + y^2)$.
#
# The fitted slopes beside the theory:

# %%
from sparsefuse.lab.book.tables import show

show(exp.fitted_rates(df))
