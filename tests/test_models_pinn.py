"""PINN problems and networks: forcing terms against autograd, double backward through the KAN."""

import math

import pytest
import torch

from sparsefuse.kan_linear import KAN
from sparsefuse.lab.models.mlp import MLP, FourierFeatures, FourierMLP, matched_mlp_width, mlp_param_count
from sparsefuse.lab.models.pinn import (MODEL_KINDS, PROBLEMS, PINNNet, get_problem, gradient, kan_impls, laplacian,
                                        make_pinn_model, pinn_loss, relative_l2)


def _exact_as_model(problem):
    return lambda x: problem.exact(x)


@pytest.mark.parametrize("name", sorted(PROBLEMS))
def test_exact_solution_has_zero_residual(name):
    """The hand-derived forcing terms agree with autograd applied to the exact solution."""
    p = get_problem(name)
    g = torch.Generator().manual_seed(0)
    x = p.sample_interior(200, g, dtype=torch.float64).requires_grad_(True)
    r = p.operator(p.exact(x), x)
    assert r.shape == (200, 1)
    assert float(r.detach().abs().max()) < 1e-9 * max(p.residual_scale, 1.0)


def test_poisson2d_forcing_is_not_trivially_zero():
    p = get_problem("poisson2d")
    x = p.sample_interior(64, torch.Generator().manual_seed(1), dtype=torch.float64).requires_grad_(True)
    wrong = lambda z: torch.sin(math.pi * z[:, :1]) * torch.sin(math.pi * z[:, 1:2])  # noqa: E731  separable
    assert float(p.operator(wrong(x), x).detach().abs().max()) > 1.0


def test_boundary_points_lie_on_the_dirichlet_faces():
    for p in PROBLEMS.values():
        xb = p.sample_boundary(40, torch.Generator().manual_seed(2))
        on_face = torch.zeros(40, dtype=torch.bool)
        for d, v in p.boundary:
            on_face |= (xb[:, d] - v).abs() < 1e-6
        assert bool(on_face.all())
        lo, hi = torch.tensor(p.lo), torch.tensor(p.hi)
        assert bool(((xb >= lo - 1e-6) & (xb <= hi + 1e-6)).all())
    adv = get_problem("advection_diffusion")
    assert (1, 1.0) not in adv.boundary  # no data at the final time


def test_kan_second_derivative_matches_finite_differences():
    torch.manual_seed(0)
    kan = KAN([1, 3, 1], grid_size=6, impl="reference").double()
    x = torch.linspace(-0.83, 0.77, 9, dtype=torch.float64).unsqueeze(1).requires_grad_(True)
    u2 = laplacian(kan(x), x)
    h = 1e-4
    with torch.no_grad():
        fd = (kan(x + h) - 2 * kan(x) + kan(x - h)) / h**2
    assert torch.allclose(u2, fd, atol=1e-4, rtol=1e-4)
    du = gradient(kan(x), x)
    with torch.no_grad():
        fd1 = (kan(x + h) - kan(x - h)) / (2 * h)
    assert torch.allclose(du, fd1, atol=1e-7)


@pytest.mark.parametrize("kind", MODEL_KINDS)
def test_pinn_loss_backpropagates_through_every_model(kind):
    p = get_problem("poisson2d")
    model = make_pinn_model(kind, p, width=4, depth=1, grid_size=4, n_fourier=4, seed=0)
    g = torch.Generator().manual_seed(0)
    loss, pde, bc = pinn_loss(model, p, p.sample_interior(16, g), p.sample_boundary(8, g))
    assert torch.isfinite(loss) and pde > 0 and bc > 0
    loss.backward()
    grads = [q.grad for q in model.parameters() if q.requires_grad]
    assert grads and all(gr is not None and torch.isfinite(gr).all() for gr in grads)
    assert any(float(gr.abs().sum()) > 0 for gr in grads)
    impl = kan_impls(model)
    if kind == "kan_reference":
        assert impl == "reference"
    elif kind == "kan_fused":
        assert impl in {"fused", "dense", "sparse", "reference"}
    else:
        assert impl == ""


def test_pinn_loss_handles_empty_batches():
    p = get_problem("poisson1d_multiscale")
    model = make_pinn_model("mlp", p, width=4)
    loss, pde, bc = pinn_loss(model, p, torch.zeros(0, 1), torch.zeros(0, 1))
    assert float(loss.detach()) == 0.0


def test_relative_l2_and_box_mapping():
    p = get_problem("poisson1d_multiscale")
    err, x, pred, ref = relative_l2(_exact_as_model(p), p, n_per_dim=101)
    assert err == 0.0 and x.shape == (101, 1)
    net = PINNNet(torch.nn.Identity(), p.lo, p.hi)
    assert torch.allclose(net(torch.tensor([[0.0], [0.5], [1.0]])), torch.tensor([[-1.0], [0.0], [1.0]]))
    with pytest.raises(ValueError, match="hi"):
        PINNNet(torch.nn.Identity(), (1.0,), (0.0,))


def test_bad_names_raise():
    with pytest.raises(ValueError, match="problem"):
        get_problem("heat")
    with pytest.raises(ValueError, match="kind"):
        make_pinn_model("cnn", get_problem("poisson2d"))


def test_mlp_baselines():
    assert sum(q.numel() for q in MLP(3, [5, 5], 2).parameters()) == mlp_param_count(3, 5, 2, 2)
    ff = FourierFeatures(2, 7, sigma=3.0, seed=1)
    z = ff(torch.zeros(4, 2))
    assert z.shape == (4, 14) and torch.allclose(z[:, :7], torch.ones(4, 7))  # cos(0)=1, sin(0)=0
    assert torch.equal(ff.B, FourierFeatures(2, 7, sigma=3.0, seed=1).B)  # own generator, not global RNG
    assert FourierMLP(2, [8], 1, n_features=4)(torch.randn(5, 2)).shape == (5, 1)
    w = matched_mlp_width(10, 3, 1000, depth=1)
    assert abs(mlp_param_count(10, w, 1, 3) - 1000) <= mlp_param_count(10, 1, 1, 3)
    with pytest.raises(ValueError, match="in_features"):
        MLP(0, [3], 1)
    with pytest.raises(ValueError, match="hidden"):
        MLP(2, [0], 1)
    with pytest.raises(ValueError, match="sigma"):
        FourierFeatures(2, 3, sigma=-1.0)
    with pytest.raises(ValueError, match="activation"):
        MLP(2, [3], 1, activation="swish")


def test_pinn_accuracy_claim_in_plain_words():
    from sparsefuse.lab.book import results
    from sparsefuse.lab.experiments import pinns

    v = pinns.verdict_numbers(results.reference(pinns.NAME).table())
    assert v["pn_acc_text"].startswith("The accuracy claim does not hold on any of the 3 problems")
    assert "5.73× the Fourier-feature MLP's" in v["pn_acc_text"]
    assert "after 390 of 400 steps and kan_reference on poisson2d after 325 of 400 steps" in v["pn_budget_text"]
    good = dict(v, pn_p1_kan=0.01, pn_p1_mlp=0.5, pn_p1_ff=0.012, pn_p2_kan=0.01, pn_p2_ff=0.02, pn_ad_kan=0.02,
                pn_ad_ff=0.015)
    assert pinns._accuracy_claim(good).startswith("The accuracy claim holds on every problem")
