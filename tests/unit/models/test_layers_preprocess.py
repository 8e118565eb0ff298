"""Layer names and aliases; preprocessing conventions and round trips."""

import pytest
import torch

from pipeline.errors import BadInput
from pipeline.models.layers import canonical_layer, layer_names
from pipeline.models.preprocess import CAFFE_BGR_MEAN, Preprocess


def test_keras_layer_names_vgg16():
    names = layer_names("vgg16")
    assert names[:3] == ["block1_conv1", "block1_conv2", "block1_pool"]
    assert "block5_conv3" in names and "block5_conv4" not in names
    assert len([n for n in names if "conv" in n]) == 13
    assert "block5_conv4" in layer_names("vgg19")


@pytest.mark.parametrize("alias,canon", [
    ("relu4_2", "block4_conv2"), ("conv4_2", "block4_conv2"), ("block4_conv2", "block4_conv2"),
    ("pool3", "block3_pool"), ("relu1_1", "block1_conv1"),
])
def test_aliases(alias, canon):
    assert canonical_layer(alias) == canon


@pytest.mark.parametrize("bad", ["block6_conv1", "relu5_4", "conv", "", "block4_conv2 x"])
def test_unknown_layer_is_bad_input(bad):
    with pytest.raises(BadInput, match="unknown layer name"):
        canonical_layer(bad, "vgg16")


def test_relu5_4_exists_in_vgg19():
    assert canonical_layer("relu5_4", "vgg19") == "block5_conv4"


def test_conv_output_is_post_relu(backbone):
    x = backbone.pre.to_net(torch.rand(1, 3, 32, 32) * 255)
    acts = backbone.net(x, ["block1_conv1"])
    assert float(acts["block1_conv1"].min()) >= 0.0


def test_caffe_preprocessing_is_bgr_minus_mean():
    pre = Preprocess("caffe")
    rgb = torch.tensor([10.0, 20.0, 30.0]).view(1, 3, 1, 1)
    net = pre.to_net(rgb).flatten().tolist()
    assert net == pytest.approx([30 - CAFFE_BGR_MEAN[0], 20 - CAFFE_BGR_MEAN[1], 10 - CAFFE_BGR_MEAN[2]])


@pytest.mark.parametrize("kind", ["caffe", "torchvision"])
def test_round_trip(kind):
    pre = Preprocess(kind)
    pixels = torch.rand(2, 3, 8, 8) * 255
    torch.testing.assert_close(pre.to_pixels(pre.to_net(pixels)), pixels, atol=1e-4, rtol=0)


def test_noise_init_is_uniform_minus_128():
    g = torch.Generator().manual_seed(0)
    n = Preprocess("caffe").noise((1, 3, 64, 64), g)
    assert -128.0 <= float(n.min()) and float(n.max()) <= 127.0
    assert abs(float(n.mean()) + 0.5) < 3.0
