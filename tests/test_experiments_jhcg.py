"""The JHCG appendix experiments at smoke size, and the nanochat adapter on nanochat-shaped models."""
import os

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

import matplotlib  # noqa: E402

matplotlib.use("Agg")

import math  # noqa: E402
import textwrap  # noqa: E402

import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from torch import nn  # noqa: E402

from sparsefuse import jhcg as J  # noqa: E402
from sparsefuse.experiments import _jhcg_lm as L  # noqa: E402
from sparsefuse.experiments import (jhcg_adaptation, jhcg_attribution, jhcg_audit, jhcg_compile_drift,  # noqa: E402
                                    jhcg_fastpath, jhcg_microbench, jhcg_nanochat)


@pytest.fixture(scope="module")
def lm_runs():
    """The audit once at smoke; attribution and adaptation then read its memoized runs."""
    L.clear()
    df = jhcg_audit.run("smoke", progress=False)
    yield df
    L.clear()


def test_variant_names():
    assert L.describe("jhcg-compact-0.25")["rho"] == 0.25
    assert L.describe("mlp-matched-expanded-1")["ffn"] == "mlp"
    for bad in ("jhcg-wide-0.25", "jhcg-compact-2", "mlp-matched", "moe"):
        with pytest.raises(ValueError, match="variant"):
            L.describe(bad)
    cfg = L.model_config("mlp-matched-expanded-0.25", L.TRAIN["smoke"], 50)
    d, h = cfg.d_model, cfg.ffn_mult * cfg.d_model
    assert cfg.ffn_hidden == J.matched_mlp_hidden(d, 0.25, 5, "expanded", hidden=h)
    jcfg = L.model_config("jhcg-compact-0.5", L.TRAIN["smoke"], 50)
    assert (jcfg.ffn, jcfg.jhcg_variant, jcfg.jhcg_rho) == ("jhcg", "compact", 0.5)


def test_microbench_smoke_covers_every_point():
    df = jhcg_microbench.run("smoke", progress=False)
    cfg = jhcg_microbench.PROFILES["smoke"]
    assert len(df) == len(jhcg_microbench.plan(cfg))
    assert (df["status"] == "ok").all(), df[df["status"] != "ok"][["module", "note"]]
    assert set(df["mode"]) == {"eager", "compiled"} and (df.loc[df["mode"] == "compiled", "graph_breaks"] == 0).all()
    jh = df[(df["family"] == "jhcg") & (df["mode"] == "eager")].drop_duplicates("module")
    for r in jh.itertuples():
        assert r.params == J.param_count(cfg["d"], r.rho, cfg["grid_size"], r.variant, hidden=cfg["mult"] * cfg["d"])
    assert not jhcg_microbench.headline(df).empty and len(jhcg_microbench.relative(df)) == df["module"].nunique()
    assert isinstance(jhcg_microbench.plot(df), Figure)
    with pytest.raises(ValueError, match="variants"):
        jhcg_microbench.run("smoke", progress=False, variants=["wide"])


def test_fastpath_smoke_is_exact_and_sees_changes():
    df = jhcg_fastpath.run("smoke", progress=False)
    assert (df["status"] == "ok").all()
    assert df["bitwise_equal"].all() and df["invalidation_ok"].all() and (df["max_abs_diff"] == 0).all()
    assert (df["speedup"] > 0).all()
    assert isinstance(jhcg_fastpath.plot(df), Figure) and len(jhcg_fastpath.summary(df)) == 4


