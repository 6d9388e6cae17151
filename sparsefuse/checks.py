"""Argument checks shared by the layer, its grid maintenance, its tools and the JHCG block.

One rule per kind of argument, so the same mistake gets the same answer wherever it is
made: a ``ValueError`` whose message starts with the argument's name.
"""

from __future__ import annotations

import torch


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
