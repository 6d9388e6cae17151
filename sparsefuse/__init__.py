"""SparseFuse: fast Kolmogorov-Arnold Network layers through sparse, fused Triton kernels.

``sparsefuse.KANLinear`` is a drop-in replacement for efficient-kan's layer
(same parameter names, shapes and outputs); ``impl="auto"`` picks the fused
Triton kernels on CUDA and the fastest PyTorch path elsewhere. ``sparsefuse.fit``
is a small training loop (:mod:`sparsefuse.kan_tools`, with ``plot`` and ``prune``).
"""

__version__ = "0.1.0"

__all__ = ["KANLinear", "KAN", "fit", "__version__"]


def __getattr__(name):
    # Lazy so that ``import sparsefuse.lab.book`` (the runner) does not pay for torch.
    if name in ("KANLinear", "KAN"):
        from . import kan_linear

        return getattr(kan_linear, name)
    if name == "fit":
        from .kan_tools import fit

        return fit
    raise AttributeError(f"module 'sparsefuse' has no attribute {name!r}")
