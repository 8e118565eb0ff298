"""Per-sample L-BFGS for a batch of images, with a bounded step instead of a line search.

Why not torch.optim.LBFGS: it couples all parameters (a batch would share one
history and one step), and at the Keras notebook's loss scale (style loss ~1e18)
its steps overshoot to inf/NaN in fp32 without a line search, while its
strong-Wolfe search stalls after such a trial point. Here every sample keeps
its own curvature pairs and its own step; each step is capped so that no pixel
moves more than `max_step` network units (64 grey levels by default), which
keeps every trial finite. One `.step()` is exactly one loss-and-gradient
evaluation for the whole batch, so a batch of B images gives each image the
same iterates as optimising it alone (up to float rounding of the batched
convolutions).
"""

from __future__ import annotations

import torch


class LBFGS:
    """L-BFGS two-loop recursion, vectorised over the batch dimension of `x`."""

    def __init__(self, x: torch.Tensor, lr: float = 1.0, history: int = 100,
                 max_step: float = 64.0, first_step: float = 1.0):
        self.x = x
        self.lr = float(lr)
        self.m = int(history)
        self.max_step = float(max_step)
        self.first_step = float(first_step)
        b = x.shape[0]
        n = x[0].numel()
        self._s = None  # (m, B, N) ring buffers, allocated on the first pair
        self._y = None
        self._rho = torch.zeros(self.m, b, device=x.device)
        self._count = 0        # pairs stored (same for every sample; invalid ones have rho = 0)
        self._head = 0         # next ring slot
        self._gamma = torch.ones(b, device=x.device)  # per-sample initial Hessian scale
        self._has_pair = torch.zeros(b, dtype=torch.bool, device=x.device)
        self._prev_g = None
        self._prev_step = None
        self._shape = (b, n)

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.x.grad = None

    def _remember(self, s: torch.Tensor, y: torch.Tensor) -> None:
        if self._s is None:
            self._s = torch.zeros((self.m, *self._shape), device=s.device, dtype=s.dtype)
            self._y = torch.zeros_like(self._s)
        ys = (y * s).sum(1)
        ok = (ys > 1e-10) & torch.isfinite(ys)
        i = self._head
        self._s[i] = torch.where(ok[:, None], s, torch.zeros_like(s))
        self._y[i] = torch.where(ok[:, None], y, torch.zeros_like(y))
        self._rho[i] = torch.where(ok, 1.0 / torch.where(ok, ys, torch.ones_like(ys)), torch.zeros_like(ys))
        yy = (y * y).sum(1)
        self._gamma = torch.where(ok, ys / yy.clamp_min(1e-30), self._gamma)
        self._has_pair |= ok
        self._head = (i + 1) % self.m
        self._count = min(self._count + 1, self.m)

    def _direction(self, g: torch.Tensor) -> torch.Tensor:
        """-H·g by the two-loop recursion; each history pair costs one fused dot
        product and one fused multiply-add per loop (no temporaries of the image's size)."""
        q = -g
        order = [(self._head - 1 - k) % self.m for k in range(self._count)]  # newest first
        alphas = []
        for i in order:
            a = self._rho[i] * torch.linalg.vecdot(self._s[i], q)
            alphas.append(a)
            q.addcmul_(a[:, None], self._y[i], value=-1.0)  # q is -g's own copy
        q *= self._gamma[:, None]
        for i, a in zip(reversed(order), reversed(alphas)):
            b = self._rho[i] * torch.linalg.vecdot(self._y[i], q)
            q.addcmul_((a - b)[:, None], self._s[i])
        return q

    @torch.no_grad()
    def step(self, closure):
        with torch.enable_grad():
            loss = closure()
        b, n = self._shape
        g = self.x.grad.detach().reshape(b, n).float()
        finite = torch.isfinite(g).all(1)
        g = torch.where(finite[:, None], g, torch.zeros_like(g))
        if self._prev_g is not None:
            self._remember(self._prev_step, g - self._prev_g)
        d = self._direction(g) if self._count else -g
        peak = d.abs().amax(1).clamp_min(1e-30)
        # First step of a sample: a small probe of `first_step` units; later: the
        # quasi-Newton step (lr), capped at `max_step` units per pixel.
        t = torch.where(self._has_pair, torch.full_like(peak, self.lr), self.first_step / peak)
        t = torch.minimum(t, self.max_step / peak)
        t = torch.where(finite, t, torch.zeros_like(t))
        step = t[:, None] * d
        self.x.add_(step.view_as(self.x).to(self.x.dtype))
        self._prev_g, self._prev_step = g, step
        return loss
