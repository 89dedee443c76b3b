"""TM-DDPM: a conventional conditional DDPM (SR3-style) with a transformer or U-Net backbone.

The HR image is diffused to pure noise by the linear-beta DDPM of Ho et al. (2020) (T = 1000,
beta 1e-4 to 0.02); a network ``eps_phi([x_t, x_LR], t)`` -- the LR slice concatenated to the
noisy one, as in SR3 (Saharia et al. 2022) -- is trained with ``L_simple`` (eq 14) and sampled
ancestrally from ``x_T ~ N(0, I)`` (Algorithm 2), by default with all T steps.

``model.backbone`` selects the network: ``vit`` (:class:`ressrdiff.nn.vit.ViT`, the paper's
"transformer" DDPM) or ``unet`` (the Res-SRDiff U-Net with the same config keys as Res-SRDiff,
for a same-network comparison in which only the diffusion and the step count differ).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from ..config import RunConfig
from ..ddpm_process import DDPMSchedule, loss_simple, q_sample, sample
from ..nn import UNet
from ..nn.vit import ViT, ViTConfig
from .base import Method, per_sample_draws, register
from .res_srdiff import resolve_model_config

__all__ = ["TMDDPM", "DDPM_DEFAULTS", "resolve_options", "build_backbone"]

#: ``options:`` of a tm-ddpm config, and their defaults
DDPM_DEFAULTS: dict[str, Any] = {
    "T": 1000,  # diffusion steps (Ho et al. 2020)
    "beta_1": 1.0e-4,
    "beta_T": 0.02,
    "sample_steps": None,  # None: all T steps; fewer steps respace the schedule
    "variance": "posterior",  # reverse-step variance: beta~_t ('posterior') or beta_t ('beta')
    "clip_x0": True,  # clip the predicted x_0 to [-1, 1] inside each reverse step
}


def resolve_options(given: dict[str, Any], defaults: dict[str, Any], method: str) -> dict:
    """``defaults`` updated by ``given``; an unknown key is a one-line ValueError."""
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise ValueError(
            f"{method}: unknown option(s) {unknown}; known options: {sorted(defaults)}"
        )
    return {**defaults, **given}


def build_backbone(
    model: dict[str, Any], max_timestep: int, method: str, default: str
) -> tuple[nn.Module, dict]:
    """The network named by ``model['backbone']`` (else ``default``) and its resolved config.

    ``unet`` takes the Res-SRDiff keys (``preset``, ``base_channels``, ``use_swin``, ...);
    ``vit`` takes :class:`ViTConfig`'s. ``max_timestep`` defaults to the diffusion's step count.
    The U-Net's ``residual_output`` is refused: it adds x_LR to the output, which is right for a
    network that predicts x_HR, not for one that predicts noise (TM-DDPM) or
    ``(x_t - x_0) / sigma_t`` (I2SB).
    """
    d = dict(model)
    backbone = d.pop("backbone", default)
    if backbone == "vit":
        d.setdefault("max_timestep", max_timestep)
        try:
            cfg = ViTConfig.from_dict(d)
        except (TypeError, ValueError) as e:
            raise ValueError(f"{method}: model: {e}") from None
        return ViT(cfg), {"backbone": "vit", **cfg.to_dict()}
    if backbone == "unet":
        ucfg = resolve_model_config(d, max_timestep)
        if ucfg.residual_output:
            raise ValueError(
                f"{method}: model.residual_output must be false: it adds x_LR to the output, "
                f"which suits a network predicting x_HR, not {method}'s (see its shipped configs "
                f"{method}-*)"
            )
        return UNet(ucfg), {"backbone": "unet", **ucfg.to_dict()}
    raise ValueError(f"{method}: model.backbone must be 'vit' or 'unet', got {backbone!r}")


@register("tm-ddpm")
class TMDDPM(Method):
    """Conditional DDPM; ``cfg.options`` as in :data:`DDPM_DEFAULTS`, ``cfg.model`` as in
    :func:`build_backbone` (default backbone: ``vit``). The run's ``schedule`` and ``loss``
    sections are not used."""

    def __init__(self, cfg: RunConfig) -> None:
        super().__init__(cfg)
        o = resolve_options(cfg.options, DDPM_DEFAULTS, self.name)
        if o["variance"] not in ("posterior", "beta"):
            raise ValueError(f"tm-ddpm: options.variance must be posterior|beta: {o['variance']}")
        self.process = DDPMSchedule.linear(int(o["T"]), float(o["beta_1"]), float(o["beta_T"]))
        self.options = o
        if o["sample_steps"] is not None and not 1 <= int(o["sample_steps"]) <= self.process.T:
            raise ValueError(f"tm-ddpm: options.sample_steps must lie in 1..{self.process.T}")
        self.net, self.model_cfg = build_backbone(cfg.model, self.process.T, self.name, "vit")
        self.loss_description = "L_simple: MSE between predicted and true noise (Ho et al. eq 14)"

    def networks(self) -> dict[str, nn.Module]:
        return {"net": self.net}

    @property
    def nfe_default(self) -> int:
        """Network evaluations of ``super_resolve`` when ``steps`` is None."""
        return int(self.options["sample_steps"] or self.process.T)

    def signature(self) -> dict[str, Any]:
        o = self.options
        return {
            "method": self.name,
            "model": self.model_cfg,
            "process": {
                "T": int(o["T"]),
                "beta_1": float(o["beta_1"]),
                "beta_T": float(o["beta_T"]),
            },
        }

    def forward(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """Ho et al. 2020, Algorithm 1: t ~ U{1..T}, x_t by eq (4), loss eq (14)."""
        x_hr, x_lr = batch["hr"], batch["lr"]
        t, eps = per_sample_draws(
            batch["seed"], self.process.T, tuple(x_hr.shape[1:]), x_hr.device, x_hr.dtype
        )
        x_t = q_sample(x_hr, t, self.process, eps)
        loss = loss_simple(self.net(x_t, x_lr, t), eps)
        return {"loss": loss, "mse_eps": loss.detach(), "t_mean": t.float().mean()}

    def sampling_schedule(self, steps: int | None) -> DDPMSchedule:
        """All T steps, or ``steps`` of them by DDPM respacing (betas recomputed from the kept
        steps' alpha_bar, see :meth:`DDPMSchedule.subsequence`)."""
        K = int(steps or self.options["sample_steps"] or self.process.T)
        return self.process if K == self.process.T else self.process.respace(K)

    @torch.no_grad()
    def super_resolve(
        self, x_lr: Tensor, steps: int | None = None, generator: torch.Generator | None = None
    ) -> Tensor:
        """Ancestral sampling (Algorithm 2) with ``steps`` reverse steps (default: all T)."""
        return sample(
            self.net,
            x_lr,
            self.sampling_schedule(steps),
            generator=generator,
            variance=self.options["variance"],
            clip_x0=bool(self.options["clip_x0"]),
        )
