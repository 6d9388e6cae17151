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
# ## What this chapter reproduces
#
# **Paper:** SparseFuse (NeurIPS 2026 submission), main paper, kernel and systems results:
# *compile/checkpoint retention*.
#
# **Claim tested:** the fused path keeps its speed advantage over efficient-kan's algorithm
# when the model is wrapped in `torch.compile` and its activations are checkpointed, without
# graph breaks at the KAN layer.
#
# **Verdict here**, from {glue:text}`compile_checkpoint_source`, forward+backward of a small
# KAN stack: in eager mode the fused path was {glue:text}`cc_cmp_eager`; compiled,
# {glue:text}`cc_cmp_compile`; checkpointed, {glue:text}`cc_cmp_ckpt`; compiled and
# checkpointed, {glue:text}`cc_cmp_both`. The fastest compiled path was
# {glue:text}`cc_best_compile`. The retention claim {glue:text}`cc_claim`. As for the fused path
# itself, {glue:text}`cc_breaks_text`.
#
# ## The question
#
# Real training code wraps models in `torch.compile` and recomputes activations
# with `torch.utils.checkpoint` to fit memory. A fast kernel is only useful if it
# stays fast there: a graph break at the KAN layer splits the compiled graph, and
# a backward that falls back to a slow path under checkpointing gives the gain
# back — and the compiler may speed up the baseline more than the kernel. For a small
# stack of KAN layers and each contraction path, this notebook measures
# forward+backward time and peak memory in four variants — eager, compiled,
# checkpointed, compiled and checkpointed — together with the compile time (the
# first call) and the graph breaks Dynamo reports (`torch._dynamo.explain`).
#
# ## Run

# %% tags=["parameters"]
profile = "smoke"  # smoke (CPU, seconds; aot_eager backend) | quick (one GPU, inductor) | paper
device = "auto"  # auto | cpu | cuda
backend = None  # torch.compile backend; None keeps the profile's (aot_eager on smoke, inductor otherwise)
n = None  # batch size N; None keeps the profile's
width = None  # layer width; None keeps the profile's
grid_size = None  # G; None keeps the profile's

# %%
from sparsefuse.lab.book import notebook as nb
from sparsefuse.lab.experiments import compile_checkpoint as exp

df = nb.experiment(exp, profile, device, keys=["impl", "variant"],
                   backend=backend, n=n, width=width, grid_size=grid_size)

# %% [markdown]
# ## How to read it
#
# Top: forward+backward time per path (log scale), one bar per variant; compare the
# `fused` bars with the `reference` bars *of the same colour*: that is the speedup in
# each variant (table below). Middle: peak extra memory; checkpointing lowers it for
# the paths that keep large activations (the dense basis), at the price of one more
# forward in the backward pass. Bottom: wall time of the first compiled call (tracing,
# AOT autograd and code generation), labelled with the number of graph breaks in the
# forward. A path registered as a `torch.library` custom op with a fake implementation
# shows **0 br**; any break is listed with its reason in the table's `break_reasons`
# column. On the CPU smoke profile the backend is `aot_eager` (the same tracing, no
# code generation), so only the graph-break counts are meaningful there.
#
# The headline tables: time in ms per path and variant, then each path's speedup
# over `reference` in the same variant and the cost of each variant relative to
# eager.

# %%
from sparsefuse.lab.book.tables import show

show(exp.headline(df), unit="ms")

# %%
show(exp.summary(df), caption="ratios of times (above 1: faster than reference / slower than eager)")
