"""Res-SRDiff: the U-Net g_phi with the residual-shifting diffusion (Algorithms 1 and 2)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import RunConfig
from ..diffusion import EnsembleResult, q_sample, sample, sample_ensemble, skip_scalings
from ..nn import PAPER_GPU, TINY_CPU, UNet, UNetConfig
from ..perceptual import lpips_distance
from ..schedule import Schedule
from ..tiling import tiled_predictor
from .base import Method, per_sample_draws, register
from .feedforward import method_options

__all__ = [
    "ResSRDiff",
    "MODEL_PRESETS",
    "RES_SRDIFF_DEFAULTS",
    "TRAINING_ONLY_OPTIONS",
    "resolve_model_config",
    "loss_eq13",
    "exposure_draws",
]

#: ``options:`` of a res-srdiff config. ``sigma_data`` > 0 switches on the skip
#: parametrisation of :func:`ressrdiff.diffusion.skip_scalings` with that standard deviation of
#: ``x_HR - x_LR``; 0 (the default) is the paper's g_phi, which predicts x_HR directly.
#: ``exposure`` is the fraction of training samples with t < T whose x_t is built around the
#: network's own prediction instead of x_HR (:meth:`ResSRDiff.exposed_inputs`).
RES_SRDIFF_DEFAULTS: dict[str, Any] = {"sigma_data": 0.0, "exposure": 0.0}

#: options that change how the network is trained, not what it computes or how it is sampled;
#: they stay out of :meth:`ResSRDiff.signature`, so a run can be continued with them switched on.
TRAINING_ONLY_OPTIONS: tuple[str, ...] = ("exposure",)

MODEL_PRESETS: dict[str, UNetConfig] = {"tiny-cpu": TINY_CPU, "paper-gpu": PAPER_GPU}


def resolve_model_config(d: dict[str, Any], T: int | None = None) -> UNetConfig:
    """``{"preset": "tiny-cpu", **overrides}`` or a full dict -> :class:`UNetConfig`.

    Unless given, ``max_timestep`` is set to the schedule's T, so that the time embedding spans
    its full range whatever T is (the network itself knows no schedule)."""
    d = dict(d)
    if T is not None:
        d.setdefault("max_timestep", T)
    name = d.pop("preset", "tiny-cpu")
    if name not in MODEL_PRESETS:
        raise ValueError(f"model.preset {name!r} unknown; choose {sorted(MODEL_PRESETS)}")
    return UNetConfig.from_dict({**MODEL_PRESETS[name].to_dict(), **d})


def loss_eq13(
    x_hat: Tensor, x_hr: Tensor, lambda_mse: float, lpips_net: nn.Module | None
) -> dict[str, Tensor]:
    """Eq (13): ``L = lambda ||g_phi - x_HR||^2 + LPIPS(g_phi, x_HR)`` (MSE is the pixel mean,
    LPIPS the per-image mean). Without an LPIPS network the loss is ``lambda * MSE`` alone."""
    mse = F.mse_loss(x_hat.float(), x_hr.float())
    out = {"mse": mse.detach()}
    loss = lambda_mse * mse
    if lpips_net is not None:
        lp = lpips_distance(lpips_net, x_hat.float(), x_hr.float()).mean()
        out["lpips"] = lp.detach()
        loss = loss + lp
    out["loss"] = loss
    return out


def exposure_draws(
    seeds: Tensor, shape: tuple[int, ...], device: torch.device, dtype: torch.dtype
) -> tuple[Tensor, Tensor]:
    """Per sample, a uniform coin in [0, 1) and standard normal noise of ``shape``, from a
    generator seeded by ``(seed, 1)``: independent of :func:`per_sample_draws`' stream for the
    same seed, and a function of the seed alone (exact resume, any batch split)."""
    coins, noises = [], []
    for s in seeds.tolist():
        sub = np.random.SeedSequence([int(s), 1]).generate_state(2, np.uint32)
        g = torch.Generator().manual_seed(int(sub.view(np.uint64)[0] >> np.uint64(1)))
        coins.append(float(torch.rand((), generator=g)))
        noises.append(torch.randn(shape, generator=g))
    coin = torch.tensor(coins, device=device)
    return coin, torch.stack(noises).to(device=device, dtype=dtype)


def attach_eq13_lpips(method: Method, cfg: RunConfig, lpips_net: nn.Module | None) -> str:
    """Attach eq (13)'s LPIPS network to ``method`` as ``cfg.loss.lpips`` asks
    (:meth:`Method.attach_lpips`) and return the loss description its checkpoints record:
    ``"<lambda>*MSE + LPIPS ..."``, or MSE alone with the reason. ``method.lambda_mse`` must be
    set. Shared by every method trained with eq (13)."""
    lam = method.lambda_mse
    desc = method.attach_lpips(
        lpips_net,
        wanted=cfg.loss.lpips != "off",
        dropped=f"Training uses {lam:g}*MSE alone (eq 13 without its LPIPS term); the "
        "checkpoint records this.",
    )
    if method.lpips_net is not None:
        return f"{lam:g}*MSE + {desc}"
    return f"{lam:g}*MSE" + (
        " (LPIPS switched off)" if cfg.loss.lpips == "off" else f" alone ({desc})"
    )


@register("res-srdiff")
class ResSRDiff(Method):
    """Res-SRDiff. ``cfg.model`` configures the U-Net (``use_swin: false`` is the ablation)."""

    def __init__(self, cfg: RunConfig, *, lpips_net: nn.Module | None = None) -> None:
        super().__init__(cfg)
        self.schedule: Schedule = cfg.schedule.build()
        self.model_cfg = resolve_model_config(cfg.model, self.schedule.T)
        self.net = UNet(self.model_cfg)
        self.sample_steps = int(cfg.schedule.resolved()["sample_steps"])
        self.lambda_mse = cfg.lambda_mse
        self.scale_input = cfg.scale_input
        self.options = method_options(cfg, RES_SRDIFF_DEFAULTS, self.name)
        if self.options["sigma_data"] < 0:
            raise ValueError(f"{cfg.name}: options.sigma_data must be >= 0")
        if not 0.0 <= self.options["exposure"] <= 1.0:
            raise ValueError(f"{cfg.name}: options.exposure must be in [0, 1]")
        if self.options["sigma_data"] > 0 and not self.model_cfg.residual_output:
            raise ValueError(
                f"{cfg.name}: options.sigma_data needs model.residual_output: true (F is the "
                "zero-initialised head the U-Net adds to x_LR)"
            )
        self.loss_description = attach_eq13_lpips(self, cfg, lpips_net)

    # -- protocol ------------------------------------------------------------------------------
    def networks(self) -> dict[str, nn.Module]:
        return {"net": self.net}

    def signature(self) -> dict[str, Any]:
        def sampled(d: dict[str, Any]) -> dict[str, Any]:
            return {k: v for k, v in d.items() if k not in TRAINING_ONLY_OPTIONS}

        options = sampled(self.options)
        return {
            "method": self.name,
            "model": self.model_cfg.to_dict(),
            "schedule": self.schedule.to_dict(),
            "scale_input": self.scale_input,
            **({"options": options} if options != sampled(RES_SRDIFF_DEFAULTS) else {}),
        }

    def predictor(self, net: nn.Module | None = None):
        """g_phi as a callable ``(x_t, x_lr, t_model) -> x_HR_hat`` with the input scaling:
        x_t is divided by ``sqrt(gamma^2 beta_t + 1)``, its standard deviation scale under eq (4)
        for unit-variance images (as in ResShift's ``normalize_input``).

        With ``options.sigma_data`` > 0 the U-Net's head ``F = net(...) - x_LR`` is combined as
        ``x_LR + c_skip (x_t - x_LR) + c_out F`` (:func:`ressrdiff.diffusion.skip_scalings`)."""
        net = net or self.net
        full = self.schedule
        sigma_data = self.options["sigma_data"]

        def g(x_t: Tensor, x_lr: Tensor, t: Tensor) -> Tensor:
            b = full.table("beta", t, x_t)
            x_in = x_t / torch.sqrt(full.gamma**2 * b + 1.0) if self.scale_input else x_t
            out = net(x_in, x_lr, t)
            if sigma_data > 0:
                c_skip, c_out = skip_scalings(b, full.gamma, sigma_data)
                out = x_lr + c_skip * (x_t - x_lr) + c_out * (out - x_lr)
            return out

        return g

    def forward(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """Algorithm 1: t ~ U{1..T}, x_t ~ q(x_t | x_HR, x_LR) by eq (4), loss eq (13)."""
        x_hr, x_lr = batch["hr"], batch["lr"]
        t, noise = per_sample_draws(
            batch["seed"], self.schedule.T, tuple(x_hr.shape[1:]), x_hr.device, x_hr.dtype
        )
        x_t = q_sample(x_hr, x_lr, t, self.schedule, noise)
        if self.options["exposure"] > 0:
            x_t = self.exposed_inputs(x_t, x_hr, x_lr, t, noise, batch["seed"])
        x_hat = self.predictor()(x_t, x_lr, t)
        out = loss_eq13(x_hat, x_hr, self.lambda_mse, self.lpips_net)
        out["t_mean"] = t.float().mean()
        return out

    def exposed_inputs(
        self, x_t: Tensor, x_hr: Tensor, x_lr: Tensor, t: Tensor, noise: Tensor, seeds: Tensor
    ) -> Tensor:
        """Exposure-bias-aware inputs: for a fraction ``options.exposure`` of the samples with
        t < T, x_t is drawn from eq (4) around the network's own one-step prediction
        ``x0_own = g_phi(x_T, x_LR, T)`` (no gradient) instead of around x_HR; the target stays
        x_HR. Algorithm 2 feeds every step after the first such an input (the posterior of
        eq (9) around the previous prediction), which plain Algorithm 1 never shows the network:
        the train/sampling mismatch called exposure bias (Ning et al., ICML 2023; scheduled
        sampling, Bengio et al., NeurIPS 2015). The coin and the x_T noise are drawn from each
        sample's seed (:func:`exposure_draws`), so a resumed run repeats them exactly."""
        T = self.schedule.T
        coin, noise_T = exposure_draws(seeds, tuple(x_hr.shape[1:]), x_hr.device, x_hr.dtype)
        own = ((coin < self.options["exposure"]) & (t < T)).nonzero().squeeze(1)
        if own.numel() == 0:
            return x_t
        t_T = torch.full_like(t[own], T)
        with torch.no_grad():
            x_T = q_sample(x_hr[own], x_lr[own], t_T, self.schedule, noise_T[own])
            x0_own = self.predictor()(x_T, x_lr[own], t_T)
        x_t = x_t.clone()
        x_t[own] = q_sample(x0_own, x_lr[own], t[own], self.schedule, noise[own])
        return x_t

    def sampling_schedule(self, steps: int | None) -> Schedule:
        K = steps or self.sample_steps
        return self.schedule if K == self.schedule.T else self.schedule.respace(K)

    def window_for(self, x_lr: Tensor, window: int | str | None = "model") -> int | None:
        """The window size ``super_resolve(x_lr, window=window)`` tiles each network call with,
        or None for whole slices (see :meth:`Method.window_spec`)."""
        spec = self.window_spec(x_lr, window)
        return None if spec is None else spec.size

    def inference_predictor(
        self,
        x_lr: Tensor,
        window: int | str | None = "model",
        overlap: float | None = None,
        sw_batch_size: int | None = None,
        net: nn.Module | None = None,
    ):
        """The predictor Algorithm 2 calls on slices shaped like ``x_lr``: :meth:`predictor`
        itself for whole slices, else its sliding-window version (:mod:`ressrdiff.tiling`)."""
        g = self.predictor(net)
        spec = self.window_spec(x_lr, window, overlap, sw_batch_size)
        return g if spec is None else tiled_predictor(g, spec)

    @torch.no_grad()
    def super_resolve(
        self,
        x_lr: Tensor,
        steps: int | None = None,
        generator: torch.Generator | None = None,
        *,
        return_trajectory: bool = False,
        window: int | str | None = "model",
        overlap: float | None = None,
        sw_batch_size: int | None = None,
        stochasticity: float | None = None,
        temperature: float | None = None,
    ):
        """Algorithm 2 with ``steps`` sampling steps (default: the preset's; respaced if < T).

        Each network call is evaluated on overlapping ``window`` x ``window`` windows blended
        with Gaussian weights (``overlap`` fraction, ``sw_batch_size`` windows per call); the
        sampler's state and noise stay whole-slice. ``window="model"`` (default) is the model's
        ``infer`` setting (:class:`ressrdiff.config.InferConfig`; whole slices unless it says
        otherwise, and ``overlap``/``sw_batch_size`` None take it from there too); ``"auto"`` is
        the training patch size when the slice is larger; ``None`` runs the network on whole
        slices. ``stochasticity`` (None: the model's ``infer.stochasticity``) scales the fresh
        noise of each reverse step (:func:`ressrdiff.diffusion.reverse_step`; 1 is eq (9)), and
        ``temperature`` (None: ``infer.temperature``) every noise draw, x_T's included."""
        return sample(
            self.inference_predictor(x_lr, window, overlap, sw_batch_size),
            x_lr,
            self.sampling_schedule(steps),
            generator=generator,
            return_trajectory=return_trajectory,
            stochasticity=self._stochasticity(stochasticity),
            temperature=self._temperature(temperature),
        )

    def _stochasticity(self, value: float | None) -> float:
        return self.cfg.infer.stochasticity if value is None else float(value)

    def _temperature(self, value: float | None) -> float:
        return self.cfg.infer.temperature if value is None else float(value)

    @torch.no_grad()
    def super_resolve_ensemble(
        self,
        x_lr: Tensor,
        num_samples: int,
        steps: int | None = None,
        generator: torch.Generator | None = None,
        chunk: int | None = None,
        *,
        window: int | str | None = "model",
        overlap: float | None = None,
        sw_batch_size: int | None = None,
        stochasticity: float | None = None,
        temperature: float | None = None,
    ) -> EnsembleResult:
        """N samples per input with mean and standard-deviation (uncertainty) maps; ``window``,
        ``overlap``, ``sw_batch_size``, ``stochasticity`` and ``temperature`` as in
        :meth:`super_resolve`."""
        return sample_ensemble(
            self.inference_predictor(x_lr, window, overlap, sw_batch_size),
            x_lr,
            self.sampling_schedule(steps),
            num_samples,
            generator=generator,
            chunk=chunk,
            stochasticity=self._stochasticity(stochasticity),
            temperature=self._temperature(temperature),
        )
