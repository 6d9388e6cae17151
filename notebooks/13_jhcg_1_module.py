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
# # JHCG: the hybrid block at the module boundary
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/sparsefuse/sparsefuse/blob/main/notebooks/13_jhcg_1_module.ipynb)
#
# ## What this chapter reproduces
#
# **Paper:** SparseFuse (NeurIPS 2026 submission), JHCG appendix: the *module-boundary
# microbenchmarks* (what one JHCG feed-forward block costs next to the MLP and KAN FFNs it
# would replace) and the *cached fast-path checks* (how much inference gains from reusing
# what does not change between calls, and that it changes nothing else).
#
# **What the paper reported:** the paper artifact's README lists both studies among its JHCG
# appendix experiments ("module-boundary microbenchmarks", "cached fast-path checks"; scripts
# `bench_jhcg_micro.py`, `run_jhcg_sweep.py`, `bench_jhcg_speedup_fastpath.py`,
# `bench_jhcg_profile.py`; summary table `tables/jhcg_micro_bonus_h100_summary.csv`), but it
# states none of their numbers or conclusions. Of the microbenchmark it says only that "the CPU
# JHCG microbenchmark is a smoke test only. Paper latency and VRAM claims require CUDA." The
# claim below is therefore this book's reading of what the two studies test, not a quoted result.
#
# **Claim tested:** a JHCG block, which gives only a share $\rho$ of the FFN's hidden width
# to a KAN path, costs far less than a full KAN FFN at the module boundary (here: at most
# {glue:text}`mb_kan_share:g`× its forward+backward time); in `eval()` its cached weights make
# small-batch inference faster without changing a single output.
#
# **Verdict here**, from {glue:text}`jhcg_microbench_source`, forward+backward with the KAN path
# fused, eager: the JHCG `expanded` block at $\rho = 0.25$ was {glue:text}`jv_mb_vs_kan` and
# {glue:text}`jv_mb_vs_mlp`, with {glue:text}`jv_mb_mem_vs_kan` and {glue:text}`jv_mb_mem_vs_mlp`.
# The first half of the claim {glue:text}`jv_mb_claim`. The `expanded` $\rho = 0.25$ block's
# fused KAN path was {glue:text}`jv_mb_fused`, and under `torch.compile` it was
# {glue:text}`jv_mb_compile`. From {glue:text}`jhcg_fastpath_source`: {glue:text}`jv_fp_small`,
# that is {glue:text}`jv_fp_small_effect`; {glue:text}`jv_fp_large`, that is
# {glue:text}`jv_fp_large_effect`. So {glue:text}`jv_fp_claim`. Against the uncached outputs
# the cached ones were {glue:text}`jv_fp_exact`, and the cache saw an in-place parameter change
# {glue:text}`jv_fp_invalidated`. {glue:text}`jv_evidence_1`
#
# ## The block
#
# The block is `sparsefuse.jhcg.SparseFuseJHCG`; the paper does not spell its design
# out, so this one is ours, and the library's docstring is its reference. A
# Transformer FFN of model width $d$ and hidden width $h$ (default $4d$) hands a
# share $\rho \in (0, 1]$ of its hidden width to a KAN path and the rest to an MLP
# path; a learned gate mixes the two per token and output channel:
#
# $$
# \begin{aligned}
# r &= \operatorname{clamp}(\operatorname{round}(\rho\, h), 1, h), \qquad h_m = h - r,\\
# m &= W_o\, \mathrm{GELU}(W_m x + b_m), \qquad g = \sigma(W_g x + b_g),\\
# k &= V\, \mathrm{KAN}_{d \to r}(x) \;\text{(compact)} \qquad\text{or}\qquad
#   k = \mathrm{KAN}_{r \to d}(U x + b_u) \;\text{(expanded)},\\
# y &= (1 - g) \odot m + g \odot k + b_o .
# \end{aligned}
# $$
#
# `compact` and `expanded` are the two places a KAN layer takes in a Transformer
# FFN: at model width $d$, where the splines read the block input itself and $V$
# projects the $r$ outputs back, or on the expanded hidden width, where $U$ expands
# to $r$ features and the KAN projects them back. The input projections run as one
# GEMM ($[W_m; W_g]$, or $[W_m; U; W_g]$). The KAN layer is `sparsefuse.KANLinear`
# with `impl="auto"` (the fused Triton kernels on CUDA), grid $G$ on $[-2, 2]$ and
# spline order $k$, with $r d (G + k + 2)$ parameters. In all,
#
# $$
# P(d, \rho, G, \text{variant}, k) = (h + d)(d + 1) + d(h + 1) + r\, d\, (G + k + 1)
#   - [\text{variant} = \text{compact}]\, r,
# $$
#
# against $P_{\text{MLP}}(h') = h'(2d + 1) + d$ for the MLP FFN of hidden width $h'$;
# `sparsefuse.jhcg.matched_mlp_hidden` gives the $h'$ with the same count, the
# control of the Transformer audit in the next chapter.
#
# ## What is measured
#
# (1) Each block as one call $(N, d) \to (N, d)$ at the
# same $d$, $h$, token count $N$ and $G$: the MLP FFN, the KAN FFN and JHCG for both
# variants and $\rho \in \{0.125, 0.25, 0.5, 1\}$; forward and forward+backward time
# and peak memory, eager and under `torch.compile`, with the KAN path fused
# (`auto`) and on the efficient-kan `reference` path (at profile `quick` only the
# baselines and $\rho = 0.25$ are compiled, on the fused path: each compile takes seconds;
# the headline table shows which points ran). (2) The cached fast path: a
# JHCG block in `eval()` keeps its merged input weights and scaled spline
# coefficients until a parameter changes (checked through the parameters' version
# counters); its latency against the uncached forward, the cost of a cache miss, the
# largest difference of the outputs, and whether an in-place parameter change is seen.
#
# ## Run

