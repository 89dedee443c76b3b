"""CycleGAN (Zhu et al. 2017): unpaired translation LR <-> HR with two generators, two
discriminators, cycle-consistency and identity losses.

* Generators ``G: LR -> HR`` and ``F: HR -> LR``: the shared U-Net backbone (``cfg.model``),
  one pass each, see :class:`~ressrdiff.methods.feedforward.UNetGenerator`.
* Discriminators ``D_HR`` and ``D_LR``: unconditional 70x70 PatchGANs on single images.
* Objective, eq (3) of the CycleGAN paper, ``L_GAN(G, D_HR) + L_GAN(F, D_LR) + lambda L_cyc``
  with ``lambda = 10``, plus the identity loss of its Sec. 5.2 weighted ``0.5 * lambda``;
  least-squares adversarial loss (their Sec. 4) by default.
* Unpaired data: each training batch is unpaired before use. With a permutation ``p`` drawn
  from the batch's first sample seed, HR image ``p[i]`` is set beside LR image ``p[i-1]``, a
  derangement, so for a batch of 2 or more no LR slice meets its own HR slice. (A batch of one
  cannot be unpaired and stays paired.) The same training slices thus serve as two unpaired
  collections.
* Simplification: no history buffer of 50 generated images for the discriminators (it would be
  training state outside the checkpointed networks and break exact resume).

``super_resolve`` uses ``G`` (LR -> HR). The ``sr_l1`` value in the training log is ``G``'s L1
error against the true partner HR slice of each LR input: monitoring only, never in the loss.
"""

from __future__ import annotations

from collections.abc import Callable
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

__all__ = [
    "CycleGAN",
    "CYCLEGAN_DEFAULTS",
    "cycle_consistency_loss",
    "identity_loss",
    "unpair_indices",
]

CYCLEGAN_DEFAULTS: dict[str, Any] = {
    "lambda_cycle": 10.0,
    "lambda_identity": 0.5,  # relative to lambda_cycle, as in the CycleGAN code
    "gan_loss": "lsgan",
    "disc_channels": 64,
    "disc_layers": 3,
    "unpaired": True,
}

Translator = Callable[[Tensor], Tensor]


def cycle_consistency_loss(
    g_lr2hr: Translator,
    g_hr2lr: Translator,
    x_lr: Tensor,
    x_hr: Tensor,
    *,
    fake_hr: Tensor | None = None,
    fake_lr: Tensor | None = None,
) -> Tensor:
    """CycleGAN eq (2): ``E ||F(G(x)) - x||_1 + E ||G(F(y)) - y||_1`` with x = LR, y = HR, G
    = ``g_lr2hr``, F = ``g_hr2lr`` (each L1 term a pixel mean). ``fake_hr = G(x)`` and
    ``fake_lr = F(y)`` may be passed when already computed."""
    fake_hr = g_lr2hr(x_lr) if fake_hr is None else fake_hr
    fake_lr = g_hr2lr(x_hr) if fake_lr is None else fake_lr
    rec_lr, rec_hr = g_hr2lr(fake_hr), g_lr2hr(fake_lr)
    return F.l1_loss(rec_lr.float(), x_lr.float()) + F.l1_loss(rec_hr.float(), x_hr.float())


def identity_loss(g_lr2hr: Translator, g_hr2lr: Translator, x_lr: Tensor, x_hr: Tensor) -> Tensor:
    """CycleGAN's identity loss (its Sec. 5.2): ``E ||G(y) - y||_1 + E ||F(x) - x||_1``, each
    generator fed an image of its own target domain (pixel means)."""
    return F.l1_loss(g_lr2hr(x_hr).float(), x_hr.float()) + F.l1_loss(
        g_hr2lr(x_lr).float(), x_lr.float()
    )


def unpair_indices(seeds: Tensor, unpaired: bool = True) -> tuple[Tensor, Tensor]:
    """``(hr_idx, lr_idx)`` that set HR ``p[i]`` beside LR ``p[i-1]`` for a permutation ``p``
    drawn from ``seeds[0]``; no index meets itself when the batch has 2 or more samples.
    ``unpaired=False`` returns the identity pairing."""
    n = seeds.shape[0]
    if not unpaired or n < 2:
        idx = torch.arange(n)
        return idx, idx
    g = torch.Generator().manual_seed(int(seeds[0]))
    p = torch.randperm(n, generator=g)
    return p, p.roll(1)


