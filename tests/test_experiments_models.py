"""The MiniGPT-KAN and ViT-KAN chapters' experiments, at toy sizes."""
from __future__ import annotations

import matplotlib
import pandas as pd
import pytest
import torch

from sparsefuse.lab.experiments import minigpt as EM
from sparsefuse.lab.experiments import minigpt_distributed as MD
from sparsefuse.lab.experiments import vit as EV

matplotlib.use("Agg")

TINY_LM = dict(variants=["mlp", "kan-reference"], sweep_variants=["mlp", "kan-reference"], max_chars=20_000,
               budget_steps=4, batch_size=2, block_size=16,
               eval_batches=1, sweep_lengths=[8, 16], sweep_batch_size=2, sweep_steps=2)
TINY_VIT = dict(variants=["mlp", "kan-reference"], feas_batch_size=4, feas_steps=2, acc_steps=4, acc_batch_size=8)


@pytest.fixture(scope="module")
def lm_df():
    return EM.run("smoke", device="cpu", progress=False, **TINY_LM)


def test_minigpt_rows_curves_and_provenance(lm_df):
    df = lm_df
    budget = df[df["section"] == "budget"]
    assert list(budget["variant"]) == ["mlp", "kan-reference"]
    assert (budget["status"] == "ok").all()
    assert (budget["tokens_per_s"] > 0).all() and budget["val_loss"].notna().all()
    assert budget.set_index("variant").loc["kan-reference", "params"] > budget.set_index("variant").loc["mlp", "params"]
    assert budget.set_index("variant").loc["kan-reference", "resolved_impl"] == "reference"
    curve = df[df["section"] == "curve"]
    assert len(curve) == 2 * 4 and curve["loss"].notna().all()
    sweep = df[df["section"] == "seq_sweep"]
    assert sorted(sweep["block_size"].unique()) == [8, 16] and (sweep["status"] == "ok").all()
    sb = df[df["section"] == "scale_b"]
    assert (sb["status"] == "skipped").all()  # no GPU here
    assert (df["seed"].dropna() == 0).all()
    assert df.attrs["corpus"]["source"] in ("python-stdlib", "data_root")
    assert df.attrs["corpus"]["chars"] == 20_000 or df.attrs["corpus"]["source"] == "data_root"
    fig = EM.plot(df)
    assert isinstance(fig, matplotlib.figure.Figure)


def test_minigpt_same_seed_same_numbers(lm_df):
    again = EM.run("smoke", device="cpu", progress=False, **dict(TINY_LM, sweep_lengths=[8]))
    a = lm_df[lm_df["section"] == "budget"]["final_loss"].to_numpy()
    b = again[again["section"] == "budget"]["final_loss"].to_numpy()
    assert a == pytest.approx(b, rel=1e-5)


def test_minigpt_oom_is_a_row_and_longer_lengths_are_not_tried(monkeypatch):
    real = EM.M.MiniGPT.forward

    def forward(self, idx, targets=None):
        if self.cfg.ffn == "kan" and idx.shape[1] >= 8:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 80.00 GiB")
        return real(self, idx, targets)

    monkeypatch.setattr(EM.M.MiniGPT, "forward", forward)
    df = EM.run("smoke", device="cpu", progress=False, **dict(TINY_LM, budget_steps=2))
    kan = df[(df["variant"] == "kan-reference") & df["section"].isin(["budget", "seq_sweep"])]
    assert (kan["status"] == "oom").all()
    sweep = kan[kan["section"] == "seq_sweep"].set_index("block_size")
    assert "not tried" not in sweep.loc[8, "note"] and "not tried: OOM at T=8" in sweep.loc[16, "note"]
    assert (df[(df["variant"] == "mlp") & (df["section"] == "budget")]["status"] == "ok").all()
    EM.plot(df)


