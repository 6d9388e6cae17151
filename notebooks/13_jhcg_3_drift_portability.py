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
# diagnostics* and the *nanochat portability scouts*.
#
# **What the paper reported:** the paper artifact's README lists "compile-drift diagnostics" and
# "nanochat portability scouts" among its JHCG appendix experiments. Of the compile drift it
# states no number or conclusion. Of nanochat it says that "JHCG nanochat transfer is reported as
# exploratory/negative in the paper and is not a main SparseFuse systems claim", and that the
# nanochat runs need an external checkout (`scripts/prepare_nanochat_external.sh`,
# `NANOCHAT_ROOT`) and "cannot be fully reproduced by a single local command"; it gives no
# nanochat number either.
#
# **Claim tested** (this book's reading of the compile-drift study): a model with JHCG blocks
# compiles with `torch.compile` without its loss drifting further from the eager run's than a
# plain MLP model's does; and the block plugs into a foreign Transformer (nanochat) and trains there.
#
# **Verdict here**, from {glue:text}`jhcg_compile_drift_source`: over
# {glue:text}`cd_steps:.0f` steps the JHCG model's compiled and eager losses differed by at most
# {glue:text}`cd_max:.3g`, {glue:text}`jv_cd_text`; two magnitudes are called "of the same
# order" here only within a factor of {glue:text}`cd_order_factor:g`. The claim
# {glue:text}`jv_cd_claim`. Compiled training against eager (tokens/s): {glue:text}`jv_cd_speed`.
# {glue:text}`jv_cd_backend` The nanochat scout
# {glue:text}`jv_nc_text`. {glue:text}`jv_evidence_3`
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
#   widths (`sparsefuse.lab.experiments.jhcg.nanochat.swap_mlps`) and both models train a
#   few steps from the same seed on the same batches; measured: parameters, tokens/s,
#   peak memory, final training and validation loss. The paper reports this transfer
#   as "exploratory/negative" (its artifact's words); without a checkout the table
#   records `skipped`.
#
# ## Run: compile drift

# %% tags=["parameters"]
profile = "smoke"  # smoke (CPU, seconds; aot_eager backend) | quick (one GPU, inductor, about a minute) | paper
device = "auto"  # auto | cpu | cuda

# %%
from sparsefuse.lab.book import notebook as nb
from sparsefuse.lab.experiments.jhcg import compile_drift as drift
from sparsefuse.lab.experiments.jhcg import nanochat as nano

df = nb.experiment(drift, profile, device, keys=["section", "variant", "step"])

# %% [markdown]
# ## How to read it
#
# Top: the training-loss curves, eager solid and compiled dashed; bottom: their
# absolute difference per step (steps where the two agree exactly are not drawn).
# Over {glue:text}`cd_steps:.0f` steps the JHCG model's compiled and eager losses differed
# by at most {glue:text}`cd_max:.3g` (at step {glue:text}`cd_step:.0f`) and by
# {glue:text}`cd_final:.3g` at the last step. That largest difference was
# {glue:text}`jv_cd_text`: the compiler's drift in a model without KAN layers. The JHCG
# model's validation losses were {glue:text}`cd_val_eager:.4f` (eager) and {glue:text}`cd_val_compiled:.4f` (compiled), and
# compiled training ran {glue:text}`jv_cd_jhcg_speed` (tokens/s, compiled ÷ eager:
# {glue:text}`cd_speedup:.2f`). {glue:text}`jv_cd_backend`

# %%
from sparsefuse.lab.book.tables import show

show(drift.summary(df))

# %% [markdown]
# ## nanochat portability scout

# %%
nc = nb.experiment(nano, profile, device, keys=["variant"], only_measured=True)
from sparsefuse.lab.experiments.jhcg import words

nb.glue("jv_evidence_3", words.evidence_note(words.measured(drift.NAME, df, profile, device)))
nb.glue("jv_nc_reference", words.reference_note(nano.NAME))

# %% [markdown]
# One row for nanochat's own MLP, one with JHCG swapped in (`mlps_swapped` counts
# the blocks replaced; `nanochat_commit` names the checkout). The scout trains with
# AdamW under bf16 autocast, not nanochat's own Muon recipe: it shows that the block
# plugs into a foreign model, fits and learns there, not which model is better.
# {glue:text}`jv_nc_reference`; a run without `NANOCHAT_ROOT` records `skipped`.
# To run it, clone nanochat next to this repository and point `NANOCHAT_ROOT` at it:
#
# ```bash
# git clone https://github.com/karpathy/nanochat ../nanochat
# NANOCHAT_ROOT=$PWD/../nanochat python -m sparsefuse.lab.book run 13_jhcg_3_drift_portability --profile quick --device cuda
# ```

# %%
show(nc[["label", "mlps_swapped", "params", "tokens_per_s", "peak_mib", "final_loss", "val_loss", "status",
         "note"]])
