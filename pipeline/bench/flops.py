"""Counted work of one loss-and-gradient evaluation, from the layer shapes actually run.

Convention: a 3x3 convolution producing an (Cout, h, w) map from Cin channels costs
Cin·Cout·9·h·w multiply-adds (MACs); 1 MAC = 2 FLOP. The forward pass counts every
convolution the network runs; the backward pass computes only the gradient with
respect to the input (the weights are frozen), which costs the same MACs as the
forward of each convolution between the input and the deepest layer a loss reads.
ReLU, pooling, Gram matrices and the optimiser are not counted (they are < 2%).
"""

from __future__ import annotations


def conv_macs(net, upto: str, height: int, width: int) -> dict[str, int]:
    """MACs of each convolution from the input through layer `upto`, for an H×W input."""
    stop = net.deepest_index([upto])
    h, w = height, width
    out: dict[str, int] = {}
    for kind, name in net.stages[: stop + 1]:
        if kind == "conv":
            conv = net.convs[name]
            out[name] = conv.in_channels * conv.out_channels * 9 * h * w
        else:
            h, w = h // 2, w // 2
    return out


def flops_per_evaluation(net, forward_to: str, backward_to: str, height: int, width: int) -> int:
    """FLOP of one forward through `forward_to` plus the input-gradient back from `backward_to`."""
    fwd = sum(conv_macs(net, forward_to, height, width).values())
    bwd = sum(conv_macs(net, backward_to, height, width).values())
    return 2 * (fwd + bwd)


def deepest(net, layers) -> str:
    """The deepest of `layers` in the network's order."""
    order = [n for _, n in net.stages]
    return order[net.deepest_index(layers)]
