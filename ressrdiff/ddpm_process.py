"""Conventional DDPM (Ho et al. 2020): the forward process, its posterior, and ancestral sampling.

Pure tensor code for the TM-DDPM baseline (``ressrdiff.methods.ddpm``). Equation numbers are
those of Ho, Jain & Abbeel, "Denoising Diffusion Probabilistic Models", NeurIPS 2020. Steps
``t`` are 1-based (``t = 1..T``) with ``alpha_bar_0 = 1``; ``x_0`` is the HR image. A network is
any callable ``model(x_t, x_lr, t_model) -> eps_hat`` (SR3-style conditioning: the LR image is
concatenated to ``x_t`` inside the network), where ``t_model`` holds the steps the network was
trained with (they differ from ``t`` only for a respaced schedule).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .diffusion import Predictor, randn
from .schedule import respace_indices

__all__ = [
    "DDPMSchedule",
    "linear_betas",
    "forward_step",
    "q_sample",
    "posterior",
    "predict_x0",
    "mean_from_eps",
    "loss_simple",
    "p_mean_variance",
    "sample",
    "EQUATIONS",
]

#: where each equation of Ho et al. (2020) lives (one function each)
EQUATIONS: dict[str, str] = {
    "Ho et al. 2020, Sec. 4": "ressrdiff.ddpm_process.linear_betas",
    "Ho et al. 2020, eq (2)": "ressrdiff.ddpm_process.forward_step",
    "Ho et al. 2020, eq (4)": "ressrdiff.ddpm_process.q_sample",
    "Ho et al. 2020, eqs (6)-(7)": "ressrdiff.ddpm_process.posterior",
    "Ho et al. 2020, eq (11)": "ressrdiff.ddpm_process.mean_from_eps",
    "Ho et al. 2020, eq (14)": "ressrdiff.ddpm_process.loss_simple",
    "Ho et al. 2020, eq (15)": "ressrdiff.ddpm_process.predict_x0",
    "Ho et al. 2020, Algorithm 1": "ressrdiff.methods.ddpm.TMDDPM.forward",
    "Ho et al. 2020, Algorithm 2": "ressrdiff.ddpm_process.sample",
}


def linear_betas(T: int, beta_1: float = 1e-4, beta_T: float = 0.02) -> np.ndarray:
    """Ho et al. 2020, Sec. 4: ``beta_t`` rising linearly from ``beta_1`` to ``beta_T`` over
    ``t = 1..T`` (their choice: T = 1000, 1e-4 to 0.02). Float64, length T."""
    if T < 1:
        raise ValueError(f"ddpm: T must be >= 1, got {T}")
    if not 0.0 < beta_1 <= beta_T < 1.0:
        raise ValueError(f"ddpm: need 0 < beta_1={beta_1} <= beta_T={beta_T} < 1")
    return np.linspace(beta_1, beta_T, T, dtype=np.float64)


@dataclass(frozen=True)
class DDPMSchedule:
    """Variances ``beta_1..beta_T`` of a DDPM forward process.

    ``timesteps`` holds, for each entry, the step of the schedule the network was trained on
    (``1..T`` for a fresh schedule; a respaced schedule keeps the original steps).
    """

    betas: tuple[float, ...]
    timesteps: tuple[int, ...] = field(default=())

    def __post_init__(self) -> None:
        b = np.asarray(self.betas, dtype=np.float64)
        if b.ndim != 1 or b.size == 0:
            raise ValueError("ddpm: betas must be a non-empty 1-D sequence")
        if not (np.all(b > 0) and np.all(b < 1)):
            raise ValueError("ddpm: every beta must lie in (0, 1)")
        if not self.timesteps:
            object.__setattr__(self, "timesteps", tuple(range(1, b.size + 1)))
        if len(self.timesteps) != b.size:
            raise ValueError("ddpm: timesteps and betas differ in length")

    @classmethod
    def linear(cls, T: int = 1000, beta_1: float = 1e-4, beta_T: float = 0.02) -> DDPMSchedule:
        """The linear schedule of :func:`linear_betas`."""
        return cls(betas=tuple(float(v) for v in linear_betas(T, beta_1, beta_T)))

    @property
    def T(self) -> int:
        return len(self.betas)

    @cached_property
    def beta(self) -> np.ndarray:
        """``[0, beta_1, ..., beta_T]`` (length T+1, float64)."""
        return np.concatenate([[0.0], np.asarray(self.betas, dtype=np.float64)])

    @cached_property
    def alpha(self) -> np.ndarray:
        """``[1, alpha_1, ..., alpha_T]`` with ``alpha_t = 1 - beta_t``."""
        return 1.0 - self.beta

    @cached_property
    def alpha_bar(self) -> np.ndarray:
        """``[1, alpha_bar_1, ..., alpha_bar_T]``, ``alpha_bar_t = prod_{s<=t} alpha_s``."""
        return np.cumprod(self.alpha)

    @cached_property
    def beta_tilde(self) -> np.ndarray:
        """``[0, beta~_1, ..., beta~_T]``: the posterior variances of eq (7) (beta~_1 = 0)."""
        ab = self.alpha_bar
        out = np.zeros_like(ab)
        out[1:] = (1.0 - ab[:-1]) / (1.0 - ab[1:]) * self.beta[1:]
        return out

    def table(self, name: str, t: Tensor, like: Tensor) -> Tensor:
        """``name`` ('beta', 'alpha', 'alpha_bar', 'beta_tilde') at 1-based steps ``t`` (B,),
        broadcastable against ``like`` (B, ...), in its dtype and device."""
        idx = t.detach().to("cpu", torch.long)
        if idx.min() < 0 or idx.max() > self.T:
            raise ValueError(f"ddpm: step out of range 0..{self.T}: {idx.tolist()}")
        out = torch.as_tensor(getattr(self, name), dtype=torch.float64)[idx]
        return out.to(device=like.device, dtype=like.dtype).view(-1, *([1] * (like.dim() - 1)))

    def model_timesteps(self, t: Tensor) -> Tensor:
        """Map local 1-based steps to the steps the network was trained with."""
        lut = torch.as_tensor((0, *self.timesteps), dtype=torch.long, device=t.device)
        return lut[t.long()]

    def subsequence(self, steps: list[int] | tuple[int, ...]) -> DDPMSchedule:
        """The schedule on the kept 1-based ``steps`` (strictly increasing, ending at T).

        DDPM respacing (Nichol & Dhariwal 2021, "Improved DDPM", Sec. 4): the kept steps keep
        their ``alpha_bar``, and the betas are recomputed from them,
        ``beta'_k = 1 - alpha_bar_{s_k} / alpha_bar_{s_{k-1}}`` (``alpha_bar_{s_0} = 1``), so
        that eq (4) and eqs (6)-(7) hold on the shorter chain. Step T must be kept: the sampler
        starts from N(0, I), which matches ``q(x_T | x_0)`` only at the last step.
        """
        s = [int(v) for v in steps]
        if not s or any(b <= a for a, b in zip(s, s[1:], strict=False)):
            raise ValueError(f"ddpm: respaced steps must be strictly increasing, got {s}")
        if s[0] < 1 or s[-1] != self.T:
            raise ValueError(f"ddpm: respaced steps must lie in 1..{self.T} and end at T: {s}")
        ab = self.alpha_bar
        prev = np.concatenate([[1.0], ab[s[:-1]]])
        betas = 1.0 - ab[s] / prev
        return DDPMSchedule(
            betas=tuple(float(v) for v in betas),
            timesteps=tuple(self.timesteps[i - 1] for i in s),
        )

    def respace(self, K: int) -> DDPMSchedule:
        """A K-step schedule: K of the steps 1..T evenly spread, always including 1 and T."""
        return self.subsequence(respace_indices(self.T, K))

    def to_dict(self) -> dict:
        return {"betas": list(self.betas), "timesteps": list(self.timesteps)}


def _steps(t: Tensor | int, batch: int, device: torch.device) -> Tensor:
    if isinstance(t, int):
        return torch.full((batch,), t, dtype=torch.long, device=device)
    return t.to(device=device, dtype=torch.long).expand(batch) if t.dim() == 0 else t


def forward_step(x_prev: Tensor, t: Tensor | int, sched: DDPMSchedule, noise: Tensor) -> Tensor:
    """Ho et al. 2020, eq (2): one step of the forward chain, a draw from
    ``q(x_t | x_{t-1}) = N(sqrt(1 - beta_t) x_{t-1}, beta_t I)``."""
    t = _steps(t, x_prev.shape[0], x_prev.device)
    b = sched.table("beta", t, x_prev)
    return torch.sqrt(1.0 - b) * x_prev + b.sqrt() * noise


def q_sample(x0: Tensor, t: Tensor | int, sched: DDPMSchedule, noise: Tensor) -> Tensor:
    """Ho et al. 2020, eq (4): the marginal
    ``q(x_t | x_0) = N(sqrt(alpha_bar_t) x_0, (1 - alpha_bar_t) I)``, drawn as
    ``x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps``."""
    t = _steps(t, x0.shape[0], x0.device)
    ab = sched.table("alpha_bar", t, x0)
    return ab.sqrt() * x0 + torch.sqrt(1.0 - ab) * noise


def posterior(
    x_t: Tensor, x0: Tensor, t: Tensor | int, sched: DDPMSchedule
) -> tuple[Tensor, Tensor]:
    """Ho et al. 2020, eqs (6)-(7): mean and variance of
    ``q(x_{t-1} | x_t, x_0) = N(mu~_t, beta~_t I)``,

    ``mu~_t = sqrt(alpha_bar_{t-1}) beta_t / (1 - alpha_bar_t) x_0
    + sqrt(alpha_t) (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t) x_t``,
    ``beta~_t = (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t) beta_t`` (zero at t = 1).
    The variance is returned broadcastable to ``x_t``.
    """
    t = _steps(t, x_t.shape[0], x_t.device)
    ab = sched.table("alpha_bar", t, x_t)
    ab_prev = sched.table("alpha_bar", t - 1, x_t)
    b = sched.table("beta", t, x_t)
    mean = (ab_prev.sqrt() * b / (1.0 - ab)) * x0 + (
        torch.sqrt(1.0 - b) * (1.0 - ab_prev) / (1.0 - ab)
    ) * x_t
    return mean, sched.table("beta_tilde", t, x_t)


def predict_x0(x_t: Tensor, eps: Tensor, t: Tensor | int, sched: DDPMSchedule) -> Tensor:
    """Ho et al. 2020, eq (15) (Sec. 4.3; the same inversion of eq (4) is inside eqs (9)-(11)):
    ``x0_hat = (x_t - sqrt(1 - alpha_bar_t) eps) / sqrt(alpha_bar_t)``."""
    t = _steps(t, x_t.shape[0], x_t.device)
    ab = sched.table("alpha_bar", t, x_t)
    return (x_t - torch.sqrt(1.0 - ab) * eps) / ab.sqrt()


def mean_from_eps(x_t: Tensor, eps: Tensor, t: Tensor | int, sched: DDPMSchedule) -> Tensor:
    """Ho et al. 2020, eq (11):
    ``mu_theta = (x_t - beta_t / sqrt(1 - alpha_bar_t) eps) / sqrt(alpha_t)``.

    Equals :func:`posterior`'s mean at ``x0 = predict_x0(x_t, eps)`` (the tests check it)."""
    t = _steps(t, x_t.shape[0], x_t.device)
    ab = sched.table("alpha_bar", t, x_t)
    b = sched.table("beta", t, x_t)
    return (x_t - b / torch.sqrt(1.0 - ab) * eps) / torch.sqrt(1.0 - b)


