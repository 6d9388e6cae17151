"""Basis families behind one interface, so layers and the cross-basis study can swap them.

Every basis maps ``x [N, in]`` to ``evaluate(x) -> [N, in, num_basis]``. Local
bases (B-splines) also give ``local(x) -> (first [N, in] int64, values [N, in, k+1])``:
only ``k + 1`` consecutive bases are non-zero, which is what the sparse and fused
paths exploit. ``derivative=n`` asks for d^n/dx^n (analytic where written, autograd otherwise;
the autograd fallback returns a detached tensor).
"""

from __future__ import annotations

import torch

from ..grid import is_uniform, uniform_grid
from . import bspline, chebyshev, fourier, power, rbf


class Basis:
    """Common interface. Subclasses implement ``_values(x)``; derivatives default to autograd."""

    name = "basis"
    is_local = False

    @property
    def num_basis(self) -> int:
        raise NotImplementedError

    def _values(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def evaluate(self, x: torch.Tensor, derivative: int = 0) -> torch.Tensor:
        if power.check_derivative(derivative) == 0:
            return self._values(x)
        # bases are elementwise in x: d/dx of sum_n,i B_j(x[n, i]) is dB_j/dx at each entry
        xr = x.detach().requires_grad_()
        with torch.enable_grad():
            cur = self._values(xr)
            for _ in range(derivative):
                cols = []
                for j in range(cur.shape[-1]):
                    cj = cur[..., j]
                    g = (torch.autograd.grad(cj.sum(), xr, create_graph=True, retain_graph=True)[0]
                         if cj.requires_grad else torch.zeros_like(xr))
                    cols.append(g)
                cur = torch.stack(cols, -1)
        return cur.detach()

    def local(self, x: torch.Tensor, derivative: int = 0):
        raise NotImplementedError(f"{self.name} basis has global support; use evaluate()")

    def __repr__(self):
        return f"{type(self).__name__}(num_basis={self.num_basis})"


class BSplineBasis(Basis):
    """Order-k B-splines on an ``[in, G+2k+1]`` grid (uniform by default)."""

    name = "bspline"
    is_local = True

    def __init__(self, in_features=1, grid_size=5, spline_order=3, grid_range=(-1.0, 1.0), grid=None):
        self.spline_order = int(spline_order)
        self.grid = uniform_grid(in_features, grid_size, spline_order, grid_range) if grid is None else grid

    @property
    def uniform(self) -> bool:
        """:func:`is_uniform` of the grid as it is now (nothing remembered: no write can make it stale)."""
        return is_uniform(self.grid)

    @property
    def num_basis(self) -> int:
        return self.grid.shape[1] - 1 - self.spline_order

    def _values(self, x):
        return bspline.evaluate(x, self.grid.to(x), self.spline_order)

    def evaluate(self, x, derivative=0):
        return bspline.evaluate(x, self.grid.to(x), self.spline_order, derivative)

    def reference(self, x):
        return bspline.cox_de_boor(x, self.grid.to(x), self.spline_order)

    def local(self, x, derivative=0):
        return bspline.local(x, self.grid.to(x), self.spline_order, derivative)


class PowerBSplineBasis(BSplineBasis):
    """The same B-splines in MatrixKAN power-basis form (uniform grids only)."""

    name = "power"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not self.uniform:
            raise ValueError("grid: the power-basis form needs a uniform grid")

    def evaluate(self, x, derivative=0):
        return power.evaluate(x, self.grid.to(x), self.spline_order, derivative)

    _values = lambda self, x: self.evaluate(x)  # noqa: E731


class ChebyshevBasis(Basis):
    name = "chebyshev"

    def __init__(self, degree=4):
        self.degree = int(degree)

    @property
    def num_basis(self):
        return self.degree + 1

    def _values(self, x):
        return chebyshev.evaluate(x, self.degree)


class RBFBasis(Basis):
    name = "rbf"

    def __init__(self, grid_min=-2.0, grid_max=2.0, num_grids=8):
        self.grid_min, self.grid_max, self.num_grids = float(grid_min), float(grid_max), int(num_grids)

    @property
    def num_basis(self):
        return self.num_grids

    def _values(self, x):
        return rbf.evaluate(x, self.grid_min, self.grid_max, self.num_grids)


class FourierBasis(Basis):
    name = "fourier"

    def __init__(self, gridsize=5):
        self.gridsize = int(gridsize)

    @property
    def num_basis(self):
        return 2 * self.gridsize

    def _values(self, x):
        return fourier.evaluate(x, self.gridsize)


BASES = {cls.name: cls for cls in (BSplineBasis, PowerBSplineBasis, ChebyshevBasis, RBFBasis, FourierBasis)}


def make_basis(name: str, **kwargs) -> Basis:
    """Build a basis by registry name: ``bspline``, ``power``, ``chebyshev``, ``rbf``, ``fourier``."""
    if name not in BASES:
        raise ValueError(f"name: unknown basis {name!r}; expected one of {sorted(BASES)}")
    return BASES[name](**kwargs)


__all__ = ["Basis", "BSplineBasis", "PowerBSplineBasis", "ChebyshevBasis", "RBFBasis", "FourierBasis",
           "BASES", "make_basis", "bspline", "chebyshev", "fourier", "power", "rbf"]
