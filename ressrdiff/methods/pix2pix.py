"""Pix2pix (Isola et al. 2017): a conditional GAN with a U-Net generator and a PatchGAN
discriminator, trained on paired (x_LR, x_HR) slices.

* Generator ``G(x_LR)``: the shared U-Net backbone of Res-SRDiff (``cfg.model``; the shipped
  configs switch its Swin blocks off, pix2pix's U-Net has no attention) evaluated once with a
  constant time step, see :class:`~ressrdiff.methods.feedforward.UNetGenerator`. No noise input
  and no test-time dropout (pix2pix's only source of stochasticity), so the output is
  deterministic.
* Discriminator ``D(x_LR, y)``: a conditional 70x70 PatchGAN on the two images concatenated.
* Objective, eq (4) of the pix2pix paper: ``G* = arg min_G max_D L_cGAN(G, D) + lambda L_L1(G)``
  with ``lambda = 100``; ``L_cGAN`` is the BCE (the paper's, default) or the least-squares form
  (``options.gan_loss``), see :mod:`ressrdiff.methods.adversarial`.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import RunConfig
from .adversarial import (
    GAN_LOSSES,
    AdversarialMethod,
    build_patchgan,
    discriminator_loss,
    generator_adversarial_loss,
)
from .base import register
from .feedforward import UNetGenerator, method_options
from .res_srdiff import resolve_model_config

__all__ = ["Pix2Pix", "PIX2PIX_DEFAULTS", "pix2pix_generator_loss"]

PIX2PIX_DEFAULTS: dict[str, Any] = {
    "lambda_l1": 100.0,
    "gan_loss": "bce",
    "disc_channels": 64,
    "disc_layers": 3,
}


def pix2pix_generator_loss(
    fake: Tensor, x_hr: Tensor, d_fake: Tensor, lambda_l1: float, kind: str
) -> dict[str, Tensor]:
    """The generator's side of pix2pix eq (4): ``L_cGAN`` (eq 1, non-saturating) ``+ lambda *
    L_L1`` (eq 3, ``E ||y - G(x)||_1``, here the pixel mean)."""
    l1 = F.l1_loss(fake.float(), x_hr.float())
    adv = generator_adversarial_loss(d_fake, kind)
    return {"loss_g": adv + lambda_l1 * l1, "l1": l1, "adv_g": adv}


@register("pix2pix")
class Pix2Pix(AdversarialMethod):
    """Pix2pix. ``cfg.model``: generator U-Net; ``cfg.options``: :data:`PIX2PIX_DEFAULTS`."""

    def __init__(self, cfg: RunConfig) -> None:
        super().__init__(cfg)
        self.opts = method_options(cfg, PIX2PIX_DEFAULTS, self.name)
        if self.opts["gan_loss"] not in GAN_LOSSES:
            raise ValueError(f"{cfg.name}: options.gan_loss must be one of {GAN_LOSSES}")
        self.model_cfg = resolve_model_config(cfg.model)
        self.generator = UNetGenerator(self.model_cfg)
        self.discriminator = build_patchgan(self.opts, in_channels=2)
        self.loss_description = (
            f"{self.opts['lambda_l1']:g}*L1 + cGAN({self.opts['gan_loss']}, conditional "
            f"PatchGAN {self.discriminator.cfg.n_layers} layers)"
        )

    def generators(self) -> dict[str, nn.Module]:
        return {"generator": self.generator}

    def discriminators(self) -> dict[str, nn.Module]:
        return {"discriminator": self.discriminator}

    def signature(self) -> dict[str, Any]:
        return {
            "method": self.name,
            "model": self.model_cfg.to_dict(),
            "discriminator": self.discriminator.cfg.to_dict(),
        }

    def generate(self, x_lr: Tensor) -> Tensor:
        return self.generator(x_lr)

    def forward(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """One pix2pix step: generator loss (through the current D) and D loss on the pair."""
        x_hr, x_lr = batch["hr"], batch["lr"]
        kind = self.opts["gan_loss"]
        fake = self.generator(x_lr)
        d_fake_for_g = self.discriminator(torch.cat([x_lr, fake], dim=1))
        out = pix2pix_generator_loss(fake, x_hr, d_fake_for_g, self.opts["lambda_l1"], kind)
        d_real = self.discriminator(torch.cat([x_lr, x_hr], dim=1))
        d_fake = self.discriminator(torch.cat([x_lr, fake.detach()], dim=1))
        out["loss_d"] = discriminator_loss(d_real, d_fake, kind)
        out["loss"] = out["loss_g"].detach()
        out["l1"], out["adv_g"] = out["l1"].detach(), out["adv_g"].detach()
        return out