def loss_simple(eps_hat: Tensor, eps: Tensor) -> Tensor:
    """Ho et al. 2020, eq (14):
    ``L_simple = E ||eps - eps_theta(sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps, t)||^2``
    (the mean over pixels and the batch)."""
    return F.mse_loss(eps_hat.float(), eps.float())


def p_mean_variance(
    model: Predictor,
    x_t: Tensor,
    x_lr: Tensor,
    t: Tensor | int,
    sched: DDPMSchedule,
    *,
    variance: str = "posterior",
    clip_x0: bool = True,
) -> tuple[Tensor, Tensor, Tensor]:
    """One reverse step ``p_theta(x_{t-1} | x_t, x_LR)``: predict eps, form ``x0_hat`` by eq (15)
    (clipped to [-1, 1] when ``clip_x0``), and return the posterior mean of eqs (6)-(7) at
    ``x0_hat`` -- without clipping this is eq (11) -- with the variance ``beta~_t``
    (``variance='posterior'``) or ``beta_t`` (``'beta'``), the two choices of Ho et al. Sec. 3.2.
    Returns (mean, variance, x0_hat).
    """
    if variance not in ("posterior", "beta"):
        raise ValueError(f"ddpm: variance must be 'posterior' or 'beta', got {variance!r}")
    t = _steps(t, x_t.shape[0], x_t.device)
    eps = model(x_t, x_lr, sched.model_timesteps(t)).to(x_t.dtype)
    x0 = predict_x0(x_t, eps, t, sched)
    if clip_x0:
        x0 = x0.clamp(-1.0, 1.0)
    mean, var = posterior(x_t, x0, t, sched)
    if variance == "beta":
        var = sched.table("beta", t, x_t)
    return mean, var, x0


