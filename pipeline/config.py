"""The effective configuration of a run: class defaults < preset < user YAML < options < --set.

Every parameter of the Keras notebook of "Neural Style Transfer and Visualization of
Convolutional Networks" (which the seed-* presets reproduce) is a field here, plus what it fixed silently.
Each field's annotation is its type and range (pipeline/schema.py): one
pydantic pass over the layered mapping refuses any bad value with one line.
The normalised config (canonical layer names, resolved lists) is what gets
recorded next to every output and hashed into a run's identity.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, ClassVar, Optional, Union

import yaml
from pydantic import AfterValidator, Field

from pipeline.engine.choices import COMPILE_MODES, REDUCTIONS
from pipeline.errors import BadInput
from pipeline.models.layers import canonical_layer
from pipeline.models.backbones import BACKBONES
from pipeline.resources import data_dir
from pipeline.schema import (Fraction, Int, Layers, MemorySize, NonNegative, OpenFraction, Positive, PositiveInt,
                             Weights, choice, unknown_key, validate_mapping)

INITS = ("noise", "content", "style")
OPTIMIZERS = ("lbfgs", "adam", "torch_lbfgs")
POOLINGS = ("max", "avg")
PRECISIONS = ("fp32", "bf16", "auto")
FORMATS = ("png", "jpg", "webp")
META_KEYS = ("base", "description")  # preset/YAML keys that are not config values

Network = choice(*BACKBONES)
Init = choice(*INITS)
Optimizer = choice(*OPTIMIZERS)
Pooling = choice(*POOLINGS)
Precision = choice(*PRECISIONS)
Format = choice(*FORMATS)
CompileMode = choice(*COMPILE_MODES)
Reduction = choice(*REDUCTIONS)
BatchSize = Union[PositiveInt, choice("auto")]
Seed = Int(ge=0)
MinSide = Int(ge=32)  # VGG16 pools five times
# strength 0.5 keeps the preset's content_weight; each 0.1 away multiplies it by STRENGTH_SPAN ** -0.2
STRENGTH_SPAN = 100.0
TileSide = Union[Int(ge=32), choice("auto", "none")]  # pixels per tile side, rounded up to the network's stride


def _coarsest_first(stages: list) -> list:
    """Scales increasing and shares leaving at least one evaluation's worth for full size:
    the pairs' own ranges are the item type's job."""
    scales = [scale for scale, _ in stages]
    if scales != sorted(set(scales)) or sum(share for _, share in stages) >= 1.0:
        raise ValueError("scales must increase and shares sum to less than 1")
    return [[scale, share] for scale, share in stages]


# [scale of the size, share of `iterations`] per coarse stage, coarsest first; the rest of
# `iterations` runs at full size ([]: one stage at full size)
Stages = Annotated[list[tuple[OpenFraction, Positive]], AfterValidator(_coarsest_first), Field(
    description="a list of [scale, share] pairs, coarsest first, each scale > 0 and < 1, "
                "each share > 0, the shares summing to less than 1")]


# What each key means: the README's parameter table is rendered from this and the `default` preset
# (pipeline/readme.py); a test fails when a StyleConfig key has no entry.
PARAMETER_HELP = {
    "network": "`vgg16` (ImageNet VGG16, Keras/Caffe weights, embedded), `vgg19` or `vgg16-torchvision` "
               "(torchvision IMAGENET1K_V1 weights, if present locally)",
    "weights": "a weights file for the torchvision backbones (or the VGG16 ONNX)",
    "pooling": "`max` (as trained) or `avg` (better gradient flow for synthesis)",
    "content_layer": "Keras names; aliases `relu4_2` / `conv4_2` / `pool4` accepted",
    "content_weight": "weight of the content term",
    "style_layers": "list, or comma-separated with `--set`",
    "style_weights": "one per style layer (a single number applies to all)",
    "style_blend": "weights of several style images (`null`: equal)",
    "tv_weight": "weight of the total-variation term",
    "loss_reduction": "`mean`: every term a mean over its elements, so content and style keep their balance at "
                      "every size; `sum`: the Keras notebook's terms (its content and tv terms grow with the "
                      "pixel count; the `seed-*` presets)",
    "strength": "0..1, the content/style balance ([the look](#the-look-nst-look-and-strength)): `content_weight` is "
                "its value at 0.5, times 100^(1 − 2·strength); needs `loss_reduction: mean`; `null` = the weights "
                "as given (the `seed-*` presets)",
    "iterations": "loss-and-gradient evaluations, every stage included",
    "init": "`noise` (uniform 0..255 minus 128 in network space, seeded), `content`, `style`",
    "optimizer": "`lbfgs` (per-sample L-BFGS), `adam` (`learning_rate`), `torch_lbfgs` (torch's L-BFGS with a "
                 "strong-Wolfe line search)",
    "lbfgs_history": "L-BFGS: correction pairs kept",
    "learning_rate": "Adam's step size",
    "lbfgs_max_step": "L-BFGS: step capped at this many grey levels per pixel",
    "size": "longest side of the output",
    "upscale": "enlarge inputs smaller than `size` (never, by default)",
    "style_scale": "`null`: the style image is resized to the content's size (as the Keras notebook); a "
                   "number: its longest side is that multiple of the content's",
    "size_multiple": "snap both sides to a multiple of this",
    "seed": "same seed + same inputs = same output on CPU",
    "preserve_colors": "transfer only luminance (YIQ), keep the content's colours",
    "precision": "`fp32`, `bf16` (autocast + channels_last), `auto` = bf16 where the hardware runs it natively",
    "batch_size": "dataset runs: images of one size and style set optimised together; `auto` = as many as free "
                  "memory holds (estimate in `pipeline/engine/memory.py`), up to `max_batch`; or a number",
    "max_batch": "the largest batch `batch_size: auto` picks",
    "stage_base": "absolute stages: `stage_base_share` of `iterations` at a longest side of `stage_base` px, where "
                  "the composition is decided whatever the output size, the rest shared equally by √2 steps up to "
                  "the output size (the default, 300 evaluations from 256 px: at 512 px 120@256, 90@362, 90@512; at "
                  "1024 px 120@256, then 45 at each of 362, 512, 724, 1024); an output no larger than `stage_base` "
                  "is one stage; `null` = off",
    "stage_base_share": "the share of `iterations` spent at `stage_base`",
    "coarse_stages": "multi-resolution schedule as fractions of the size (takes precedence over `stage_base` when "
                     "not empty): `[scale, share]` per coarse stage, coarsest first; each spends `share` of "
                     "`iterations` at `scale` of the size, from the upsampled result of the stage before; the rest "
                     "at full size; `[]` = one stage (stages under 32 px are skipped)",
    "compile": "`none` (eager), `default`, `reduce-overhead` (CUDA graphs), `max-autotune`: torch.compile of each "
               "evaluation, eager fallback if compiling fails; `auto` compiles only where measured to pay "
               "(engine/compiled.py: CPU, average pooling, enough pixel-evaluations)",
    "tile": "`auto`: a stage that does not fit the memory budget untiled is evaluated exactly in tiles "
            "([prints beyond memory](#prints-beyond-memory-tiled-evaluation)); `none`: never (too large is refused); N: tiles of N px a side",
    "max_memory": "bytes the memory estimate may use (`8G`, `512MiB`; `--max-memory`); `null`: the device's free "
                  "memory",
    "output_format": "`png`, `jpg` or `webp` for dataset shards",
    "log_every": "evaluations between loss records (the progress bar and the sample's JSON)",
}


@dataclass
class StyleConfig:
    """Parameters of one Gatys optimisation (and the knobs shared by sister methods)."""

    preset: ClassVar[str] = "default"  # what a user YAML without `base:` layers on

    network: Network = "vgg16"
    weights: Optional[str] = None
    pooling: Pooling = "max"
    content_layer: str = "block4_conv2"
    content_weight: NonNegative = 500.0
    style_layers: Layers = field(default_factory=lambda: [
        "block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1", "block5_conv1"])
    style_weights: Union[NonNegative, Weights] = field(default_factory=lambda: [10.0, 10.0, 50.0, 10.0, 10.0])
    style_blend: Optional[Weights] = None
    tv_weight: NonNegative = 200.0
    strength: Optional[Fraction] = None  # 0..1: the content/style balance on a log scale (None: the weights as given)
    loss_reduction: Reduction = "sum"  # sum: the reference's terms (content and tv grow with H·W); mean: size-normalised
    iterations: PositiveInt = 300
    init: Init = "noise"
    optimizer: Optimizer = "lbfgs"
    lbfgs_history: PositiveInt = 20
    learning_rate: Positive = 1.0
    lbfgs_max_step: Positive = 64.0
    size: PositiveInt = 512
    upscale: bool = False
    style_scale: Optional[Positive] = None
    size_multiple: PositiveInt = 1
    seed: Seed = 0
    preserve_colors: bool = False
    precision: Precision = "fp32"
    batch_size: BatchSize = 1   # samples optimised together, or "auto": from free memory, up to max_batch
    max_batch: PositiveInt = 8
    coarse_stages: Stages = field(default_factory=list)  # multi-resolution schedule, coarsest first
    stage_base: Optional[MinSide] = None   # absolute schedule: start at this longest side, grow by sqrt(2) to `size`
    # (a non-empty coarse_stages takes precedence)
    stage_base_share: OpenFraction = 0.4   # of `iterations` at stage_base; the rest shared by the larger stages
    compile: CompileMode = "none"  # torch.compile mode for the evaluations: none|auto|default|reduce-overhead|max-autotune
    tile: TileSide = "auto"  # auto: tile a stage only where it does not fit untiled; none: never; N: px per tile side
    max_memory: Optional[MemorySize] = None  # bytes the memory estimate may use (null: the device's free memory)
    output_format: Format = "png"
    log_every: PositiveInt = 10

    def validate(self) -> "StyleConfig":
        """The checks that span keys (types and ranges are the annotations' job): canonical layer
        names, one style weight per style layer."""
        arch = BACKBONES[self.network].arch
        if not BACKBONES[self.network].classifier:  # a classifier has no content or style layers
            self.content_layer = canonical_layer(self.content_layer, arch)
            self.style_layers = [canonical_layer(s, arch) for s in _as_list(self.style_layers)]
        else:
            self.style_layers = _as_list(self.style_layers)
        if isinstance(self.style_weights, (int, float)):
            self.style_weights = [float(self.style_weights)] * len(self.style_layers)
        self.style_weights = [float(w) for w in self.style_weights]
        if len(self.style_weights) != len(self.style_layers):
            raise BadInput(
                f"style_weights has {len(self.style_weights)} values {self.style_weights} "
                f"but there are {len(self.style_layers)} style layers"
            )
        if self.strength is not None and self.loss_reduction != "mean":
            raise BadInput(f"strength {self.strength} needs loss_reduction: mean (a summed loss changes its "
                           f"balance with the image size), got loss_reduction {self.loss_reduction!r}")
        return self

    def balanced_content_weight(self) -> float:
        """content_weight as `strength` sets it: the preset's weight at 0.5, times
        STRENGTH_SPAN ** (1 - 2·strength) (x100 at 0, x0.01 at 1). Every term is a mean
        (loss_reduction: mean), so the balance, and the look it sets, do not depend on the size."""
        if self.strength is None:
            return self.content_weight
        return self.content_weight * STRENGTH_SPAN ** (1.0 - 2.0 * self.strength)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()

    def working_size(self, wh: tuple[int, int]) -> tuple[int, int]:
        """The (w, h) an image of size wh is optimised at: the config's size policy (here, not in
        the method, because the planner groups samples by it from image headers alone)."""
        from pipeline.pixels import target_size

        return target_size(wh[0], wh[1], self.size, self.upscale, self.size_multiple)


def _as_list(value) -> list:
    """A comma-separated string or a list (for instances built in code, not through the schema)."""
    return [s for s in value.split(",") if s] if isinstance(value, str) else list(value)


# ------------------------------------------------------------------ presets

def preset_dir() -> Path:
    return data_dir("configs")


def preset_names() -> list[str]:
    return sorted(p.stem for p in preset_dir().glob("*.yaml"))


def resolve_preset(path_or_name: str, relative_to: Path | None = None) -> tuple[Path, bool]:
    """(file, is_bundled): a YAML file (relative to the YAML naming it as `base`), or a bundled preset."""
    p = Path(path_or_name)
    if relative_to is not None and not p.is_absolute() and (relative_to / p).is_file():
        return relative_to / p, False
    if p.is_file():
        return p, False
    candidate = preset_dir() / f"{path_or_name}.yaml"
    if candidate.is_file():
        return candidate, True
    raise BadInput(f"config not found: {path_or_name!r} (a YAML file, or one of the presets: "
                   f"{', '.join(preset_names())})")


def read_yaml(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise BadInput(f"cannot read config {str(path)!r}: {exc}".splitlines()[0])
    if not isinstance(data, dict):
        raise BadInput(f"config {str(path)!r} must be a mapping of key: value")
    return data


def preset_layers(name: str, fallback_base: str | None) -> list[tuple[str, dict]]:
    """[(origin, mapping)] from the deepest base to `name`. A user YAML layers on its `base:`
    (a preset name or another YAML file), else on `fallback_base`; a bundled preset layers on
    its `base:` if it names one, else on the class defaults."""
    layers: list[tuple[str, dict]] = []
    seen: set[Path] = set()
    current, relative_to = name, None
    while current:
        path, bundled = resolve_preset(str(current), relative_to)
        if path.resolve() in seen:
            raise BadInput(f"config {str(path)!r}: `base:` goes round in a circle")
        seen.add(path.resolve())
        data = read_yaml(path)
        layers.append((f"in {path.name if bundled else path}", data))
        base = data.get("base", None if bundled else fallback_base)
        if base is not None and not isinstance(base, str):
            raise BadInput(f"base must be a preset name or a YAML file, got {base!r} (in {path})")
        current, relative_to = base, path.parent
    return layers[::-1]


def describe_preset(name: str) -> str:
    """The preset's `description:` line (what it is for)."""
    return str(read_yaml(resolve_preset(name)[0]).get("description", "")).strip()


