"""Residual-shifting diffusion: forward process, posterior and the sampler (Algorithm 2).

Pure tensor code. ``t`` is a (B,) tensor of 1-based steps of ``schedule``; ``e0 = x_LR - x_HR``.
A network is any callable ``model(x_t, x_lr, t_model) -> x_HR_hat`` where ``t_model`` holds the
steps the network was trained with (they differ from ``t`` only for a respaced schedule).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from .schedule import Schedule

__all__ = [
    "Predictor",
    "forward_step",
    "q_sample",
    "posterior",
    "p_mean_variance",
    "prior_sample",
    "sample",
    "sample_ensemble",
    "EnsembleResult",
    "randn",
]

Predictor = Callable[[Tensor, Tensor, Tensor], Tensor]


def randn(like: Tensor, generator: torch.Generator | None) -> Tensor:
    """Standard normal noise shaped like ``like``, drawn on the generator's device."""
    device = generator.device if generator is not None else like.device
    eps = torch.randn(like.shape, generator=generator, device=device, dtype=like.dtype)
    return eps.to(like.device)


def _steps(t: Tensor | int, batch: int, device: torch.device) -> Tensor:
    if isinstance(t, int):
        return torch.full((batch,), t, dtype=torch.long, device=device)
    return t.to(device=device, dtype=torch.long).expand(batch) if t.dim() == 0 else t


def forward_step(
    x_prev: Tensor, e0: Tensor, t: Tensor | int, schedule: Schedule, noise: Tensor
) -> Tensor:
    """Eq (2): one Markov step ``x_t = x_{t-1} + alpha_t e0 + gamma sqrt(alpha_t) eps``.

    This is a draw from eq (1),
    ``q(x_t | x_{t-1}, x_LR) = N(x_{t-1} + alpha_t e0, gamma^2 alpha_t I)``.
    """
    t = _steps(t, x_prev.shape[0], x_prev.device)
    a = schedule.table("alpha", t, x_prev)
    return x_prev + a * e0 + schedule.gamma * a.sqrt() * noise


def q_sample(
    x_hr: Tensor, x_lr: Tensor, t: Tensor | int, schedule: Schedule, noise: Tensor
) -> Tensor:
    """Eq (4): the marginal ``x_t = x_HR + beta_t e0 + gamma sqrt(beta_t) eps``.

    Draw from ``q(x_t | x_HR, x_LR) = N(x_HR + beta_t e0, gamma^2 beta_t I)``.
    """
    t = _steps(t, x_hr.shape[0], x_hr.device)
    b = schedule.table("beta", t, x_hr)
    return x_hr + b * (x_lr - x_hr) + schedule.gamma * b.sqrt() * noise


def posterior(
    x_t: Tensor, x_hr: Tensor, t: Tensor | int, schedule: Schedule
) -> tuple[Tensor, Tensor]:
    """Eq (9): mean and variance of ``q(x_{t-1} | x_t, x_HR, x_LR)``.

    mean = (beta_{t-1}/beta_t) x_t + (alpha_t/beta_t) x_HR,
    var  = gamma^2 alpha_t beta_{t-1} / beta_t   (zero at t = 1).
    The variance is returned broadcastable to ``x_t``.
    """
    t = _steps(t, x_t.shape[0], x_t.device)
    b = schedule.table("beta", t, x_t)
    b_prev = schedule.table("beta", t - 1, x_t)
    a = schedule.table("alpha", t, x_t)
    mean = (b_prev / b) * x_t + (a / b) * x_hr
    var = schedule.gamma**2 * a * b_prev / b
    return mean, var


def p_mean_variance(
    model: Predictor, x_t: Tensor, x_lr: Tensor, t: Tensor | int, schedule: Schedule
) -> tuple[Tensor, Tensor, Tensor]:
    """Eq (11): ``mu_phi = (beta_{t-1}/beta_t) x_t + (alpha_t/beta_t) g_phi(x_t, x_LR, t)``.

    The reverse-step variance is the posterior's (eq 10, Sigma_phi = Sigma_q).
    Returns (mean, variance, x_HR_hat).
    """
    t = _steps(t, x_t.shape[0], x_t.device)
    x0_hat = model(x_t, x_lr, schedule.model_timesteps(t))
    mean, var = posterior(x_t, x0_hat.to(x_t.dtype), t, schedule)
    return mean, var, x0_hat


def prior_sample(x_lr: Tensor, schedule: Schedule, noise: Tensor) -> Tensor:
    """Algorithm 2, line 1: ``x_T ~ N(x_LR, gamma^2 beta_T I)``."""
    return x_lr + schedule.prior_std * noise


@torch.no_grad()
def sample(
    model: Predictor,
    x_lr: Tensor,
    schedule: Schedule,
    *,
    generator: torch.Generator | None = None,
    return_trajectory: bool = False,
) -> Tensor | tuple[Tensor, list[Tensor]]:
    """Algorithm 2 on a batch: start at ``x_T ~ N(x_LR, gamma^2 beta_T)``, then for t = T..1
    ``x_{t-1} = mu_phi(x_t, x_LR, t) + gamma sqrt(beta_{t-1} alpha_t / beta_t) eps`` (eps = 0 at
    t = 1, so the output is the network's last prediction of x_HR).

    Pass a respaced schedule (``Schedule.respace(K)``) to sample with K < T steps. With
    ``return_trajectory`` the states ``[x_T, ..., x_0]`` (T+1 tensors) are returned as well.
    """
    x = prior_sample(x_lr, schedule, randn(x_lr, generator))
    traj = [x] if return_trajectory else []
    for step in range(schedule.T, 0, -1):
        t = torch.full((x.shape[0],), step, dtype=torch.long, device=x.device)
        mean, var, _ = p_mean_variance(model, x, x_lr, t, schedule)
        x = mean + var.sqrt() * randn(x, generator) if step > 1 else mean
        if return_trajectory:
            traj.append(x)
    return (x, traj) if return_trajectory else x


@dataclass
class EnsembleResult:
    """N samples per input and their pixel-wise mean and standard deviation (uncertainty)."""

    samples: Tensor  # (B, N, C, H, W)
    mean: Tensor  # (B, C, H, W)
    std: Tensor  # (B, C, H, W), unbiased over the N samples (zero when N = 1)


@torch.no_grad()
def sample_ensemble(
    model: Predictor,
    x_lr: Tensor,
    schedule: Schedule,
    num_samples: int,
    *,
    generator: torch.Generator | None = None,
    chunk: int | None = None,
) -> EnsembleResult:
    """Draw ``num_samples`` independent SR samples per input in batches of at most ``chunk``
    network inputs, and return their mean and standard deviation maps."""
    if num_samples < 1:
        raise ValueError(f"sample_ensemble: num_samples must be >= 1, got {num_samples}")
    B = x_lr.shape[0]
    rep = x_lr.repeat_interleave(num_samples, dim=0)  # (B*N, C, H, W), sample-major per input
    chunk = chunk or rep.shape[0]
    outs = [sample(model, part, schedule, generator=generator) for part in rep.split(chunk)]
    samples = torch.cat(outs).view(B, num_samples, *x_lr.shape[1:])
    std = samples.std(dim=1) if num_samples > 1 else torch.zeros_like(samples[:, 0])
    return EnsembleResult(samples=samples, mean=samples.mean(dim=1), std=std)
