"""FFN blocks, MiniGPT, ViT and the character corpus."""
from __future__ import annotations

import warnings

import pytest
import torch

from sparsefuse.lab import text_data
from sparsefuse.kan_linear import KANLinear
from sparsefuse.lab.models import ffn as F_
from sparsefuse.lab.models import minigpt as M
from sparsefuse.lab.models import vit as V


# ----------------------------------------------------------------------------- FFN blocks

@pytest.mark.parametrize("kind", F_.FFN_KINDS)
def test_ffn_shapes_and_gradients(kind):
    torch.manual_seed(0)
    f = F_.build_ffn(kind, 8, 12, impl="reference")
    x = torch.randn(2, 5, 8, requires_grad=True)
    y = f(x)
    assert y.shape == x.shape
    y.square().sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert all(p.grad is not None for p in f.parameters())
    assert f(torch.zeros(0, 3, 8)).shape == (0, 3, 8)


def test_kan_ffn_is_two_kan_layers_without_extra_activation():
    torch.manual_seed(0)
    f = F_.build_ffn("kan", 6, 10, impl="reference", grid_size=4)
    assert isinstance(f.up, KANLinear) and isinstance(f.down, KANLinear)
    assert (f.up.in_features, f.up.out_features, f.down.out_features) == (6, 10, 6)
    assert f.up.grid_size == 4
    x = torch.randn(7, 6)
    torch.testing.assert_close(f(x), f.down(f.up(x)))
    # grid spans [-2, 2] (pre-LN activations), not efficient-kan's default [-1, 1]
    k = f.up.spline_order
    assert f.up.grid[0, k].item() == pytest.approx(-2.0) and f.up.grid[0, -k - 1].item() == pytest.approx(2.0)


def test_gated_kan_gate_multiplies_kan_up_projection():
    torch.manual_seed(0)
    f = F_.build_ffn("gated_kan", 6, 10, impl="reference")
    x = torch.randn(4, 6)
    torch.testing.assert_close(f(x), f.down(f.up(x) * torch.sigmoid(f.gate(x))))
    with torch.no_grad():  # a closed gate passes nothing but the down-projection of zero
        f.gate.weight.zero_()
        f.gate.bias.fill_(-1e4)
    torch.testing.assert_close(f(x), f.down(torch.zeros(4, 10)).expand(4, 6))


def test_jhcg_ffn_is_the_hybrid_block_at_the_given_width():
    from sparsefuse.jhcg import SparseFuseJHCG, param_count

    f = F_.build_ffn("jhcg", 8, 24, impl="reference", grid_size=4, rho=0.5, variant="compact")
    assert isinstance(f, SparseFuseJHCG)
    assert (f.hidden, f.kan_width, f.mlp_width, f.kan.impl) == (24, 12, 12, "reference")
    assert sum(p.numel() for p in f.parameters()) == param_count(8, 0.5, 4, "compact", hidden=24)
    assert f(torch.randn(3, 5, 8)).shape == (3, 5, 8)


def test_kan_ffn_auto_matches_reference():
    torch.manual_seed(0)
    a = F_.build_ffn("kan", 5, 7, impl="auto")
    b = F_.build_ffn("kan", 5, 7, impl="reference")
    b.load_state_dict(a.state_dict())
    x = torch.randn(9, 5) * 1.5
    torch.testing.assert_close(a(x), b(x), atol=1e-5, rtol=1e-5)


def test_ffn_nan_propagates():
    f = F_.build_ffn("kan", 4, 4, impl="reference")
    x = torch.randn(3, 4)
    x[1, 2] = float("nan")
    y = f(x)
    assert torch.isnan(y[1]).any() and torch.isfinite(y[0]).all()


def test_ffn_bad_input():
    with pytest.raises(ValueError, match="kind"):
        F_.build_ffn("moe", 4, 4)
    with pytest.raises(ValueError, match="d_hidden"):
        F_.build_ffn("mlp", 4, 0)
    with pytest.raises(ValueError, match="impl"):
        F_.build_ffn("kan", 4, 4, impl="cuda")


# ----------------------------------------------------------------------------- MiniGPT

@pytest.mark.parametrize("ffn", ["mlp", "kan", "gated_kan", "jhcg"])
def test_minigpt_shapes_loss_and_causality(ffn):
    torch.manual_seed(0)
    cfg = M.make_config("tiny", ffn=ffn, vocab_size=20, impl="reference")
    model = M.MiniGPT(cfg).eval()
    idx = torch.randint(0, 20, (2, 12))
    logits, loss = model(idx, idx)
    assert logits.shape == (2, 12, 20)
    assert loss.ndim == 0 and abs(loss.item() - torch.log(torch.tensor(20.0)).item()) < 0.5
    changed = idx.clone()
    changed[:, 8:] = (changed[:, 8:] + 1) % 20
    torch.testing.assert_close(model(changed)[0][:, :8], logits[:, :8])  # the future is not seen
    assert not torch.allclose(model(changed)[0][:, 8:], logits[:, 8:])


