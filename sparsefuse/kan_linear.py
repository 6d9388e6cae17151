"""KANLinear and KAN with efficient-kan's parameters, buffers and numbers, plus selectable paths.

``y = linear(base_activation(x), base_weight) + spline_contract(x, grid, scaled_spline_weight, k)``.

Names and shapes match efficient-kan, so its checkpoints load with ``strict=True``:
``grid`` [in, G+2k+1] (buffer), ``base_weight`` [out, in], ``spline_weight`` [out, in, G+k],
``spline_scaler`` [out, in] (only with ``enable_standalone_scale_spline``).

One deliberate difference: ``update_grid`` and ``extend_grid`` refit ``spline_weight``
so that ``scaled_spline_weight`` (not ``spline_weight``) reproduces the old spline;
efficient-kan stores the scaled fit unscaled, which changes the layer's function.
"""

from __future__ import annotations

import inspect
import math

import torch
import torch.nn.functional as F

from .basis.bspline import cox_de_boor
from .grid import is_uniform, uniform_grid
from .paths import get_path

IMPLS = ("auto", "reference", "dense", "sparse", "fused")

# CPU rule for impl="auto", from benchmarks/cpu_paths.py (2-core shared CPU, float32,
# N=1024, 64->64, k=3, best-of timings in ms, dense vs sparse):
#   forward only:   G=5  12.7 vs 8.0 | G=10 11.7 vs 3.4 | G=50 18.9 vs 2.6 | G=100 29.1 vs 4.7
#   forward+backward: G=5 88 vs 68 (noisy) | G=50 19.4 vs 29.0 | G=100 36.3 vs 23.5 | G=200 601 vs 337
#   (4096, 128->128, G=100: 2284 vs 1532; G=5: 549 vs 1887)
# embedding_bag makes the sparse forward cheapest at every G measured, but its weight
# gradient sorts all N*in*(k+1) indices, so with gradients dense wins until G+k ~ 64.
AUTO_TRAIN_SPARSE_MIN_BASES = 64


def auto_without_fused(device_type: str, needs_grad: bool, num_bases: int) -> str:
    """The PyTorch path ``impl="auto"`` takes where the fused kernels cannot run.

    On CUDA (e.g. a non-uniform grid after ``update_grid``) the dense path: measured on an
    H100 at N=8192, 512->512, fp32 (results/gpu/layer_bench.csv) it took 6.0 / 10.2 ms
    forward+backward at G=5 / 20 against 66.8 / 69.0 ms for the embedding_bag sparse path,
    and 3.2 / 4.8 ms forward against 18.5 / 19.2 ms. On CPU the rule measured above.
    """
    if device_type == "cuda":
        return "dense"
    if needs_grad and num_bases < AUTO_TRAIN_SPARSE_MIN_BASES:
        return "dense"
    return "sparse"


def _check_impl(impl):
    if impl not in IMPLS:
        raise ValueError(f"impl: expected one of {IMPLS}, got {impl!r}")
    return impl


def _fused_backend(device):
    """``(spline_contract, grid_is_uniform)`` of the Triton kernels, or the reason they are unusable."""
    try:
        from . import kernels
        fn = kernels.spline_contract
        ok = kernels.available(device)
    except Exception as e:  # missing triton, partial install, ...
        return None, f"sparsefuse.kernels could not be imported ({type(e).__name__}: {e})"
    if not ok:
        return None, f"sparsefuse.kernels is not available on device {device} (needs CUDA, or TRITON_INTERPRET=1)"
    return (fn, getattr(kernels, "grid_is_uniform", is_uniform)), None


_TAKES_UNIFORM = {}


def _takes_uniform(fn) -> bool:
    """Whether a fused ``spline_contract`` accepts ``uniform=`` (asked once per function, not per forward)."""
    hit = _TAKES_UNIFORM.get(fn)
    if hit is None:
        hit = _TAKES_UNIFORM[fn] = "uniform" in inspect.signature(fn).parameters
    return hit


