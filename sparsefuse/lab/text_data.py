"""Character-level text corpus for the MiniGPT-KAN chapter.

A corpus file under ``DATA_ROOT`` is used when present; otherwise the offline
default is the Python standard library's own source text, which every machine
that runs the book already has.  The returned provenance says which one was used
so a result can never be mistaken for the other.
"""
from __future__ import annotations

import glob
import hashlib
import os
import sys
import sysconfig
import warnings
from dataclasses import dataclass

import torch

from sparsefuse.checks import check_int

#: Files looked for under ``DATA_ROOT`` (first hit wins).
CORPUS_CANDIDATES = (
    "text/corpus.txt",
    "tinyshakespeare/input.txt",
    "tiny_shakespeare.txt",
    "input.txt",
)


def _stdlib_text(max_chars: int | None) -> tuple[str, dict]:
    """Concatenate the top-level stdlib ``*.py`` files in sorted order (deterministic)."""
    root = sysconfig.get_paths()["stdlib"]
    files = sorted(glob.glob(os.path.join(root, "*.py")))
    parts, total, used = [], 0, 0
    for path in files:
        with open(path, "rb") as fh:
            # ASCII keeps the vocabulary identical across Python builds and locales.
            chunk = fh.read().decode("ascii", errors="replace").replace("\ufffd", "?")
        parts.append(chunk)
        total += len(chunk)
        used += 1
        if max_chars is not None and total >= max_chars:
            break
    text = "".join(parts)
    if max_chars is not None:
        text = text[:max_chars]
    prov = {
        "source": "python-stdlib",
        "path": root,
        "files": used,
        "python": sys.version.split()[0],
    }
    return text, prov


def load_corpus(data_root: str | None = None, max_chars: int | None = None) -> tuple[str, dict]:
    """Return ``(text, provenance)``.

    ``data_root`` defaults to the ``DATA_ROOT`` environment variable.  When it is
    set but holds no corpus, one warning names the files looked for and the
    stdlib default is used.
    """
    max_chars = None if max_chars is None else check_int("max_chars", max_chars, 0)
    root = data_root if data_root is not None else os.environ.get("DATA_ROOT")
    if root:
        for rel in CORPUS_CANDIDATES:
            path = os.path.join(root, rel)
            if os.path.isfile(path):
                with open(path, encoding="utf-8", errors="replace") as fh:
                    text = fh.read() if max_chars is None else fh.read(max_chars)
                prov = {"source": "data_root", "path": path}
                break
        else:
            warnings.warn(
                f"no text corpus under DATA_ROOT={root!r} (looked for {', '.join(CORPUS_CANDIDATES)}); "
                "using the Python standard library source as the offline default",
                stacklevel=2,
            )
            text, prov = _stdlib_text(max_chars)
    else:
        text, prov = _stdlib_text(max_chars)
    prov["chars"] = len(text)
    prov["sha256"] = hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
    return text, prov


@dataclass
class CharTokenizer:
    """Maps each distinct character of a text to an integer id (sorted, so stable)."""

    chars: list

    @classmethod
    def from_text(cls, text: str) -> "CharTokenizer":
        return cls(sorted(set(text)))

    def __post_init__(self):
        self._stoi = {c: i for i, c in enumerate(self.chars)}

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> torch.Tensor:
        try:
            return torch.tensor([self._stoi[c] for c in text], dtype=torch.long)
        except KeyError as exc:
            raise ValueError(f"text contains a character outside the vocabulary: {exc.args[0]!r}") from None

    def decode(self, ids) -> str:
        return "".join(self.chars[int(i)] for i in ids)


def split(ids: torch.Tensor, val_fraction: float = 0.1) -> tuple[torch.Tensor, torch.Tensor]:
    """Contiguous train/validation split (the tail is validation)."""
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction!r}")
    n_val = int(len(ids) * val_fraction)
    return ids[: len(ids) - n_val], ids[len(ids) - n_val:]


def get_batch(ids: torch.Tensor, batch_size: int, block_size: int, generator: torch.Generator | None = None,
              device="cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """Random windows ``x`` and their next-character targets ``y``, both ``[batch_size, block_size]``."""
    if block_size < 1:
        raise ValueError(f"block_size must be >= 1, got {block_size!r}")
    if batch_size < 0:
        raise ValueError(f"batch_size must be >= 0, got {batch_size!r}")
    if len(ids) <= block_size:
        raise ValueError(f"ids has {len(ids)} tokens; block_size={block_size} needs at least {block_size + 1}")
    starts = torch.randint(0, len(ids) - block_size, (batch_size,), generator=generator)
    offs = torch.arange(block_size + 1)
    win = ids[starts[:, None] + offs[None, :]]
    return win[:, :-1].to(device), win[:, 1:].to(device)