@torch.no_grad()
def sample(
    model: Predictor,
    x_lr: Tensor,
    sched: DDPMSchedule,
    *,
    generator: torch.Generator | None = None,
    variance: str = "posterior",
    clip_x0: bool = True,
    return_trajectory: bool = False,
) -> Tensor | tuple[Tensor, list[Tensor]]:
    """Ho et al. 2020, Algorithm 2 (ancestral sampling): ``x_T ~ N(0, I)``, then for t = T..1
    ``x_{t-1} = mu_theta(x_t, x_LR, t) + sigma_t z`` with ``z = 0`` at t = 1.

    Pass a respaced schedule (:meth:`DDPMSchedule.respace`) to sample with fewer steps. With
    ``return_trajectory`` the states ``[x_T, ..., x_0]`` are returned as well.
    """
    x = randn(x_lr, generator)
    traj = [x] if return_trajectory else []
    for step in range(sched.T, 0, -1):
        t = torch.full((x.shape[0],), step, dtype=torch.long, device=x.device)
        mean, var, _ = p_mean_variance(model, x, x_lr, t, sched, variance=variance, clip_x0=clip_x0)
        x = mean + var.sqrt() * randn(x, generator) if step > 1 else mean
        if return_trajectory:
            traj.append(x)
    return (x, traj) if return_trajectory else x
