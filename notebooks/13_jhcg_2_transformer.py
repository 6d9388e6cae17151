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
# # JHCG in a Transformer: controlled audit, attribution, adaptation
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/sparsefuse/sparsefuse/blob/main/notebooks/13_jhcg_2_transformer.ipynb)
#
# ## What this chapter reproduces
#
# **Paper:** SparseFuse (NeurIPS 2026 submission), JHCG appendix: the *controlled
# Transformer audit* and the *attribution and adaptation diagnostics* (S4 attribution, S2
# adaptation).
#
# **Claim tested:** when a JHCG block replaces a Transformer's MLP feed-forward block, a
# change in validation loss must be measured against an MLP FFN widened to the same
# parameter count, and attributed to the KAN path only if removing that path hurts the
# trained model.
#
# **Verdict here**, from {glue:text}`jhcg_audit_source`: JHCG `expanded` $\rho = 0.25$
# reached {glue:text}`au_jhcg:.4f` nats/char against {glue:text}`au_matched:.4f` for its
# parameter-matched MLP, a gain of {glue:text}`au_gain:+.4f` (positive: JHCG lower), which is
# {glue:text}`jv_au_text`. Zeroing its KAN path changed the loss by {glue:text}`at_no_kan:+.4f`,
# forcing the gate closed (MLP path only) by {glue:text}`at_closed:+.4f`. There is no
# committed GPU reference for this appendix yet: on a CPU build these are the smoke run's
# numbers, which prove only that the code runs.
#
# ## The three studies
#
# The question behind all three: when a JHCG block (previous chapter) replaces a
# Transformer's MLP feed-forward block and the loss changes, is that the KAN path's
# doing, or only the parameters the block adds?
#
# * **Controlled audit.** MiniGPT (`sparsefuse.models.minigpt`, the model of the
#   MiniGPT-KAN chapter) with *only its FFN changed*: the MLP FFN, the MLP FFN widened
#   to each JHCG block's parameter count (the control), the KAN FFN, and JHCG
#   `compact` and `expanded` at $\rho = 0.25$. Attention, embeddings, optimizer,
#   schedule, batches and tokens seen are identical; each variant trains from
#   several seeds. Measured: validation loss (mean ± std over seeds), training
#   tokens/s and peak memory, in one matrix table.
# * **Attribution.** Every trained JHCG model is evaluated again with all its JHCG
#   blocks changed: the gate forced open (KAN path only) or closed (MLP path only),
#   or one path zeroed with the learned gate kept. The loss changes say which path
#   the model relies on; the gain over the parameter-matched MLP, trained from the
#   same seed, says how much of the result added parameters alone do not explain.
# * **Adaptation diagnostics.** During training, on fixed validation windows: gate
#   statistics, the KAN path's share of the block output, the share of KAN inputs
#   that fall outside the spline grid (where only the SiLU base branch acts), and
#   how far the spline coefficients drift from their initial values.
#
# The text is character-level, as in the MiniGPT-KAN chapter: a corpus under
# `DATA_ROOT` when there is one, else the Python standard library's source (the
# provenance records which).
#
# ## Run: the controlled audit

# %% tags=["parameters"]
profile = "smoke"  # smoke (CPU, seconds) | quick (one GPU, about 2 minutes) | paper
device = "auto"  # auto | cpu | cuda

# %%
from sparsefuse.book import notebook as nb
from sparsefuse.experiments import jhcg_adaptation as adapt
from sparsefuse.experiments import jhcg_attribution as attr
from sparsefuse.experiments import jhcg_audit as audit

df = nb.experiment(audit, profile, device, keys=["section", "variant", "seed", "step"])

