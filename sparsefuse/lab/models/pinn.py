"""Physics-informed networks: the PDE problems, the networks, and the residual loss.

A PINN loss differentiates the network twice with respect to its input
(``torch.autograd.grad(..., create_graph=True)``) and then once more with
respect to the weights, so every layer on the path, the KAN layer included,
must support double backward.  The problems here all have closed-form
solutions so the relative L2 error is exact, not measured against a solver.

Problems
--------
``poisson1d_multiscale``
    ``-u'' = f`` on ``[0, 1]``, ``u = sin(2πx) + 0.1·sin(50πx)``,
    ``f = 4π²·sin(2πx) + 250π²·sin(50πx)``; Dirichlet data ``u(0)=u(1)=0``
    from the exact solution (Wang, Wang & Perdikaris 2021).
``poisson2d``
    ``-Δu = f`` on ``[-1, 1]²``, ``u = sin(πx)·sin(πy²)`` (not separable in a
    sum), ``f = sin(πx)·[(π² + 4π²y²)·sin(πy²) − 2π·cos(πy²)]``; Dirichlet
    data from ``u`` on the boundary.
``advection_diffusion``
    ``u_t + a·u_x = ν·u_xx`` on ``(x, t) ∈ [0, 1]²`` with ``a = 1``,
    ``ν = 0.02``; exact decaying travelling wave
    ``u = exp(−ν k² t)·sin(k (x − a t))``, ``k = 2π``; initial data at
    ``t = 0`` and Dirichlet data at ``x = 0, 1`` from ``u``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from sparsefuse.kan_linear import KAN, KANLinear
from .mlp import MLP, FourierMLP

__all__ = [
    "PDEProblem",
    "PROBLEMS",
    "get_problem",
    "gradient",
    "laplacian",
    "PINNNet",
    "MODEL_KINDS",
    "make_pinn_model",
    "kan_impls",
    "pinn_loss",
    "relative_l2",
]

Tensor = torch.Tensor


def gradient(u: Tensor, x: Tensor) -> Tensor:
    """``∂u/∂x`` for scalar-per-row ``u`` [N, 1]; keeps the graph so it can be differentiated again."""
    return torch.autograd.grad(u, x, grad_outputs=torch.ones_like(u), create_graph=True)[0]


def laplacian(u: Tensor, x: Tensor) -> Tensor:
    """``Σ_d ∂²u/∂x_d²`` [N, 1] by repeated autograd (double backward through the network)."""
    g = gradient(u, x)
    return sum(gradient(g[:, d : d + 1], x)[:, d : d + 1] for d in range(x.shape[1]))


@dataclass(frozen=True)
class PDEProblem:
    """A PDE on a box with a closed-form solution.

    ``operator(u, x)`` returns the residual ``N[u] − f`` at points ``x``
    (``x`` must require grad).  ``boundary`` lists the faces ``(dim, value)``
    where Dirichlet data from ``exact`` is imposed (for a time-dependent
    problem the initial slice ``t = t0`` is one of them).  ``residual_scale``
    divides the residual so the PDE and boundary terms start comparable.
    """

    name: str
    equation: str
    lo: tuple[float, ...]
    hi: tuple[float, ...]
    exact: Callable[[Tensor], Tensor]
    operator: Callable[[Tensor, Tensor], Tensor]
    boundary: tuple[tuple[int, float], ...]
    residual_scale: float = 1.0
    coords: tuple[str, ...] = ("x",)

    @property
    def dim(self) -> int:
        return len(self.lo)

    def _box(self, u: Tensor) -> Tensor:
        lo = u.new_tensor(self.lo)
        hi = u.new_tensor(self.hi)
        return lo + (hi - lo) * u

    def sample_interior(self, n: int, generator=None, dtype=torch.float32, device="cpu") -> Tensor:
        """``n`` uniform random collocation points inside the box."""
        u = torch.rand(n, self.dim, generator=generator, dtype=dtype)
        return self._box(u).to(device)

    def sample_boundary(self, n: int, generator=None, dtype=torch.float32, device="cpu") -> Tensor:
        """``n`` points spread evenly over the Dirichlet faces (random position on each face)."""
        u = torch.rand(n, self.dim, generator=generator, dtype=dtype)
        face = torch.arange(n) % len(self.boundary)
        for f, (d, v) in enumerate(self.boundary):
            rel = (v - self.lo[d]) / (self.hi[d] - self.lo[d])
            u[face == f, d] = rel
        return self._box(u).to(device)

    def test_grid(self, n_per_dim: int, dtype=torch.float32, device="cpu") -> Tensor:
        """A tensor-product grid over the box for the error metric."""
        axes = [torch.linspace(a, b, n_per_dim, dtype=dtype) for a, b in zip(self.lo, self.hi)]
        mesh = torch.meshgrid(*axes, indexing="ij")
        return torch.stack([m.reshape(-1) for m in mesh], dim=1).to(device)


# ---- 1D multiscale Poisson ------------------------------------------------------------------

def _poisson1d_exact(x: Tensor) -> Tensor:
    return torch.sin(2 * math.pi * x) + 0.1 * torch.sin(50 * math.pi * x)


def _poisson1d_forcing(x: Tensor) -> Tensor:
    return (2 * math.pi) ** 2 * torch.sin(2 * math.pi * x) + 0.1 * (50 * math.pi) ** 2 * torch.sin(50 * math.pi * x)


def _poisson_operator(forcing):
    def op(u: Tensor, x: Tensor) -> Tensor:
        return -laplacian(u, x) - forcing(x)
    return op


# ---- 2D non-separable Poisson ---------------------------------------------------------------

def _poisson2d_exact(x: Tensor) -> Tensor:
    return torch.sin(math.pi * x[:, :1]) * torch.sin(math.pi * x[:, 1:2] ** 2)


def _poisson2d_forcing(x: Tensor) -> Tensor:
    """``-Δu`` derived by hand; the tests check it against autograd."""
    X, Y = x[:, :1], x[:, 1:2]
    pi = math.pi
    return torch.sin(pi * X) * ((pi**2 + 4 * pi**2 * Y**2) * torch.sin(pi * Y**2) - 2 * pi * torch.cos(pi * Y**2))


# ---- advection-diffusion --------------------------------------------------------------------

ADV_A, ADV_NU, ADV_K = 1.0, 0.02, 2 * math.pi


def _advdiff_exact(xt: Tensor) -> Tensor:
    x, t = xt[:, :1], xt[:, 1:2]
    return torch.exp(-ADV_NU * ADV_K**2 * t) * torch.sin(ADV_K * (x - ADV_A * t))


def _advdiff_operator(u: Tensor, xt: Tensor) -> Tensor:
    g = gradient(u, xt)
    u_x, u_t = g[:, :1], g[:, 1:2]
    u_xx = gradient(u_x, xt)[:, :1]
    return u_t + ADV_A * u_x - ADV_NU * u_xx


PROBLEMS: dict[str, PDEProblem] = {
    "poisson1d_multiscale": PDEProblem(
        name="poisson1d_multiscale",
        equation="-u'' = f on [0,1], u = sin(2πx) + 0.1 sin(50πx), Dirichlet u(0)=u(1)=0",
        lo=(0.0,), hi=(1.0,),
        exact=_poisson1d_exact,
        operator=_poisson_operator(_poisson1d_forcing),
        boundary=((0, 0.0), (0, 1.0)),
        residual_scale=0.1 * (50 * math.pi) ** 2,
    ),
    "poisson2d": PDEProblem(
        name="poisson2d",
        equation="-Δu = f on [-1,1]², u = sin(πx) sin(πy²), Dirichlet data from u",
        lo=(-1.0, -1.0), hi=(1.0, 1.0),
        exact=_poisson2d_exact,
        operator=_poisson_operator(_poisson2d_forcing),
        boundary=((0, -1.0), (0, 1.0), (1, -1.0), (1, 1.0)),
        residual_scale=5 * math.pi**2,
        coords=("x", "y"),
    ),
    "advection_diffusion": PDEProblem(
        name="advection_diffusion",
        equation=f"u_t + a u_x = ν u_xx on [0,1]x[0,1], a={ADV_A}, ν={ADV_NU}, "
        "u = exp(-ν k² t) sin(k(x - a t)), k = 2π; u(x,0) and u(0,t), u(1,t) from u",
        lo=(0.0, 0.0), hi=(1.0, 1.0),
        exact=_advdiff_exact,
        operator=_advdiff_operator,
        boundary=((0, 0.0), (0, 1.0), (1, 0.0)),
        residual_scale=ADV_K * ADV_A,
        coords=("x", "t"),
    ),
}


def get_problem(name: str) -> PDEProblem:
    if name not in PROBLEMS:
        raise ValueError(f"problem must be one of {sorted(PROBLEMS)}, got {name!r}")
    return PROBLEMS[name]


# ---- networks -------------------------------------------------------------------------------

class PINNNet(nn.Module):
    """Maps the problem box affinely onto ``[-1, 1]^d`` (the KAN grid range), then applies ``body``."""

    def __init__(self, body: nn.Module, lo, hi):
        super().__init__()
        lo = torch.as_tensor(lo, dtype=torch.float32)
        hi = torch.as_tensor(hi, dtype=torch.float32)
        if not bool((hi > lo).all()):
            raise ValueError("hi must exceed lo in every dimension")
        self.register_buffer("box_center", (hi + lo) / 2)
        self.register_buffer("box_half", (hi - lo) / 2)
        self.body = body

    def forward(self, x: Tensor) -> Tensor:
        return self.body((x - self.box_center.to(x.dtype)) / self.box_half.to(x.dtype))


MODEL_KINDS = ("kan_fused", "kan_reference", "mlp", "fourier_mlp")


def make_pinn_model(kind: str, problem: PDEProblem, *, width: int = 16, depth: int = 1, grid_size: int = 10,
                    spline_order: int = 3, n_fourier: int = 32, sigma: float = 1.0, seed: int = 0) -> PINNNet:
    """Build one of :data:`MODEL_KINDS` for ``problem``.

    ``kan_fused`` uses ``impl="auto"`` (the fused kernel on CUDA, the library's
    choice elsewhere); ``kan_reference`` pins the efficient-kan algorithm.
    """
    if kind not in MODEL_KINDS:
        raise ValueError(f"kind must be one of {MODEL_KINDS}, got {kind!r}")
    torch.manual_seed(seed)
    d = problem.dim
    if kind.startswith("kan"):
        impl = "auto" if kind == "kan_fused" else "reference"
        body = KAN([d, *([width] * depth), 1], grid_size=grid_size, spline_order=spline_order, impl=impl)
    elif kind == "mlp":
        body = MLP(d, [width] * depth, 1, activation="tanh")
    else:
        body = FourierMLP(d, [width] * depth, 1, n_features=n_fourier, sigma=sigma, seed=seed)
    return PINNNet(body, problem.lo, problem.hi)


def kan_impls(model: nn.Module) -> str:
    """Which spline path the KAN layers of ``model`` run on their current device, for the results table.

    ``impl="auto"`` is resolved through ``KANLinear.resolve_impl`` (fused on CUDA, any
    grid; a PyTorch path otherwise).  Empty for non-KAN models.
    """
    seen = []
    for m in model.modules():
        if isinstance(m, KANLinear):
            probe = torch.zeros(1, m.in_features, device=m.grid.device, dtype=m.grid.dtype)
            name = m.resolve_impl(probe) if hasattr(m, "resolve_impl") else str(m.impl)
            if name not in seen:
                seen.append(name)
    return "+".join(seen)


def pinn_loss(model: nn.Module, problem: PDEProblem, x_int: Tensor, x_bc: Tensor, bc_weight: float = 1.0):
    """Mean squared scaled PDE residual + ``bc_weight`` · mean squared boundary mismatch.

    Returns ``(loss, pde_term, bc_term)``.
    """
    x = x_int.detach().requires_grad_(True)
    r = problem.operator(model(x), x) / problem.residual_scale
    pde = (r**2).mean() if r.numel() else r.sum()
    diff = model(x_bc) - problem.exact(x_bc)
    bc = (diff**2).mean() if diff.numel() else diff.sum()
    return pde + bc_weight * bc, pde, bc


@torch.no_grad()
def relative_l2(model: nn.Module, problem: PDEProblem, n_per_dim: int = 256, device="cpu", chunk: int = 65536):
    """``‖u_θ − u‖₂ / ‖u‖₂`` on a tensor-product test grid; also returns the grid and both fields."""
    x = problem.test_grid(n_per_dim, device=device)
    pred = torch.cat([model(x[i : i + chunk]) for i in range(0, x.shape[0], chunk)]) if x.shape[0] else x[:, :1]
    ref = problem.exact(x)
    err = (torch.linalg.vector_norm(pred - ref) / torch.linalg.vector_norm(ref)).item()
    return err, x, pred, ref
