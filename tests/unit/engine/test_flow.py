"""Optical flow, warping, Ruder's consistency check and the warping error on synthetic motion
whose answer is known (pipeline/engine/flow.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pipeline.engine.flow import ClipFlow, optical_flow, reliable, temporal_weights, warp, warp_array, warping_error


def texture(h: int, w: int, seed: int = 0) -> np.ndarray:
    """Smooth random RGB texture (uint8): structure at every place, so flow is well defined."""
    import cv2

    rng = np.random.default_rng(seed)
    t = cv2.GaussianBlur(rng.integers(0, 256, (h, w, 3)).astype(np.float32), (0, 0), 2.0)
    return ((t - t.min()) / (t.max() - t.min()) * 255).astype(np.uint8)


def shifted_pair(dx: int, dy: int, h: int = 64, w: int = 80):
    """(a, b): b is a moved by (dx, dy) pixels: b(x) = a(x - d)."""
    big = texture(h + 20, w + 20)
    a = big[10:10 + h, 10:10 + w]
    b = big[10 - dy:10 - dy + h, 10 - dx:10 - dx + w]
    return a, b


@pytest.mark.parametrize("dx,dy", [(3, 2), (-2, 1), (0, -4)])
def test_dis_flow_recovers_a_known_shift_both_ways(dx, dy):
    a, b = shifted_pair(dx, dy)
    forward, backward = optical_flow(a, b), optical_flow(b, a)
    assert forward.shape == (64, 80, 2) and forward.dtype == np.float32
    inner = (slice(8, -8), slice(8, -8))
    assert np.abs(np.median(forward[inner].reshape(-1, 2), 0) - (dx, dy)).max() < 0.1
    assert np.abs(np.median(backward[inner].reshape(-1, 2), 0) + (dx, dy)).max() < 0.1
    assert np.mean(np.abs(forward[inner] - (dx, dy)) < 0.5) > 0.95


def test_warp_by_the_backward_flow_rebuilds_the_next_frame():
    a, b = shifted_pair(3, 2)
    back = np.zeros(a.shape[:2] + (2,), np.float32)
    back[..., 0], back[..., 1] = -3, -2  # the exact backward flow b -> a
    seen = warp_array(a.astype(np.float32), back)
    assert np.abs(seen[2:, 3:] - b[2:, 3:]).max() < 1e-3  # exact (to grid_sample's rounding) where a covers b
    assert np.abs(seen[:2] - b[:2]).mean() > 5  # the uncovered rows are not (edges clamped)
    # bilinear: half a pixel is the mean of the two neighbours
    half = np.zeros((3, 4, 2), np.float32)
    half[..., 0] = 0.5
    img = torch.arange(12, dtype=torch.float32).view(1, 1, 3, 4)
    out = warp(img, half)[0, 0]
    assert torch.allclose(out[:, :3], img[0, 0, :, :3] + 0.5) and torch.equal(out[:, 3], img[0, 0, :, 3])


def moving_square(step: int = 4, h: int = 40, w: int = 48, top: int = 12, left: int = 10, side: int = 14):
    """Exact flows of a square moving `step` px right over a still background:
    forward (frame 0 -> 1) on the square's pixels in frame 0, backward (1 -> 0) on its pixels in frame 1."""
    forward = np.zeros((h, w, 2), np.float32)
    backward = np.zeros((h, w, 2), np.float32)
    forward[top:top + side, left:left + side, 0] = step
    backward[top:top + side, left + step:left + step + side, 0] = -step
    return forward, backward


def test_consistency_marks_the_disoccluded_strip_and_the_motion_boundary():
    forward, backward = moving_square()
    ok = reliable(forward, backward)
    # uncovered in frame 1: the 4 columns the square left behind (they were under it in frame 0)
    assert not ok[14:24, 10:14].any()
    # the square's own pixels in frame 1, away from its edges, and the far background are reliable
    assert ok[14:24, 16:26].all()
    assert ok[:8, :].all() and ok[:, 34:].all()
    # motion boundaries: the backward flow's edges (top and bottom rows of the moving square)
    assert not ok[12, 16:26].any() and not ok[25, 16:26].any()
    # a still scene is reliable everywhere
    zero = np.zeros_like(forward)
    assert reliable(zero, zero).all()


def test_temporal_weights_are_zero_where_unreliable_and_fade_at_its_edge():
    mask = np.ones((10, 12), bool)
    mask[:, :4] = False
    w = temporal_weights(mask, radius=1)
    assert (w[:, :4] == 0).all() and np.allclose(w[:, 5:], 1.0)
    assert np.allclose(w[:, 4], 2 / 3)  # a 3x3 box, one of its three columns unreliable
    assert np.array_equal(temporal_weights(mask, radius=0), mask.astype(np.float32))


def test_warping_error_is_zero_for_a_perfect_warp_and_the_masked_mse_otherwise():
    a, b = shifted_pair(3, 2)
    back = np.zeros(a.shape[:2] + (2,), np.float32)
    back[..., 0], back[..., 1] = -3, -2
    mask = np.zeros(a.shape[:2], bool)
    mask[2:, 3:] = True
    assert warping_error(b, a, back, mask) == pytest.approx(0.0, abs=1e-10)
    brighter = np.clip(b.astype(np.int16) + 10, 0, 255).astype(np.uint8)
    inside = mask & (b.max(-1) < 245)
    expected = ((brighter.astype(np.float32) - b) / 255.0)[inside] ** 2
    assert warping_error(brighter, a, back, inside) == pytest.approx(expected.sum(-1).mean(), rel=1e-5)
    assert np.isnan(warping_error(b, a, back, np.zeros_like(mask)))


def test_clip_flow_computes_each_pair_once():
    a, b = shifted_pair(2, 0)
    flows = ClipFlow([a, b, a])
    first = flows(1)
    assert flows(1) is first
    assert np.abs(np.median(first[0][8:-8, 8:-8, 0]) + 2) < 0.1  # backward: frame 1 -> 0
    assert first[1].dtype == bool and first[2].dtype == np.float32
    with pytest.raises(IndexError):
        flows(0)
