"""Models built on the SparseFuse KAN layer, and the baselines they are compared with."""

from .mlp import MLP, FourierFeatures, FourierMLP, matched_mlp_width
from .pinn import PROBLEMS, PDEProblem, PINNNet, make_pinn_model
