"""The memory estimate refuses, before any work, what the device cannot hold."""

import pytest

from pipeline.engine.batching import check_fits
from pipeline.engine.memory import activation_channels_per_pixel, bytes_per_image
from pipeline.errors import BadInput

LAYERS = ["block4_conv2", "block1_conv1", "block5_conv1"]


def test_estimate_needs_only_the_architecture(backbone):
    assert activation_channels_per_pixel("vgg16", LAYERS) == activation_channels_per_pixel(backbone.net, LAYERS)


def test_refusal_names_the_largest_size_that_fits():
    per_pixel = bytes_per_image("vgg16", LAYERS, 1000, 1000, "fp32", 20) / 1e6
    available = int(per_pixel * 500 * 250)  # exactly 500x250 px
    check_fits("vgg16", LAYERS, (500, 250), "fp32", 20, 1, "cpu", available=available)
    with pytest.raises(BadInput) as err:
        check_fits("vgg16", LAYERS, (1000, 500), "fp32", 20, 1, "cpu", available=available)
    message = str(err.value)
    assert message.startswith("1000x500 px needs about") and "the largest size that fits is 500 (--size 500" in message
    largest = 500
    check_fits("vgg16", LAYERS, (largest, largest // 2), "fp32", 20, 1, "cpu", available=available)


def test_refusal_names_the_largest_batch_that_fits():
    per_image = bytes_per_image("vgg16", LAYERS, 64, 64, "fp32", 20)
    with pytest.raises(BadInput, match="batch_size 8 at 64x64 px needs about .*the largest batch that fits is 3"):
        check_fits("vgg16", LAYERS, (64, 64), "fp32", 20, 8, "cpu", available=3 * per_image + 1)
