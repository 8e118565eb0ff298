"""Per-sample L-BFGS in a fixed number of batched kernels per step (the fast path).

Same algorithm, same step rule and same per-sample independence as
`pipeline.engine.lbfgs.LBFGS` (the engine's default 'lbfgs'): each sample keeps
its own curvature pairs (a pair is kept only where y·s > 1e-10 and finite), its
own H_diag, and its own step (first a probe of `first_step` units, then lr,
capped at `max_step` units per pixel; a sample with a non-finite gradient does
not move). One `.step(closure)` is exactly one evaluation.

What differs is how H·g is computed. The two-loop recursion walks the history
pair by pair: 2·m dot products and 2·m axpys over (B, N) tensors, each reading
q and a history vector, about 7·m·B·N words of memory traffic and 4·m kernel
launches per step. Here the direction comes from the compact representation
of Byrd, Nocedal and Schnabel (1994), the form L-BFGS-B uses: one batched
matrix product gives every stored s_i, y_i dotted with the new s, y and g (one
read of the history), the m×m algebra runs in float64 on tiny tensors, and one
more batched product combines the history (a second read). Equal to the
two-loop result in exact arithmetic; no host synchronisation.
"""

from __future__ import annotations

import contextlib

import torch


@contextlib.contextmanager
def _ieee_fp32_matmul(device: torch.device):
    """History dot products must be real fp32, never TF32, whatever the caller enabled."""
    if device.type != "cuda":
        yield
        return
    old = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = old


class BatchedLBFGS:
    """Per-sample L-BFGS over x (B, ...); drop-in for `pipeline.engine.lbfgs.LBFGS`."""

    def __init__(self, x: torch.Tensor, lr: float = 1.0, history: int = 100,
                 max_step: float = 64.0, first_step: float = 1.0):
        if history < 1:
            raise ValueError(f"history must be >= 1, got {history}")
        self.x = x
        self.lr = float(lr)
        self.m = int(history)
        self.max_step = float(max_step)
        self.first_step = float(first_step)
        self.dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
        b, n, dev = x.shape[0], x[0].numel(), x.device
        self._shape = (b, n)
        self._hist: torch.Tensor | None = None  # (B, 2m, N): s_i in [:, :m], y_i in [:, m:]
        f64 = dict(dtype=torch.float64, device=dev)
        self._sy = torch.zeros(b, self.m, self.m, **f64)  # s_i · y_j in slot order
        self._yy = torch.zeros(b, self.m, self.m, **f64)  # y_i · y_j
        self._active = torch.zeros(b, self.m, dtype=torch.bool, device=dev)
        self._gamma = torch.ones(b, dtype=self.dtype, device=dev)
        self._has_pair = torch.zeros(b, dtype=torch.bool, device=dev)
        self._count = 0   # slots written (same for every sample; a rejected pair leaves its slot empty)
        self._head = 0    # next ring slot
        self._prev_g = None
        self._prev_step = None
        self.evaluations = 0

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.x.grad = None

    # -------------------------------------------------------------- history
    def _remember(self, s: torch.Tensor, y: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        """Store (s, y) where accepted; return every stored vector dotted with g, (B, 2m)."""
        b, n = self._shape
        m, i = self.m, self._head
        if self._hist is None:
            self._hist = torch.zeros(b, 2 * m, n, dtype=self.dtype, device=s.device)
        ys = (y * s).sum(1)
        ok = (ys > 1e-10) & torch.isfinite(ys)
        zero = torch.zeros((), dtype=s.dtype, device=s.device)
        s = torch.where(ok[:, None], s, zero)
        y = torch.where(ok[:, None], y, zero)
        self._hist[:, i].copy_(s)
        self._hist[:, m + i].copy_(y)
        yy = (y * y).sum(1)
        self._gamma = torch.where(ok, ys / yy.clamp_min(1e-30), self._gamma)
        self._has_pair |= ok
        self._active[:, i] = ok
        # One read of the history: each stored s_j, y_j against the new s, y and g.
        dots = torch.bmm(self._hist, torch.stack([s, y, g], 2)).double()  # (B, 2m, 3)
        self._sy[:, i, :] = dots[:, m:, 0]   # s_new · y_j
        self._sy[:, :, i] = dots[:, :m, 1]   # s_j · y_new
        self._yy[:, i, :] = dots[:, m:, 1]
        self._yy[:, :, i] = dots[:, m:, 1]
        self._head = (i + 1) % m
        self._count = min(self._count + 1, m)
        return dots[:, :, 2]

    def _direction(self, g: torch.Tensor, hg_dots: torch.Tensor) -> torch.Tensor:
        """d = -H·g with H = γI + [S γY] M [S γY]ᵀ (compact form), per sample."""
        m, k = self.m, self._count
        order = torch.tensor([(self._head - k + j) % m for j in range(k)], device=g.device)  # oldest first
        act = self._active[:, order].double()                      # (B, k)
        both = act[:, :, None] * act[:, None, :]
        sy = self._sy[:, order][:, :, order] * both
        yy = self._yy[:, order][:, :, order] * both
        r = torch.triu(sy) + torch.diag_embed(1.0 - act)          # empty slots decouple
        diag = torch.diagonal(sy, dim1=1, dim2=2)
        sg = (hg_dots[:, :m][:, order] * act)[:, :, None]          # s_i · g
        yg = (hg_dots[:, m:][:, order] * act)[:, :, None]          # y_i · g
        gamma = self._gamma.double()[:, None, None]
        u = torch.linalg.solve_triangular(r, sg, upper=True)
        w = diag[:, :, None] * u + gamma * torch.bmm(yy, u) - gamma * yg
        p_s = torch.linalg.solve_triangular(r.transpose(1, 2), w, upper=False).squeeze(2)
        p_y = (-gamma * u).squeeze(2)
        coef = torch.zeros(g.shape[0], 2 * m, dtype=self.dtype, device=g.device)
        coef[:, order] = p_s.to(self.dtype)
        coef[:, m + order] = p_y.to(self.dtype)
        hg = torch.bmm(coef[:, None, :], self._hist).squeeze(1)
        return -(self._gamma[:, None] * g) - hg

    # ----------------------------------------------------------------- step
    @torch.no_grad()
    def step(self, closure):
        with torch.enable_grad():
            loss = closure()
        self.evaluations += 1
        b, n = self._shape
        grad = self.x.grad
        g = torch.zeros(b, n, dtype=self.dtype, device=self.x.device) if grad is None \
            else grad.detach().reshape(b, n).to(self.dtype)
        finite = torch.isfinite(g).all(1)
        g = torch.where(finite[:, None], g, torch.zeros((), dtype=g.dtype, device=g.device))
        with torch.autocast(self.x.device.type, enabled=False), _ieee_fp32_matmul(self.x.device):
            if self._prev_g is not None:
                dots = self._remember(self._prev_step, g - self._prev_g, g)
                d = self._direction(g, dots)
            else:
                d = -g
            peak = d.abs().amax(1).clamp_min(1e-30)
            t = torch.where(self._has_pair, torch.full_like(peak, self.lr), self.first_step / peak)
            t = torch.minimum(t, self.max_step / peak)
            t = torch.where(finite, t, torch.zeros_like(t))
            step = t[:, None] * d
            self.x.add_(step.view(self.x.shape).to(self.x.dtype))
        self._prev_g, self._prev_step = g, step
        return loss
