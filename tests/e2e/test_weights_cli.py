"""`nst weights`: a torchvision weights file mapped by position, and the command that verifies the cache."""

import os
import subprocess
import sys

import torch

from pipeline.models import weights as W


def test_torchvision_weights_file_is_mapped_by_position(tmp_path):
    import torchvision

    model = torchvision.models.vgg19(weights=None)
    path = tmp_path / "vgg19.pth"
    torch.save(model.state_dict(), path)
    state, meta = W.load_backbone_state("vgg19", path)
    assert torch.equal(state["block5_conv4.weight"], model.features[34].weight)
    assert meta["path"] == str(path)


def test_nst_weights_command_verifies(tmp_path):
    out = subprocess.run([sys.executable, "-m", "pipeline.cli", "weights"], capture_output=True, text=True,
                         env={**os.environ, "TORCH_HOME": str(tmp_path)})
    assert out.returncode == 0, out.stderr
    assert "vgg16: ok" in out.stdout and "probes: ok" in out.stdout
    assert "vgg19: missing" in out.stdout
