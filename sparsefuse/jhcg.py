r"""SparseFuseJHCG: a feed-forward block that splits its hidden width between an MLP path and a KAN path.

Why a hybrid: a KAN feed-forward block costs ``G + k + 2`` times the parameters of
the linear layer it replaces, so swapping a whole Transformer FFN for KAN layers
mixes two effects, the learned splines and the added parameters. JHCG hands only
a share ``rho`` of the block's capacity to a KAN path, keeps an MLP path for the
rest, and lets a learned gate decide per token and channel how much of each
reaches the output. Its parameter count is a closed formula, so the MLP FFN with
the same count (:func:`matched_mlp_hidden`) is the control that separates the two.

The block (``x`` of width ``d``, hidden width ``h``, default ``4 d``)::

    r   = clamp(round(rho * h), 1, h)     KAN-path hidden width (its share of the hidden width)
    h_m = h - r                           MLP-path hidden width (the rest)

    m = W_o GELU(W_m x + b_m)             MLP path,  W_m: (h_m, d), W_o: (d, h_m)
    g = sigmoid(W_g x + b_g)              gate, one value per token and output channel
    k = V KAN_{d -> r}(x)                 "compact":  the splines act on the model-width x
    k = KAN_{r -> d}(U x + b_u)           "expanded": the splines act on r expanded hidden features
    y = (1 - g) * m + g * k + b_o

    KAN(z) = W_b SiLU(z) + sum_i sum_t c[:, i, t] B_t(z_i),   c = spline_weight * spline_scaler

The input projections run as one GEMM, ``W_in = [W_m; W_g]`` (compact) or
``[W_m; U; W_g]`` (expanded). ``compact`` and ``expanded`` are the two places a
KAN layer takes in a Transformer FFN: the first layer, at model width ``d`` (the
KAN reads the block input itself, then ``V: (d, r)`` projects back), or the second,
on the expanded hidden width (``U: (r, d)`` expands, the KAN projects back). At
``rho = 1`` the MLP path is empty (``h_m = 0``) and the block is a gated KAN FFN.
``KAN`` is :class:`sparsefuse.KANLinear` (``impl="auto"``: the fused Triton kernels
on CUDA) on the grid ``[-2, 2]``, which holds most of a LayerNorm output ``x`` and of
``U x`` (``U`` is initialised for unit variance); the spline input is kept in the
parameters' precision (under bf16 autocast a rounded input would land up to 1/256
of its value away from its place between the knots), and the output in the dtype
``nn.Linear`` would give (under autocast the autocast dtype).

Parameters (the KAN layer's own three tensors hold ``r d (G + k + 2)`` numbers)::

    P(d, rho, G, variant, k, h) = (h + d)(d + 1) + d (h + 1) + r d (G + k + 1) - [variant == "compact"] r

against ``P_mlp(h') = h' (2 d + 1) + d`` for the MLP FFN ``Linear(d, h') -> GELU -> Linear(h', d)``.

Cached fast path: in ``eval()`` mode (or after :meth:`SparseFuseJHCG.cache`) a forward
without gradients reuses the concatenated ``W_in``/``b_in`` and the scaled spline
coefficients ``c`` (the contiguous ``[out, in, G + k]`` layout the kernels read)
instead of rebuilding them every call; under autocast also their low-precision
copies, which autocast and the fused kernel would otherwise make on every call.
(``c`` is used wherever KANLinear reads ``scaled_spline_weight``; a KAN kernel that
applies ``spline_scaler`` on the fly has nothing to reuse there.)
The cache is keyed on each source parameter's identity, in-place version counter
and storage, so an optimizer step, ``load_state_dict``, ``nn.init``, a replaced
parameter, ``extend_grid`` or a storage swapped in through ``.data``
(``vector_to_parameters``) invalidates it, and ``.to()``/``.cuda()``/``.double()``
drop it; only an in-place write through ``.data`` (``p.data.add_(1)``) goes unseen
(call :meth:`invalidate` after those).
Both paths run the same operations on the same values, so their outputs are
bitwise equal. Under ``torch.compile`` the cache is bypassed: the compiled graph
computes the weights itself.
"""
from __future__ import annotations

import contextlib
import math
import numbers

import torch
import torch.nn.functional as F
from torch import nn

from .checks import check_int
from .kan_linear import IMPLS, KANLinear

__all__ = ["SparseFuseJHCG", "VARIANTS", "kan_width", "param_count", "mlp_param_count", "matched_mlp_hidden",
           "ABLATIONS"]

VARIANTS = ("compact", "expanded")
ABLATIONS = (None, "mlp", "kan")


# ------------------------------------------------------------------ sizes and parameter counts