def test_minigpt_learns_a_repeating_sequence():
    torch.manual_seed(0)
    model = M.MiniGPT(M.make_config("tiny", ffn="kan", vocab_size=5, impl="reference"))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    seq = torch.arange(33) % 5
    x, y = seq[:-1][None], seq[1:][None]
    first = model(x, y)[1].item()
    for _ in range(30):
        loss = model(x, y)[1]
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.3 * first
    out = model.generate(x[:, :3], 5, generator=torch.Generator().manual_seed(0))
    assert out.shape == (1, 8)


def test_minigpt_configs_and_bad_input():
    a, b = M.make_config("scale-a"), M.make_config("scale-b")
    assert b.d_model > a.d_model and b.n_layer > a.n_layer and b.block_size > a.block_size
    assert M.make_config("scale-a", ffn="kan").ffn == "kan"
    with pytest.raises(ValueError, match="config"):
        M.make_config("scale-z")
    model = M.MiniGPT(M.make_config("tiny", vocab_size=10))
    with pytest.raises(ValueError, match="block_size"):
        model(torch.zeros(1, 33, dtype=torch.long))
    with pytest.raises(ValueError, match="idx"):
        model(torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="n_head"):
        M.MiniGPT(M.make_config("tiny", n_head=3))
    assert model(torch.zeros(0, 4, dtype=torch.long))[0].shape == (0, 4, 10)


def test_kan_params_are_counted_and_tied_head():
    model = M.MiniGPT(M.make_config("tiny", ffn="kan", vocab_size=10))
    assert model.head.weight is model.tok.weight
    kan = [m for m in model.modules() if isinstance(m, KANLinear)]
    assert len(kan) == 2 * model.cfg.n_layer
    assert M.count_params(model) > M.count_params(M.MiniGPT(M.make_config("tiny", vocab_size=10)))


# ----------------------------------------------------------------------------- ViT

@pytest.mark.parametrize("ffn", ["mlp", "kan"])
def test_vit_shapes_at_cifar100(ffn):
    torch.manual_seed(0)
    model = V.ViT(V.make_config("tiny", ffn=ffn, impl="reference"))
    x = torch.randn(3, 3, 32, 32)
    out = model(x)
    assert out.shape == (3, 100)
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    assert model(torch.zeros(0, 3, 32, 32)).shape == (0, 100)


def test_vit_images_are_independent_and_bad_input():
    model = V.ViT(V.make_config("tiny", num_classes=7)).eval()
    x = torch.randn(2, 3, 32, 32)
    # the two images are independent: changing one leaves the other's logits unchanged
    y = model(x)
    x2 = x.clone()
    x2[1] += 1.0
    torch.testing.assert_close(model(x2)[0], y[0])
    with pytest.raises(ValueError, match="images"):
        model(torch.randn(2, 1, 32, 32))
    with pytest.raises(ValueError, match="patch_size"):
        V.ViT(V.make_config("tiny", patch_size=5))
    with pytest.raises(ValueError, match="config"):
        V.make_config("vit-h")


# ----------------------------------------------------------------------------- corpus and tokenizer

def test_offline_corpus_is_the_stdlib_and_deterministic(monkeypatch):
    monkeypatch.delenv("DATA_ROOT", raising=False)
    text, prov = text_data.load_corpus(max_chars=5000)
    text2, prov2 = text_data.load_corpus(max_chars=5000)
    assert len(text) == 5000 and text == text2 and prov == prov2
    assert prov["source"] == "python-stdlib" and prov["chars"] == 5000
    assert "def " in text or "import" in text


def test_corpus_from_data_root_and_missing_one_warns(tmp_path):
    (tmp_path / "text").mkdir()
    (tmp_path / "text" / "corpus.txt").write_text("hello world\n" * 10)
    text, prov = text_data.load_corpus(data_root=str(tmp_path))
    assert prov["source"] == "data_root" and text.startswith("hello world")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.warns(UserWarning, match="no text corpus under DATA_ROOT"):
        _, prov = text_data.load_corpus(data_root=str(empty), max_chars=100)
    assert prov["source"] == "python-stdlib"
    with pytest.raises(ValueError, match="max_chars"):
        text_data.load_corpus(max_chars=-1)


def test_tokenizer_round_trip_and_batches():
    tok = M.CharTokenizer.from_text("abcab\n")
    assert tok.vocab_size == 4
    ids = tok.encode("cab\n")
    assert tok.decode(ids) == "cab\n"
    with pytest.raises(ValueError, match="vocabulary"):
        tok.encode("z")
    ids = torch.arange(100)
    x, y = text_data.get_batch(ids, 3, 10, torch.Generator().manual_seed(0))
    assert x.shape == y.shape == (3, 10)
    torch.testing.assert_close(y[:, :-1], x[:, 1:])
    torch.testing.assert_close(y - x, torch.ones_like(x))
    with pytest.raises(ValueError, match="block_size"):
        text_data.get_batch(ids, 2, 100)
    train, val = text_data.split(ids, 0.1)
    assert len(train) == 90 and val[0] == 90
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert text_data.get_batch(ids, 0, 5)[0].shape == (0, 5)
