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
from sparsefuse.lab.experiments.jhcg import _lm as L  # noqa: E402
from sparsefuse.lab.experiments.jhcg import adaptation as jhcg_adaptation  # noqa: E402
from sparsefuse.lab.experiments.jhcg import attribution as jhcg_attribution  # noqa: E402
from sparsefuse.lab.experiments.jhcg import audit as jhcg_audit  # noqa: E402
from sparsefuse.lab.experiments.jhcg import compile_drift as jhcg_compile_drift  # noqa: E402
from sparsefuse.lab.experiments.jhcg import fastpath as jhcg_fastpath  # noqa: E402
from sparsefuse.lab.experiments.jhcg import microbench as jhcg_microbench  # noqa: E402
from sparsefuse.lab.experiments.jhcg import nanochat as jhcg_nanochat  # noqa: E402


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
    assert math.isclose(m.set_index("variant").loc["mlp", "gain_vs_mlp"], 0.0)
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


# ----------------------------------------------------------------------------- words that follow the numbers
#
# Every word of a JHCG verdict that turns on a number ("faster"/"slower", "within noise", "of the same
# order", "lower"/"higher") is made by a ``verdict_numbers``; these tests hold those words against the
# committed H200 tables and against crafted tables (a loss, a gain, a mixed case).

import re  # noqa: E402
from pathlib import Path  # noqa: E402

import pandas as pd  # noqa: E402

from sparsefuse.lab.book import results as R  # noqa: E402
from sparsefuse.lab.book.layout import REPO_ROOT  # noqa: E402
from sparsefuse.lab.experiments.jhcg import words as W  # noqa: E402

H200 = REPO_ROOT / "results" / "quick" / "cuda-h200"
NOTEBOOKS = sorted((REPO_ROOT / "notebooks").glob("13_jhcg_*.py"))


def h200(name: str) -> pd.DataFrame:
    path = H200 / f"{name}.csv"
    if not path.exists():
        pytest.skip(f"no committed H200 result {path.name}")
    return pd.read_csv(path)


def words_follow_ratios(values: dict) -> None:
    """No "0.9× faster", no "factor 0.84": a ratio before "faster"/"slower"/"less"/"more"/"smaller" is above 1."""
    for key, text in values.items():
        if not isinstance(text, str):
            continue
        for num, word in re.findall(r"([\d.]+)× (faster|slower|less|more|smaller|larger)", text):
            assert float(num) >= 1.0, (key, text)
        assert not re.search(r"factor (of )?0\.", text), (key, text)


def test_spread_and_effect_words():
    assert W.spread([1.2, 1.1, 1.06])["kind"] == "faster"
    loss = W.spread([0.9, 0.8, 0.94])
    assert loss["kind"] == "slower" and loss["below"] == 3 and "3 of 3 below 1×" in loss["words"]
    assert "slower" in W.effect(loss["kind"])
    mixed = W.spread([0.9, 1.2, 1.02, 0.99])
    assert mixed["kind"] == "mixed" and mixed["below"] == 2 and "no consistent speed-up" in W.effect("mixed")
    assert W.spread([1.002, 1.006, 0.999])["kind"] == "none"
    assert W.spread([1.02, 1.3])["kind"] == "small"
    assert W.spread([])["kind"] == "missing"
    assert W.ratio(1.0018) == "1.002×" and W.signed(-0.0673) == "−0.0673" and W.signed(0.0288) == "+0.0288"


def test_order_words_compare_magnitudes_honestly():
    assert W.order(0.000218, 0.0732, "JHCG", "the MLP's")["kind"] == "smaller"  # the audit's "same order" case
    assert "336× smaller" in W.order(0.000218, 0.0732, "JHCG", "the MLP's")["words"]
    assert W.order(0.05, 0.0732, "a", "b")["kind"] == "same"
    assert W.order(0.9, 0.0732, "a", "b")["kind"] == "larger"
    assert W.order(float("nan"), 1.0, "a", "b")["kind"] == "missing"
    assert W.moved(0.5, 0.54) == "rose from 0.500 to 0.540" and W.moved(0.63, 0.52, "{:.1%}").startswith("fell")


# --- module boundary (13_jhcg_1)