def test_audit_matrix(lm_runs):
    cfg = jhcg_audit.PROFILES["smoke"]
    runs = lm_runs[lm_runs["section"] == "run"]
    assert (runs["status"] == "ok").all(), runs[["variant", "note"]]
    assert len(runs) == len(jhcg_audit.variants(cfg)) * len(cfg["seeds"])
    m = jhcg_audit.matrix(lm_runs)
    assert list(m["variant"]) == jhcg_audit.variants(cfg)
    assert (m["seeds_ok"] == len(cfg["seeds"])).all() and m["val_loss_std"].notna().all()
    # the matched MLP has the JHCG block's parameter count up to half a hidden unit per layer
    p = m.set_index("variant")["params"]
    for name in L.jhcg_names(cfg["jhcg"]):
        assert abs(p[L.matched_name(name)] - p[name]) <= 2 * 32 + 1
    assert math.isclose(m.set_index("variant").loc["mlp", "vs_mlp"], 0.0)
    assert lm_runs.attrs["corpus"]["source"] and isinstance(jhcg_audit.plot(lm_runs), Figure)


def test_attribution_reuses_the_audit_models(lm_runs):
    df = jhcg_attribution.run("smoke", progress=False)
    cfg = jhcg_attribution.PROFILES["smoke"]
    assert len(df) == len(cfg["seeds"]) * len(cfg["jhcg"]) * len(jhcg_attribution.INTERVENTIONS)
    assert (df["status"] == "ok").all()
    trained = df[df["intervention"] == "as trained"]
    runs = lm_runs[lm_runs["section"] == "run"].set_index(["variant", "seed"])["val_loss"]
    for r in trained.itertuples():  # same model, same windows: the audit's number
        assert r.val_loss == pytest.approx(runs[(r.variant, r.seed)], abs=1e-6)
        assert r.gain_vs_matched == pytest.approx(r.matched_val_loss - r.val_loss)
    assert (trained["delta"] == 0).all() and (df.loc[df["intervention"] != "as trained", "delta"] != 0).all()
    assert isinstance(jhcg_attribution.plot(df), Figure) and len(jhcg_attribution.summary(df)) == len(cfg["jhcg"])


def test_adaptation_trace(lm_runs):
    df = jhcg_adaptation.run("smoke", progress=False)
    train = jhcg_adaptation.PROFILES["smoke"]["train"]
    assert (df["status"] == "ok").all()
    steps = sorted(set(df["step"]))
    assert steps == list(range(0, train["steps"], train["probe_every"])) + [train["steps"]]
    assert (df.loc[df["step"] == 0, "coeff_drift"] == 0).all() and (df.loc[df["step"] > 0, "coeff_drift"] > 0).all()
    for col in ("gate_mean", "gate_open", "gate_closed", "kan_share", "outside_grid"):
        assert df[col].between(0, 1).all()
    assert isinstance(jhcg_adaptation.plot(df), Figure) and not jhcg_adaptation.summary(df).empty


def test_compile_drift_smoke():
    df = jhcg_compile_drift.run("smoke", progress=False)
    s = jhcg_compile_drift.summary(df)
    assert (s["status"] == "ok").all() and len(s) == 2
    assert (s["max_abs_diff"] < 1e-3).all()  # aot_eager runs the eager kernels: rounding-level differences only
    assert jhcg_compile_drift.max_divergence(df) == s["max_abs_diff"].max()
    assert isinstance(jhcg_compile_drift.plot(df), Figure)


# ----------------------------------------------------------------------------- nanochat

