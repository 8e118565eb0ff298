"""The embedded VGG16: source verification, probe values, conversion cache."""


import pytest
import torch

from pipeline.errors import WeightsUnavailable
from pipeline.models import weights as W
from pipeline.models.probes import KERAS_VGG16_PROBES, check_keras_probes, probe_value


def test_probe_values_bitwise():
    state, meta = W.load_keras_vgg16()
    for layer, what, index, expected in KERAS_VGG16_PROBES:
        got = torch.tensor(probe_value(state, layer, what, index), dtype=torch.float32)
        assert got == torch.tensor(expected, dtype=torch.float32), (layer, what, index)
    check_keras_probes(state)
    assert meta["onnx_sha256"] == W.KERAS_ONNX_SHA256


def test_thirteen_convolutions_with_keras_shapes():
    state, _ = W.load_keras_vgg16()
    convs = sorted({k.split(".")[0] for k in state})
    assert len(convs) == 13
    assert state["block1_conv1.weight"].shape == (64, 3, 3, 3)
    assert state["block5_conv3.weight"].shape == (512, 512, 3, 3)


def test_fresh_cache_converts_once_then_never_reads_onnx(tmp_path, monkeypatch):
    monkeypatch.setenv("NST_CACHE_DIR", str(tmp_path / "cache"))
    first, meta = W.load_keras_vgg16()
    assert (tmp_path / "cache").exists()
    # With the ONNX made unreachable, the cached conversion still loads.
    monkeypatch.setenv("NST_VGG16_ONNX", str(tmp_path / "nope.onnx"))
    second, meta2 = W.load_keras_vgg16()
    assert meta2["state_digest"] == meta["state_digest"]
    assert torch.equal(first["block3_conv2.weight"], second["block3_conv2.weight"])


def test_corrupted_cache_is_detected_and_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setenv("NST_CACHE_DIR", str(tmp_path))
    W.load_keras_vgg16()
    pt, _ = W._keras_cache_paths()
    pt.write_bytes(b"garbage")
    state, meta = W.load_keras_vgg16()
    check_keras_probes(state)
    assert W.sha256_file(pt) == meta["file_sha256"]


def test_wrong_onnx_file_is_refused(tmp_path, monkeypatch):
    bad = tmp_path / "fake.onnx"
    bad.write_bytes(b"not the model")
    monkeypatch.setenv("NST_CACHE_DIR", str(tmp_path / "c"))
    monkeypatch.setenv("NST_VGG16_ONNX", str(bad))
    with pytest.raises(WeightsUnavailable, match="sha256"):
        W.load_keras_vgg16()


def test_missing_torchvision_weights_fail_fast_with_instructions(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(WeightsUnavailable, match="--weights FILE"):
        W.load_backbone_state("vgg19")