def test_minigpt_diverging_run_is_stopped_and_recorded(monkeypatch):
    real = EM.M.MiniGPT.forward

    def forward(self, idx, targets=None):
        logits, loss = real(self, idx, targets)
        return logits, (loss * float("nan") if self.cfg.ffn == "kan" and loss is not None else loss)

    monkeypatch.setattr(EM.M.MiniGPT, "forward", forward)
    df = EM.run("smoke", device="cpu", progress=False, **dict(TINY_LM, budget_steps=5, sweep_lengths=[8]))
    row = df[(df["section"] == "budget") & (df["variant"] == "kan-reference")].iloc[0]
    assert row["status"] == "diverged" and row["steps"] == 1
    assert df[(df["section"] == "budget") & (df["variant"] == "mlp")]["status"].iloc[0] == "ok"


def test_minigpt_bad_arguments():
    with pytest.raises(ValueError, match="profile"):
        EM.run("huge")
    with pytest.raises(ValueError, match="override"):
        EM.run("smoke", n_steps=3)
    with pytest.raises(ValueError, match="variants"):
        EM.run("smoke", variants=["kan-fast"])


def test_lr_schedule_warms_up_and_decays():
    lrs = [EM.lr_at(s, 100, 1.0) for s in range(100)]
    assert lrs[0] < lrs[4] == pytest.approx(1.0)
    assert lrs[-1] == pytest.approx(0.1, abs=0.01)
    assert all(a >= b for a, b in zip(lrs[5:], lrs[6:]))


def test_vit_feasibility_accuracy_and_missing_cifar(tmp_path, monkeypatch):
    monkeypatch.setenv("DATA_ROOT", str(tmp_path))  # no cifar-100-python here
    df = EV.run("smoke", device="cpu", progress=False, cifar100=True, **TINY_VIT)
    feas = df[df["section"] == "feasibility"]
    assert (feas["status"] == "ok").all() and (feas["images_per_s"] > 0).all()
    assert (feas["dataset"] == "synthetic").all()
    acc = df[df["section"] == "accuracy"]
    assert (acc["status"] == "ok").all() and acc["test_acc"].between(0, 1).all()
    assert len(df[(df["section"] == "curve")]) == 2 * 4
    cifar = df[df["section"] == "cifar100"]
    assert (cifar["status"] == "skipped").all() and cifar["note"].str.contains("CIFAR-100").all()
    assert "digits" in df.attrs["datasets"] and "synthetic" in df.attrs["datasets"]
    assert isinstance(EV.plot(df), matplotlib.figure.Figure)


def test_to_cifar_shape():
    x = torch.rand(5, 1, 8, 8)
    y = EV.to_cifar_shape(x)
    assert y.shape == (5, 3, 32, 32)
    torch.testing.assert_close(y[:, 0], y[:, 2])
    assert EV.to_cifar_shape(torch.rand(2, 3, 32, 32)).shape == (2, 3, 32, 32)
    with pytest.raises(ValueError, match="x must be"):
        EV.to_cifar_shape(torch.rand(3, 32, 32))


def test_scaling_plot_handles_ok_and_skipped_rows():
    df = pd.DataFrame([dict(strategy="ddp", world_size=1, tokens_per_s=100.0, status="ok"),
                       dict(strategy="ddp", world_size=2, tokens_per_s=190.0, status="ok"),
                       dict(strategy="fsdp", world_size=4, tokens_per_s=float("nan"), status="skipped")])
    fig = MD.plot_scaling(df)
    assert isinstance(fig, matplotlib.figure.Figure)


def test_minigpt_verdict_says_the_oom_claim_does_not_reproduce_on_the_h200():
    from sparsefuse.lab.book import results
    from sparsefuse.lab.experiments import minigpt

    v = minigpt.verdict_numbers(results.reference(minigpt.NAME).table())
    assert v["mg_oom_text"].startswith("The out-of-memory part of the claim does not reproduce on this GPU")
    assert "121,046 MiB" in v["mg_oom_text"] and "8.11× less" in v["mg_oom_text"]
    assert "nothing ran out of memory" in v["mg_seq_text"] and "nan" not in v["mg_seq_text"]


def test_vit_verdict_says_the_oom_claim_does_not_reproduce_on_the_h200():
    from sparsefuse.lab.book import results
    from sparsefuse.lab.experiments import vit

    v = vit.verdict_numbers(results.reference(vit.NAME).table())
    assert "does not reproduce on this GPU: at the larger model (vit-b)" in v["vt_oom_text"]
    assert "17.2× less" in v["vt_oom_text"]