@register("cyclegan")
class CycleGAN(AdversarialMethod):
    """CycleGAN. ``cfg.model``: both generators' U-Net; ``cfg.options``:
    :data:`CYCLEGAN_DEFAULTS`."""

    def __init__(self, cfg: RunConfig) -> None:
        super().__init__(cfg)
        self.opts = method_options(cfg, CYCLEGAN_DEFAULTS, self.name)
        if self.opts["gan_loss"] not in GAN_LOSSES:
            raise ValueError(f"{cfg.name}: options.gan_loss must be one of {GAN_LOSSES}")
        self.model_cfg = resolve_model_config(cfg.model)
        self.g_lr2hr = UNetGenerator(self.model_cfg)
        self.g_hr2lr = UNetGenerator(self.model_cfg)
        self.d_hr = build_patchgan(self.opts, in_channels=1)
        self.d_lr = build_patchgan(self.opts, in_channels=1)
        lam, idt = self.opts["lambda_cycle"], self.opts["lambda_identity"]
        self.loss_description = (
            f"GAN({self.opts['gan_loss']}) x2 + {lam:g}*cycle L1 + {idt * lam:g}*identity L1"
            + ("" if self.opts["unpaired"] else " (PAIRED batches: unpaired switched off)")
        )

    def generators(self) -> dict[str, nn.Module]:
        return {"g_lr2hr": self.g_lr2hr, "g_hr2lr": self.g_hr2lr}

    def discriminators(self) -> dict[str, nn.Module]:
        return {"d_hr": self.d_hr, "d_lr": self.d_lr}

    def inference_networks(self) -> dict[str, nn.Module]:
        return {"g_lr2hr": self.g_lr2hr}

    def signature(self) -> dict[str, Any]:
        return {
            "method": self.name,
            "model": self.model_cfg.to_dict(),
            "discriminator": self.d_hr.cfg.to_dict(),
        }

    def generate(self, x_lr: Tensor) -> Tensor:
        return self.g_lr2hr(x_lr)

    def forward(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """One CycleGAN step on an unpaired re-arrangement of the batch."""
        kind, lam = self.opts["gan_loss"], self.opts["lambda_cycle"]
        lam_idt = self.opts["lambda_identity"] * lam
        hr_idx, lr_idx = unpair_indices(batch["seed"], self.opts["unpaired"])
        hr_idx, lr_idx = hr_idx.to(batch["hr"].device), lr_idx.to(batch["hr"].device)
        y, x = batch["hr"][hr_idx], batch["lr"][lr_idx]  # unpaired HR y and LR x

        fake_hr, fake_lr = self.g_lr2hr(x), self.g_hr2lr(y)
        adv = generator_adversarial_loss(self.d_hr(fake_hr), kind) + generator_adversarial_loss(
            self.d_lr(fake_lr), kind
        )
        cyc = cycle_consistency_loss(
            self.g_lr2hr, self.g_hr2lr, x, y, fake_hr=fake_hr, fake_lr=fake_lr
        )
        out: dict[str, Tensor] = {}
        loss_g = adv + lam * cyc
        if lam_idt > 0:
            idt = identity_loss(self.g_lr2hr, self.g_hr2lr, x, y)
            loss_g = loss_g + lam_idt * idt
            out["identity"] = idt.detach()
        out["loss_g"] = loss_g
        out["loss_d"] = discriminator_loss(
            self.d_hr(y), self.d_hr(fake_hr.detach()), kind
        ) + discriminator_loss(self.d_lr(x), self.d_lr(fake_lr.detach()), kind)
        out["loss"] = loss_g.detach()
        out["cycle"] = cyc.detach()
        out["adv_g"] = adv.detach()
        with torch.no_grad():
            out["sr_l1"] = F.l1_loss(fake_hr.float(), batch["hr"][lr_idx].float())
        return out
