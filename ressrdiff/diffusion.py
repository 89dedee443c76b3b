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
    "reverse_step",
    "skip_scalings",
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


def reverse_step(
    x_t: Tensor,
    x_hr: Tensor,
    x_lr: Tensor,
    t: Tensor | int,
    schedule: Schedule,
    stochasticity: float = 1.0,
) -> tuple[Tensor, Tensor]:
    """A reverse step with adjustable stochasticity: the non-Markovian family of DDIM (Song,
    Meng and Ermon, ICLR 2021, eq 7 and sec. 4.1) written for eq (4)'s marginals.

    With ``e = x_LR - x_HR`` and the noise ``x_t`` implies,
    ``eps = (x_t - x_HR - beta_t e) / (gamma sqrt(beta_t))``:

        x_{t-1} ~ N(x_HR + beta_{t-1} e + sqrt(gamma^2 beta_{t-1} - s^2) eps,  s^2 I),
        s^2 = stochasticity^2 * gamma^2 alpha_t beta_{t-1} / beta_t.

    Every member keeps the marginal ``q(x_{t-1} | x_HR, x_LR)`` of eq (4) when ``x_HR`` is
    exact. ``stochasticity = 1`` is eq (9)'s posterior (the algebra reduces to its mean and
    variance); ``0`` is deterministic: the chain re-uses the noise it inferred instead of drawing
    new noise at each step. Returns (mean, variance), the variance broadcastable to ``x_t``.
    """
    if not 0.0 <= stochasticity <= 1.0:
        raise ValueError(f"reverse_step: stochasticity must be in [0, 1], got {stochasticity}")
    t = _steps(t, x_t.shape[0], x_t.device)
    b = schedule.table("beta", t, x_t)
    b_prev = schedule.table("beta", t - 1, x_t)
    a = schedule.table("alpha", t, x_t)
    g2 = schedule.gamma**2
    e = x_lr - x_hr
    eps = (x_t - x_hr - b * e) / (schedule.gamma * b.sqrt())
    var = stochasticity**2 * g2 * a * b_prev / b
    mean = x_hr + b_prev * e + (g2 * b_prev - var).clamp_min(0).sqrt() * eps
    return mean, var


def skip_scalings(beta: Tensor, gamma: float, sigma_data: float) -> tuple[Tensor, Tensor]:
    """``(c_skip, c_out)`` for ``x_HR_hat = x_LR + c_skip (x_t - x_LR) + c_out F``: the
    preconditioning of Karras et al. (EDM, NeurIPS 2022, sec. 5 and appendix B.6) written for
    eq (4).

    Under eq (4), ``x_t - x_LR = (1 - beta_t) d + gamma sqrt(beta_t) eps`` with ``d = x_HR - x_LR``.
    For ``d`` with standard deviation ``sigma_data`` and uncorrelated with ``eps``, ``c_skip`` is
    the least-squares coefficient of ``d`` on ``x_t - x_LR`` and ``c_out`` the standard deviation
    of what it leaves, so the network's target ``F`` has unit variance at every ``t``:

        c_skip = (1 - beta_t) sigma_data^2 / ((1 - beta_t)^2 sigma_data^2 + gamma^2 beta_t)
        c_out  = sigma_data gamma sqrt(beta_t) / sqrt((1 - beta_t)^2 sigma_data^2 + gamma^2 beta_t)

    Near t = T, ``c_skip -> 0`` (start from x_LR, as the paper's g_phi with a residual output
    does); near t = 1, ``c_skip -> 1`` (keep x_t, which is already close to x_HR), so the last
    steps no longer have to rebuild ``x_t - x_LR`` through the whole network."""
    if sigma_data <= 0:
        raise ValueError(f"skip_scalings: sigma_data must be > 0, got {sigma_data}")
    s2 = sigma_data**2
    noise2 = gamma**2 * beta
    denom = (1 - beta) ** 2 * s2 + noise2
    return (1 - beta) * s2 / denom, sigma_data * noise2.sqrt() / denom.sqrt()


