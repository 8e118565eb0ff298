"""Loss terms as small composable objects: `content + 1e3 * style + tv`.

Every objective maps (activations, x) to a per-sample loss vector of shape (B,),
so a batch of images can be optimised together with each image's loss kept
apart. Reductions (Gram matrices, sums) run in fp32 even under autocast.
"""

from __future__ import annotations

import torch


def fp32(t: torch.Tensor) -> torch.Tensor:
    """At least fp32: bf16/fp16 activations are upcast (exactly); float64 stays float64."""
    return t if t.dtype == torch.float64 else t.float()


def no_autocast(device_type: str):
    return torch.autocast(device_type=device_type, enabled=False)


def per_sample_sum(t: torch.Tensor) -> torch.Tensor:
    """Σ over every dim but the batch, reading t in its own memory layout (no reshaping copy)."""
    return t.sum(dim=tuple(range(1, t.dim())))


def _gram_view(features: torch.Tensor) -> tuple[torch.Tensor, bool]:
    """(m, rows): a channels_last activation as its (B, H·W, C) view (rows=True), else (B, C, H·W).

    The view reads the activation in its own memory layout, so the Gram's product needs no
    copy of it into (C, H·W) order (that copy, forward and backward, cost as much memory
    traffic as the layer).
    """
    f = features
    if f.dim() == 4 and not f.is_contiguous() and f.is_contiguous(memory_format=torch.channels_last):
        b, c, h, w = f.shape
        return f.permute(0, 2, 3, 1).reshape(b, h * w, c), True  # a view: (B, H, W, C) in memory
    return f.flatten(2), False


def _gram_product(f: torch.Tensor, rows: bool) -> torch.Tensor:
    """FᵀF (rows) or F·Fᵀ (cols) per sample."""
    return torch.bmm(f.transpose(1, 2), f) if rows else torch.bmm(f, f.transpose(1, 2))


def _gram_input_grad(m: torch.Tensor, sym: torch.Tensor, rows: bool) -> torch.Tensor:
    """dF from the symmetric dG + dGᵀ: one product in m's own dtype."""
    return torch.bmm(m, sym) if rows else torch.bmm(sym, m)


class _Gram(torch.autograd.Function):
    """G = Fᵀ·F per sample, in fp32, with a backward of one product in F's own dtype.

    m is (B, N, C) (rows: a channels_last activation's (H·W, C) view) or (B, C, N)
    (cols: NCHW flattened). Forward upcasts F (exact) and multiplies in fp32. Backward
    is dF = F·(dG + dGᵀ): one product where autograd of bmm(Fᵀ, F) would run two fp32
    products and add them, then cast the sum down. Under bf16 autocast F is bf16 and so
    is that product (dG is rounded to bf16 after the fp32 loss has formed it; the
    gradient reaching the bf16 network is rounded to bf16 anyway), and only the bf16 F
    is kept for the backward, not its fp32 copy.
    """

    @staticmethod
    def forward(ctx, m: torch.Tensor, rows: bool) -> torch.Tensor:
        ctx.save_for_backward(m)
        ctx.rows = rows
        with no_autocast(m.device.type):
            return _gram_product(fp32(m), rows)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (m,) = ctx.saved_tensors
        with no_autocast(m.device.type):
            sym = (grad + grad.transpose(1, 2)).to(m.dtype)
            return _gram_input_grad(m, sym, ctx.rows), None


def gram(features: torch.Tensor) -> torch.Tensor:
    """G = F Fᵀ with F the activation reshaped to (C, H·W); per sample, in fp32.

    A channels_last activation is read as its (H·W, C) view and multiplied as Fᵀ·F,
    the same product (`_gram_view`).
    """
    return _Gram.apply(*_gram_view(features))