class KANLinear(torch.nn.Module):
    """A Kolmogorov–Arnold layer: a learnable order-k B-spline per (input, output) edge plus a base branch."""

    def __init__(self, in_features, out_features, grid_size=5, spline_order=3, scale_noise=0.1,
                 scale_base=1.0, scale_spline=1.0, enable_standalone_scale_spline=True,
                 base_activation=torch.nn.SiLU, grid_eps=0.02, grid_range=[-1, 1], impl="auto",
                 *, device=None, dtype=None):
        super().__init__()
        for name, v, lo in (("in_features", in_features, 1), ("out_features", out_features, 1),
                            ("grid_size", grid_size, 1), ("spline_order", spline_order, 1)):
            if isinstance(v, bool) or not isinstance(v, int) or v < lo:
                raise ValueError(f"{name}: expected an integer >= {lo}, got {v!r}")
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
        self._uniform_cache = {}
        self._grid_uniform()  # so that a compiled forward knows the answer without a sync
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
        a = self.b_splines(x).transpose(0, 1)  # [in, N, G+k]
        b = y.transpose(0, 1)                  # [in, N, out]
        sol = torch.linalg.lstsq(a, b).solution  # [in, G+k, out]
        return sol.permute(2, 0, 1).contiguous()

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
    def _refresh_grid_checks(self):
        self._uniform_cache.clear()
        self._grid_uniform()

    def _load_from_state_dict(self, *args, **kwargs):
        super()._load_from_state_dict(*args, **kwargs)
        self._refresh_grid_checks()

    def _grid_uniform(self, which="own", fn=is_uniform) -> bool:
        if torch.compiler.is_compiling():
            # A check inside a graph would sync the host and break the graph: use the
            # answer of the last eager check (refreshed whenever our methods touch the grid).
            hit = self._uniform_cache.get(which) or self._uniform_cache.get("own")
            return hit[1] if hit is not None else False
        g = self.grid
        key = (which, g._version, g.data_ptr(), tuple(g.shape), g.dtype, g.device)
        hit = self._uniform_cache.get(which)
        if hit is None or hit[0] != key:
            hit = (key, bool(fn(g)))
            self._uniform_cache[which] = hit
        return hit[1]

    def resolve_impl(self, x: torch.Tensor) -> str:
        """The concrete path ``forward`` uses for this input (``impl`` unless it is ``auto``)."""
        impl = _check_impl(self.impl)
        if impl != "auto":
            return impl
        if x.is_cuda:
            backend, _ = _fused_backend(x.device)
            if backend is not None and self._grid_uniform("kernels", backend[1]):
                return "fused"
        needs_grad = torch.is_grad_enabled() and (x.requires_grad or any(p.requires_grad for p in self.parameters()))
        return auto_without_fused(x.device.type, needs_grad, self.grid_size + self.spline_order)

    def spline_output(self, x2: torch.Tensor, impl: str | None = None) -> torch.Tensor:
        """Spline branch ``[N, out]`` of a 2-D input through the chosen path."""
        impl = impl or self.resolve_impl(x2)
        coeff = self.scaled_spline_weight
        if impl == "fused":
            backend, why = _fused_backend(x2.device)
            if backend is None:
                raise RuntimeError(f"impl='fused': {why}")
            fn, uniform_check = backend
            if _takes_uniform(fn):  # pass the cached check: no per-call sync
                return fn(x2, self.grid, coeff, self.spline_order, uniform=self._grid_uniform("kernels", uniform_check))
            return fn(x2, self.grid, coeff, self.spline_order)
        if impl == "reference":
            return get_path("reference")(x2, self.grid, coeff, self.spline_order)
        return get_path(impl)(x2, self.grid, coeff, self.spline_order, uniform=self._grid_uniform())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_x(x)
        lead = x.shape[:-1]
        x2 = x.reshape(-1, self.in_features)
        y = F.linear(self.base_activation(x2), self.base_weight) + self.spline_output(x2)
        return y.reshape(*lead, self.out_features)

    # -- grid maintenance --------------------------------------------------------------------
    @torch.no_grad()
    def update_grid(self, x: torch.Tensor, margin: float = 0.01):
        """efficient-kan's adaptive grid: data quantiles blended with a uniform grid by ``grid_eps``.

        The spline is refit by least squares on ``x`` so the layer keeps (approximately)
        the function it had on these samples.
        """
        self._check_x(x)
        x = x.reshape(-1, self.in_features)
        batch = x.shape[0]
        if batch == 0:
            raise ValueError("x: update_grid needs at least one sample")
        g, k = self.grid_size, self.spline_order
        bases = self.b_splines(x).transpose(0, 1)                  # [in, N, G+k]
        coeff = self.scaled_spline_weight.permute(1, 2, 0)         # [in, G+k, out]
        target = torch.bmm(bases, coeff).transpose(0, 1)           # [N, in, out]

        xs = torch.sort(x, dim=0)[0]
        idx = torch.linspace(0, batch - 1, g + 1, dtype=torch.int64, device=x.device)
        adaptive = xs[idx]
        step = (xs[-1] - xs[0] + 2 * margin) / g
        steps = torch.arange(g + 1, dtype=x.dtype, device=x.device).unsqueeze(1)
        uniform = steps * step + xs[0] - margin
        knots = self.grid_eps * uniform + (1 - self.grid_eps) * adaptive
        ext = torch.arange(1, k + 1, dtype=x.dtype, device=x.device).unsqueeze(1)
        knots = torch.cat([knots[:1] - step * ext.flip(0), knots, knots[-1:] + step * ext], dim=0)
        self.grid.copy_(knots.T)
        self.spline_weight.copy_(self._unscale(self.curve2coeff(x, target)))
        self._refresh_grid_checks()

    @torch.no_grad()
    def extend_grid(self, new_grid_size: int, num_samples: int | None = None) -> float:
        """Re-grid to ``new_grid_size`` uniform intervals over the current range ``[t_k, t_{G+k}]``.

        The finer spline is the least-squares fit of the current one on ``num_samples``
        points per feature; returns the max abs error of the fit on those points.
        ``grid`` and ``spline_weight`` are replaced (new shapes): rebuild optimizers.
        """
        if isinstance(new_grid_size, bool) or not isinstance(new_grid_size, int) or new_grid_size < 1:
            raise ValueError(f"new_grid_size: expected an integer >= 1, got {new_grid_size!r}")
        if num_samples is not None and (isinstance(num_samples, bool) or not isinstance(num_samples, int)
                                        or num_samples < 1):
            raise ValueError(f"num_samples: expected None or an integer >= 1, got {num_samples!r}")
        k = self.spline_order
        lo, hi = self.grid[:, k], self.grid[:, -k - 1]
        s = num_samples if num_samples is not None else max(8 * (new_grid_size + k), 256)
        frac = torch.linspace(0, 1, s, dtype=self.grid.dtype, device=self.grid.device).unsqueeze(1)
        xs = lo + (hi - lo) * frac  # [S, in]
        old = torch.bmm(self.b_splines(xs).transpose(0, 1), self.scaled_spline_weight.permute(1, 2, 0))  # [in, S, out]

        j = torch.arange(-k, new_grid_size + k + 1, dtype=self.grid.dtype, device=self.grid.device)
        self.grid = (lo.unsqueeze(1) + (hi - lo).unsqueeze(1) / new_grid_size * j).contiguous()
        self.grid_size = new_grid_size
        self._refresh_grid_checks()
        fit = self.curve2coeff(xs, old.transpose(0, 1))
        self.spline_weight = torch.nn.Parameter(self._unscale(fit))
        new = torch.bmm(self.b_splines(xs).transpose(0, 1), self.scaled_spline_weight.permute(1, 2, 0))
        return float((new - old).abs().max()) if new.numel() else 0.0

    def regularization_loss(self, regularize_activation=1.0, regularize_entropy=1.0):
        """efficient-kan's proxy: L1 of mean |spline_weight| per edge plus the entropy of its distribution."""
        l1 = self.spline_weight.abs().mean(-1)
        activation = l1.sum()
        p = l1 / activation
        entropy = -torch.sum(p * p.log())
        return regularize_activation * activation + regularize_entropy * entropy


class KAN(torch.nn.Module):
    """A stack of KANLinear layers (efficient-kan's container; state_dict keys ``layers.{i}.*``)."""

    def __init__(self, layers_hidden, grid_size=5, spline_order=3, scale_noise=0.1, scale_base=1.0,
                 scale_spline=1.0, base_activation=torch.nn.SiLU, grid_eps=0.02, grid_range=[-1, 1],
                 impl="auto", enable_standalone_scale_spline=True, *, device=None, dtype=None):
        super().__init__()
        layers_hidden = list(layers_hidden)
        if len(layers_hidden) < 2:
            raise ValueError(f"layers_hidden: expected at least two widths, got {layers_hidden!r}")
        self.grid_size = grid_size
        self.spline_order = spline_order
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
        for layer in self.layers:
            if update_grid:
                layer.update_grid(x)
            x = layer(x)
        return x

    def regularization_loss(self, regularize_activation=1.0, regularize_entropy=1.0):
        return sum(layer.regularization_loss(regularize_activation, regularize_entropy) for layer in self.layers)
