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
# # JHCG under torch.compile, and in nanochat
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/sparsefuse/sparsefuse/blob/main/notebooks/13_jhcg_3_drift_portability.ipynb)
#
# This chapter reproduces the last two result families of the **JHCG appendix of
# the SparseFuse paper**:
#
# * **Compile drift.** `torch.compile` fuses and reorders floating-point work, so
#   a compiled model's loss is never bitwise the eager one. The question is whether
#   the difference stays at rounding level or grows through training. A MiniGPT with
#   JHCG `expanded` $\rho = 0.25$ FFNs, and one with MLP FFNs for calibration, each
#   train twice from the same seed on the same batches, eagerly and compiled;
#   measured: both loss curves, their largest and final absolute difference, both
#   validation losses and the throughput of each.
# * **nanochat portability scout.** Does the block work outside this repository's
#   model? Given a checkout of Karpathy's nanochat in `NANOCHAT_ROOT`, every
#   `mlp.c_fc`/`mlp.c_proj` block of its GPT is swapped for a JHCG block of the same
#   widths (`sparsefuse.experiments.jhcg_nanochat.swap_mlps`) and both models train a
#   few steps from the same seed on the same batches; measured: parameters, tokens/s,
#   peak memory, final training and validation loss. The paper reports this transfer
#   as exploratory; without a checkout the table records `skipped`.

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
profile = "smoke"  # smoke (CPU, seconds; aot_eager backend) | quick (one GPU, inductor, about a minute) | paper
device = "auto"  # auto | cpu | cuda

# %%
from sparsefuse.book import notebook as nb
from sparsefuse.experiments import jhcg_compile_drift as drift
from sparsefuse.experiments import jhcg_nanochat as nano

dev = nb.resolve_device(device)
df = drift.run(profile=profile, device=dev)
fig = drift.plot(df)
nb.publish(drift.NAME, df, fig, profile=profile, device=dev, params=drift.PROFILES[profile],
           keys=["section", "variant", "step"])
nb.glue_all(drift.key_numbers(df))

# %% [markdown]
# Left: the training-loss curves, eager solid and compiled dashed; right: their
# absolute difference per step (steps where the two agree exactly are not drawn).
# Over {glue:text}`cd_steps:.0f` steps the JHCG model's compiled and eager losses differed
# by at most {glue:text}`cd_max:.3g` (at step {glue:text}`cd_step:.0f`) and by
# {glue:text}`cd_final:.3g` at the last step; the MLP model's largest difference, the
# compiler's drift in a model without KAN layers, was {glue:text}`cd_mlp_max:.3g`. The
# validation losses were {glue:text}`cd_val_eager:.4f` (eager) and
# {glue:text}`cd_val_compiled:.4f` (compiled), and compiling changed the JHCG model's training
# throughput by a factor of {glue:text}`cd_speedup:.2f`. On the CPU smoke profile the
# backend is `aot_eager`, which runs the eager kernels: there the difference is at
# rounding level by construction, and only the plumbing is tested.

# %%
drift.summary(df)

# %% [markdown]
# ## nanochat portability scout

# %%
import os

from IPython.display import Markdown, display

from sparsefuse.book import results

nc = nano.run(profile=profile, device=dev)
if (nc["status"] == "ok").any():
    nb.publish(nano.NAME, nc, None, profile=profile, device=dev,
               params=dict(nano.PROFILES[profile], nanochat_root=os.environ.get(nano.ENV, "")), keys=["variant"])
else:  # nothing measured: keep whatever result is committed instead of replacing it with skipped rows
    ref = results.reference(nano.NAME)
    display(Markdown(f"Not measured in this run ({nc['note'].iloc[0]}); no result is saved. "
                     + (f"Committed result: {ref.describe()}." if ref is not None else "No result is committed.")))
    if ref is not None:
        display(ref.table())

# %% [markdown]
# One row for nanochat's own MLP, one with JHCG swapped in (`mlps_swapped` counts
# the blocks replaced; `nanochat_commit` names the checkout). The scout trains with
# AdamW under bf16 autocast, not nanochat's own Muon recipe: it shows that the block
# plugs into a foreign model, fits and learns there, not which model is better.
# To run it, clone nanochat next to this repository and point `NANOCHAT_ROOT` at it:
#
# ```bash
# git clone https://github.com/karpathy/nanochat ../nanochat
# NANOCHAT_ROOT=$PWD/../nanochat python -m sparsefuse.book run 13_jhcg_3_drift_portability --profile quick --device cuda
# ```

# %%
nc[["label", "mlps_swapped", "params", "tokens_per_s", "peak_mib", "final_loss", "val_loss", "status", "note"]]
