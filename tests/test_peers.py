"""The peer adapters build layers with the right shapes, or say why not."""

import pytest
import torch

from sparsefuse.lab import peers


def test_unknown_peer_names_argument():
    with pytest.raises(ValueError, match="name"):
        peers.make_peer("nope", 3, 2)


@pytest.mark.parametrize("name", peers.PEERS)
def test_peer_maps_shapes_or_is_reported(name):
    if not peers.available()[name]:
        pytest.skip(f"{name} not installed (optional extra 'peers')")
    torch.manual_seed(0)
    layer = peers.make_peer(name, 5, 3, grid_size=4, spline_order=3)
    x = torch.rand(7, 5) * 2 - 1
    y = layer(x)
    assert y.shape == (7, 3)
    assert torch.isfinite(y).all()
    y.sum().backward()


def test_inkan_rejects_non_cubic():
    if not peers.available()["inkan"]:
        pytest.skip("inkan not installed")
    with pytest.raises(peers.PeerUnsupported, match="cubic"):
        peers.make_peer("inkan", 4, 4, spline_order=2)
