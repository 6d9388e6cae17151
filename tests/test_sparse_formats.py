import pytest
import torch

from sparsefuse.lab import sparse_formats as sf
from sparsefuse.paths import get_path


@pytest.mark.parametrize("k", [1, 3, 5])
@pytest.mark.parametrize("kind", ["uniform", "random"])
def test_every_format_matches_reference(k, kind, problem):
    x, grid, coeff = problem(23, 4, 3, 9, k, kind=kind)
    ref = get_path("reference")(x, grid, coeff, k)
    for name, fn in sf.CONTRACTIONS.items():
        torch.testing.assert_close(fn(x, grid, coeff, k), ref, rtol=1e-12, atol=1e-12, msg=name)
    for b in (2, 4, 8):
        torch.testing.assert_close(sf.contract_bsr(x, grid, coeff, k, blocksize=b), ref, rtol=1e-12, atol=1e-12)
    for tile in (t for t in (4, 8, 16) if t >= k + 1):
        torch.testing.assert_close(sf.contract_padded(x, grid, coeff, k, tile=tile), ref, rtol=1e-12, atol=1e-12)


def test_csr_holds_exactly_the_active_entries(problem):
    x, grid, _ = problem(7, 3, 1, 10, 3, spread=0.5)  # all inside: k+1 entries per feature
    b = sf.basis_csr(x, grid, 3)
    assert b.layout == torch.sparse_csr and b.shape == (7, 3 * 13)
    assert b.values().numel() == 7 * 3 * 4
    from sparsefuse.basis.bspline import cox_de_boor
    torch.testing.assert_close(b.to_dense(), cox_de_boor(x, grid, 3).reshape(7, -1))


def test_padded_is_differentiable(problem):
    x, grid, coeff = problem(5, 2, 2, 4, 2)
    x.requires_grad_()
    coeff.requires_grad_()
    assert torch.autograd.gradcheck(lambda a, c: sf.contract_padded(a, grid, c, 2, tile=4), (x, coeff))


def test_density_and_synthetic_matrices():
    assert sf.basis_density(5, 3) == 0.5
    assert sf.basis_density(100, 3) == pytest.approx(4 / 103)
    for structured in (True, False):
        m = sf.synthetic_sparse(50, 40, 0.1, structured=structured, layout="dense", seed=3)
        nz = m != 0
        assert (nz.sum(1) == 4).all()
        if structured:  # one contiguous run per row
            idx = nz.float().argmax(1)
            assert all(nz[r, idx[r] : idx[r] + 4].all() for r in range(50))
    assert sf.synthetic_sparse(5, 8, 0.5).layout == torch.sparse_csr
    assert sf.synthetic_sparse(5, 8, 0.5, layout="coo").layout == torch.sparse_coo


def test_bad_arguments():
    x = torch.zeros(2, 1, dtype=torch.float64)
    from sparsefuse.grid import uniform_grid
    grid, coeff = uniform_grid(1, 4, 3, dtype=torch.float64), torch.zeros(1, 1, 7, dtype=torch.float64)
    with pytest.raises(ValueError, match="tile"):
        sf.contract_padded(x, grid, coeff, 3, tile=3)
    with pytest.raises(ValueError, match="blocksize"):
        sf.contract_bsr(x, grid, coeff, 3, blocksize=0)
    with pytest.raises(ValueError, match="density"):
        sf.synthetic_sparse(3, 3, 0.0)
    with pytest.raises(ValueError, match="grid_size"):
        sf.basis_density(0, 3)
