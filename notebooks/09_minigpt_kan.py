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
# # MiniGPT-KAN: a Transformer with KAN feed-forward blocks
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/sparsefuse/sparsefuse/blob/main/notebooks/09_minigpt_kan.ipynb)
#
# ## What this chapter reproduces
#
# **Paper:** SparseFuse (NeurIPS 2026 submission), main paper, kernel and systems results:
# *Scale-B feasibility* and the *sequence-length* runs (the H100 Scale-B and sequence-length
# sweeps).
#
# **Claim tested:** with the fused kernels a Transformer whose feed-forward blocks are KAN
# layers trains on one GPU at GPT-2-small width and depth (Scale-B) and at long sequences,
# where the same model on efficient-kan's algorithm runs out of memory.
#
# **Verdict here**, from {glue:text}`minigpt_kan_source`. *Scale-B:* {glue:text}`mg_scale_b`.
# *Fixed budget at Scale-A:* the fused KAN model trained {glue:text}`mg_cmp_ref` with
# {glue:text}`mg_mem_ref`; validation loss
# {glue:text}`mg_val_fused:.3f` nats/char against the MLP model's {glue:text}`mg_val_mlp:.3f`.
# {glue:text}`mg_oom_text` *Sequence length:* {glue:text}`mg_seq_text`. Feasibility is the
# claim, not parity with the MLP: {glue:text}`mg_tradeoff`.
#
# ## The model and the measurements
#
# Can a decoder-only Transformer whose feed-forward blocks are KAN layers be
# trained on one GPU, and what does it cost next to the usual MLP block? The
# model (`sparsefuse.lab.models.minigpt`) is a small pre-LayerNorm GPT; only its FFN
# changes between rows:
#
# * **MLP-FFN** — `Linear(d, 4d) → GELU → Linear(4d, d)`;
# * **KAN-FFN fused (auto)** — `KANLinear(d, 4d) → KANLinear(4d, d)` with the
#   library default `impl="auto"`, which runs the fused Triton kernel on CUDA;
# * **KAN-FFN reference** — the same layers on the efficient-kan algorithm, which
#   materializes an $N \times \mathrm{in} \times (G+k)$ basis tensor per layer;
# * **Gated KAN-FFN** (quick and paper profiles) — KAN up-projection times a
#   sigmoid gate of the input, then a KAN down-projection (`sparsefuse.lab.models.ffn`).
#
# Three measurements: a fixed training budget at **Scale-A** (tokens/s, peak
# memory, final train and validation loss, and the loss curves), a
# **sequence-length sweep**, and a few steps at **Scale-B** (GPT-2-small width and
# depth, sequence length 1024) — the feasibility point: does it fit on one GPU at
# all? An out-of-memory run is recorded as `oom`, a diverging one as `diverged`.
#
# The text is character-level: a corpus under `DATA_ROOT` when there is one
# (`text/corpus.txt`, `tinyshakespeare/input.txt`, ...), else the Python standard
# library's own source code, which every machine has. The provenance records which.
#
# ## Run

# %% tags=["parameters"]
profile = "smoke"  # smoke (CPU, seconds) | quick (one GPU, about a minute) | paper
device = "auto"  # auto | cpu | cuda

# %%
from sparsefuse.lab.book import notebook as nb
from sparsefuse.lab.experiments import minigpt as exp

df = nb.experiment(exp, profile, device, keys=["section", "variant", "block_size", "step"])

# %% [markdown]
# ## How to read it
#
# Top: training loss against step for the fixed budget; every variant sees the same
# batches in the same order (the seed is in the table). Middle: training throughput
# at that budget, with each run's peak memory at the end of its bar and the Scale-B
# outcomes under the axis. Bottom: the sequence-length sweep — tokens/s and peak
# memory as $T$ grows at a fixed batch of sequences; a cross marks the first length
# that ran out of memory (longer ones are not tried). On the CPU smoke profile the
# model is tiny, `auto` runs a CPU path instead of the fused kernel and Scale-B is
# skipped: the run only proves the code path; the GPU reference carries the numbers.
#
# The headline table: one row per variant at the budget point and at Scale-B.

# %%
from sparsefuse.lab.book.tables import show

show(exp.summary(df))

# %% [markdown]
# ## Data-parallel training: DDP and FSDP2
#
# Scale-B training that outgrows one GPU runs on PyTorch's own engines through
# `torchrun` (`sparsefuse.lab.experiments.minigpt_distributed`): DDP replicates the
# model, FSDP2 (`torch.distributed.fsdp.fully_shard`, one shard group per
# Transformer block) splits every KAN weight (`base_weight`, `spline_weight`,
# `spline_scaler`) across the ranks and gathers it only around its block. Each
# rank keeps its slice of one global batch, so N ranks optimise exactly what one
# process would with N times the batch; the CPU test (2 gloo processes) checks
# that the weights agree to float precision.
#
# ```bash
# # one run, 2 GPUs
# torchrun --nproc_per_node=2 -m sparsefuse.lab.experiments.minigpt_distributed \
#     --strategy fsdp --config scale-b --ffn kan --batch-size 4 --block-size 1024 --steps 30
# # the 1 -> 2 -> 4 GPU tokens/s table (saved as the book result minigpt_scaling)
# python -m sparsefuse.lab.experiments.minigpt_distributed --scaling 1,2,4 --strategy ddp,fsdp \
#     --config scale-a --ffn kan --steps 30 --profile quick
# ```
#
# The per-rank batch is fixed (weak scaling), so ideal tokens/s grows linearly
# with the number of GPUs and the scaling efficiency (speed-up ÷ GPUs) is at most 1.
# Below is the committed scaling table when there is one — a separate `torchrun` run, not
# part of the book's reference run — with what it shows; a world size the measuring host
# did not have is listed as `skipped`.

# %%
from sparsefuse.lab.experiments import minigpt_distributed as dist_exp

nb.show_committed(dist_exp.SCALING_NAME, columns=dist_exp.SCALING_COLUMNS, plot=dist_exp.plot_scaling,
                  missing=dist_exp.NO_SCALING, describe=dist_exp.describe_scaling)
