"""SPSR, structure-preserving super-resolution with gradient guidance (Ma et al. 2020),
simplified.

What is kept from SPSR:

* the gradient map ``M(I) = ||(I(x+1,y) - I(x-1,y), I(x,y+1) - I(x,y-1))||_2``
  (:func:`gradient_map`);
* two branches: a gradient branch that predicts the HR gradient map from the LR image's
  gradient map, and an SR branch that produces the SR image guided by that prediction;
* the losses: pixel L1 on the SR image, a gradient-space L1 between ``M(SR)`` and ``M(HR)``, an
  L1 loss on the gradient branch's output against ``M(HR)``, an adversarial loss on the SR image,
  and a perceptual loss when its pretrained weights are present.

What is simplified (each a deliberate, stated departure):

1. SR branch: the shared U-Net backbone (``cfg.model``) instead of SPSR's RRDB (ESRGAN) trunk,
   so that differences to the other methods come from the method, not the network.
2. Gradient branch: a small residual CNN (``grad_channels`` wide, ``grad_blocks`` residual blocks)
   on ``[M(x_LR), x_LR]``. In SPSR it also receives intermediate features of the SR branch; here
   ``x_LR`` stands in for them. Its output is ``M(x_LR) + head(...)``, the head starting at zero.
3. Fusion: the predicted gradient map enters the SR branch at its input (concatenated with
   ``x_LR``, in the U-Net's second image slot) instead of being fused with SR-branch features
   before SPSR's last layers.
4. Adversarial: one unconditional 70x70 PatchGAN on images with the BCE (default) or
   least-squares loss, instead of SPSR's two discriminators (on images and on gradient maps)
   and their ESRGAN-style loss; the gradient-map adversarial loss is dropped.
5. Perceptual: LPIPS (AlexNet, :func:`ressrdiff.perceptual.load_lpips`) instead of VGG-19
   feature distances, and only when its ImageNet weights are present. Without them the term is
   dropped with a warning and the checkpoint's loss description says so; a random backbone is
   never used as a loss.
6. Loss weights: SPSR weights its terms for a network pre-trained with L1 and with a VGG loss
   always present. Here training starts from scratch, so the defaults keep the pixel terms
   dominant: pixel 1, gradient 1, gradient branch 0.5, perceptual 1, adversarial 0.01 (the
   adversarial-to-pixel ratio of pix2pix's 1 : 100).
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import RunConfig
from ..perceptual import lpips_distance
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

__all__ = ["SPSR", "SPSR_DEFAULTS", "GradientBranch", "gradient_map"]

SPSR_DEFAULTS: dict[str, Any] = {
    "lambda_pixel": 1.0,
    "lambda_gradient": 1.0,
    "lambda_branch": 0.5,
    "lambda_perceptual": 1.0,
    "lambda_adv": 0.01,
    "gan_loss": "bce",
    "disc_channels": 64,
    "disc_layers": 3,
    "grad_channels": 32,
    "grad_blocks": 4,
}

_GRAD_FLOOR = 1e-6


def gradient_map(x: Tensor) -> Tensor:
    """SPSR's gradient map ``M(I) = ||(I(x+1,y) - I(x-1,y), I(x,y+1) - I(x,y-1))||_2`` per
    pixel (central differences, not halved; edges replicated). ``M`` is floored at ``1e-6`` (its
    square at ``1e-12``) so that its gradient stays finite on flat regions."""
    p = F.pad(x, (1, 1, 1, 1), mode="replicate")
    dx = p[..., 1:-1, 2:] - p[..., 1:-1, :-2]
    dy = p[..., 2:, 1:-1] - p[..., :-2, 1:-1]
    return torch.sqrt(torch.clamp(dx * dx + dy * dy, min=_GRAD_FLOOR**2))


class _ResBlock(nn.Module):
    def __init__(self, ch: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(ch, ch, 3, padding=1), nn.LeakyReLU(0.2), nn.Conv2d(ch, ch, 3, padding=1)
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class GradientBranch(nn.Module):
    """``(x_lr) -> predicted M(x_HR)``: a residual CNN on ``[M(x_LR), x_LR]`` whose output is
    ``M(x_LR) + head(...)`` (head initialised to zero)."""

    def __init__(self, channels: int, blocks: int) -> None:
        super().__init__()
        if channels < 1 or blocks < 0:
            raise ValueError(
                f"GradientBranch: channels >= 1, blocks >= 0; got {channels}, {blocks}"
            )
        self.stem = nn.Conv2d(2, channels, 3, padding=1)
        self.blocks = nn.Sequential(*[_ResBlock(channels) for _ in range(blocks)])
        self.head = nn.Conv2d(channels, 1, 3, padding=1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, x_lr: Tensor) -> Tensor:
        g_lr = gradient_map(x_lr)
        h = F.leaky_relu(self.stem(torch.cat([g_lr, x_lr], dim=1)), 0.2)
        return g_lr + self.head(self.blocks(h))


@register("spsr")
class SPSR(AdversarialMethod):
    """Simplified SPSR (see the module docstring). ``cfg.model``: SR-branch U-Net;
    ``cfg.options``: :data:`SPSR_DEFAULTS`; ``cfg.loss.lpips``: the perceptual term's policy."""

    uses_perceptual: ClassVar[bool] = True

    def __init__(self, cfg: RunConfig, *, lpips_net: nn.Module | None = None) -> None:
        super().__init__(cfg)
        self.opts = method_options(cfg, SPSR_DEFAULTS, self.name)
        if self.opts["gan_loss"] not in GAN_LOSSES:
            raise ValueError(f"{cfg.name}: options.gan_loss must be one of {GAN_LOSSES}")
        self.model_cfg = resolve_model_config(cfg.model)
        self.sr_branch = UNetGenerator(self.model_cfg)
        self.grad_branch = GradientBranch(self.opts["grad_channels"], self.opts["grad_blocks"])
        self.discriminator = build_patchgan(self.opts, in_channels=1)
        desc = self.attach_lpips(
            lpips_net,
            wanted=cfg.loss.lpips != "off" and self.opts["lambda_perceptual"] > 0,
            dropped="SPSR trains without its perceptual term; the checkpoint records this.",
        )
        o = self.opts
        per = (
            f" + {o['lambda_perceptual']:g}*{desc}"
            if self.lpips_net is not None
            else " (perceptual term switched off)"
            if cfg.loss.lpips == "off" or o["lambda_perceptual"] <= 0
            else f" (perceptual term dropped: {desc})"
        )
        self.loss_description = (
            f"{o['lambda_pixel']:g}*L1 + {o['lambda_gradient']:g}*L1(M(SR), M(HR)) + "
            f"{o['lambda_branch']:g}*L1(gradient branch, M(HR)) + "
            f"{o['lambda_adv']:g}*GAN({o['gan_loss']})" + per
        )

    def generators(self) -> dict[str, nn.Module]:
        return {"sr_branch": self.sr_branch, "grad_branch": self.grad_branch}

    def discriminators(self) -> dict[str, nn.Module]:
        return {"discriminator": self.discriminator}

    def signature(self) -> dict[str, Any]:
        return {
            "method": self.name,
            "model": self.model_cfg.to_dict(),
            "discriminator": self.discriminator.cfg.to_dict(),
            "gradient_branch": {
                "channels": self.opts["grad_channels"],
                "blocks": self.opts["grad_blocks"],
            },
        }

    def branches(self, x_lr: Tensor) -> tuple[Tensor, Tensor]:
        """``(SR image, predicted HR gradient map)``."""
        g = self.grad_branch(x_lr)
        return self.sr_branch(x_lr, aux=g.to(x_lr.dtype)), g

    def generate(self, x_lr: Tensor) -> Tensor:
        return self.branches(x_lr)[0]

    def forward(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """One step: all generator terms through the current D, then the D loss."""
        x_hr, x_lr = batch["hr"], batch["lr"]
        o, kind = self.opts, self.opts["gan_loss"]
        sr, g_pred = self.branches(x_lr)
        srf, hrf = sr.float(), x_hr.float()
        m_hr = gradient_map(hrf)
        pixel = F.l1_loss(srf, hrf)
        grad = F.l1_loss(gradient_map(srf), m_hr)
        branch = F.l1_loss(g_pred.float(), m_hr)
        adv = generator_adversarial_loss(self.discriminator(sr), kind)
        loss_g = (
            o["lambda_pixel"] * pixel
            + o["lambda_gradient"] * grad
            + o["lambda_branch"] * branch
            + o["lambda_adv"] * adv
        )
        out = {"pixel": pixel.detach(), "gradient": grad.detach(), "branch": branch.detach()}
        if self.lpips_net is not None:
            per = lpips_distance(self.lpips_net, srf, hrf).mean()
            loss_g = loss_g + o["lambda_perceptual"] * per
            out["perceptual"] = per.detach()
        out["adv_g"] = adv.detach()
        out["loss_g"] = loss_g
        out["loss_d"] = discriminator_loss(
            self.discriminator(x_hr), self.discriminator(sr.detach()), kind
        )
        out["loss"] = loss_g.detach()
        return out