def _check_rho(rho) -> float:
    if isinstance(rho, bool) or not isinstance(rho, numbers.Real) or not math.isfinite(rho) or not 0 < rho <= 1:
        raise ValueError(f"rho: expected a number in (0, 1], got {rho!r}")
    return float(rho)


def _check_variant(variant) -> str:
    if variant not in VARIANTS:
        raise ValueError(f"variant: expected one of {VARIANTS}, got {variant!r}")
    return variant


def _hidden(d: int, hidden) -> int:
    return 4 * d if hidden is None else check_int("hidden", hidden)


def kan_width(d: int, rho: float, variant: str, hidden: int | None = None) -> int:
    """``r``: the KAN path's share of the hidden width ``h``, ``round(rho * h)`` in [1, h] (both variants)."""
    d, rho = check_int("d", d), _check_rho(rho)
    _check_variant(variant)
    h = _hidden(d, hidden)
    return max(1, min(h, math.floor(rho * h + 0.5)))


def param_count(d: int, rho: float, grid_size: int, variant: str, spline_order: int = 3,
                hidden: int | None = None) -> int:
    """Trainable parameters of ``SparseFuseJHCG(d, rho, grid_size, variant, ...)`` (the module docstring's P)."""
    g, k = check_int("grid_size", grid_size), check_int("spline_order", spline_order)
    r = kan_width(d, rho, variant, hidden)
    h = _hidden(d, hidden)
    return (h + d) * (d + 1) + d * (h + 1) + r * d * (g + k + 1) - (r if variant == "compact" else 0)


def mlp_param_count(d: int, hidden: int) -> int:
    """Parameters of the MLP FFN ``Linear(d, hidden) -> GELU -> Linear(hidden, d)`` (biases included)."""
    return check_int("hidden", hidden) * (2 * check_int("d", d) + 1) + d


def matched_mlp_hidden(d: int, rho: float, grid_size: int, variant: str, spline_order: int = 3,
                       hidden: int | None = None) -> int:
    """Hidden width of the MLP FFN whose parameter count is closest to the JHCG block's (the control)."""
    target = param_count(d, rho, grid_size, variant, spline_order, hidden)
    return max(1, math.floor((target - d) / (2 * d + 1) + 0.5))


# ------------------------------------------------------------------ the block

class _PinnableKAN(KANLinear):
    """A KANLinear whose scaled spline coefficients can be pinned to a precomputed tensor for one call."""

    _pinned: torch.Tensor | None = None

    def _scaled(self) -> torch.Tensor:
        # KANLinear.scaled_spline_weight's expression, spelled out: Dynamo cannot trace super() on a property
        if self.enable_standalone_scale_spline:
            return self.spline_weight * self.spline_scaler.unsqueeze(-1)
        return self.spline_weight

    @property
    def scaled_spline_weight(self) -> torch.Tensor:
        if self._pinned is not None:
            return self._pinned
        return self._scaled()


