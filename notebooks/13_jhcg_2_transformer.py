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
# **What the paper reported:** the paper artifact's README lists "controlled Transformer audits"
# and "S4 attribution/adaptation diagnostics" among its JHCG appendix experiments, with their
# scripts (`train_controlled_transformer.py`, `eval_s4_attribution.py`,
# `run_adaptation_diagnostics.py`, `analysis/controlled_transformer_controlled_transformer_audit.py`)
# and summary tables (`tables/controlled_transformer/controlled_transformer_main_matrix_audit.csv`,
# `controlled_transformer_adapt_summary.csv`), but it states none of their numbers, nor the sign
# of any gain: whether JHCG beat its parameter-matched control in the paper is not stated there.
# It adds that full runs "require prepared tokenized data and H100-class GPU memory". What this
# page measures is therefore compared with the control, not with a paper number.
#
# **Claim tested:** when a JHCG block replaces a Transformer's MLP feed-forward block, a
# change in validation loss must be measured against an MLP FFN widened to the same
# parameter count, and attributed to the KAN path only if removing that path hurts the
# trained model.
#
# **Verdict here**, from {glue:text}`jhcg_audit_source`, for each of the
# {glue:text}`jv_au_count:d` JHCG variants (gain = matched MLP's loss − JHCG's, positive: JHCG
# lower, as in every table and figure below; a gain counts only if it exceeds the larger of the
# two standard deviations over seeds): {glue:text}`jv_au_variants`. {glue:text}`jv_au_text`. From
# {glue:text}`jhcg_attribution_source`, {glue:text}`jv_at_rely`; per seed, JHCG was below its
# control for {glue:text}`jv_at_seeds`. {glue:text}`jv_evidence_2`
#
# ## The three studies
#
# The question behind all three: when a JHCG block (previous chapter) replaces a
# Transformer's MLP feed-forward block and the loss changes, is that the KAN path's
# doing, or only the parameters the block adds?
#
# * **Controlled audit.** MiniGPT (`sparsefuse.lab.models.minigpt`, the model of the
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
# provenance records which; the run shown first used {glue:text}`jv_au_corpus`).
#
# ## Run: the controlled audit

# %% tags=["parameters"]
profile = "smoke"  # smoke (CPU, seconds) | quick (one GPU, about 2 minutes) | paper
device = "auto"  # auto | cpu | cuda

# %%
from sparsefuse.lab.book import notebook as nb
from sparsefuse.lab.experiments.jhcg import adaptation as adapt
from sparsefuse.lab.experiments.jhcg import attribution as attr
from sparsefuse.lab.experiments.jhcg import audit

df = nb.experiment(audit, profile, device, keys=["section", "variant", "seed", "step"])

# %% [markdown]
# ## How to read it
#
# Top: validation loss per variant, mean ± std over {glue:text}`au_seeds:d` seeds of
# {glue:text}`au_steps:d` steps each (JHCG blue, MLPs grey, KAN green). Middle: training
# throughput. Bottom: the training-loss curves, averaged over seeds.
#
# Here JHCG `expanded` $\rho = 0.25$ ({glue:text}`au_params_jhcg:,.0f` parameters,
# against {glue:text}`au_params_mlp:,.0f` with the MLP FFN) reached a validation loss of
# {glue:text}`au_jhcg:.4f` ± {glue:text}`au_jhcg_std:.4f` nats/char; the MLP FFN widened to
# the same parameter count reached {glue:text}`au_matched:.4f` ± {glue:text}`au_matched_std:.4f`,
# the plain MLP FFN {glue:text}`au_mlp:.4f` ± {glue:text}`au_mlp_std:.4f` and the KAN FFN
# {glue:text}`au_kan:.4f` ± {glue:text}`au_kan_std:.4f`. Its gain over its parameter-matched
# control is {glue:text}`au_gain:+.4f` nats/char (positive: JHCG lower), and it trained
# {glue:text}`jv_au_tps` (tokens/s). A gain smaller than the seeds' standard deviations is no
# gain.
#
# The matrix table (`gain_vs_mlp`, `gain_vs_matched_mlp`: the baseline's mean validation loss
# minus the variant's, positive = the variant lower):

# %%
from sparsefuse.lab.book.tables import show

show(audit.matrix(df)[["label", "params", "seeds_ok", "val_loss", "gain_vs_mlp", "gain_vs_matched_mlp",
                         "tokens_per_s", "peak_mib"]])

# %% [markdown]
# ## Attribution
#
# The models are the audit's, evaluated on the same validation windows; every JHCG
# block of a model is changed at once.

# %%
at = nb.experiment(attr, profile, device, keys=["variant", "seed", "intervention"])

# %% [markdown]
# A loss change is the intervened loss minus the loss as trained (positive: the loss rose); the
# gain over the matched MLP has the sign of the matrix table (positive: JHCG lower). Mean loss
# changes over seeds, per variant: {glue:text}`jv_at_changes`. Read together:
# {glue:text}`jv_at_rely`. Whether that use pays beyond the added parameters is the gain: per
# seed, JHCG was below its parameter-matched control for {glue:text}`jv_at_seeds`. The audit's
# verdict above, which holds the mean gains against the spread over seeds, reads:
# {glue:text}`jv_au_text`.

# %%
show(attr.summary(at))

# %% [markdown]
# ## Adaptation diagnostics

# %%
ad = nb.experiment(adapt, profile, device, keys=["variant", "seed", "step", "layer"])
from sparsefuse.lab.experiments.jhcg import words

nb.glue("jv_evidence_2", words.evidence_note(all(words.measured(e.NAME, t, profile, device)
                                                 for e, t in ((audit, df), (attr, at), (adapt, ad)))))

# %% [markdown]
# Lines are means over layers and seeds, bands the range over layers. From the first probe to
# the last, {glue:text}`jv_ad_variants`. A KAN input outside the spline grid sees only the SiLU
# branch, so a rising share means training moves the KAN inputs away from where the splines
# act; here the share {glue:text}`jv_ad_outside`. The coefficient drift says how far the splines moved,
# not whether that helped; the audit above says that.

# %%
show(adapt.summary(ad))
