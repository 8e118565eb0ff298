"""The Task contract: keys and seeds from the index alone, and the manifest status of each failure."""

from __future__ import annotations

import pytest

from dataset_util import picture
from pipeline.run.task import Planned, number, sample_seed


def test_keys_and_seeds_depend_only_on_index():
    samples = number([Planned(f"{i}.png") for i in range(3)], run_seed=7)
    assert [s.key for s in samples] == ["00000000", "00000001", "00000002"]
    assert samples[2].seed == sample_seed(7, 2) != sample_seed(8, 2)


def test_failure_classes(tmp_path):
    from PIL import Image

    from pipeline.io.images import load_image
    from pipeline.run.task import NonFiniteResult, classify

    (tmp_path / "bad.png").write_bytes(b"junk")
    for path, status in ((tmp_path / "bad.png", "failed_decode"), (tmp_path / "missing.png", "failed_missing"),
                         (tmp_path, "failed_io")):
        with pytest.raises(Exception) as info:
            load_image(path)
        assert classify(info.value) == status
    picture(tmp_path / "big.png", (64, 64))
    old = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = 1000  # PIL refuses images over 2x this many pixels
    try:
        with pytest.raises(Exception) as info:
            load_image(tmp_path / "big.png")
    finally:
        Image.MAX_IMAGE_PIXELS = old
    assert classify(info.value) == "skipped_too_large"
    assert classify(NonFiniteResult("nan")) == "failed_nan"
    assert classify(RuntimeError("CUDA out of memory. Tried to allocate 2 GiB")) == "failed_oom"
    assert classify(KeyError("x")) == "failed_error"
