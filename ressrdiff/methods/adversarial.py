"""Adversarial losses and the generator/discriminator bookkeeping shared by Pix2pix, CycleGAN
and SPSR.

Two loss forms on raw discriminator logits ``d``:

* ``"bce"``, the original GAN loss (Goodfellow et al. 2014) as used by pix2pix (Isola et al.
  2017, eq (1)): the discriminator minimises ``-log s(d_real) - log(1 - s(d_fake))`` with ``s``
  the logistic sigmoid; the generator minimises the non-saturating ``-log s(d_fake)``.
* ``"lsgan"``, least squares (Mao et al. 2017) as used by CycleGAN: the discriminator minimises
  ``(d_real - 1)^2 + d_fake^2``, the generator ``(d_fake - 1)^2``.

Every term is a mean over the patch logits and the batch. The discriminator loss is halved, as
in the pix2pix/CycleGAN code, which slows the discriminator relative to the generator.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch.nn.functional as F
from torch import Tensor, nn

from ..config import RunConfig
from ..nn.patchgan import PatchGAN, PatchGANConfig
from .feedforward import FeedForwardMethod

__all__ = [
    "GAN_LOSSES",
    "gan_target_loss",
    "generator_adversarial_loss",
    "discriminator_loss",
    "AdversarialMethod",
    "build_patchgan",
]

GAN_LOSSES = ("bce", "lsgan")


def _check_kind(kind: str) -> None:
    if kind not in GAN_LOSSES:
        raise ValueError(f"gan_loss must be one of {GAN_LOSSES}, got {kind!r}")


def gan_target_loss(logits: Tensor, real: bool, kind: str) -> Tensor:
    """Mean loss of pushing every logit towards "real" (``real=True``) or "fake"."""
    _check_kind(kind)
    logits = logits.float()
    if kind == "bce":
        target = logits.new_full(logits.shape, 1.0 if real else 0.0)
        return F.binary_cross_entropy_with_logits(logits, target)
    return ((logits - (1.0 if real else 0.0)) ** 2).mean()


def generator_adversarial_loss(d_fake: Tensor, kind: str) -> Tensor:
    """The generator's adversarial term: make the discriminator call its output real."""
    return gan_target_loss(d_fake, True, kind)


def discriminator_loss(d_real: Tensor, d_fake: Tensor, kind: str) -> Tensor:
    """``0.5 * (loss(d_real -> real) + loss(d_fake -> fake))``."""
    return 0.5 * (gan_target_loss(d_real, True, kind) + gan_target_loss(d_fake, False, kind))


def build_patchgan(opts: dict[str, Any], in_channels: int) -> PatchGAN:
    """A PatchGAN from the method options ``disc_channels`` and ``disc_layers``."""
    return PatchGAN(
        PatchGANConfig(
            in_channels=in_channels,
            base_channels=int(opts["disc_channels"]),
            n_layers=int(opts["disc_layers"]),
        )
    )


class AdversarialMethod(FeedForwardMethod):
    """A one-pass method trained as a GAN: two optimiser groups, ``"loss_g"`` (generators) then
    ``"loss_d"`` (discriminators), both RAdam with betas (0.5, 0.999) as in pix2pix/CycleGAN."""

    optimizer_overrides: ClassVar[dict[str, dict[str, Any]]] = {
        "loss_g": {"betas": (0.5, 0.999)},
        "loss_d": {"betas": (0.5, 0.999)},
    }

    def __init__(self, cfg: RunConfig) -> None:
        super().__init__(cfg)
        if cfg.loss.lpips == "required" and not getattr(self, "uses_perceptual", False):
            raise ValueError(
                f"{cfg.name}: method {self.name!r} has no perceptual term; loss.lpips "
                "'required' does not apply (use 'off' or 'auto')"
            )

    def generators(self) -> dict[str, nn.Module]:
        raise NotImplementedError

    def discriminators(self) -> dict[str, nn.Module]:
        raise NotImplementedError

    def networks(self) -> dict[str, nn.Module]:
        return {**self.generators(), **self.discriminators()}

    def inference_networks(self) -> dict[str, nn.Module]:
        """The networks ``super_resolve`` runs (for parameter counts)."""
        return self.generators()

    def optim_groups(self) -> dict[str, list[nn.Parameter]]:
        def params(nets: dict[str, nn.Module]) -> list[nn.Parameter]:
            return [p for m in nets.values() for p in m.parameters() if p.requires_grad]

        return {"loss_g": params(self.generators()), "loss_d": params(self.discriminators())}