class _GramDistance(torch.autograd.Function):
    """Σ (FᵀF − T)² per sample in fp32, differentiated in one step: dF = F·4g·(FᵀF − T).

    Why: autograd of `(gram(F) − T).pow(2).sum()` runs the power's backward and then the
    Gram's (D + Dᵀ, a cast) as separate passes over the B·C·C difference; at small images
    (C² ≫ H·W at block4/5) those element-wise passes are a large share of an evaluation.
    Here the backward is one pass over the difference and one product in F's dtype. The
    gradient is bit-identical to autograd's through `gram` on CPU: 2·g and 2·D are exact,
    so every entry rounds once as before.
    """

    @staticmethod
    def forward(ctx, m: torch.Tensor, rows: bool, target: torch.Tensor) -> torch.Tensor:
        with no_autocast(m.device.type):
            diff = _gram_product(fp32(m), rows)
            diff.sub_(fp32(target))  # in place: no second B·C·C buffer (about 15% of a 16 px evaluation)
            total = diff.pow(2).flatten(1).sum(1)
        ctx.save_for_backward(m, diff)
        ctx.rows = rows
        return total

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        m, diff = ctx.saved_tensors
        with no_autocast(m.device.type):
            # D + Dᵀ = 2·D: FᵀF and the target (a Gram, or a weighted sum of Grams) are
            # symmetric, bit for bit on CPU (tests/unit/engine/test_bf16_keeps_fp32_sums.py checks it), so
            # the transposed read of D + Dᵀ is skipped; the product and its cast to F's dtype
            # are one pass. Where a backend's FᵀF is not exactly symmetric this differs from
            # F·(D + Dᵀ) by rounding only.
            sym = torch.empty(diff.shape, dtype=m.dtype, device=diff.device)
            torch.mul(diff, (4.0 * grad)[:, None, None], out=sym)
            return _gram_input_grad(m, sym, ctx.rows), None, None


def gram_distance(features: torch.Tensor, target_gram: torch.Tensor) -> torch.Tensor:
    """‖gram(features) − target‖²_F per sample (B,), reading the activation in its own layout as `gram` does."""
    return _GramDistance.apply(*_gram_view(features), target_gram)


def content_loss(generated: torch.Tensor, target: torch.Tensor, reduction: str = "sum") -> torch.Tensor:
    """J_C = Σ (a_G − a_C)² per sample; reduction "mean" divides by the layer's C·H·W."""
    with no_autocast(generated.device.type):
        total = per_sample_sum((fp32(generated) - fp32(target)).pow(2))
    return total / generated[0].numel() if reduction == "mean" else total


def style_loss(generated: torch.Tensor, target_gram: torch.Tensor, reduction: str = "sum") -> torch.Tensor:
    """J_S = ‖G_S − G_G‖²_F / (2·H·W)² per sample, H and W of the layer.

    Reduction "mean" is the mean over the C² entries of ((G_S − G_G)/(H·W))², i.e.
    J_S·4/C²: the same size-independent term with a per-layer constant taken out.
    """
    c, h, w = generated.shape[-3:]
    with no_autocast(generated.device.type):
        total = gram_distance(generated, target_gram) / float(2 * h * w) ** 2
    return total * (4.0 / (c * c)) if reduction == "mean" else total


def tv_loss(x: torch.Tensor, reduction: str = "sum") -> torch.Tensor:
    """Σ over channels, i<H−1, j<W−1 of (x[i,j]−x[i+1,j])² + (x[i,j]−x[i,j+1])²;
    reduction "mean" divides by the number of those terms' positions, C·(H−1)·(W−1)."""
    with no_autocast(x.device.type):
        x = fp32(x)
        core = x[:, :, :-1, :-1]
        dv = core - x[:, :, 1:, :-1]
        dh = core - x[:, :, :-1, 1:]
        total = (dv.pow(2) + dh.pow(2)).flatten(1).sum(1)
    return total / core[0].numel() if reduction == "mean" else total


class Objective:
    """Base class: `layers` it reads, and per-term per-sample values."""

    name = "objective"
    layers: frozenset = frozenset()

    def parts(self, acts: dict, x: torch.Tensor) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def __call__(self, acts: dict, x: torch.Tensor) -> torch.Tensor:
        return sum(self.parts(acts, x).values())

    def __add__(self, other: "Objective") -> "Objective":
        return Sum([self, other])

    def __mul__(self, k: float) -> "Objective":
        return Scaled(self, float(k))

    __rmul__ = __mul__

    def __neg__(self) -> "Objective":
        return Scaled(self, -1.0)

    def __sub__(self, other: "Objective") -> "Objective":
        return Sum([self, Scaled(other, -1.0)])


class Sum(Objective):
    def __init__(self, terms):
        flat = []
        for t in terms:
            flat.extend(t.terms if isinstance(t, Sum) else [t])
        self.terms = flat
        self.layers = frozenset().union(*(t.layers for t in flat))

    def parts(self, acts, x):
        out: dict[str, torch.Tensor] = {}
        for t in self.terms:
            for k, v in t.parts(acts, x).items():
                out[k] = out[k] + v if k in out else v
        return out


