"""A real 30-evaluation stylize through the real VGG16: the style loss falls, the seed decides the output."""

import pytest
import torch

from pipeline.methods.stylize import StyleTargets, StylizeJob, stylize_batch
from tests.conftest import make_image
from tests.unit.engine.test_engine import _cfg

pytestmark = pytest.mark.slow  # seconds of real optimisation: not in `make test-fast`


def test_style_loss_falls_10x_and_output_differs_from_content(backbone):
    cfg = _cfg(iterations=40)
    content = make_image((48, 40), 0, "content")
    style = make_image((40, 40), 1, "style")
    history = []
    pixels, result = stylize_batch(backbone, cfg, StyleTargets(backbone, cfg),
                                   StylizeJob([content], [("s", style)], [0]),
                                   on_log=lambda i, n, rows: history.append(rows[0]))
    first_style = history[0]["style"]
    assert result.losses[0]["style"] < first_style / 10
    from pipeline.pixels import to_tensor

    diff = (pixels.cpu() - to_tensor(content)).abs().mean()
    assert float(diff) > 5.0
    assert pixels.shape == (1, 3, 40, 48)


def test_same_seed_same_output_different_seed_differs(backbone):
    cfg = _cfg(iterations=8, init="noise")
    content = make_image((32, 32), 0, "content")
    style = make_image((32, 32), 1, "style")

    def run(seed):
        px, _ = stylize_batch(backbone, cfg, StyleTargets(backbone, cfg),
                              StylizeJob([content], [("s", style)], [seed]))
        return px

    a, b, c = run(3), run(3), run(4)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
