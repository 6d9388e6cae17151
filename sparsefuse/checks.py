"""Argument checks shared by the layer, its grid maintenance, its tools and the JHCG block.

One rule per kind of argument, so the same mistake gets the same answer wherever it is
made: a ``ValueError`` whose message starts with the argument's name.
"""

from __future__ import annotations

import numbers

import torch


def check_int(name: str, v, least: int = 1) -> int:
    """``v`` as a Python int: a Python or NumPy integer (not a bool) of at least ``least``."""
    if isinstance(v, (bool, torch.Tensor)) or not isinstance(v, numbers.Integral) or v < least:
        raise ValueError(f"{name}: expected an integer >= {least}, got {v!r}")
    return int(v)


def check_samples(layer, x, what: str) -> torch.Tensor:
    """``x`` as ``[N, in]`` samples a data-driven method (``update_grid``, ``prune``, ``plot``) can use.

    At least one, all finite: NaN or Inf would not raise downstream but quietly give NaN
    knots, scores and titles (``forward`` itself lets them propagate, as a layer should).
    """
    layer._check_x(x)
    x = x.reshape(-1, layer.in_features)
    if x.shape[0] == 0:
        raise ValueError(f"x: {what} needs at least one sample")
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"x: {what} needs finite samples, got NaN or Inf")
    return x
