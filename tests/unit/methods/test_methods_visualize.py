"""Deconvnet projections and the top-k map-reduce of `nst visualize`, with the real VGG16."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from pipeline.engine.loop import RenderOptions, render
from pipeline.engine.objectives import MeanSquaredActivation
from pipeline.io.images import load_image
from pipeline.pixels import resize, target_size, to_tensor
from image_checks import project_activation
from pipeline.methods.deconv import forward_with_switches, project_down, receptive_box
from pipeline.methods.visualize import TopK, filter_maxima, merge_topk

ROOT = Path(__file__).resolve().parents[3]


def random_input(vgg, size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return vgg.pre.to_net(torch.rand(1, 3, size, size, generator=g) * 255)


def test_block1_conv1_projection_is_the_filter_at_that_position(vgg):
    x = random_input(vgg)
    weight = vgg.net.convs["block1_conv1"].weight
    act, _, _ = forward_with_switches(vgg.net, x, "block1_conv1")
    for c in (0, 5, 63):
        inner = act[0, c, 1:-1, 1:-1]  # an interior position where the filter fires
        y, xx = divmod(int(inner.flatten().argmax()), inner.shape[-1])
        y, xx = y + 1, xx + 1
        v = act[0, c, y, xx]
        assert v > 0
        p = project_activation(vgg.net, x, "block1_conv1", c, y, xx)
        expected = torch.zeros_like(p)
        expected[0, :, y - 1: y + 2, xx - 1: xx + 2] = v * weight[c]
        assert torch.equal(p, expected)
        unit = project_activation(vgg.net, x, "block1_conv1", c, y, xx, value=1.0)
        assert torch.equal(unit[0, :, y - 1: y + 2, xx - 1: xx + 2], weight[c])


def test_transposed_convolution_is_correlation_with_flipped_filters(vgg):
    x = random_input(vgg)
    act, switches, sizes = forward_with_switches(vgg.net, x, "block1_conv1")
    signal = torch.randn_like(act)
    w = vgg.net.convs["block1_conv1"].weight
    flipped = F.conv2d(F.relu(signal), w.flip(2, 3).transpose(0, 1), padding=1)
    assert torch.allclose(project_down(vgg.net, "block1_conv1", signal, switches, sizes), flipped, atol=1e-3)


def test_unpooling_uses_the_recorded_switches(vgg):
    x = random_input(vgg, seed=1)
    pooled, switches, _ = forward_with_switches(vgg.net, x, "block1_pool")
    c, y, xx = 3, 5, 6
    where = int(switches["block1_pool"][0, c, y, xx])  # flat index into block1_conv2's map
    y2, x2 = divmod(where, x.shape[-1])
    assert (y2 // 2, x2 // 2) == (y, xx)
    from_pool = project_activation(vgg.net, x, "block1_pool", c, y, xx)
    from_conv = project_activation(vgg.net, x, "block1_conv2", c, y2, x2, value=float(pooled[0, c, y, xx]))
    assert torch.equal(from_pool, from_conv)


def test_projection_stays_inside_the_receptive_field(vgg):
    x = random_input(vgg, size=64, seed=2)
    act, _, _ = forward_with_switches(vgg.net, x, "block3_conv3")
    c = int(act[0].flatten(1).amax(1).argmax())
    y, xx = divmod(int(act[0, c].flatten().argmax()), act.shape[-1])
    p = project_activation(vgg.net, x, "block3_conv3", c, y, xx)[0].abs().sum(0)
    top, left, bottom, right = receptive_box(vgg.net, "block3_conv3", y, xx, (64, 64))
    assert p.sum() > 0
    outside = p.clone()
    outside[top:bottom, left:right] = 0
    assert outside.sum() == 0


def test_planted_image_comes_first_in_its_filters_top9(vgg):
    layer, filt = "block2_conv2", 17
    images = []
    for name in ("astronaut.jpg", "coffee.jpg", "rocket.jpg"):
        img = load_image(ROOT / "examples" / "content" / name)
        images.append(to_tensor(resize(img, target_size(img.width, img.height, 48))))
    for name in ("starry_night.jpg", "the_scream.jpg", "shipwreck.jpg"):
        img = load_image(ROOT / "examples" / "style" / name)
        images.append(to_tensor(resize(img, (48, 48))))
    # the planted image: grey plus a little noise, driven up for that one filter with the engine
    start = vgg.pre.to_net(torch.full((1, 3, 48, 48), 128.0)) + torch.randn(1, 3, 48, 48,
                                                                          generator=torch.Generator().manual_seed(0))
    planted = render(vgg.net, MeanSquaredActivation(layer, filt), start,
                     RenderOptions(20, optimizer="normalized_sgd", lr=2.0, maximize=True)).x
    planted_pixels = vgg.pre.to_pixels(planted).clamp(0, 255).round()
    planted_at = 4
    images.insert(planted_at, planted_pixels)
    entries = [(i, filter_maxima(vgg.net, vgg.pre.to_net(img), [layer])[layer]) for i, img in enumerate(images)]
    top = merge_topk([TopK.of_samples(entries)], 9)
    assert int(top.index[filt, 0]) == planted_at
    assert top.value.shape == (128, len(images))  # fewer samples than k: all of them, ranked
    assert np.all(np.diff(top.value, axis=1) <= 0)


def test_merge_does_not_depend_on_how_entries_are_split():
    rng = np.random.default_rng(0)
    n, c, k = 40, 6, 9
    entries = []
    for i in range(n):
        vals = rng.integers(0, 12, c).astype(np.float32).tolist()  # many ties
        entries.append((i, {"value": vals, "y": rng.integers(0, 5, c).tolist(), "x": rng.integers(0, 5, c).tolist()}))
    whole = merge_topk([TopK.of_samples(entries)], k)
    shuffled = [entries[i] for i in rng.permutation(n)]
    parts = [merge_topk([TopK.of_samples(shuffled[a: a + 7])], k) for a in range(0, n, 7)]
    by_parts = merge_topk(parts[::-1], k)
    singles = merge_topk([TopK.of_samples([e]) for e in entries], k)
    for other in (by_parts, singles, TopK.from_json(whole.to_json())):
        for name in ("value", "index", "y", "x"):
            assert np.array_equal(getattr(whole, name), getattr(other, name))
    # ties broken by the lower global index
    for f in range(c):
        for r in range(k - 1):
            if whole.value[f, r] == whole.value[f, r + 1]:
                assert whole.index[f, r] < whole.index[f, r + 1]
