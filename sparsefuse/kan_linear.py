"""KANLinear and KAN with efficient-kan's parameters, buffers and numbers, plus selectable paths.

``y = linear(base_activation(x), base_weight) + spline_contract(x, grid, scaled_spline_weight, k)``.

Names and shapes match efficient-kan, so its checkpoints load with ``strict=True``:
``grid`` [in, G+2k+1] (buffer), ``base_weight`` [out, in], ``spline_weight`` [out, in, G+k],
``spline_scaler`` [out, in] (only with ``enable_standalone_scale_spline``).

Deliberate differences: ``update_grid`` and ``extend_grid`` refit ``spline_weight``
so that ``scaled_spline_weight`` (not ``spline_weight``) reproduces the old spline
(efficient-kan stores the scaled fit unscaled, which changes the layer's function),
and ``regularization_loss`` is taken on ``scaled_spline_weight`` so that refit does
not change it. Methods that change the layer validate everything first and write
last: a call that raises leaves the layer as it was.
"""

from __future__ import annotations

import math

import torch

from . import regrid
from .basis.bspline import cox_de_boor
from .checks import check_int
from .grid import uniform_grid
from .paths import plan
from .paths.plan import AUTO_TRAIN_SPARSE_MIN_BASES, IMPLS, auto_without_fused  # noqa: F401  (re-exported)
from .paths.plan import check_impl as _check_impl
from .regrid import GridResizeWarning  # noqa: F401  (re-exported: filter it by this name)


