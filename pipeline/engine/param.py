"""Image parameterisations: what the optimiser moves when it is not the pixels themselves.

Feature visualisation from noise (Olah et al. 2017, "Feature Visualization") works
far better when the optimiser moves a decorrelated description of the image:
- `fourier`: the image's 2-D spectrum, each frequency scaled by 1/f^decay, so a
  gradient step changes all frequencies about equally in *visual* terms (plain
  pixels let high-frequency noise grow first);
- colour decorrelation: the three channels live in the whitened basis of
  ImageNet's colour correlation, and are mixed back into RGB;
- a squashing map (`sigmoid`) or a clamp keeps pixels in 0..1.

A parameterisation turns a real tensor `p` (the optimiser's variable, 4-D so
the loop's memory-format handling applies) into RGB in 0..1, (B, 3, H, W); and
back (`encode`), so a result can seed the next, larger octave.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

# Square root of ImageNet's RGB colour covariance (its SVD factor), as published with
# the feature-visualisation work; columns scaled so the largest has norm 1.
COLOR_SQRT = torch.tensor([[0.26, 0.09, 0.02],
                           [0.27, 0.00, -0.05],
                           [0.27, -0.09, 0.03]])
COLOR_MIX = COLOR_SQRT / COLOR_SQRT.norm(dim=0).max()

PARAMS = ("fourier", "pixel")
MAPPINGS = ("sigmoid", "clamp")


@dataclass(frozen=True)
class ImageParam:
    """How p maps to an image of `size` (h, w). All settings are plain values, so the
    recipe is part of a run's recorded configuration."""

    size: tuple[int, int]
    kind: str = "fourier"       # fourier | pixel
    decay: float = 1.0          # spectrum scaled by 1/f^decay (fourier only)
    decorrelate: bool = True    # colours in ImageNet's decorrelated basis
    mapping: str = "sigmoid"    # sigmoid | clamp: how values become 0..1
    init_std: float = 0.01

    # ------------------------------------------------------------ shapes
    @property
    def shape(self) -> tuple[int, int, int]:
        """(channels, rows, cols) of p for one image: real and imaginary parts side by side."""
        h, w = self.size
        return (6, h, w // 2 + 1) if self.kind == "fourier" else (3, h, w)

    def spectrum_scale(self, device=None) -> torch.Tensor:
        """1/f^decay per frequency (f in cycles per pixel; the DC term as if f were one cycle
        per image), over 4: with an orthonormal inverse FFT a unit step then moves pixels
        by about a sigmoid's linear range."""
        h, w = self.size
        fy = torch.fft.fftfreq(h, device=device).view(-1, 1)
        fx = torch.fft.rfftfreq(w, device=device).view(1, -1)
        f = torch.sqrt(fy * fy + fx * fx).clamp_min(1.0 / max(h, w))
        return f.pow(-self.decay) / 4.0

    def init(self, batch: int, generator: torch.Generator, device=None) -> torch.Tensor:
        p = torch.randn((batch, *self.shape), generator=generator) * self.init_std
        return p.to(device)

    # ------------------------------------------------------------ p -> image
    def decode(self, p: torch.Tensor) -> torch.Tensor:
        """RGB in 0..1, (B, 3, H, W)."""
        h, w = self.size
        if self.kind == "fourier":
            spec = torch.complex(p[:, 0:3], p[:, 3:6]) * self.spectrum_scale(p.device)
            x = torch.fft.irfft2(spec, s=(h, w), norm="ortho")
        else:
            x = p
        if self.decorrelate:
            x = torch.einsum("ij,bjhw->bihw", COLOR_MIX.to(x), x)
        if self.mapping == "sigmoid":
            return torch.sigmoid(x)
        return (x + 0.5).clamp(0.0, 1.0)

    # ------------------------------------------------------------ image -> p
    def encode(self, image: torch.Tensor) -> torch.Tensor:
        """The p whose decode is `image` (0..1, resized to this size by the caller), up to clipping."""
        x = image.clamp(1e-3, 1 - 1e-3)
        x = torch.logit(x) if self.mapping == "sigmoid" else x - 0.5
        if self.decorrelate:
            x = torch.einsum("ij,bjhw->bihw", torch.linalg.inv(COLOR_MIX).to(x), x)
        if self.kind == "pixel":
            return x
        spec = torch.fft.rfft2(x, norm="ortho") / self.spectrum_scale(x.device)
        return torch.cat([spec.real, spec.imag], dim=1)


class ParamNet:
    """A network seen through a parameterisation: net(p, layers) decodes p to an image, takes
    one random view of it (`Robustness`), and runs the backbone on that view.

    It has the backbone's call signature, so the one render loop optimises p exactly as it
    optimises pixels elsewhere; the decoded image itself is offered as layer `IMAGE` for
    image priors (TV). One generator draws every view: a render's views follow its seed.
    """

    def __init__(self, net, pre, param: ImageParam, view, generator: torch.Generator):
        self.net, self.pre, self.param, self.view, self.gen = net, pre, param, view, generator
        self.pooling = getattr(net, "pooling", "avg")

    def __call__(self, p: torch.Tensor, layers) -> dict[str, torch.Tensor]:
        from pipeline.engine.objectives import IMAGE
        from pipeline.engine.transforms import random_view

        wanted = set(layers)
        image = self.param.decode(p)
        acts: dict[str, torch.Tensor] = {}
        if wanted - {IMAGE}:
            seen = random_view(image, self.view, self.gen) if self.view.active() else image
            acts = self.net(self.pre.to_net(seen * 255.0), wanted - {IMAGE})
        if IMAGE in wanted:
            acts[IMAGE] = image
        return acts
