"""Imagine: what a trained network has learned, drawn from noise (feature visualisation).

The optimiser moves a Fourier-parameterised, colour-decorrelated image
(pipeline.engine.param) to maximise a class logit of the ImageNet classifier, or
one channel of a layer (VGG16 or the classifier), seen through random pads,
jitters, zooms and turns (pipeline.engine.transforms) so the result must hold
under them. Optional: total variation, a diversity term across a batch, and
octaves (a small render seeds a larger one). The article's example: ask for
"dumbbell" and the network draws the lifter's arm with it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from pipeline.config import StyleConfig
from pipeline.engine.loop import RenderOptions, RenderResult, logging_step, render
from pipeline.engine.objectives import CentreNeuron, ChannelMean, ClassLogit, Diversity, ImageTotalVariation
from pipeline.engine.param import MAPPINGS, PARAMS, ImageParam, ParamNet
from pipeline.engine.precision import resolve_precision
from pipeline.engine.transforms import Robustness
from pipeline.errors import BadInput
from pipeline.models.layers import canonical_layer, layer_width
from pipeline.models.weights import BACKBONES
from pipeline.schema import Int, NonNegative, NonNegativeInt, Positive, PositiveInt, choice

CHANNEL_OBJECTIVES = ("mean", "neuron")
CLASSIFIER = "efficientnet-lite0"
CHANNEL_NETWORK = "vgg16"


def parse_channels(text) -> list[int]:
    """'A-B' (inclusive), 'A' or 'A,B,C-D' -> sorted unique channel indices; BadInput otherwise."""
    out: list[int] = []
    for part in str(text).split(","):
        part = part.strip()
        lo, sep, hi = part.partition("-")
        if not lo.strip().isdigit() or (sep and not hi.strip().isdigit()):
            raise BadInput(f"bad channel range {str(text)!r} (expected A-B, e.g. 0-63)")
        a, b = int(lo), int(hi) if sep else int(lo)
        if b < a:
            raise BadInput(f"bad channel range {str(text)!r}: {b} < {a}")
        out.extend(range(a, b + 1))
    return sorted(set(out))


@dataclass
class ImagineConfig(StyleConfig):
    """StyleConfig plus the targets and the image priors of feature visualisation.

    Targets: `classes` (names or indices, `per_class` samples each, on the classifier) or
    `layer` + `channels` (one sample per channel). `network` is the classifier for classes
    and VGG16 for channels unless set. `learning_rate` is Adam's, on the parameterisation.
    """

    network: str | None = None
    classes: list = field(default_factory=list)
    per_class: PositiveInt = 1
    layer: str | None = None
    channels: str | list | None = None
    channel_objective: choice("mean", "neuron") = "mean"      # mean over the map, or the neuron at its centre
    param: str = "fourier"
    decay: NonNegative = 1.25
    decorrelate: bool = True
    mapping: str = "sigmoid"
    init_std: NonNegative = 0.01
    pad: NonNegativeInt = 12
    jitter: NonNegativeInt = 8
    scale: NonNegative = 0.2
    rotate: NonNegative = 10.0
    blur: NonNegative = 1.0
    tv_weight: NonNegative = 0.0
    diversity_weight: NonNegative = 0.0
    diversity_layer: str | None = None
    octaves: PositiveInt = 2
    octave_scale: Positive = 1.4
    optimizer: str = "adam"
    learning_rate: Positive = 0.05
    iterations: PositiveInt = 200
    size: Int(ge=16) = 224
    precision: str = "fp32"
    content_weight: NonNegative = 0.0

    def validate(self) -> "ImagineConfig":
        if bool(self.classes) == (self.layer is not None):
            raise BadInput("imagine needs classes (--class) or a layer (--layer with --channels), not both")
        if self.network is None:
            self.network = CLASSIFIER if self.classes else CHANNEL_NETWORK
        super().validate()
        arch = BACKBONES[self.network].arch
        if self.classes:
            from pipeline.models.classes import resolve_class

            if not BACKBONES[self.network].classifier:
                raise BadInput(f"network {self.network!r} has no classifier head; classes need {CLASSIFIER}")
            if isinstance(self.classes, (str, int)):
                self.classes = [self.classes]
            self.classes = [resolve_class(c) for c in self.classes]
        else:
            self.layer = canonical_layer(self.layer, arch)
            if self.channels is None:
                raise BadInput(f"--layer {self.layer} needs --channels A-B")
            self.channels = parse_channels(self.channels if not isinstance(self.channels, list)
                                           else ",".join(str(c) for c in self.channels))
            width = layer_width(self.layer, arch)
            if self.channels[-1] >= width:
                raise BadInput(f"channel {self.channels[-1]} out of range for {self.layer} "
                               f"({width} channels: 0-{width - 1})")
        if self.diversity_layer is None:  # a middle layer: style, not pixels or the class itself
            self.diversity_layer = "block9" if arch == CLASSIFIER else "block4_conv1"
        self.diversity_layer = canonical_layer(self.diversity_layer, arch)
        for name, choices in (("param", PARAMS), ("mapping", MAPPINGS), ("channel_objective", CHANNEL_OBJECTIVES)):
            if getattr(self, name) not in choices:
                raise BadInput(f"{name} must be one of {', '.join(choices)}, got {getattr(self, name)!r}")
        if not 0.0 <= float(self.scale) < 1.0:
            raise BadInput(f"scale must be in [0, 1), got {self.scale!r}")
        if float(self.octave_scale) <= 1.0:
            raise BadInput(f"octave_scale must be > 1, got {self.octave_scale!r}")
        return self

    def robustness(self) -> Robustness:
        return Robustness(self.pad, self.jitter, float(self.scale), float(self.rotate), float(self.blur))

    def image_param(self, size: tuple[int, int]) -> ImageParam:
        return ImageParam(size, self.param, float(self.decay), bool(self.decorrelate), self.mapping,
                          float(self.init_std))


def objective_for(cfg: ImagineConfig, targets: list[int], diversity_layer: str | None):
    """The reward of one batch: the targets' class logits or channels, plus the optional priors."""
    t = torch.tensor(targets)
    if cfg.classes:
        reward = ClassLogit(t)
    elif cfg.channel_objective == "neuron":
        reward = CentreNeuron(cfg.layer, t)
    else:
        reward = ChannelMean(cfg.layer, t)
    if cfg.diversity_weight > 0 and len(targets) > 1:
        reward = reward + cfg.diversity_weight * Diversity(diversity_layer or cfg.diversity_layer)
    if cfg.tv_weight > 0:
        reward = reward - cfg.tv_weight * ImageTotalVariation()
    return reward