def test_microbench_words_on_the_h200_reference():
    df = h200("jhcg_microbench")
    k, v = jhcg_microbench.key_numbers(df), jhcg_microbench.verdict_numbers(df)
    words_follow_ratios(v)
    assert ("slower" in v["jv_mb_vs_mlp"]) == (k["mb_time_vs_mlp"] > 1)
    assert ("faster" in v["jv_mb_vs_kan"]) == (k["mb_time_vs_kan"] < 1)
    assert ("slower" in v["jv_mb_compile"]) == (k["mb_compile_speedup"] < 1)  # 0.85 on the H200: slower
    assert ("more peak memory" in v["jv_mb_mem_vs_mlp"]) == (k["mb_mem_vs_mlp"] > 1)
    ok = df[(df["status"] == "ok") & (df["pass"] == "forward+backward") & (df["mode"] == "eager")]
    kan = ok.loc[ok["module"] == "kan", "median_ms"].iloc[0]
    shares = ok[(ok["family"] == "jhcg") & (ok["impl"] == "auto")]["median_ms"] / kan
    n, over = len(shares), int((shares > jhcg_microbench.KAN_SHARE).sum())
    assert (f"holds for {n - over} of {n}" in v["jv_mb_claim"]) if 0 < over < n else v["jv_mb_claim"].startswith(
        "holds here" if not over else "does not hold")


def _bench(jhcg_ms: float, compiled_ms: float, spread: float = 0.01) -> pd.DataFrame:
    rows = []
    for module, family, impl, mode, ms in (("mlp", "mlp", "-", "eager", 1.0), ("kan", "kan", "auto", "eager", 10.0),
                                           ("jhcg-expanded-0.25", "jhcg", "auto", "eager", jhcg_ms),
                                           ("jhcg-expanded-0.25", "jhcg", "reference", "eager", 3 * jhcg_ms),
                                           ("jhcg-expanded-0.25", "jhcg", "auto", "compiled", compiled_ms)):
        for pass_ in jhcg_microbench.PASSES:
            rows.append(dict(module=module, label=module, family=family, impl=impl, mode=mode, **{"pass": pass_},
                             params=1, median_ms=ms, q20_ms=ms * (1 - spread), q80_ms=ms * (1 + spread),
                             peak_mib=ms, status="ok"))
    return pd.DataFrame(rows)


@pytest.mark.parametrize("jhcg_ms, compiled_ms, compile_word, claim", [
    (2.0, 2.0 / 0.9, "slower than the eager block", "holds here"),  # a loss: eager ÷ compiled = 0.9
    (6.0, 6.0 / 1.2, "faster than the eager block", "does not hold"),  # a gain under compile; 0.6 of the KAN FFN
    (2.0, 2.01, "within noise of the eager block", "holds here"),  # q20-q80 ranges overlap
])
def test_microbench_words_on_crafted_tables(jhcg_ms, compiled_ms, compile_word, claim):
    v = jhcg_microbench.verdict_numbers(_bench(jhcg_ms, compiled_ms))
    words_follow_ratios(v)
    assert compile_word in v["jv_mb_compile"] and v["jv_mb_claim"].startswith(claim)
    assert "slower than the MLP FFN" in v["jv_mb_vs_mlp"] and "faster than the KAN FFN" in v["jv_mb_vs_kan"]
    assert "faster than its reference KAN path" in v["jv_mb_fused"]


def test_fastpath_words_on_the_h200_reference():
    df = h200("jhcg_fastpath")
    v = jhcg_fastpath.verdict_numbers(df)
    words_follow_ratios(v)
    small = df[df["tokens"] == df["tokens"].min()]["speedup"]
    below = int((small < 1).sum())
    assert v["fp_small_below"] == below and v["fp_small_n"] == len(small)
    assert (f"{below} of {len(small)} below 1×" if below else "none below 1×") in v["jv_fp_small"]
    if below:  # a set of points with losses among them is never called a speed-up
        assert "no consistent" in v["jv_fp_small_effect"] and "does not reproduce" in v["jv_fp_claim"]


def _fast(speedups_small, speedups_large=(1.001, 1.003)) -> pd.DataFrame:
    rows = [dict(variant="expanded", rho=0.25 * (i + 1), tokens=t, speedup=s, max_abs_diff=0.0, bitwise_equal=True,
                 invalidation_ok=True, status="ok")
            for t, sps in ((8, speedups_small), (8192, speedups_large)) for i, s in enumerate(sps)]
    return pd.DataFrame(rows)


