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
# # torch.compile and activation checkpointing
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/sparsefuse/sparsefuse/blob/main/notebooks/04_compile_checkpoint.ipynb)
#
# Real training code wraps models in `torch.compile` and recomputes activations
# with `torch.utils.checkpoint` to fit memory. A fast kernel is only useful if it
# stays fast there: a graph break at the KAN layer splits the compiled graph, and
# a backward that falls back to a slow path under checkpointing gives the gain
# back. For a small stack of KAN layers and each contraction path, this notebook
# measures forward+backward time and peak memory in four variants — eager,
# compiled, checkpointed, compiled and checkpointed — together with the compile
# time (the first call) and the graph breaks Dynamo reports
# (`torch._dynamo.explain`).

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
profile = "smoke"  # smoke (CPU, seconds; aot_eager backend) | quick (one GPU, inductor) | paper
device = "auto"  # auto | cpu | cuda
backend = None  # torch.compile backend; None keeps the profile's (aot_eager on smoke, inductor otherwise)
n = None  # batch size N; None keeps the profile's
width = None  # layer width; None keeps the profile's
grid_size = None  # G; None keeps the profile's

# %%
from sparsefuse.book import notebook as nb
from sparsefuse.experiments import compile_checkpoint as exp

dev = nb.resolve_device(device)
overrides = {k: v for k, v in dict(backend=backend, n=n, width=width, grid_size=grid_size).items()
             if v is not None}
df = exp.run(profile=profile, device=dev, **overrides)
fig = exp.plot(df)
nb.publish(exp.NAME, df, fig, profile=profile, device=dev, params={**exp.PROFILES[profile], **overrides},
           keys=["impl", "variant"])

# %% [markdown]
# **How to read it.** Left: forward+backward time per path (log scale), one bar
# per variant; the question is whether the `fused` bars stay the lowest in every
# variant, i.e. whether its lead over `reference` survives compilation and
# checkpointing. Middle: peak extra memory; checkpointing should lower it for the
# paths that keep large activations (the dense basis), at the price of one more
# forward in the backward pass. Right: wall time of the first compiled call
# (tracing, AOT autograd and code generation), labelled with the number of graph
# breaks in the forward. A path registered as a `torch.library` custom op with a
# fake implementation should show **0 br**; any break is listed with its reason
# in the table's `break_reasons` column. On the CPU smoke profile the backend is
# `aot_eager` (the same tracing, no code generation), so only the graph-break
# counts are meaningful there.
#
# The headline tables: time in ms per path and variant, then each path's speedup
# over `reference` in the same variant and the cost of each variant relative to
# eager.

# %%
exp.headline(df)

# %%
exp.summary(df)
