"""Offline datasets: tabular splits, image loaders, the CIFAR-100 path and its fallback."""

import pickle

import numpy as np
import pytest
import torch

from sparsefuse.lab.data import IMAGES, TABULAR, DatasetFallbackWarning, load_images, load_tabular


@pytest.mark.parametrize("name", TABULAR)
def test_load_tabular_scaled_split(name):
    d = load_tabular(name)
    assert d.X_train.dtype == torch.float32 and d.X_train.shape[1] == d.X_test.shape[1] == d.n_features
    assert len(d.X_train) == len(d.y_train) and len(d.X_test) == len(d.y_test)
    assert 0.2 < len(d.X_test) / (len(d.X_train) + len(d.X_test)) < 0.3
    assert d.X_train.min() >= -1 and d.X_train.max() <= 1 and d.X_test.abs().max() <= 1
    if name == "diabetes":
        assert d.task == "regression" and d.out_features == 1
        assert abs(float(d.y_train.mean())) < 1e-5 and abs(float(d.y_train.std()) - 1) < 0.01
    else:
        assert d.task == "classification" and d.y_train.dtype == torch.int64
        assert set(d.y_test.tolist()) <= set(range(d.n_classes)) and d.out_features == d.n_classes
    again = load_tabular(name)
    assert torch.equal(again.X_test, d.X_test)  # the split is seeded


def test_load_tabular_bad_input():
    with pytest.raises(ValueError, match="name"):
        load_tabular("iris")
    with pytest.raises(ValueError, match="test_fraction"):
        load_tabular("wine", test_fraction=1.5)


def test_load_images_offline_sets():
    d = load_images("digits")
    assert d.shape == (1, 8, 8) and d.n_classes == 10 and d.note == ""
    assert 0 <= float(d.X_train.min()) and float(d.X_train.max()) <= 1
    m = load_images("mnist5k")
    assert m.shape == (1, 28, 28) and len(m.X_train) + len(m.X_test) == 5000
    assert m.y_train.dtype == torch.int64
    with pytest.raises(ValueError, match="name"):
        load_images("imagenet")
    assert set(IMAGES) == {"digits", "mnist5k", "cifar100"}


def test_cifar100_missing_falls_back_with_one_clear_message(tmp_path, monkeypatch):
    monkeypatch.delenv("DATA_ROOT", raising=False)
    with pytest.warns(DatasetFallbackWarning, match="CIFAR-100 not found") as rec:
        d = load_images("cifar100", data_root=tmp_path, fallback="digits")
    assert len(rec) == 1
    assert d.name == "cifar100" and "digits" in d.source and str(tmp_path) in d.note


def _write_cifar(folder, n, seed):
    rng = np.random.default_rng(seed)
    data = {"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), "fine_labels": list(rng.integers(0, 100, n))}
    folder.mkdir(parents=True, exist_ok=True)
    for split in ("train", "test"):
        with open(folder / split, "wb") as f:
            pickle.dump(data, f)
    return data


def test_cifar100_from_data_root(tmp_path, monkeypatch):
    data = _write_cifar(tmp_path / "cifar-100-python", 6, 0)
    monkeypatch.setenv("DATA_ROOT", str(tmp_path))
    d = load_images("cifar100")
    assert d.shape == (3, 32, 32) and d.n_classes == 100 and d.note == ""
    first = torch.as_tensor(data["data"][0].reshape(3, 32, 32), dtype=torch.float32) / 255
    assert torch.allclose(d.X_train[0], first)
    assert d.y_train.tolist() == [int(v) for v in data["fine_labels"]]
