"""The spline contraction through generic sparse formats, for the sparse-vs-dense study.

The B-spline basis matrix ``B [N, in*(G+k)]`` has ``in*(k+1)`` non-zeros per row
(density ``(k+1)/(G+k)``) in contiguous runs. Each function takes the path inputs
``(x, grid, coeff, spline_order)`` and returns ``[N, out]``:

* ``contract_dense``  – scatter to dense, one GEMM (the baseline);
* ``contract_csr``    – ``torch.sparse_csr`` built from the active indices/values;
* ``contract_bsr``    – ``torch.sparse_bsr`` with square ``b x b`` blocks (what CPU/MKL supports);
* ``contract_padded`` – each run of ``k+1`` padded to a tile width (4/8/16), as a tiled kernel reads it.

These are for measurement: outputs are exact, autograd is only guaranteed for
``contract_dense`` and ``contract_padded``.
"""

from __future__ import annotations

import warnings

import torch

from sparsefuse.basis.bspline import local
from sparsefuse.paths import check_inputs
from sparsefuse.paths.dense import spline_contract as dense_path
from sparsefuse.paths.sparse import active_rows, bag_contract, coeff_table


def basis_density(grid_size: int, spline_order: int) -> float:
    """Fraction of non-zero B-spline bases per feature: ``(k+1) / (G+k)``."""
    if grid_size < 1:
        raise ValueError(f"grid_size: expected >= 1, got {grid_size}")
    if spline_order < 1:
        raise ValueError(f"spline_order: expected >= 1, got {spline_order}")
    return (spline_order + 1) / (grid_size + spline_order)


def _local(x, grid, coeff, spline_order):
    check_inputs(x, grid, coeff, spline_order)
    return local(x, grid.to(x.dtype), spline_order)


def basis_csr(x, grid, spline_order, num_basis=None):
    """The basis matrix ``[N, in*(G+k)]`` as CSR, built without a dense intermediate."""
    first, values = local(x, grid.to(x.dtype), spline_order)
    nb = grid.shape[1] - 1 - spline_order if num_basis is None else num_basis
    n, n_in = first.shape
    k1 = spline_order + 1
    cols = active_rows(first, k1, nb)  # sorted within each row, unique
    crow = torch.arange(0, n * n_in * k1 + 1, n_in * k1, device=x.device)
    return _csr(crow, cols.reshape(-1), values.reshape(-1), (n, n_in * nb))


def _csr(crow, col, values, size):
    with warnings.catch_warnings():  # "beta state" notices, once per process, are noise here
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(crow, col, values, size=size, check_invariants=False)


def contract_dense(x, grid, coeff, spline_order):
    """The baseline is the dense path itself, so the study times what layers run."""
    return dense_path(x, grid, coeff, spline_order)


def contract_csr(x, grid, coeff, spline_order):
    check_inputs(x, grid, coeff, spline_order)
    b = basis_csr(x, grid, spline_order, coeff.shape[2])
    return torch.sparse.mm(b, coeff_table(coeff))


def to_bsr(csr: torch.Tensor, blocksize: int) -> torch.Tensor:
    """CSR to BSR. PyTorch converts on the CPU and warns so; the study records that cost, so the
    warning (which names a build path) is not repeated on every call."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*sparse_compressed_to_sparse_bsr", category=UserWarning)
        return csr.to_sparse_bsr((blocksize, blocksize))


def contract_bsr(x, grid, coeff, spline_order, blocksize: int = 4):
    """BSR with ``blocksize x blocksize`` blocks; rows and columns are zero-padded to a multiple."""
    if blocksize < 1:
        raise ValueError(f"blocksize: expected >= 1, got {blocksize}")
    check_inputs(x, grid, coeff, spline_order)
    n, n_cols = x.shape[0], coeff.shape[1] * coeff.shape[2]
    rows_p = -(-max(n, 1) // blocksize) * blocksize
    cols_p = -(-n_cols // blocksize) * blocksize
    xp = torch.cat([x, x.new_full((rows_p - n, x.shape[1]), float(grid.min()) - 1.0)])  # padded rows: all-zero bases
    csr = basis_csr(xp, grid, spline_order, coeff.shape[2])
    csr = _csr(csr.crow_indices(), csr.col_indices(), csr.values(), (rows_p, cols_p))
    bsr = to_bsr(csr, blocksize)
    table = coeff_table(coeff)
    table = torch.cat([table, table.new_zeros(cols_p - n_cols, table.shape[1])])
    return (bsr @ table)[:n]


def contract_padded(x, grid, coeff, spline_order, tile: int = 8):
    """Read ``tile >= k+1`` coefficient rows per ``(n, i)`` (the extra ones multiplied by 0)."""
    k1 = spline_order + 1
    if tile < k1:
        raise ValueError(f"tile: expected >= spline_order + 1 = {k1}, got {tile}")
    first, values = _local(x, grid, coeff, spline_order)
    out, n_in, nb = coeff.shape
    pad = tile - k1
    coeff_p = torch.cat([coeff, coeff.new_zeros(out, n_in, pad)], dim=2)
    values_p = torch.cat([values, values.new_zeros(values.shape[:-1] + (pad,))], dim=-1)
    rows = active_rows(first, tile, nb + pad)
    return bag_contract(values_p.reshape(rows.shape), coeff_table(coeff_p), rows)


CONTRACTIONS = {"dense": contract_dense, "csr": contract_csr, "bsr": contract_bsr, "padded": contract_padded}


def synthetic_sparse(n_rows: int, n_cols: int, density: float, *, structured: bool = True,
                     layout: str = "csr", dtype=torch.float32, device=None, seed: int = 0) -> torch.Tensor:
    """A random ``[n_rows, n_cols]`` matrix with ``round(density * n_cols)`` (>= 1) non-zeros per row.

    ``structured=True`` puts each row's non-zeros in one contiguous run at a random
    offset (the B-spline pattern); ``False`` scatters them uniformly.
    ``layout``: ``"csr"``, ``"coo"`` or ``"dense"``.
    """
    if not 0 < density <= 1:
        raise ValueError(f"density: expected in (0, 1], got {density}")
    if n_rows < 0 or n_cols < 1:
        raise ValueError(f"n_rows/n_cols: expected n_rows >= 0 and n_cols >= 1, got {n_rows}, {n_cols}")
    if layout not in ("csr", "coo", "dense"):
        raise ValueError(f"layout: expected 'csr', 'coo' or 'dense', got {layout!r}")
    gen = torch.Generator().manual_seed(seed)
    nnz = min(n_cols, max(1, round(density * n_cols)))
    if structured:
        start = torch.randint(0, n_cols - nnz + 1, (n_rows, 1), generator=gen)
        cols = start + torch.arange(nnz)
    else:
        cols = torch.rand(n_rows, n_cols, generator=gen).argsort(dim=1)[:, :nnz].sort(dim=1).values
    vals = torch.rand(n_rows, nnz, generator=gen, dtype=torch.float64).to(dtype)
    crow = torch.arange(0, n_rows * nnz + 1, nnz)
    m = _csr(crow, cols.reshape(-1), vals.reshape(-1), (n_rows, n_cols))
    m = m.to(device) if device is not None else m
    if layout == "csr":
        return m
    return m.to_sparse_coo() if layout == "coo" else m.to_dense()