@pytest.mark.parametrize("small, kind, claim", [
    ((0.9, 0.85, 0.92), "a consistent loss", "does not reproduce"),
    ((1.2, 1.1, 1.3), "a consistent speed-up", "holds"),
    ((0.9, 1.2, 1.02), "no consistent speed-up", "does not reproduce"),
])
def test_fastpath_words_on_crafted_tables(small, kind, claim):
    v = jhcg_fastpath.verdict_numbers(_fast(small))
    words_follow_ratios(v)
    assert v["jv_fp_small_effect"].startswith(kind) and claim in v["jv_fp_claim"]
    assert "no measurable effect" in v["jv_fp_large_effect"]
    assert v["jv_fp_point"].endswith("slower than uncached") == (small[0] < 0.98)


# --- Transformer (13_jhcg_2)

def test_audit_and_attribution_words_on_the_h200_reference():
    df, at = h200("jhcg_audit"), h200("jhcg_attribution")
    m = jhcg_audit.matrix(df)
    v, va = jhcg_audit.verdict_numbers(df), jhcg_attribution.verdict_numbers(at)
    jh = m[m["variant"].str.startswith("jhcg-")]
    assert v["jv_au_count"] == len(jh)
    for r in jh.itertuples():  # every variant is quoted, with the matrix table's sign
        assert r.label in v["jv_au_variants"] and f"gain of {W.signed(r.gain_vs_matched_mlp)}" in v["jv_au_variants"]
        assert r.label in va["jv_at_changes"] and r.label in va["jv_at_seeds"]
        assert ("JHCG lower" if r.gain_vs_matched_mlp > 0 else "JHCG higher") in v["jv_au_variants"].split(
            r.label)[1].split(";")[0]
    # the attribution table's mean gain is the audit's, with the same sign
    summ = jhcg_attribution.summary(at)
    for r in jh.itertuples():
        assert summ.loc[r.label, "gain vs matched MLP (mean)"] == pytest.approx(r.gain_vs_matched_mlp, abs=1e-6)
    assert jhcg_attribution.key_numbers(at)["at_gain"] == pytest.approx(jhcg_audit.key_numbers(df)["au_gain"],
                                                                         abs=1e-6)
    for label, row in summ.iterrows():  # each loss change quoted with the table's sign
        for col in [c for c in summ.columns if c.startswith("Δ loss, ")]:
            assert W.signed(row[col]) in va["jv_at_changes"]


def _audit(jhcg_mean: float, jhcg_std: float) -> pd.DataFrame:
    rows = []
    for variant, label, mean, std in (("mlp", "MLP", 2.5, 0.01), ("mlp-matched-expanded-0.25", "matched", 2.3, 0.01),
                                      ("jhcg-expanded-0.25", "JHCG expanded ρ=0.25", jhcg_mean, jhcg_std)):
        for seed, off in enumerate((-1, 0, 1)):
            rows.append(dict(section="run", variant=variant, label=label, params=1, seed=seed, steps=10,
                             val_loss=mean + off * std, tokens_per_s=100.0, peak_mib=1.0, status="ok"))
    return pd.DataFrame(rows)


@pytest.mark.parametrize("mean, std, word", [
    (2.1, 0.01, "lower than its parameter-matched MLP by more than the spread"),  # a gain
    (2.5, 0.01, "higher than its parameter-matched MLP by more than the spread"),  # a loss
    (2.28, 0.05, "within the spread over seeds"),  # within noise
])
def test_audit_words_on_crafted_tables(mean, std, word):
    v = jhcg_audit.verdict_numbers(_audit(mean, std))
    assert word in v["jv_au_variants"]
    assert f"gain of {W.signed(2.3 - mean)}" in v["jv_au_variants"]
    assert ("no gain" in v["jv_au_text"]) == (word.startswith("within"))
    assert v["jv_au_text"][0].isupper()  # a sentence of its own on the page


def test_adaptation_words_on_the_h200_reference():
    df = h200("jhcg_adaptation")
    v = jhcg_adaptation.verdict_numbers(df)
    for label, sub in df[df["status"] == "ok"].groupby("label"):
        first = sub[sub["step"] == sub["step"].min()]["outside_grid"].mean()
        last = sub[sub["step"] == sub["step"].max()]["outside_grid"].mean()
        assert label in v["jv_ad_variants"]
        assert (label in v["jv_ad_outside"]) == (last > first)


# --- compile drift and nanochat (13_jhcg_3)

def test_compile_drift_words_on_the_h200_reference():
    df = h200("jhcg_compile_drift")
    k, v = jhcg_compile_drift.key_numbers(df), jhcg_compile_drift.verdict_numbers(df)
    words_follow_ratios(v)
    r = k["cd_max"] / k["cd_mlp_max"]
    assert v["cd_ratio"] == pytest.approx(r)
    assert ("same order" in v["jv_cd_text"]) == (1 / W.ORDER_FACTOR <= r <= W.ORDER_FACTOR)
    assert ("smaller" in v["jv_cd_text"]) == (r < 1 / W.ORDER_FACTOR)
    assert ("slower" in v["jv_cd_jhcg_speed"]) == (k["cd_speedup"] < 0.98)