# %% [markdown]
# ## How to read it
#
# Top: validation loss per variant, mean ± std over {glue:text}`au_seeds:d` seeds of
# {glue:text}`au_steps:d` steps each (JHCG blue, MLPs grey, KAN green). Middle: training
# throughput. Bottom: the training-loss curves, averaged over seeds.
#
# In this run JHCG `expanded` $\rho = 0.25$ ({glue:text}`au_params_jhcg:,.0f` parameters,
# against {glue:text}`au_params_mlp:,.0f` with the MLP FFN) reached a validation loss of
# {glue:text}`au_jhcg:.4f` ± {glue:text}`au_jhcg_std:.4f` nats/char; the MLP FFN widened to
# the same parameter count reached {glue:text}`au_matched:.4f` ± {glue:text}`au_matched_std:.4f`,
# the plain MLP FFN {glue:text}`au_mlp:.4f` ± {glue:text}`au_mlp_std:.4f` and the KAN FFN
# {glue:text}`au_kan:.4f` ± {glue:text}`au_kan_std:.4f`. The JHCG model's gain over its
# parameter-matched control is {glue:text}`au_gain:+.4f` nats/char (positive: JHCG lower),
# at {glue:text}`au_tps_ratio:.2f`× the MLP model's training tokens/s. A gain smaller than
# the seeds' standard deviations is no gain. On the CPU smoke profile the model is
# tiny and trains for a few steps: the numbers prove the code path only.
#
# The matrix table (`vs_mlp`, `vs_matched_mlp`: difference of mean validation loss,
# negative = lower than the baseline):

# %%
from sparsefuse.book.tables import show

show(audit.matrix(df)[["label", "params", "seeds_ok", "val_loss", "vs_mlp", "vs_matched_mlp",
                         "tokens_per_s", "peak_mib"]])

# %% [markdown]
# ## Attribution
#
# The models are the audit's, evaluated on the same validation windows; every JHCG
# block of a model is changed at once.

# %%
at = nb.experiment(attr, profile, device, keys=["variant", "seed", "intervention"])

# %% [markdown]
# For JHCG `expanded` $\rho = 0.25$, averaged over seeds: forcing the gate closed
# (MLP path only) changed the validation loss by {glue:text}`at_closed:+.4f`, zeroing the KAN
# path with the learned gate kept by {glue:text}`at_no_kan:+.4f`; forcing the gate open (KAN
# path only) by {glue:text}`at_open:+.4f` and zeroing the MLP path by
# {glue:text}`at_no_mlp:+.4f`. Its mean gain over the parameter-matched MLP was
# {glue:text}`at_gain:+.4f`. Read together: a model whose loss rises when the KAN path is
# removed uses it; whether that use pays beyond the added parameters is the gain
# column, and its sign is what the JHCG appendix reports.

# %%
show(attr.summary(at))

# %% [markdown]
# ## Adaptation diagnostics

# %%
ad = nb.experiment(adapt, profile, device, keys=["variant", "seed", "step", "layer"])

# %% [markdown]
# Lines are means over layers and seeds, bands the range over layers. For JHCG
# `expanded` $\rho = 0.25$ the gate mean moved from {glue:text}`ad_gate_mean_start:.3f` to
# {glue:text}`ad_gate_mean_end:.3f` (gate values above 0.9: {glue:text}`ad_gate_open_end:.1%`,
# below 0.1: {glue:text}`ad_gate_closed_end:.1%` at the end), and the KAN path's share of the
# block output from {glue:text}`ad_kan_share_start:.1%` to {glue:text}`ad_kan_share_end:.1%`.
# The share of KAN inputs outside the spline grid went from
# {glue:text}`ad_outside_grid_start:.1%` to {glue:text}`ad_outside_grid_end:.1%`: inputs that
# leave the grid see only the SiLU branch, so a rising share means training moves the
# KAN inputs away from where the splines act. The scaled spline coefficients ended
# {glue:text}`ad_coeff_drift_end:.2f` (relative Frobenius norm) away from their
# initialisation; a large relative drift is expected and says the splines were
# learned, not that they diverged.

# %%
show(adapt.summary(ad))
