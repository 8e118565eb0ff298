"""The effective configuration of a run: defaults < preset YAML < CLI options.

Every parameter of the Keras notebook of "Neural Style Transfer and Visualization of
Convolutional Networks" (which the seed-* presets reproduce) is a field here, plus what it fixed silently.
The normalised config (canonical layer names, resolved lists) is what gets
recorded next to every output and hashed into a run's identity.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from pipeline.engine.compiled import COMPILE_MODES
from pipeline.engine.objectives import REDUCTIONS
from pipeline.errors import BadInput
from pipeline.models.layers import canonical_layer
from pipeline.models.weights import BACKBONES

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"

INITS = ("noise", "content", "style")
OPTIMIZERS = ("lbfgs", "adam", "torch_lbfgs")
POOLINGS = ("max", "avg")
PRECISIONS = ("fp32", "bf16", "auto")
FORMATS = ("png", "jpg", "webp")


@dataclass
class StyleConfig:
    """Parameters of one Gatys optimisation (and the knobs shared by sister methods)."""

    network: str = "vgg16"
    weights: str | None = None
    pooling: str = "max"
    content_layer: str = "block4_conv2"
    content_weight: float = 500.0
    style_layers: list[str] = field(default_factory=lambda: [
        "block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1", "block5_conv1"])
    style_weights: list[float] = field(default_factory=lambda: [10.0, 10.0, 50.0, 10.0, 10.0])
    style_blend: list[float] | None = None
    tv_weight: float = 200.0
    loss_reduction: str = "sum"   # sum: the reference's terms (content and tv grow with H·W); mean: size-normalised
    iterations: int = 300
    init: str = "noise"
    optimizer: str = "lbfgs"
    lbfgs_history: int = 20
    learning_rate: float = 1.0
    lbfgs_max_step: float = 64.0
    size: int = 512
    upscale: bool = False
    style_scale: float | None = None
    size_multiple: int = 1
    seed: int = 0
    preserve_colors: bool = False
    precision: str = "fp32"
    batch_size: int | str = 1   # samples optimised together, or "auto": from free memory, up to max_batch
    max_batch: int = 8
    # multi-resolution schedule: [scale of the size, share of `iterations`] per coarse stage, coarsest
    # first; the rest of `iterations` runs at full size ([]: one stage at full size)
    coarse_stages: list = field(default_factory=list)
    compile: str = "none"       # torch.compile mode for the evaluations: none|auto|default|reduce-overhead|max-autotune
    output_format: str = "png"
    log_every: int = 10

    def validate(self) -> "StyleConfig":
        if self.network not in BACKBONES:
            raise BadInput(f"unknown network {self.network!r} (choose from {', '.join(BACKBONES)})")
        arch = BACKBONES[self.network].arch
        self.content_layer = canonical_layer(self.content_layer, arch)
        if isinstance(self.style_layers, str):
            self.style_layers = [s for s in self.style_layers.split(",") if s]
        self.style_layers = [canonical_layer(s, arch) for s in self.style_layers]
        if isinstance(self.style_weights, (int, float)):
            self.style_weights = [float(self.style_weights)] * len(self.style_layers)
        self.style_weights = [float(w) for w in self.style_weights]
        if len(self.style_weights) != len(self.style_layers):
            raise BadInput(
                f"style_weights has {len(self.style_weights)} values {self.style_weights} "
                f"but there are {len(self.style_layers)} style layers"
            )
        for name, choices in (("init", INITS), ("optimizer", OPTIMIZERS), ("pooling", POOLINGS),
                              ("precision", PRECISIONS), ("output_format", FORMATS),
                              ("loss_reduction", REDUCTIONS), ("compile", COMPILE_MODES)):
            if getattr(self, name) not in choices:
                raise BadInput(f"{name} must be one of {', '.join(choices)}, got {getattr(self, name)!r}")
        if self.batch_size != "auto":
            self._positive_int("batch_size")
        for name in ("size", "iterations", "lbfgs_history", "size_multiple", "max_batch", "log_every"):
            self._positive_int(name)
        for name in ("content_weight", "tv_weight"):
            if float(getattr(self, name)) < 0:
                raise BadInput(f"{name} must be >= 0, got {getattr(self, name)!r}")
        self._check_stages()
        if self.lbfgs_max_step <= 0:
            raise BadInput(f"lbfgs_max_step must be > 0, got {self.lbfgs_max_step!r}")
        if self.learning_rate <= 0:
            raise BadInput(f"learning_rate must be > 0, got {self.learning_rate!r}")
        if self.style_scale is not None and self.style_scale <= 0:
            raise BadInput(f"style_scale must be > 0, got {self.style_scale!r}")
        return self

    def _check_stages(self) -> None:
        stages = self.coarse_stages
        bad = (not isinstance(stages, list)
               or any(not isinstance(s, (list, tuple)) or len(s) != 2
                      or any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in s) for s in stages))
        if bad:
            raise BadInput(f"coarse_stages must be a list of [scale, share] pairs, got {stages!r}")
        self.coarse_stages = [[float(a), float(b)] for a, b in stages]
        scales = [a for a, _ in self.coarse_stages]
        if any(not 0.0 < a < 1.0 for a in scales) or scales != sorted(set(scales)):
            raise BadInput(f"coarse_stages scales must be increasing, each in (0, 1), got {stages!r}")
        shares = [b for _, b in self.coarse_stages]
        if any(b <= 0 for b in shares) or sum(shares) >= 1.0:
            raise BadInput(f"coarse_stages shares must be > 0 and sum to less than 1, got {stages!r}")

    def _positive_int(self, name: str) -> None:
        value = getattr(self, name)
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            extra = ' or "auto"' if name == "batch_size" else ""
            raise BadInput(f"{name} must be a positive integer{extra}, got {value!r}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()


def _coerce(name: str, raw: str, current):
    """Parse a --set value with YAML rules (numbers, lists, null, booleans)."""
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError:
        raise BadInput(f"cannot parse value for {name}: {raw!r}")
    if isinstance(current, float) and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if isinstance(current, list) and isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    return value


def resolve_preset(path_or_name: str) -> Path:
    p = Path(path_or_name)
    if p.exists():
        return p
    candidate = CONFIG_DIR / f"{path_or_name}.yaml"
    if candidate.exists():
        return candidate
    raise BadInput(f"config not found: {path_or_name!r} (a YAML file, or a preset in {CONFIG_DIR})")


def read_yaml(path_or_name: str) -> dict:
    path = resolve_preset(path_or_name)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise BadInput(f"cannot read config {str(path)!r}: {exc}".splitlines()[0])
    if not isinstance(data, dict):
        raise BadInput(f"config {str(path)!r} must be a mapping of key: value")
    return data


def build_config(cls=StyleConfig, preset: str | None = "default", overrides: dict | None = None,
                 sets: list[str] | None = None):
    """defaults < preset file < explicit overrides < --set key=value."""
    cfg = cls()
    names = {f.name for f in dataclasses.fields(cls)}
    layers: list[dict] = []
    if preset:
        layers.append(read_yaml(preset))
    layers.append({k: v for k, v in (overrides or {}).items() if v is not None})
    for item in sets or []:
        if "=" not in item:
            raise BadInput(f"--set expects key=value, got {item!r}")
        key, raw = item.split("=", 1)
        key = key.strip()
        if key not in names:
            raise BadInput(f"unknown config key {key!r}")
        layers.append({key: _coerce(key, raw, getattr(cfg, key))})
    for layer in layers:
        for key, value in layer.items():
            if key not in names:
                raise BadInput(f"unknown config key {key!r}")
            current = getattr(cfg, key)
            if isinstance(current, float) and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            setattr(cfg, key, value)
    return cfg.validate()