class _MLP(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.c_fc = nn.Linear(d, 4 * d, bias=False)
        self.c_proj = nn.Linear(4 * d, d, bias=False)

    def forward(self, x):
        return self.c_proj(torch.relu(self.c_fc(x)).square())


class _Block(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.attn = nn.Linear(d, d, bias=False)
        self.mlp = _MLP(d)

    def forward(self, x):
        x = x + self.attn(x)
        return x + self.mlp(x)


class _GPT(nn.Module):
    def __init__(self, d=16, n_layer=3, vocab=11):
        super().__init__()
        self.transformer = nn.ModuleDict(dict(wte=nn.Embedding(vocab, d),
                                              h=nn.ModuleList(_Block(d) for _ in range(n_layer))))
        self.lm_head = nn.Linear(d, vocab, bias=False)

    def forward(self, idx):
        x = self.transformer.wte(idx)
        for block in self.transformer.h:
            x = block(x)
        return self.lm_head(x)


def test_swap_mlps_on_a_nanochat_shaped_tree():
    model = _GPT()
    assert jhcg_nanochat.swap_mlps(model, rho=0.25, grid_size=5, variant="expanded") == 3
    for block in model.transformer.h:
        assert isinstance(block.mlp, jhcg_nanochat.NanochatJHCG)
        assert (block.mlp.block.d, block.mlp.block.hidden) == (16, 64)
    idx = torch.randint(0, 11, (2, 7))
    logits = model(idx)
    assert logits.shape == (2, 7, 11)
    logits.sum().backward()
    assert model.transformer.h[0].mlp.block.kan.spline_weight.grad is not None
    # bf16 activations outside autocast (nanochat keeps its embedding in bf16)
    y = model.transformer.h[0].mlp(torch.randn(2, 16, dtype=torch.bfloat16))
    assert y.dtype == torch.bfloat16
    assert jhcg_nanochat.swap_mlps(model, rho=0.25, grid_size=5, variant="expanded") == 0  # nothing left to swap


def test_nanochat_without_a_checkout_is_skipped(monkeypatch):
    monkeypatch.delenv(jhcg_nanochat.ENV, raising=False)
    df = jhcg_nanochat.run("smoke", progress=False)
    assert list(df["status"]) == ["skipped", "skipped"]
    assert df["note"].str.contains("NANOCHAT_ROOT").all()
    broken = jhcg_nanochat.run("smoke", progress=False, root="/nonexistent/nanochat")
    assert (broken["status"] == "error").all() and broken["note"].str.contains("nanochat/gpt.py").all()


_FAKE_GPT = '''
from dataclasses import dataclass
import torch, torch.nn as nn, torch.nn.functional as F

@dataclass
class GPTConfig:
    sequence_len: int = 64
    vocab_size: int = 50
    n_layer: int = 2
    n_head: int = 2
    n_kv_head: int = 2
    n_embd: int = 32

class MLP(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=False)
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=False)
    def forward(self, x):
        return self.c_proj(F.relu(self.c_fc(x)).square())

class Block(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.attn = nn.Linear(config.n_embd, config.n_embd, bias=False)
        self.mlp = MLP(config)
    def forward(self, x):
        x = x + self.attn(F.rms_norm(x, (x.size(-1),)))
        return x + self.mlp(F.rms_norm(x, (x.size(-1),)))

class GPT(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config
        self.transformer = nn.ModuleDict(dict(wte=nn.Embedding(config.vocab_size, config.n_embd),
                                              h=nn.ModuleList(Block(config) for _ in range(config.n_layer))))
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
    def init_weights(self):
        for block in self.transformer.h:
            nn.init.zeros_(block.mlp.c_proj.weight)
    def forward(self, idx, targets=None, kv_cache=None, loss_reduction="mean"):
        x = self.transformer.wte(idx)
        for block in self.transformer.h:
            x = block(x)
        logits = self.lm_head(F.rms_norm(x, (x.size(-1),))).float()
        if targets is None:
            return logits
        return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1), reduction=loss_reduction)
'''


def test_nanochat_measurement_against_a_checkout(tmp_path, monkeypatch):
    pkg = tmp_path / "nanochat"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "gpt.py").write_text(textwrap.dedent(_FAKE_GPT))
    monkeypatch.setenv(jhcg_nanochat.ENV, str(tmp_path))
    monkeypatch.setattr("sys.path", list(__import__("sys").path))
    df = jhcg_nanochat.run("smoke", progress=False)
    assert (df["status"] == "ok").all(), df["note"].tolist()
    cfg = jhcg_nanochat.PROFILES["smoke"]
    assert list(df["mlps_swapped"]) == [0, cfg["n_layer"]]
    assert df["params"].iloc[1] > df["params"].iloc[0] and df["val_loss"].notna().all()
    assert (df["steps"] == cfg["steps"]).all()