class SparseFuseJHCG(nn.Module):
    """Hybrid MLP/KAN feed-forward block, input ``(..., d)`` -> ``(..., d)``; see the module docstring."""

    def __init__(self, d: int, rho: float = 0.25, grid_size: int = 5, variant: str = "expanded", *,
                 hidden: int | None = None, spline_order: int = 3, grid_range=(-2.0, 2.0), impl: str = "auto",
                 dropout: float = 0.0, device=None, dtype=None):
        super().__init__()
        self.d = check_int("d", d)
        self.rho = _check_rho(rho)
        grid_size = check_int("grid_size", grid_size)
        self.variant = _check_variant(variant)
        self.spline_order = check_int("spline_order", spline_order)
        self.hidden = _hidden(self.d, hidden)
        if impl not in IMPLS:
            raise ValueError(f"impl: expected one of {IMPLS}, got {impl!r}")
        if isinstance(dropout, bool) or not isinstance(dropout, numbers.Real) or not 0 <= dropout < 1:
            raise ValueError(f"dropout: expected a number in [0, 1), got {dropout!r}")
        self.kan_width = kan_width(self.d, self.rho, self.variant, self.hidden)
        self.mlp_width = self.hidden - self.kan_width
        fk = {"device": device, "dtype": dtype}
        d, r, hm = self.d, self.kan_width, self.mlp_width
        self.mlp_in_weight = nn.Parameter(torch.empty(hm, d, **fk))
        self.mlp_in_bias = nn.Parameter(torch.empty(hm, **fk))
        expanded = self.variant == "expanded"
        # compact: the KAN reads x, V projects its r outputs back; expanded: U feeds the KAN its r inputs
        self.kan_in_weight = nn.Parameter(torch.empty(r, d, **fk)) if expanded else None
        self.kan_in_bias = nn.Parameter(torch.empty(r, **fk)) if expanded else None
        self.kan_out_weight = None if expanded else nn.Parameter(torch.empty(d, r, **fk))
        self.gate_weight = nn.Parameter(torch.empty(d, d, **fk))
        self.gate_bias = nn.Parameter(torch.empty(d, **fk))
        self.mlp_out_weight = nn.Parameter(torch.empty(d, hm, **fk))
        self.out_bias = nn.Parameter(torch.empty(d, **fk))
        kan_in, kan_out = (r, d) if expanded else (d, r)
        self.kan = _PinnableKAN(kan_in, kan_out, grid_size=grid_size, spline_order=self.spline_order,
                                grid_range=list(grid_range), impl=impl, **fk)
        self.drop = nn.Dropout(dropout)
        self.gate_override: float | None = None  # attribution: force g to this value
        self.ablate: str | None = None           # attribution: zero the "mlp" or "kan" path
        self.cache_enabled = False
        self._cache = None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """nn.Linear's init for the linear maps, unit-variance KAN inputs, a half-open gate."""
        d = self.d
        with torch.no_grad():
            for w, b, fan_in in ((self.mlp_in_weight, self.mlp_in_bias, d), (self.gate_weight, None, d),
                                 (self.mlp_out_weight, None, max(1, self.mlp_width)),
                                 (self.kan_out_weight, None, self.kan_width)):
                if w is None:
                    continue
                bound = 1.0 / math.sqrt(fan_in)
                w.uniform_(-bound, bound)
                if b is not None:
                    b.uniform_(-bound, bound)
            if self.kan_in_weight is not None:
                self.kan_in_weight.normal_(0.0, 1.0 / math.sqrt(d))
                self.kan_in_bias.zero_()
            self.gate_bias.zero_()  # g = 1/2 at the start: both paths contribute
            self.out_bias.zero_()
        self.kan.reset_parameters()

    @property
    def grid_size(self) -> int:
        """The KAN layer's, read from it: ``self.kan.extend_grid`` changes it."""
        return self.kan.grid_size

    def extra_repr(self) -> str:
        return (f"d={self.d}, rho={self.rho}, grid_size={self.grid_size}, variant={self.variant!r}, "
                f"hidden={self.hidden}, kan_width={self.kan_width}, mlp_width={self.mlp_width}, "
                f"impl={self.kan.impl!r}")

    # -- the computation ------------------------------------------------------------------
    def merged_input(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(W_in, b_in)``: the input projections (MLP, KAN input when expanded, gate) stacked for one GEMM."""
        if self.kan_in_weight is None:
            return torch.cat([self.mlp_in_weight, self.gate_weight]), torch.cat([self.mlp_in_bias, self.gate_bias])
        w = torch.cat([self.mlp_in_weight, self.kan_in_weight, self.gate_weight])
        b = torch.cat([self.mlp_in_bias, self.kan_in_bias, self.gate_bias])
        return w, b

    def _parts(self, x2: torch.Tensor, w_in: torch.Tensor, b_in: torch.Tensor) -> dict:
        z = F.linear(x2, w_in, b_in)
        dtype = self.gate_weight.dtype  # the spline input in the parameters' precision (module docstring)
        if self.kan_out_weight is None:
            a, u, s = z.split([self.mlp_width, self.kan_width, self.d], dim=-1)
            k = self.kan(u.to(dtype))
        else:
            a, s = z.split([self.mlp_width, self.d], dim=-1)
            u = x2
            k = F.linear(self.kan(u.to(dtype)), self.kan_out_weight)
        m = F.linear(F.gelu(a), self.mlp_out_weight)
        g = torch.sigmoid(s)
        if self.gate_override is not None:
            g = torch.full_like(g, self.gate_override)
        if self.ablate == "mlp":
            m = torch.zeros_like(m)
        elif self.ablate == "kan":
            k = torch.zeros_like(k)
        # in m's dtype, the one nn.Linear gives (under autocast the autocast dtype): the float32
        # output bias, or a spline result kept in float32, would otherwise promote y back
        y = m + g * (k.to(m.dtype) - m) + self.out_bias.to(m.dtype)
        return {"u": u, "g": g, "m": m, "k": k, "y": y}

    def _check_x(self, x) -> None:
        if not torch.is_tensor(x) or not x.is_floating_point() or x.dim() < 1 or x.shape[-1] != self.d:
            shape = tuple(x.shape) if torch.is_tensor(x) else type(x).__name__
            raise ValueError(f"x: expected a floating tensor of shape (..., {self.d}), got {shape}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_x(x)
        lead = x.shape[:-1]
        x2 = x.reshape(-1, self.d)
        cached = self._cached_for(x2) if self.cache_enabled and not torch.compiler.is_compiling() else None
        if cached is not None:
            w_in, b_in, coeff = cached
            self.kan._pinned = coeff
            try:
                y = self._parts(x2, w_in, b_in)["y"]
            finally:
                self.kan._pinned = None
        else:
            y = self._parts(x2, *self.merged_input())["y"]
        return self.drop(y).reshape(*lead, self.d)

    @torch.no_grad()
    def parts(self, x: torch.Tensor) -> dict:
        """The block's intermediate tensors for ``x`` (KAN inputs ``u``, gate ``g``, paths ``m``/``k``, output ``y``)."""
        self._check_x(x)
        return self._parts(x.reshape(-1, self.d), *self.merged_input())

    def grid_bounds(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Per KAN input, the interval ``[t_k, t_{G+k}]`` where the splines act (outside it only SiLU does)."""
        k = self.spline_order
        return self.kan.grid[:, k], self.kan.grid[:, -k - 1]

    @contextlib.contextmanager
    def intervene(self, gate: float | None = None, ablate: str | None = None):
        """Within the block: force the gate to ``gate`` (0 = MLP only, 1 = KAN only) and/or zero one path."""
        if gate is not None and (isinstance(gate, bool) or not isinstance(gate, numbers.Real) or not 0 <= gate <= 1):
            raise ValueError(f"gate: expected None or a number in [0, 1], got {gate!r}")
        if ablate not in ABLATIONS:
            raise ValueError(f"ablate: expected one of {ABLATIONS}, got {ablate!r}")
        old = self.gate_override, self.ablate
        self.gate_override, self.ablate = (None if gate is None else float(gate)), ablate
        try:
            yield self
        finally:
            self.gate_override, self.ablate = old

    # -- the cached fast path ---------------------------------------------------------------
    def train(self, mode: bool = True):
        """``eval()`` turns the cache on, ``train()`` turns it off and drops it."""
        super().train(mode)
        self.cache_enabled = not mode
        if mode:
            self._cache = None
        return self

    def cache(self) -> "SparseFuseJHCG":
        """Turn the cache on (in any mode) and build it now; gradient-free forwards then use it."""
        self.cache_enabled = True
        self._entry(self._cache_sources())
        return self

    def invalidate(self) -> None:
        """Drop the cached tensors; they are rebuilt on the next cached forward."""
        self._cache = None

    def _apply(self, fn, *args, **kwargs):
        self._cache = None  # .to(), .cuda(), .double(), ... swap parameter storage without a version bump
        return super()._apply(fn, *args, **kwargs)

    def _cache_sources(self) -> list[torch.Tensor]:
        # straight from the parameter dicts: nn.Module.__getattr__ would cost more than the cache saves
        p, kp = self._parameters, self._modules["kan"]._parameters
        src = [p[n] for n in ("mlp_in_weight", "kan_in_weight", "gate_weight", "mlp_in_bias", "kan_in_bias",
                              "gate_bias") if p.get(n) is not None] + [kp["spline_weight"]]
        if "spline_scaler" in kp:
            src.append(kp["spline_scaler"])
        return src

    def _entry(self, src: list[torch.Tensor]) -> dict:
        """The cache entry for these parameters (identity and version checked), rebuilt when stale."""
        hit = self._cache
        if hit is not None and len(hit[0]) == len(src) and all(
                a is b and a._version == v and a.data_ptr() == h.data_ptr()
                for a, b, v, h in zip(src, hit[0], hit[1], hit[3])):
            return hit[2]
        with torch.no_grad():
            w_in, b_in = self.merged_input()
            values = {None: (w_in, b_in, self.kan._scaled().contiguous())}
        # the aliases keep each source's storage alive, so a storage swapped in later cannot reuse its address
        self._cache = (tuple(src), tuple(p._version for p in src), values, tuple(p.detach() for p in src))
        return values

    def _cached_for(self, x2: torch.Tensor):
        """``(W_in, b_in, c)`` for this call, or None when the call needs the uncached path (gradients)."""
        src = self._cache_sources()
        if torch.is_grad_enabled() and any(p.requires_grad for p in src):
            return None  # the cached (detached) tensors would cut the parameters out of the graph
        values = self._entry(src)
        dev = x2.device.type
        cast = torch.get_autocast_dtype(dev) if torch.is_autocast_enabled(dev) else None
        if cast not in values:
            # under autocast: the copies autocast (and the fused kernel) would make on every call, made once
            w_in, b_in, coeff = values[None]
            with torch.no_grad():
                fused = self.kan.resolve_impl(x2.new_empty(0, self.kan.in_features)) == "fused"
                values[cast] = (w_in.to(cast), b_in.to(cast), coeff.to(cast) if fused else coeff)
        return values[cast]
