"""Image-to-image Schrödinger bridge (I2SB, Liu et al. 2023) between x_HR and x_LR.

Pure tensor code for the I2SB baseline (``ressrdiff.methods.i2sb``). Equation numbers are those of
Liu, Vahdat, Huang, Theodorou, Nie & Anandkumar, "I2SB: Image-to-Image Schrödinger Bridge",
ICML 2023. Time ``[0, 1]`` is cut into N intervals with variances ``beta_1..beta_N``; node
``n = 0..N`` sits at ``t = n/N``, with

    sigma_n^2     = sum_{i <= n} beta_i   (the variance accumulated from t = 0, zero at n = 0),
    sigma_bar_n^2 = sum_{i > n} beta_i    (the variance left until t = 1, zero at n = N).

``x_0`` is the clean (HR) image at n = 0, ``x_1`` the degraded one (LR on the HR grid) at n = N.
Unlike the I2SB code, which indexes its N betas so that both end points keep a variance of one
beta, the nodes here include both end points exactly: the bridge marginal is x_0 at n = 0 and
x_1 at n = N. A network is any callable ``model(x_n, x_lr, n) -> eps_hat`` predicting
``(x_n - x_0) / sigma_n`` (eq 12); ``x_lr`` is its conditioning input (I2SB's ``cond_x1``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch
from torch import Tensor

from .diffusion import randn

__all__ = [
    "BridgeSchedule",
    "symmetric_betas",
    "bridge_marginal",
    "training_target",
    "predict_x0",
    "bridge_posterior",
    "nfe_grid",
    "sample",
    "EQUATIONS",
]

#: where each equation of Liu et al. (2023) lives (one function each)
EQUATIONS: dict[str, str] = {
    "Liu et al. 2023, symmetric beta schedule": "ressrdiff.bridge.symmetric_betas",
    "Liu et al. 2023, eq (11)": "ressrdiff.bridge.bridge_marginal",
    "Liu et al. 2023, eq (12)": "ressrdiff.bridge.training_target",
    "Liu et al. 2023, eq (12) inverted": "ressrdiff.bridge.predict_x0",
    "Liu et al. 2023, eq (4)": "ressrdiff.bridge.bridge_posterior",
    "Liu et al. 2023, Algorithm 1": "ressrdiff.methods.i2sb.I2SB.forward",
    "Liu et al. 2023, Algorithm 2": "ressrdiff.bridge.sample",
}


def symmetric_betas(N: int = 1000, beta_min: float = 1e-4, beta_max: float = 0.3) -> np.ndarray:
    """Liu et al. 2023, symmetric beta schedule: ``sqrt(beta)`` rises linearly from
    ``sqrt(beta_min)`` to ``sqrt(beta_max / N)`` over N points; the first N/2 of them are kept and
    mirrored, so the diffusion is weakest at both end points and strongest in the middle (their
    code's defaults: N = 1000, beta_min = 1e-4, beta_max = 0.3). Float64, length N."""
    if N < 2 or N % 2:
        raise ValueError(f"bridge: N must be an even number >= 2, got {N}")
    if beta_min <= 0.0 or beta_max <= 0.0:
        raise ValueError(f"bridge: need beta_min > 0 and beta_max > 0, got {beta_min}, {beta_max}")
    base = np.linspace(np.sqrt(beta_min), np.sqrt(beta_max / N), N, dtype=np.float64) ** 2
    half = base[: N // 2]
    return np.concatenate([half, half[::-1]])


@dataclass(frozen=True)
class BridgeSchedule:
    """Interval variances ``beta_1..beta_N`` of the bridge (see the module docstring)."""

    betas: tuple[float, ...]

    def __post_init__(self) -> None:
        b = np.asarray(self.betas, dtype=np.float64)
        if b.ndim != 1 or b.size == 0 or not np.all(b > 0):
            raise ValueError("bridge: betas must be a non-empty 1-D sequence of positive values")

    @classmethod
    def symmetric(
        cls, N: int = 1000, beta_min: float = 1e-4, beta_max: float = 0.3
    ) -> BridgeSchedule:
        return cls(betas=tuple(float(v) for v in symmetric_betas(N, beta_min, beta_max)))

    @property
    def N(self) -> int:
        return len(self.betas)

    @cached_property
    def sigma2(self) -> np.ndarray:
        """``sigma_n^2`` for n = 0..N (length N+1; zero at n = 0)."""
        return np.concatenate([[0.0], np.cumsum(np.asarray(self.betas, dtype=np.float64))])

    @cached_property
    def sigma2_bar(self) -> np.ndarray:
        """``sigma_bar_n^2`` for n = 0..N (length N+1; zero at n = N)."""
        s = self.sigma2
        return np.maximum(s[-1] - s, 0.0)

    def table(self, name: str, n: Tensor, like: Tensor) -> Tensor:
        """``name`` ('sigma2' or 'sigma2_bar') at nodes ``n`` (B,), broadcastable against
        ``like`` (B, ...), in its dtype and device."""
        idx = n.detach().to("cpu", torch.long)
        if idx.min() < 0 or idx.max() > self.N:
            raise ValueError(f"bridge: node out of range 0..{self.N}: {idx.tolist()}")
        out = torch.as_tensor(getattr(self, name), dtype=torch.float64)[idx]
        return out.to(device=like.device, dtype=like.dtype).view(-1, *([1] * (like.dim() - 1)))

    def to_dict(self) -> dict:
        return {"betas": list(self.betas)}


def _nodes(n: Tensor | int, batch: int, device: torch.device) -> Tensor:
    if isinstance(n, int):
        return torch.full((batch,), n, dtype=torch.long, device=device)
    return n.to(device=device, dtype=torch.long).expand(batch) if n.dim() == 0 else n


def bridge_marginal(
    x0: Tensor, x1: Tensor, n: Tensor | int, sched: BridgeSchedule
) -> tuple[Tensor, Tensor]:
    """Liu et al. 2023, eq (11): ``q(x_t | x_0, x_1) = N(mu_t, Sigma_t)`` with

    ``mu_t = (sigma_bar_t^2 x_0 + sigma_t^2 x_1) / (sigma_t^2 + sigma_bar_t^2)``,
    ``Sigma_t = sigma_t^2 sigma_bar_t^2 / (sigma_t^2 + sigma_bar_t^2) I``.

    Returns (mean, variance broadcastable to ``x0``); the variance is 0 at n = 0 and n = N.
    """
    n = _nodes(n, x0.shape[0], x0.device)
    s2 = sched.table("sigma2", n, x0)
    sb2 = sched.table("sigma2_bar", n, x0)
    tot = s2 + sb2
    return (sb2 * x0 + s2 * x1) / tot, s2 * sb2 / tot


def training_target(x_n: Tensor, x0: Tensor, n: Tensor | int, sched: BridgeSchedule) -> Tensor:
    """Liu et al. 2023, eq (12): the regression target ``(x_t - x_0) / sigma_t`` (needs n >= 1)."""
    n = _nodes(n, x_n.shape[0], x_n.device)
    if int(n.min()) < 1:
        raise ValueError("bridge: the training target is undefined at n = 0 (sigma_0 = 0)")
    return (x_n - x0) / sched.table("sigma2", n, x_n).sqrt()


def predict_x0(x_n: Tensor, eps: Tensor, n: Tensor | int, sched: BridgeSchedule) -> Tensor:
    """Liu et al. 2023, eq (12) inverted (solved for x_0): ``x0_hat = x_t - sigma_t eps_hat``."""
    n = _nodes(n, x_n.shape[0], x_n.device)
    return x_n - sched.table("sigma2", n, x_n).sqrt() * eps


def bridge_posterior(
    x_n: Tensor, x0: Tensor, n_prev: int, n: int, sched: BridgeSchedule
) -> tuple[Tensor, Tensor]:
    """Liu et al. 2023, eq (4), the DDPM posterior that I2SB samples with: for nodes
    ``n_prev < n``, with ``sigma^2 = sigma_{n_prev}^2`` and
    ``alpha^2 = sigma_n^2 - sigma_{n_prev}^2``,

    ``p(x_{n_prev} | x_0, x_n) = N(alpha^2/(alpha^2+sigma^2) x_0 + sigma^2/(alpha^2+sigma^2) x_n,
    sigma^2 alpha^2/(alpha^2+sigma^2) I)``.

    Chained from ``x_N = x_1`` with the true x_0, it reproduces the marginals of eq (11).
    Returns (mean, variance as a float); the variance is 0 when ``n_prev = 0``.
    """
    if not 0 <= n_prev < n <= sched.N:
        raise ValueError(f"bridge: need 0 <= n_prev < n <= {sched.N}, got {n_prev}, {n}")
    s2 = sched.sigma2
    sig2, a2 = float(s2[n_prev]), float(s2[n] - s2[n_prev])
    tot = sig2 + a2
    return (a2 / tot) * x0 + (sig2 / tot) * x_n, sig2 * a2 / tot


def nfe_grid(N: int, nfe: int) -> list[int]:
    """``nfe + 1`` nodes from 0 to N, evenly spread (rounded): the sampler evaluates the network
    at the last ``nfe`` of them, from N down."""
    if not 1 <= nfe <= N:
        raise ValueError(f"bridge: NFE must lie in 1..{N}, got {nfe}")
    return np.round(np.linspace(0, N, nfe + 1)).astype(int).tolist()


@torch.no_grad()
def sample(
    model,
    x1: Tensor,
    x_lr: Tensor,
    sched: BridgeSchedule,
    nfe: int,
    *,
    generator: torch.Generator | None = None,
    clip_x0: bool = True,
    return_trajectory: bool = False,
) -> Tensor | tuple[Tensor, list[Tensor]]:
    """Liu et al. 2023, Algorithm 2 (generation): start at ``x_N = x1``; at each of ``nfe``
    nodes ``n`` (from N down) predict ``x0_hat = x_n - sigma_n eps_hat(x_n, x_LR, n)`` (clipped
    to [-1, 1] when ``clip_x0``) and draw ``x_{n_prev}`` from :func:`bridge_posterior`; the last
    step (to n = 0) is deterministic and returns ``x0_hat``. ``model(x_n, x_lr, n) -> eps_hat``.
    """
    grid = nfe_grid(sched.N, nfe)
    x = x1
    traj = [x] if return_trajectory else []
    for k in range(nfe, 0, -1):
        n, n_prev = grid[k], grid[k - 1]
        t = torch.full((x.shape[0],), n, dtype=torch.long, device=x.device)
        x0 = predict_x0(x, model(x, x_lr, t).to(x.dtype), t, sched)
        if clip_x0:
            x0 = x0.clamp(-1.0, 1.0)
        mean, var = bridge_posterior(x, x0, n_prev, n, sched)
        x = mean + var**0.5 * randn(x, generator) if n_prev > 0 else mean
        if return_trajectory:
            traj.append(x)
    return (x, traj) if return_trajectory else x
