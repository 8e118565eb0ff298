"""Write the converted VGG16 weights as an fp16 state dict (~29 MB) for carrying to a bare GPU machine.

Usage: .venv/bin/python benchmarks/make_fp16_weights.py [.carry/vgg16-keras-fp16.pt]
The bench loads it with --weights-file and computes in fp32 from these values.
"""

import sys
from pathlib import Path

import torch

from pipeline.models.weights import load_backbone_state

out = Path(sys.argv[1] if len(sys.argv) > 1 else ".carry/vgg16-keras-fp16.pt")
state, _ = load_backbone_state("vgg16")
out.parent.mkdir(parents=True, exist_ok=True)
torch.save({k: v.half() for k, v in state.items()}, out)
print(out, out.stat().st_size // 2**20, "MiB")
