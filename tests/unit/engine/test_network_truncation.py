"""The network runs only to the deepest layer a loss reads, and the bench counts what runs."""

import pytest

from pipeline.bench.flops import conv_macs, deepest, flops_per_evaluation
from pipeline.config import StyleConfig

STYLE = StyleConfig().validate()


def _record_convs(net):
    ran = []
    hooks = [conv.register_forward_hook(lambda m, i, o, name=name: ran.append(name))
             for name, conv in net.convs.items()]
    return ran, hooks


@pytest.mark.parametrize("layers,last", [
    (STYLE.style_layers + [STYLE.content_layer], "block5_conv1"),
    (["block2_conv1"], "block2_conv1"),
    (["relu3_1", "block1_conv2"], "block3_conv1"),
])
def test_forward_stops_at_the_deepest_requested_layer(backbone, layers, last):
    import torch

    net = backbone.net
    ran, hooks = _record_convs(net)
    try:
        acts = net(torch.zeros(1, 3, 32, 32), layers)
    finally:
        for h in hooks:
            h.remove()
    order = list(net.convs)
    assert ran == order[: order.index(last) + 1]
    assert set(acts) == set(net.canonical(layers))


def test_style_objective_skips_block5_conv2_and_conv3(backbone):
    import torch

    ran, hooks = _record_convs(backbone.net)
    try:
        backbone.net(torch.zeros(2, 3, 32, 32), STYLE.style_layers + [STYLE.content_layer])
    finally:
        for h in hooks:
            h.remove()
    assert "block5_conv2" not in ran and "block5_conv3" not in ran and len(ran) == 11


def test_counted_macs_match_the_issue_arithmetic(backbone):
    """Per input pixel up to block5_conv1: block1 38,592, block2 55,296, block3 92,160,
    block4 92,160, block5_conv1 9,216 (287,424 in all)."""
    net = backbone.net
    macs = conv_macs(net, "block5_conv1", 512, 512)
    per_block = {b: sum(v for k, v in macs.items() if k.startswith(f"block{b}")) / (512 * 512) for b in range(1, 6)}
    assert per_block == {1: 38592, 2: 55296, 3: 92160, 4: 92160, 5: 9216}
    assert sum(macs.values()) == 287424 * 512 * 512
    assert sum(macs.values()) == net.macs_per_pixel(["block5_conv1"]) * 512 * 512
    # one evaluation at 512 px: about 0.30 TFLOP (forward + input gradient)
    assert flops_per_evaluation(net, "block5_conv1", "block5_conv1", 512, 512) == pytest.approx(0.3014e12, rel=1e-3)


def test_reference_counts_the_whole_forward(backbone):
    net = backbone.net
    truncated = flops_per_evaluation(net, "block5_conv1", "block5_conv1", 128, 128)
    whole = flops_per_evaluation(net, "block5_pool", "block5_conv1", 128, 128)
    assert whole - truncated == 2 * 2 * 512 * 512 * 9 * 8 * 8  # block5_conv2 and conv3 forward at 8x8
    assert deepest(net, STYLE.style_layers + [STYLE.content_layer]) == "block5_conv1"


def test_odd_sizes_count_floored_layer_shapes(backbone):
    macs = conv_macs(backbone.net, "block2_conv1", 33, 35)
    assert macs["block2_conv1"] == 64 * 128 * 9 * 16 * 17