# %% tags=["parameters"]
profile = "smoke"  # smoke (CPU, seconds) | quick (one GPU, about 2.5 minutes) | paper
device = "auto"  # auto | cpu | cuda

# %%
from sparsefuse.lab.book import notebook as nb
from sparsefuse.lab.experiments.jhcg import fastpath as fast
from sparsefuse.lab.experiments.jhcg import microbench as micro

df = nb.experiment(micro, profile, device, keys=["module", "impl", "mode", "pass"])

# %% [markdown]
# ## How to read it
#
# Two panels per pass: the median time per call (log scale), then the peak memory
# the call allocates beyond what was live before it. Bars in red run the KAN path on
# `impl="auto"` (on CUDA the fused kernels, which never materialise the KAN layer's
# basis tensor), grey on the `reference` path; light bars are the compiled blocks. The
# MLP FFN has no KAN path, so its bar repeats across the path series.
#
# Here a JHCG `expanded` block with $\rho = 0.25$
# ({glue:text}`mb_params_jhcg:,.0f` parameters, against {glue:text}`mb_params_mlp:,.0f` for
# the MLP FFN and {glue:text}`mb_params_kan:,.0f` for the KAN FFN) took
# {glue:text}`mb_time_vs_mlp:.2f`× the MLP FFN's forward+backward time and
# {glue:text}`mb_time_vs_kan:.2f`× the KAN FFN's (forward alone: {glue:text}`mb_fwd_vs_mlp:.2f`×
# the MLP's), with {glue:text}`jv_mb_mem_vs_kan` ({glue:text}`jv_mb_mem_vs_mlp`). Its reference
# KAN path took {glue:text}`mb_fused_speedup:.2f`× the fused path's time, and its compiled
# block was {glue:text}`jv_mb_compile` (eager ÷ compiled time: {glue:text}`mb_compile_speedup:.2f`).
# Two times whose q20–q80 ranges overlap are called "within noise" here, and a ratio within
# 2% of 1 "as fast as".
#
# The headline table: median ms per block (rows) and pass · KAN path · mode
# (columns); a cell that did not run shows its status. Then each block relative to
# the MLP FFN (forward+backward, fused KAN path, eager).

# %%
from sparsefuse.lab.book.tables import show

show(micro.headline(df), caption="median time per call (ms) by pass · KAN path · mode")

# %%
show(micro.relative(df), caption="forward+backward, fused KAN path, eager, relative to the MLP FFN")

# %% [markdown]
# ## The cached fast path
#
# In `eval()` a JHCG block rebuilds nothing that its parameters determine: the
# concatenated input projection and the scaled spline coefficients
# $c$ = `spline_weight * spline_scaler` (in the `[out, in, G+k]`
# layout the kernels read; under autocast also their bf16 copies) are computed once
# and reused while every source parameter keeps its identity and version counter.
# Each point below times a gradient-free forward uncached, cached, and on a cache
# miss, then changes two parameters in place and checks that the next cached call
# sees the change.

# %%
fp = nb.experiment(fast, profile, device, keys=["variant", "rho", "tokens"])
from sparsefuse.lab.experiments.jhcg import words

nb.glue("jv_evidence_1", words.evidence_note(words.measured(micro.NAME, df, profile, device)
                                             and words.measured(fast.NAME, fp, profile, device)))

# %% [markdown]
# For the `expanded` block with $\rho = 0.25$ the cached forward of
# {glue:text}`fp_tokens_small:.0f` tokens was {glue:text}`jv_fp_point` and that of
# {glue:text}`fp_tokens_large:.0f` tokens {glue:text}`jv_fp_point_large`; that one point does not
# make the verdict, every block does: {glue:text}`jv_fp_small`; {glue:text}`jv_fp_large`. An
# effect counts here only when every point lies on the same side of 1× by at least
# {glue:text}`fp_ratio_tol:.0%`. The saving is a fixed amount per call (two concatenations and
# one elementwise product, plus their launches on a GPU), so it could only show where few tokens
# pass, as in autoregressive decoding, and must vanish next to the GEMMs of a large batch. The
# largest difference between cached and uncached outputs over all {glue:text}`fp_points:d` points
# was {glue:text}`fp_max_diff:.3g`; {glue:text}`fp_equal:d` of them were bitwise equal, and in
# {glue:text}`fp_invalidated:d` the cache saw the in-place parameter change.

# %%
show(fast.summary(fp))