def p_mean_variance(
    model: Predictor,
    x_t: Tensor,
    x_lr: Tensor,
    t: Tensor | int,
    schedule: Schedule,
    stochasticity: float = 1.0,
) -> tuple[Tensor, Tensor, Tensor]:
    """Eq (11): ``mu_phi = (beta_{t-1}/beta_t) x_t + (alpha_t/beta_t) g_phi(x_t, x_LR, t)``.

    The reverse-step variance is the posterior's (eq 10, Sigma_phi = Sigma_q). With
    ``stochasticity < 1`` the step is :func:`reverse_step`'s at ``g_phi``'s prediction instead.
    Returns (mean, variance, x_HR_hat).
    """
    t = _steps(t, x_t.shape[0], x_t.device)
    x0_hat = model(x_t, x_lr, schedule.model_timesteps(t)).to(x_t.dtype)
    if stochasticity == 1.0:
        mean, var = posterior(x_t, x0_hat, t, schedule)
    else:
        mean, var = reverse_step(x_t, x0_hat, x_lr, t, schedule, stochasticity)
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
    stochasticity: float = 1.0,
    temperature: float = 1.0,
) -> Tensor | tuple[Tensor, list[Tensor]]:
    """Algorithm 2 on a batch: start at ``x_T ~ N(x_LR, gamma^2 beta_T)``, then for t = T..1
    ``x_{t-1} = mu_phi(x_t, x_LR, t) + gamma sqrt(beta_{t-1} alpha_t / beta_t) eps`` (eps = 0 at
    t = 1, so the output is the network's last prediction of x_HR).

    Pass a respaced schedule (``Schedule.respace(K)``) to sample with K < T steps.
    ``stochasticity < 1`` takes :func:`reverse_step`'s steps instead (0: deterministic after
    the draw of x_T). ``temperature`` scales every noise draw, x_T's included (1: Algorithm 2;
    0: x_T = x_LR and no noise at all, a deterministic function of x_LR). With
    ``return_trajectory`` the states ``[x_T, ..., x_0]`` (T+1 tensors) are returned as well.
    """
    if not 0.0 <= temperature <= 1.0:
        raise ValueError(f"sample: temperature must be in [0, 1], got {temperature}")
    x = prior_sample(x_lr, schedule, temperature * randn(x_lr, generator))
    traj = [x] if return_trajectory else []
    for step in range(schedule.T, 0, -1):
        t = torch.full((x.shape[0],), step, dtype=torch.long, device=x.device)
        mean, var, _ = p_mean_variance(model, x, x_lr, t, schedule, stochasticity)
        if step > 1 and stochasticity > 0 and temperature > 0:
            x = mean + temperature * var.sqrt() * randn(x, generator)
        else:
            x = mean
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
    stochasticity: float = 1.0,
    temperature: float = 1.0,
) -> EnsembleResult:
    """Draw ``num_samples`` independent SR samples per input in batches of at most ``chunk``
    network inputs, and return their mean and standard deviation maps."""
    if num_samples < 1:
        raise ValueError(f"sample_ensemble: num_samples must be >= 1, got {num_samples}")
    B = x_lr.shape[0]
    rep = x_lr.repeat_interleave(num_samples, dim=0)  # (B*N, C, H, W), sample-major per input
    chunk = chunk or rep.shape[0]
    outs = [
        sample(
            model,
            part,
            schedule,
            generator=generator,
            stochasticity=stochasticity,
            temperature=temperature,
        )
        for part in rep.split(chunk)
    ]
    samples = torch.cat(outs).view(B, num_samples, *x_lr.shape[1:])
    std = samples.std(dim=1) if num_samples > 1 else torch.zeros_like(samples[:, 0])
    return EnsembleResult(samples=samples, mean=samples.mean(dim=1), std=std)
