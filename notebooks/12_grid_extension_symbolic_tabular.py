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
# # Grid extension, symbolic recovery and tabular data
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/sparsefuse/sparsefuse/blob/main/notebooks/12_grid_extension_symbolic_tabular.ipynb)
#
# ## What this chapter reproduces
#
# **Paper:** SparseFuse (NeurIPS 2026 submission), appendix experiments: the *grid
# extension* and *symbolic/tabular supplements*.
#
# **Claim tested:** the parts of the KAN workflow that a fast layer must keep working still
# work on it: growing the grid by `extend_grid` beats training the fine grid from scratch
# with the same budget, learned edges can be read back as formulas, and on small tabular
# data a KAN is on par with a parameter-matched MLP.
#
# **Verdict here**, from {glue:text}`grid_extension_symbolic_tabular_source`. *Grid extension:*
# after the last stage ($G$ = {glue:text}`ge_g_hi:.0f`) the extended KAN's test RMSE was
# {glue:text}`ge_ext_rmse:.3g`, {glue:text}`ge_vs_fixed` the {glue:text}`ge_fixed_rmse:.3g` of the same
# grid trained from scratch, {glue:text}`ge_overfit_text`. {glue:text}`ge_jump_text`.{glue:text}`ge_refit_text` *Symbolic recovery:* the expected form was
# recovered on {glue:text}`sy_recovered:.0f` of {glue:text}`sy_edges:.0f` edges. *Tabular:* test
# accuracy KAN / MLP was {glue:text}`tb_breast_cancer_kan:.3f` / {glue:text}`tb_breast_cancer_mlp:.3f`
# (breast_cancer), {glue:text}`tb_wine_kan:.3f` / {glue:text}`tb_wine_mlp:.3f` (wine) and
# {glue:text}`tb_digits_kan:.3f` / {glue:text}`tb_digits_mlp:.3f` (digits); the KAN won on
# {glue:text}`tb_kan_wins` (ties: {glue:text}`tb_ties`). On diabetes the KAN's test $R^2$ was
# {glue:text}`tb_diabetes_kan:.3f`, {glue:text}`tb_diabetes_text` (MLP: {glue:text}`tb_diabetes_mlp:.3f`).
# {glue:text}`tb_claim_text`
#
# ## The three parts
#
# Three parts of the KAN workflow that a fast layer has to keep working:
#
# 1. **Grid extension.** Training starts on a coarse grid; at each stage every layer is
#    re-gridded to a finer $G$ by `KANLinear.extend_grid`, which refits the finer spline
#    by least squares so the learned function is kept, and training goes on. The
#    comparison is the finest grid trained from scratch for the same total number of
#    L-BFGS calls. Target: $\exp(\sin \pi x + y^2)$.
# 2. **Symbolic recovery.** KANs are trained on formulas with known parts; each learned
#    edge $\varphi(x)$ is fitted by $c\,g(ax+b)+d$ for $g \in \{\text{affine}, x^2, x^3,
#    \exp, \log, \sin, \tanh\}$ (`sparsefuse.lab.symbolic`), and the simplest form that
#    explains the edge about as well as the best one is reported with its $R^2$.
# 3. **Tabular supplement.** scikit-learn's bundled breast_cancer, wine and digits
#    (test accuracy) and diabetes (test $R^2$), a KAN against an MLP with about the same
#    number of parameters, trained with the same optimiser and number of full-batch steps.
#
# ## Run

# %% tags=["parameters"]
profile = "smoke"  # smoke (CPU, seconds) | quick (one GPU, about a minute) | paper
device = "auto"  # auto | cpu | cuda

# %%
from sparsefuse.lab.book import notebook as nb
from sparsefuse.lab.experiments import grid_extension_symbolic_tabular as exp

df = nb.experiment(exp, profile, device, keys=["part", "case", "model", "G"], side={"curves": exp.curves},
                   related={"curves": exp.NAME + "_curves"})

# %% [markdown]
# ## How to read it
#
# Top left: the training loss across the whole coarse-to-fine run (in a run that kept
# its curves); the dotted lines mark the extension points. After each extension the
# loss starts again above where the coarser grid ended — by the factor quoted in the
# verdict — and then drops, while the finest grid trained from scratch (grey) starts
# from a random spline. Top right: test and train RMSE after each stage against $G$,
# with the $G^{-4}$ slope and the from-scratch result; where the test error rises while
# the train error keeps falling, the finer grid fits the sample, not the function. The
# `note` column gives the largest refit error of `extend_grid` at each stage. Bottom
# left: the learned edges of the last symbolic task (thick) with the recovered formulas
# (dashed), each rescaled to fit one axis. Bottom right: the tabular test scores (the
# axis includes negative $R^2$: below zero is worse than predicting the mean); the
# parameter counts are in the table.
#
# ## Symbolic recovery and tabular data
#
# The symbolic recovery in one table — `metric` is the $R^2$ of the chosen form,
# `train_metric` the $R^2$ of the true form, `recovered` whether they are the same:

# %%
from sparsefuse.lab.book.tables import show

tables = exp.tables(df)
show(tables.get("symbolic"))

# %% [markdown]
# The tabular comparison:

# %%
show(tables.get("tabular"))

# %% [markdown]
# ## The learned edges, and pruning
#
# pykan's tools work on the fast layer too. `exp.prune_demo` trains a KAN wider than
# $\sin \pi x + y^2$ needs, $[2, 5, 1]$, with the sparsity penalty
# (`sparsefuse.fit(model, data, steps, reg=...)`); `KAN.prune(threshold, x)` removes the hidden
# neurons whose edges are inactive on the training data (mean $|\varphi|$ at most the
# threshold) and returns a smaller KAN, which is then retrained. `KAN.plot(x)` draws every
# edge $\varphi$ over the range of its input on the data, faded by that activity.

# %%
demo = exp.prune_demo(profile=profile, device=nb.use_device(device))
demo.model.plot(demo.x)

# %%
demo.pruned.plot(demo.x)

# %%
show(demo.table)