# ----------------------------------------------------------------- building

def parse_set(item: str) -> tuple[str, object]:
    """`key=value` with the value read by YAML rules (numbers, lists, null, booleans)."""
    if "=" not in item:
        raise BadInput(f"--set expects key=value, got {item!r}")
    key, raw = item.split("=", 1)
    try:
        return key.strip(), yaml.safe_load(raw)
    except yaml.YAMLError:
        raise BadInput(f"cannot parse value for {key.strip()}: {raw!r}") from None


def build_config(cls=StyleConfig, preset: str | None = "default", overrides: dict | None = None,
                 sets: list[str] | None = None):
    """class defaults < preset (and its bases) < explicit overrides < --set key=value, validated
    in one pass. Overrides that are None are not given. A user YAML layers on `cls.preset`."""
    names = {f.name for f in dataclasses.fields(cls)}
    layers = preset_layers(preset, cls.preset) if preset else []
    layers.append(("", {k: v for k, v in (overrides or {}).items() if v is not None}))
    layers.extend(("--set", dict([parse_set(item)])) for item in sets or [])
    values: dict = {}
    origins: dict[str, str] = {}
    for origin, layer in layers:
        for key, value in layer.items():
            if key in META_KEYS and origin:
                continue
            if key not in names:
                raise unknown_key(key, names)
            values[key], origins[key] = value, origin
    return validate_mapping(cls, values, {k: o for k, o in origins.items() if o}).validate()