class KANLinear(torch.nn.Module):
    """A Kolmogorov–Arnold layer: a learnable order-k B-spline per (input, output) edge plus a base branch."""

    def __init__(self, in_features, out_features, grid_size=5, spline_order=3, scale_noise=0.1,
                 scale_base=1.0, scale_spline=1.0, enable_standalone_scale_spline=True,
                 base_activation=torch.nn.SiLU, grid_eps=0.02, grid_range=[-1, 1], impl="auto",
                 *, device=None, dtype=None):
        super().__init__()
        in_features, out_features = check_int("in_features", in_features), check_int("out_features", out_features)
        grid_size, spline_order = check_int("grid_size", grid_size), check_int("spline_order", spline_order)
        try:
            lo_r, hi_r = (float(v) for v in grid_range)
        except (TypeError, ValueError):
            raise ValueError(f"grid_range: expected two numbers [lo, hi], got {grid_range!r}") from None
        if not (math.isfinite(lo_r) and math.isfinite(hi_r) and lo_r < hi_r):
            raise ValueError(f"grid_range: expected finite lo < hi, got {grid_range!r}")
        if dtype is None:
            dtype = torch.get_default_dtype()
        if not dtype.is_floating_point:
            raise ValueError(f"dtype: expected a floating dtype, got {dtype}")
        self.in_features = in_features
        self.out_features = out_features
        self.grid_size = grid_size
        self.spline_order = spline_order
        self.impl = impl

        fk = {"device": device, "dtype": dtype}
        self.register_buffer("grid", uniform_grid(in_features, grid_size, spline_order, (lo_r, hi_r), **fk))
        self.base_weight = torch.nn.Parameter(torch.empty(out_features, in_features, **fk))
        self.spline_weight = torch.nn.Parameter(torch.empty(out_features, in_features, grid_size + spline_order, **fk))
        if enable_standalone_scale_spline:
            self.spline_scaler = torch.nn.Parameter(torch.empty(out_features, in_features, **fk))

        self.scale_noise = scale_noise
        self.scale_base = scale_base
        self.scale_spline = scale_spline
        self.enable_standalone_scale_spline = enable_standalone_scale_spline
        self.base_activation = base_activation()
        self.grid_eps = grid_eps
        self.reset_parameters()

    # -- configuration -------------------------------------------------------------------
    @property
    def impl(self) -> str:
        return self._impl

    @impl.setter
    def impl(self, value):
        self._impl = _check_impl(value)

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"grid_size={self.grid_size}, spline_order={self.spline_order}, impl={self.impl!r}")

    # -- efficient-kan API -----------------------------------------------------------------
    def reset_parameters(self):
        """efficient-kan's init: kaiming base weights, splines fitted to small noise."""
        torch.nn.init.kaiming_uniform_(self.base_weight, a=math.sqrt(5) * self.scale_base)
        with torch.no_grad():
            g, k = self.grid_size, self.spline_order
            noise = (torch.rand(g + 1, self.in_features, self.out_features,
                                dtype=self.grid.dtype, device=self.grid.device) - 0.5) * self.scale_noise / g
            scale = self.scale_spline if not self.enable_standalone_scale_spline else 1.0
            self.spline_weight.copy_(scale * self.curve2coeff(self.grid.T[k:-k], noise))
            if self.enable_standalone_scale_spline:
                torch.nn.init.kaiming_uniform_(self.spline_scaler, a=math.sqrt(5) * self.scale_spline)

    def _check_x(self, x, two_d=False):
        if not torch.is_tensor(x):
            raise ValueError(f"x: expected a tensor, got {type(x).__name__}")
        if not x.is_floating_point():
            raise ValueError(f"x: expected a floating dtype, got {x.dtype}")
        if x.dim() < 1 or x.shape[-1] != self.in_features:
            raise ValueError(f"x: expected last dimension {self.in_features}, got shape {tuple(x.shape)}")
        if two_d and x.dim() != 2:
            raise ValueError(f"x: expected shape [N, {self.in_features}], got {tuple(x.shape)}")

    def b_splines(self, x: torch.Tensor) -> torch.Tensor:
        """Dense bases ``[N, in, G+k]`` (reference Cox–de Boor; see :mod:`sparsefuse.basis.bspline`)."""
        self._check_x(x, two_d=True)
        return cox_de_boor(x, self.grid, self.spline_order)

    def curve2coeff(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Least-squares coefficients ``[out, in, G+k]`` with ``sum_j B_j(x[n,i]) c[o,i,j] ~ y[n,i,o]``."""
        self._check_x(x, two_d=True)
        if y.shape != (x.shape[0], self.in_features, self.out_features):
            raise ValueError(f"y: expected shape {(x.shape[0], self.in_features, self.out_features)}, got {tuple(y.shape)}")
        return regrid.fit(self.b_splines(x), y)

    @property
    def scaled_spline_weight(self) -> torch.Tensor:
        if self.enable_standalone_scale_spline:
            return self.spline_weight * self.spline_scaler.unsqueeze(-1)
        return self.spline_weight

    def _unscale(self, coeff: torch.Tensor) -> torch.Tensor:
        """``spline_weight`` whose scaled version is ``coeff`` (zero scalers keep a zero spline)."""
        if not self.enable_standalone_scale_spline:
            return coeff
        s = self.spline_scaler.unsqueeze(-1)
        return coeff / torch.where(s == 0, torch.ones_like(s), s)

    # -- forward -----------------------------------------------------------------------------
    def resolve_impl(self, x: torch.Tensor) -> str:
        """The concrete path ``forward`` takes for this input (:func:`sparsefuse.paths.plan`)."""
        return plan(self, x.reshape(-1, self.in_features)).impl

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_x(x)
        flat = x.dim() == 2  # then no reshapes: each would cost a dispatcher call per layer
        x2 = x if flat else x.reshape(-1, self.in_features)
        y = plan(self, x2).run(self, x2)
        return y if flat else y.reshape(*x.shape[:-1], self.out_features)

    # -- grid maintenance (computed by sparsefuse.regrid, written here last) ---------------------
    @torch.no_grad()
    def update_grid(self, x: torch.Tensor, margin: float = 0.01):
        """efficient-kan's adaptive grid: data quantiles blended with a uniform grid by ``grid_eps``.

        The spline is refit by least squares on ``x`` so the layer keeps (approximately)
        the function it had on these samples. Non-finite ``x``, or ``x`` that would give
        repeated knots, raise ``ValueError`` and leave the layer unchanged.
        """
        grid, weight = regrid.updated(self, x, margin)
        self.grid.copy_(grid)
        self.spline_weight.copy_(weight)

    def extend_grid(self, new_grid_size: int, num_samples: int | None = None) -> float:
        """Re-grid to ``new_grid_size`` uniform intervals over ``[t_k, t_{G+k}]``, keeping the ``k`` outer knots.

        The spline then spans the same support ``[t_0, t_{G+2k}]``: the finer one is the
        least-squares fit of the current one over all of it, so values outside the grid
        range (where hidden layers are used) are kept too. Returns the largest change of
        any edge function anywhere, sampled at about ``num_samples`` points per feature.
        The grid is then no longer uniform (as after ``update_grid``).
        ``spline_weight`` keeps its Parameter object (optimizers still hold it) but
        changes shape, so optimizer state kept for it no longer fits: where an optimizer
        keeps state for it, a :class:`GridResizeWarning` says so; build the optimizer again.
        """
        grid, weight, err = regrid.extended(self, new_grid_size, num_samples)
        regrid.warn_resized(self._install_grid(grid, weight))
        return err

    @torch.no_grad()
    def _install_grid(self, grid, weight, name="spline_weight") -> list[str]:
        """Write a re-gridded spline, resizing ``spline_weight`` in place; returns the shape change
        where it matters (an optimizer keeps state for it), else nothing."""
        old = list(self.spline_weight.shape)
        self.grid = grid
        self.grid_size = grid.shape[1] - 2 * self.spline_order - 1
        self.spline_weight.set_(weight)  # in place: bumps the version counter caches are keyed on
        self.spline_weight.grad = None
        stale = old != list(weight.shape) and regrid.has_optimizer_state(self.spline_weight)
        return [f"{name} {old} -> {list(weight.shape)}"] if stale else []

    def regularization_loss(self, regularize_activation=1.0, regularize_entropy=1.0):
        """efficient-kan's proxy, on ``scaled_spline_weight``: L1 of mean |coefficient| per edge plus the entropy.

        efficient-kan takes ``spline_weight``; the scaled coefficients are what the layer
        computes with, and what ``update_grid`` keeps when it refits.
        """
        l1 = self.scaled_spline_weight.abs().mean(-1)
        activation = l1.sum()
        p = l1 / activation
        entropy = -torch.sum(p * p.log())
        return regularize_activation * activation + regularize_entropy * entropy

    # -- KAN tools (sparsefuse.kan_tools) ---------------------------------------------------------
    def plot(self, x=None, edges=None, **kw):
        """Learned edge functions, one panel per edge (or per ``(out, in)`` in ``edges``); a Figure."""
        from .kan_tools import plot_layer
        return plot_layer(self, x, edges, **kw)


class KAN(torch.nn.Module):
    """A stack of KANLinear layers (efficient-kan's container; state_dict keys ``layers.{i}.*``)."""

    def __init__(self, layers_hidden, grid_size=5, spline_order=3, scale_noise=0.1, scale_base=1.0,
                 scale_spline=1.0, base_activation=torch.nn.SiLU, grid_eps=0.02, grid_range=[-1, 1],
                 impl="auto", enable_standalone_scale_spline=True, *, device=None, dtype=None):
        super().__init__()
        layers_hidden = list(layers_hidden)
        if len(layers_hidden) < 2:
            raise ValueError(f"layers_hidden: expected at least two widths, got {layers_hidden!r}")
        self.grid_size, self.spline_order = check_int("grid_size", grid_size), check_int("spline_order", spline_order)
        self.layers = torch.nn.ModuleList(
            KANLinear(i, o, grid_size=grid_size, spline_order=spline_order, scale_noise=scale_noise,
                      scale_base=scale_base, scale_spline=scale_spline,
                      enable_standalone_scale_spline=enable_standalone_scale_spline,
                      base_activation=base_activation, grid_eps=grid_eps, grid_range=grid_range,
                      impl=impl, device=device, dtype=dtype)
            for i, o in zip(layers_hidden, layers_hidden[1:]))

    @property
    def impl(self) -> str:
        impls = {layer.impl for layer in self.layers}
        return impls.pop() if len(impls) == 1 else "mixed"

    @impl.setter
    def impl(self, value):
        _check_impl(value)
        for layer in self.layers:
            layer.impl = value

    def forward(self, x: torch.Tensor, update_grid: bool = False) -> torch.Tensor:
        """``update_grid=True`` first updates every layer's grid on its input (all layers or none)."""
        if update_grid:
            self._update_grids(x)
        for layer in self.layers:
            x = layer(x)
        return x

    @torch.no_grad()
    def _update_grids(self, x):
        plans = []
        for layer in self.layers:  # a layer's input comes from the updated layers before it
            plans.append(regrid.updated(layer, x, 0.01))
            x = torch.func.functional_call(layer, dict(zip(("grid", "spline_weight"), plans[-1])), (x,))
        for layer, (grid, weight) in zip(self.layers, plans):
            layer.grid.copy_(grid)
            layer.spline_weight.copy_(weight)

    def regularization_loss(self, regularize_activation=1.0, regularize_entropy=1.0):
        return sum(layer.regularization_loss(regularize_activation, regularize_entropy) for layer in self.layers)

    def extend_grid(self, new_grid_size: int, num_samples: int | None = None) -> float:
        """:meth:`KANLinear.extend_grid` on every layer, all fits computed before any layer changes.

        Returns the largest fit error; one :class:`GridResizeWarning` names the resized weights.
        """
        plans = [regrid.extended(layer, new_grid_size, num_samples) for layer in self.layers]
        changes = [c for i, (layer, (grid, weight, _)) in enumerate(zip(self.layers, plans))
                   for c in layer._install_grid(grid, weight, f"layers.{i}.spline_weight")]
        self.grid_size = int(new_grid_size)
        regrid.warn_resized(changes)
        return max(err for *_, err in plans)

    def plot(self, x=None, **kw):
        """Learned edge functions of every layer (ranges from ``x`` when given); a Figure."""
        from .kan_tools import plot_kan
        return plot_kan(self, x, **kw)

    def prune(self, threshold: float, x: torch.Tensor) -> "KAN":
        """A smaller KAN without the hidden neurons whose edges are inactive on ``x`` (see :func:`kan_tools.prune`)."""
        from .kan_tools import prune
        return prune(self, threshold, x)