class Scaled(Objective):
    def __init__(self, inner: Objective, k: float):
        self.inner, self.k = inner, k
        self.layers = inner.layers

    def parts(self, acts, x):
        return {n: self.k * v for n, v in self.inner.parts(acts, x).items()}


class Content(Objective):
    """Match one layer's activations to a target (B or 1 samples).

    target None: the activations of the first evaluation (detached, fp32), for a render that
    starts at the content image itself, so the content's own forward pass is not run twice.
    Only for eager evaluation: a compiled function would see the target change after its
    first call.
    """

    name = "content"

    def __init__(self, layer: str, target: torch.Tensor | None, reduction: str = "sum"):
        self.layer, self.target, self.reduction = layer, target, reduction
        self.layers = frozenset([layer])

    def parts(self, acts, x):
        if self.target is None:
            self.target = fp32(acts[self.layer]).detach()
        return {self.name: content_loss(acts[self.layer], self.target, self.reduction)}


class Style(Objective):
    """Match one layer's Gram matrix to a target Gram (B or 1 samples)."""

    name = "style"

    def __init__(self, layer: str, target_gram: torch.Tensor, reduction: str = "sum"):
        self.layer, self.target, self.reduction = layer, target_gram, reduction
        self.layers = frozenset([layer])

    def parts(self, acts, x):
        return {self.name: style_loss(acts[self.layer], self.target, self.reduction)}


class TotalVariation(Objective):
    name = "tv"

    def __init__(self, reduction: str = "sum"):
        self.reduction = reduction

    def parts(self, acts, x):
        return {self.name: tv_loss(x, self.reduction)}


# ------------------------------------------------- terms of the sister methods
# Texture synthesis reuses Style alone; inversion (Mahendran & Vedaldi) needs a
# relative feature error and two image priors; DeepDream maximises an activation.


class RelativeFeature(Objective):
    """‖Φ_l(x) − Φ_l(x0)‖² / ‖Φ_l(x0)‖² per sample (inversion's data term)."""

    name = "feature"

    def __init__(self, layer: str, target: torch.Tensor):
        self.layer, self.target = layer, target
        self.layers = frozenset([layer])
        with no_autocast(target.device.type):
            self.norm = per_sample_sum(fp32(target).pow(2)).clamp_min(1e-12)

    def parts(self, acts, x):
        return {self.name: content_loss(acts[self.layer], self.target) / self.norm}


class AlphaNorm(Objective):
    """Σ|x/B|^α / (H·W): keeps pixels in range (Mahendran & Vedaldi's α-norm, normalised by B)."""

    name = "alpha"

    def __init__(self, alpha: float = 6.0, bound: float = 128.0):
        self.alpha, self.bound = float(alpha), float(bound)

    def parts(self, acts, x):
        h, w = x.shape[-2:]
        with no_autocast(x.device.type):
            v = (fp32(x) / self.bound).abs().pow(self.alpha).flatten(1).sum(1) / (h * w)
        return {self.name: v}


class TotalVariationBeta(Objective):
    """Σ((x[i,j+1]−x[i,j])² + (x[i+1,j]−x[i,j])²)^(β/2) / (H·W·V^β); β=2 is plain TV."""

    name = "tv"

    def __init__(self, beta: float = 2.0, scale: float = 128.0 / 6.5):
        self.beta, self.scale = float(beta), float(scale)

    def parts(self, acts, x):
        h, w = x.shape[-2:]
        with no_autocast(x.device.type):
            x = fp32(x) / self.scale
            core = x[:, :, :-1, :-1]
            d = (core - x[:, :, 1:, :-1]).pow(2) + (core - x[:, :, :-1, 1:]).pow(2)
            # eps keeps the gradient finite at d=0 for β<2
            v = (d + 1e-8).pow(self.beta / 2).flatten(1).sum(1) / (h * w)
        return {self.name: v}


