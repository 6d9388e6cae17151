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
# # Layer microbenchmarks
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/sparsefuse/sparsefuse/blob/main/notebooks/01_layer_microbenchmarks.ipynb)
#
# What does a KAN layer cost next to the `torch.nn.Linear` it replaces, and how
# does that cost grow with the grid size $G$? Each input activates only $k+1$ of
# the $G+k$ B-spline bases of order $k$, so a dense formulation spends most of its
# work on zeros once $G$ grows: the useful share, the *density*, is $(k+1)/(G+k)$.
# This notebook times a linear layer and every available path of the KAN layer over
# a sweep of $G$, forward and forward+backward.

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
profile = "smoke"  # smoke (CPU, seconds) | quick (one GPU, about a minute) | paper
device = "auto"  # auto | cpu | cuda

# %%
from sparsefuse.book import notebook as nb
from sparsefuse.experiments import layer_microbench as exp

dev = nb.resolve_device(device)
df = exp.run(profile=profile, device=dev)
fig = exp.plot(df)
nb.publish(exp.NAME, df, fig, profile=profile, device=dev, params=exp.PROFILES[profile])

# %% [markdown]
# The left panel is inference (forward only), the right one training
# (forward+backward); both axes are logarithmic. The linear layer is flat in $G$:
# it has no grid. A dense KAN path grows roughly linearly with $G$, because it
# multiplies an $N \times \mathrm{in}\cdot(G+k)$ basis matrix that is mostly zeros;
# the gap between it and the paths that touch only the $k+1$ active bases is the
# cost of the wasted density. On the CPU smoke profile the sizes are tiny and the
# times mostly measure Python overhead; the reference figure from the GPU shows
# the real shape.
#
# ## Explore the sweep
#
# Move the grid-size slider, or the density slider (the two select the same
# points), to read each path's time at that point and its ratio to the linear
# layer. The widget carries the whole sweep, so it also works in the static book.

# %%
exp.explorer(df)
