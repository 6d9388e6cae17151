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
# ## What this chapter reproduces
#
# **Paper:** SparseFuse (NeurIPS 2026 submission), JHCG appendix: the *compile-drift
# diagnostics* and the *nanochat portability scouts* (which the paper reports as
# exploratory).
#
# **Claim tested:** a model with JHCG blocks compiles with `torch.compile` without its loss
# drifting beyond the compiler's ordinary rounding, and the block plugs into a foreign
# Transformer (nanochat) and trains there.
#
# **Verdict here**, from {glue:text}`jhcg_compile_drift_source`: over
# {glue:text}`cd_steps:.0f` steps the JHCG model's compiled and eager losses differed by at most
# {glue:text}`cd_max:.3g`, {glue:text}`jv_cd_text`; compiling changed its training throughput
# by a factor of {glue:text}`cd_speedup:.2f`. The nanochat scout {glue:text}`jv_nc_text`. There
# is no committed GPU reference for this appendix yet: on a CPU build these are the smoke
# run's numbers (with the `aot_eager` backend, at rounding level by construction).
#
# ## The two studies
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
#
# ## Run: compile drift

# %% tags=["parameters"]
profile = "smoke"  # smoke (CPU, seconds; aot_eager backend) | quick (one GPU, inductor, about a minute) | paper
device = "auto"  # auto | cpu | cuda

# %%
from sparsefuse.book import notebook as nb
from sparsefuse.experiments import jhcg_compile_drift as drift
from sparsefuse.experiments import jhcg_nanochat as nano

df = nb.experiment(drift, profile, device, keys=["section", "variant", "step"])

# %% [markdown]
# ## How to read it
#
# Top: the training-loss curves, eager solid and compiled dashed; bottom: their
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
from sparsefuse.book.tables import show

show(drift.summary(df))

# %% [markdown]
# ## nanochat portability scout

# %%
nc = nb.experiment(nano, profile, device, keys=["variant"], only_measured=True)

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
show(nc[["label", "mlps_swapped", "params", "tokens_per_s", "peak_mib", "final_loss", "val_loss", "status",
         "note"]])
