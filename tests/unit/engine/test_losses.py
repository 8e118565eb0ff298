"""The reference notebook's known answers (NumPy HWC layout -> our NCHW)."""

import numpy as np
import pytest
import torch

from pipeline.engine.objectives import Content, Style, Sum, TotalVariation, content_loss, gram, style_loss, tv_loss


def hwc_to_nchw(a):
    a = np.asarray(a, dtype=np.float32)
    if a.ndim == 3:
        a = a[None]
    return torch.from_numpy(a).permute(0, 3, 1, 2).contiguous()


def test_content_loss_known_answer():
    np.random.seed(1)
    base = np.random.randn(10, 10, 3)
    output = np.random.randn(10, 10, 3)
    got = content_loss(hwc_to_nchw(output), hwc_to_nchw(base))
    assert got.shape == (1,)
    assert float(got) == pytest.approx(605.62195, rel=1e-5)


def test_gram_known_answer():
    np.random.seed(1)
    x = np.random.randn(10, 10, 3)
    expected = np.array([[99.75723, -9.96186, -1.4740534],
                         [-9.96186, 86.854324, -4.141108],
                         [-1.4740534, -4.141108, 82.30106]])
    np.testing.assert_allclose(gram(hwc_to_nchw(x))[0].numpy(), expected, rtol=1e-5)


def test_style_loss_known_answer():
    np.random.seed(1)
    x = np.random.randn(10, 10, 3)
    y = np.random.randn(10, 10, 3)
    got = style_loss(hwc_to_nchw(y), gram(hwc_to_nchw(x)))
    assert float(got) == pytest.approx(0.09799164, rel=1e-5)


def test_tv_known_answer():
    np.random.seed(1)
    x = np.random.randn(1, 10, 10, 3)
    assert float(tv_loss(hwc_to_nchw(x))) == pytest.approx(937.0538, rel=1e-5)


def test_objectives_compose_and_keep_samples_apart():
    torch.manual_seed(0)
    acts = {"a": torch.randn(2, 4, 5, 5)}
    x = torch.randn(2, 3, 6, 6)
    target = torch.zeros(1, 4, 5, 5)
    obj = 2.0 * Content("a", target) + 0.5 * Style("a", torch.zeros(1, 4, 4)) + TotalVariation()
    assert isinstance(obj, Sum) and obj.layers == {"a"}
    parts = obj.parts(acts, x)
    assert set(parts) == {"content", "style", "tv"}
    total = obj(acts, x)
    assert total.shape == (2,)
    # Each sample's loss depends on that sample only.
    x2 = x.clone()
    x2[1] += 10
    assert obj(acts, x2)[0] == total[0] and obj(acts, x2)[1] != total[1]
    assert torch.allclose(parts["content"], 2.0 * content_loss(acts["a"], target))


def test_reductions_stay_fp32_under_bf16_autocast():
    f = torch.randn(1, 8, 6, 6)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        g = gram(f)
        s = style_loss(f, g)
        t = tv_loss(f[:, :3])
    assert g.dtype == torch.float32 and s.dtype == torch.float32 and t.dtype == torch.float32
    torch.testing.assert_close(g, gram(f))


def test_gram_and_content_read_channels_last_without_changing_values():
    """The channels_last (H·W, C) view gives the same Gram matrix, gradient and content loss as NCHW."""
    from pipeline.engine.objectives import content_loss, gram

    torch.manual_seed(0)
    a = torch.randn(2, 8, 6, 5)
    cl = a.contiguous(memory_format=torch.channels_last)
    assert not cl.is_contiguous()
    x1, x2 = a.clone().requires_grad_(True), cl.clone().requires_grad_(True)
    g1, g2 = gram(x1), gram(x2)
    assert torch.allclose(g1, g2, rtol=1e-5, atol=1e-5) and g1.shape == (2, 8, 8)
    (g1 * g1).sum().backward()
    (g2 * g2).sum().backward()
    assert torch.allclose(x1.grad, x2.grad, rtol=1e-5, atol=1e-4)
    t = torch.randn(2, 8, 6, 5)
    assert torch.allclose(content_loss(a, t), content_loss(cl, t.contiguous(memory_format=torch.channels_last)))
    assert content_loss(a, t).shape == (2,)


def test_mean_reduction_is_each_term_over_its_elements():
    """loss_reduction "mean": content over C·H·W, style over the C² Gram entries of G/(H·W), tv over C·(H−1)·(W−1)."""
    torch.manual_seed(0)
    a, b = torch.randn(2, 4, 6, 5), torch.randn(2, 4, 6, 5)
    assert torch.allclose(content_loss(a, b, "mean"), content_loss(a, b) / (4 * 6 * 5))
    g = gram(b)
    mse = ((gram(a) - g) / (6 * 5)).pow(2).mean(dim=(1, 2))
    assert torch.allclose(style_loss(a, g, "mean"), mse, rtol=1e-5)
    assert torch.allclose(style_loss(a, g, "mean"), style_loss(a, g) * 4 / 16)
    x = torch.randn(2, 3, 7, 9)
    assert torch.allclose(tv_loss(x, "mean"), tv_loss(x) / (3 * 6 * 8))
    # the same picture at twice the size: summed content grows ~4x, the mean does not
    small = torch.randn(1, 4, 8, 8)
    big, big_t = (torch.nn.functional.interpolate(t, scale_factor=2) for t in (small, torch.zeros_like(small)))
    assert float(content_loss(big, big_t)) == pytest.approx(4 * float(content_loss(small, torch.zeros_like(small))))
    assert float(content_loss(big, big_t, "mean")) == pytest.approx(float(content_loss(small, torch.zeros_like(small), "mean")))
