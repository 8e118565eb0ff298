"""The memory estimate refuses, before any work, what the device cannot hold."""

import pytest

from pipeline.engine.memory import activation_channels_per_pixel, bytes_per_image
from pipeline.engine.tile_plan import check_fits
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
    assert message.startswith("1000x500 px needs about") and "untiled (tile: none)" in message
    assert "the largest size the cap allows is 500 (--size 500" in message
    largest = 500
    check_fits("vgg16", LAYERS, (largest, largest // 2), "fp32", 20, 1, "cpu", available=available)


def test_refusal_names_the_largest_batch_that_fits():
    per_image = bytes_per_image("vgg16", LAYERS, 64, 64, "fp32", 20)
    with pytest.raises(BadInput, match="batch_size 8 at 64x64 px needs about .*the largest batch that fits is 3"):
        check_fits("vgg16", LAYERS, (64, 64), "fp32", 20, 8, "cpu", available=3 * per_image + 1)


def test_auto_tiles_what_does_not_fit_whole_and_cuts_the_history_last():
    from pipeline.engine.tile_plan import plan_stage, tiled_bytes

    whole = bytes_per_image("vgg16", LAYERS, 1024, 1024, "fp32", 20)
    assert plan_stage("vgg16", LAYERS, (1024, 1024), "fp32", 20, 1, "auto", whole).tile == 0  # fits: whole
    plan = plan_stage("vgg16", LAYERS, (1024, 1024), "fp32", 20, 1, "auto", whole // 2)
    assert plan.tile and plan.history == 20 and plan.estimate <= whole // 2 and plan.tiles > 1
    assert plan_stage("vgg16", LAYERS, (1024, 1024), "fp32", 20, 1, 256, whole).tile == 256  # N: always tiled
    assert plan_stage("vgg16", LAYERS, (200, 200), "fp32", 20, 1, 256, whole).tile == 0  # one tile holds it
    # the pixel-side state alone exceeds the room with history 20: the history is cut, not the size
    room = tiled_bytes("vgg16", LAYERS, (4096, 4096), 64, "fp32", 8)
    plan = plan_stage("vgg16", LAYERS, (4096, 4096), "fp32", 20, 1, "auto", room)
    assert plan.tile and 5 <= plan.history < 20 and plan.estimate <= room
    assert plan_stage("vgg16", LAYERS, (4096, 4096), "fp32", 20, 1, "none", room) is None


def test_refusal_names_the_tile_setting_and_the_largest_size_the_cap_allows():
    from pipeline.engine.tile_plan import plan_stage

    cap = 2**30
    with pytest.raises(BadInput) as err:
        check_fits("vgg16", LAYERS, (100000, 100000), "fp32", 20, 1, "cpu", tile="auto", max_memory=cap)
    message = str(err.value)
    assert "(tile: auto)" in message and "--max-memory 1.0 GiB" in message
    largest = int(message.split("the largest size the cap allows is ")[1].split()[0])
    assert plan_stage("vgg16", LAYERS, (largest, largest), "fp32", 20, 1, "auto", cap) is not None
    assert plan_stage("vgg16", LAYERS, (largest + 1, largest + 1), "fp32", 20, 1, "auto", cap) is None
    assert largest > 1000  # tiles reach far beyond the untiled limit (about 330 px at 1 GiB)