def octave_sizes(size: int, octaves: int, scale: float) -> list[tuple[int, int]]:
    """Square sizes from the smallest octave up to `size` (never below 32 px)."""
    sizes = [size]
    for _ in range(octaves - 1):
        nxt = round(sizes[-1] / scale)
        if nxt < 32:
            break
        sizes.append(nxt)
    return [(s, s) for s in reversed(sizes)]


def imagine(backbone, cfg: ImagineConfig, targets: list[int], seed: int,
            diversity_layer: str | None = None, on_log=None) -> tuple[torch.Tensor, RenderResult]:
    """One image per target (a class index or a channel), rendered together as a batch;
    returns pixels (B, 3, H, W, 0..255) and the last octave's render result."""
    dev = backbone.device
    precision = resolve_precision(cfg.precision, dev)
    gen = torch.Generator().manual_seed(int(seed) % (1 << 63))
    objective = objective_for(cfg, targets, diversity_layer)
    image = None
    result = None
    for size in octave_sizes(cfg.size, cfg.octaves, cfg.octave_scale):
        param = cfg.image_param(size)
        if image is None:
            p0 = param.init(len(targets), gen, dev)
        else:
            p0 = param.encode(F.interpolate(image, size=size, mode="bilinear", align_corners=False))
        net = ParamNet(backbone.net, backbone.pre, param, cfg.robustness(), gen)
        options = RenderOptions(cfg.iterations, optimizer=cfg.optimizer, lr=cfg.learning_rate, precision=precision,
                                log_every=cfg.log_every, maximize=True, compile=cfg.compile)
        result = render(net, objective, p0, options, logging_step(on_log))
        with torch.no_grad():
            image = param.decode(result.x)
    return (image * 255.0).clamp(0, 255), result