class MeanSquaredActivation(Objective):
    """mean(a²) of one layer, or of one channel of it (DeepDream's objective; maximised)."""

    name = "activation"

    def __init__(self, layer: str, channel: int | None = None):
        self.layer, self.channel = layer, channel
        self.layers = frozenset([layer])

    def parts(self, acts, x):
        a = acts[self.layer]
        if self.channel is not None:
            a = a[:, self.channel: self.channel + 1]
        with no_autocast(a.device.type):
            return {self.name: fp32(a).pow(2).mean(dim=tuple(range(1, a.dim())))}


# ------------------------------------------------- feature visualisation (nst imagine)
# Rewards to maximise (render(..., maximize=True)), one target per sample: a batch may
# mix classes or channels. They read activations by layer name; `IMAGE` is the decoded
# image in 0..1 that a parameterised net (pipeline.engine.param.ParamNet) adds to them.

IMAGE = "image"


def _per_sample_index(index, batch: int, device) -> torch.Tensor:
    t = torch.as_tensor(index, device=device).long().flatten()
    return t.expand(batch) if t.numel() == 1 else t


class ClassLogit(Objective):
    """The logit of each sample's target class (Simonyan et al. 2013: the score before softmax,
    so the image is pushed towards the class, not merely away from the others)."""

    name = "class"

    def __init__(self, classes, layer: str = "logits"):
        self.classes, self.layer = classes, layer
        self.layers = frozenset([layer])

    def parts(self, acts, x):
        z = fp32(acts[self.layer])
        idx = _per_sample_index(self.classes, z.shape[0], z.device)
        return {self.name: z.gather(1, idx.view(-1, 1)).squeeze(1)}


class ChannelMean(Objective):
    """Mean activation of each sample's channel over the whole map (a feature-atlas cell)."""

    name = "channel"

    def __init__(self, layer: str, channels):
        self.layer, self.channels = layer, channels
        self.layers = frozenset([layer])

    def _maps(self, acts) -> torch.Tensor:
        a = acts[self.layer]
        idx = _per_sample_index(self.channels, a.shape[0], a.device)
        return fp32(a[torch.arange(a.shape[0], device=a.device), idx])  # (B, H, W)

    def parts(self, acts, x):
        return {self.name: self._maps(acts).mean(dim=(1, 2))}


class CentreNeuron(ChannelMean):
    """The channel's activation at the centre of the map only (one neuron, one receptive field)."""

    name = "neuron"

    def parts(self, acts, x):
        m = self._maps(acts)
        return {self.name: m[:, m.shape[1] // 2, m.shape[2] // 2]}


class Diversity(Objective):
    """Minus the mean cosine similarity of each sample's Gram matrix at `layer` to the others'
    (Olah et al. 2017): rewards a batch whose members differ in style, not only in position."""

    name = "diversity"

    def __init__(self, layer: str):
        self.layer = layer
        self.layers = frozenset([layer])

    def parts(self, acts, x):
        a = acts[self.layer]
        b = a.shape[0]
        if b < 2:
            return {self.name: torch.zeros(b, device=a.device)}
        with no_autocast(a.device.type):
            g = torch.nn.functional.normalize(gram(a).flatten(1), dim=1)
            sim = g @ g.t()
            others = (sim.sum(1) - sim.diagonal()) / (b - 1)
        return {self.name: -others}


class ImageTotalVariation(Objective):
    """Mean squared neighbour difference of the decoded image (0..1): a smoothness penalty
    for parameterised renders, where x is not the image."""

    name = "tv"
    layers = frozenset([IMAGE])

    def parts(self, acts, x):
        img = acts[IMAGE]
        h, w = img.shape[-2:]
        return {self.name: tv_loss(img) / float(h * w)}


class Temporal(Objective):
    """Σ_x c(x)·(x − x_prev)² / (C·H·W) in pixel units: Ruder et al.'s short-term temporal loss.

    target: the previous output warped into this frame, in network space (B or 1 samples);
    weights: (B or 1, 1, H, W), 0 where the flow is unreliable (pipeline/engine/flow.py);
    unit: network units per pixel (the preprocessing's), so the term reads pixel values.
    """

    name = "temporal"

    def __init__(self, target: torch.Tensor, weights: torch.Tensor, unit: float = 1.0):
        self.target, self.weights, self.unit = fp32(target).detach(), fp32(weights).detach(), float(unit)

    def parts(self, acts, x):
        with no_autocast(x.device.type):
            d = (fp32(x) - self.target) / self.unit
            v = per_sample_sum(self.weights * d.pow(2)) / x[0].numel()
        return {self.name: v}