def _drift(jhcg_max: float, mlp_max: float, speedup: float, backend: str = "inductor") -> pd.DataFrame:
    return pd.DataFrame([dict(section="summary", variant=v, label=v, backend=backend, steps=10, max_abs_diff=mx,
                              final_abs_diff=mx, step_of_max=3, val_loss_eager=2.0, val_loss_compiled=2.0,
                              compile_speedup=speedup, status="ok")
                         for v, mx in (("mlp", mlp_max), ("jhcg-expanded-0.25", jhcg_max))])


@pytest.mark.parametrize("jhcg_max, kind, claim", [
    (0.000218, "smaller", "holds"), (0.05, "same order", "holds"), (0.9, "more than 10× larger", "does not hold"),
])
def test_compile_drift_words_on_crafted_tables(jhcg_max, kind, claim):
    v = jhcg_compile_drift.verdict_numbers(_drift(jhcg_max, 0.0732, 0.9))
    words_follow_ratios(v)
    assert kind in v["jv_cd_text"] and v["jv_cd_claim"].startswith(claim)
    assert v["jv_cd_jhcg_speed"] == "1.11× slower than eager"  # compiled tokens/s ÷ eager = 0.9
    assert "rounding level by construction" in jhcg_compile_drift.verdict_numbers(
        _drift(1e-7, 1e-7, 1.0, backend="aot_eager"))["jv_cd_backend"]


def test_nanochat_words_follow_the_ratios():
    df = pd.DataFrame([dict(variant="mlp", label="mlp", mlps_swapped=0, tokens_per_s=100.0, val_loss=2.0, status="ok"),
                       dict(variant="jhcg-expanded-0.25", label="j", mlps_swapped=6, tokens_per_s=90.0, val_loss=2.1,
                            status="ok")])
    text = jhcg_nanochat.verdict_numbers(df)["jv_nc_text"]
    assert "1.11× slower than with nanochat’s own MLP" in text and "(+0.1000, JHCG higher)" in text


# --- what the pages say about their evidence

TYPED_EVIDENCE = re.compile(r"no (committed )?GPU reference|smoke run's|on a CPU build these|no GPU result",
                            re.IGNORECASE)



@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_page_types_what_its_evidence_must_say(path):
    """A sentence about the evidence (GPU reference or smoke run) is glued from it, never typed in a page."""
    text = path.read_text()
    md = "\n".join(line for line in text.splitlines() if line.startswith("# "))
    assert not TYPED_EVIDENCE.search(md), TYPED_EVIDENCE.search(md).group(0)
    assert "{glue:text}`jv_evidence_" in md  # the sentence is there, glued


@pytest.mark.parametrize("name", ["jhcg_microbench", "jhcg_fastpath", "jhcg_audit", "jhcg_attribution",
                                  "jhcg_adaptation", "jhcg_compile_drift"])
def test_a_gpu_reference_is_never_called_missing(name):
    """On a CPU build the evidence of every JHCG experiment with a committed GPU result is that result, and the
    page's evidence sentence then says GPU measurement, never 'no GPU result' or 'smoke'."""
    ref = R.reference(name)
    if ref is None:
        pytest.skip(f"no committed GPU result of {name}")
    assert W.measured(name, ref.table(), "smoke", "cpu")
    note = W.evidence_note(True)
    assert not TYPED_EVIDENCE.search(note) and "GPU measurements" in note
    assert "No GPU result" in W.evidence_note(False)
    assert W.reference_note(name).startswith("A GPU result of it is committed")


def test_without_a_gpu_reference_the_evidence_sentence_says_so(tmp_path, monkeypatch):
    """The same sentence, on a build with no committed GPU result: the smoke run is named as what it is."""
    monkeypatch.setenv("SPARSEFUSE_REFERENCE", str(tmp_path))
    table = pd.DataFrame({"status": ["ok"]})
    assert not W.measured("jhcg_microbench", table, "smoke", "cpu")
    assert W.reference_note("jhcg_microbench") == "No GPU result of it is committed"
    table.attrs["evidence_measured"] = True  # the book machinery's own flag wins where it sets one
    assert W.measured("jhcg_microbench", table, "smoke", "cpu")
