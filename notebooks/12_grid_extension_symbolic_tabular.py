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
# # Grid extension, symbolic recovery and tabular data
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/sparsefuse/sparsefuse/blob/main/notebooks/12_grid_extension_symbolic_tabular.ipynb)
#
# Three parts of the KAN workflow that a fast layer has to keep working:
#
# 1. **Grid extension.** Training starts on a coarse grid; at each stage every layer is
#    re-gridded to a finer $G$ by `KANLinear.extend_grid`, which refits the finer spline
#    by least squares so the learned function is kept, and training goes on. The
#    comparison is the finest grid trained from scratch for the same total number of
#    L-BFGS calls. Target: $\exp(\sin \pi x + y^2)$.
# 2. **Symbolic recovery.** KANs are trained on formulas with known parts; each learned
#    edge $\varphi(x)$ is fitted by $c\,g(ax+b)+d$ for $g \in \{\text{affine}, x^2, x^3,
#    \exp, \log, \sin, \tanh\}$ (`sparsefuse.symbolic`), and the simplest form that
#    explains the edge about as well as the best one is reported with its $R^2$.
# 3. **Tabular supplement.** scikit-learn's bundled breast_cancer, wine and digits
#    (test accuracy) and diabetes (test $R^2$), a KAN against an MLP with about the same
#    number of parameters, trained with the same optimiser and number of full-batch steps.

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
from sparsefuse.experiments import grid_extension_symbolic_tabular as exp

dev = nb.resolve_device(device)
df = exp.run(profile=profile, device=dev)
fig = exp.plot(df)
nb.publish(exp.NAME, df, fig, profile=profile, device=dev, params=exp.PROFILES[profile],
           keys=["part", "case", "model", "G"])

# %% [markdown]
# **How to read it.** Top left: the training loss across the whole coarse-to-fine run;
# the dotted lines mark the extension points, where the loss continues from where the
# coarser grid left it (the refit is near-exact, see `note`) and then drops further,
# while the finest grid trained from scratch (grey) starts from a random spline.
# Top right: test and train RMSE after each stage against $G$, with the $G^{-4}$ slope.
# Bottom left: the learned edges of the last symbolic task (thick) with the recovered
# formulas (dashed), each rescaled to fit one axis. Bottom right: the tabular test
# scores with the parameter count of each model above its bar.
#
# The symbolic recovery in one table — `metric` is the $R^2$ of the chosen form,
# `train_metric` the $R^2$ of the true form, `recovered` whether they are the same:

# %%
tables = exp.tables(df)
tables.get("symbolic")

# %% [markdown]
# The tabular comparison:

# %%
tables.get("tabular")

# %%
nb.publish(exp.NAME + "_curves", exp.curves(df), None, profile=profile, device=dev,
           params=exp.PROFILES[profile], show=False);

# %% [markdown]
# ## The learned edges, and pruning
#
# pykan's tools work on the fast layer too. `exp.prune_demo` trains a KAN wider than
# $\sin \pi x + y^2$ needs, $[2, 5, 1]$, with the sparsity penalty
# (`sparsefuse.fit(model, data, steps, reg=...)`); `KAN.prune(threshold, x)` removes the hidden
# neurons whose edges are inactive on the training data (mean $|\varphi|$ at most the
# threshold) and returns a smaller KAN, which is then retrained. `KAN.plot(x)` draws every
# edge $\varphi$ over the range of its input on the data, faded by that activity.

# %%
demo = exp.prune_demo(profile=profile, device=dev)
demo.model.plot(demo.x)

# %%
demo.pruned.plot(demo.x)

# %%
demo.table
