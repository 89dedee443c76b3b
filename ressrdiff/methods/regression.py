"""Regression: Res-SRDiff's U-Net trained as a one-call regression ``x_LR -> x_HR``.

The control for Res-SRDiff: the same network (``cfg.model``, Swin blocks included when the config
has them), the same loss and the same optimiser and budget, but no diffusion and no adversary.
Whatever Res-SRDiff gains over it comes from the diffusion, not from the network or the training.

* Generator ``G(x_LR)``: :class:`~ressrdiff.methods.feedforward.UNetGenerator`, the U-Net
  evaluated once with ``x_LR`` in both image inputs and a constant time step. With
  ``model.residual_output`` an untrained generator is exactly the identity (``G(x) = x``).
* Loss: Res-SRDiff's eq (13) on the one-call prediction, by the same function
  (:func:`~ressrdiff.methods.res_srdiff.loss_eq13`):
  ``lambda_mse * MSE(G(x_LR), x_HR) + LPIPS(G(x_LR), x_HR)``, the LPIPS term only when its
  network is present (``loss.lpips``, as for Res-SRDiff). ``lambda_mse`` is resolved as for
  Res-SRDiff (:attr:`ressrdiff.config.RunConfig.lambda_mse`): ``loss.lambda_mse``, else the
  schedule preset's (10 for the default ``paper``, 4 for ``authors``); the schedule is used for
  nothing else.
* Inference: one deterministic pass (NFE = 1), tileable. No options.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from ..config import RunConfig
from .base import register
from .feedforward import FeedForwardMethod, UNetGenerator, method_options
from .res_srdiff import attach_eq13_lpips, loss_eq13, resolve_model_config

__all__ = ["Regression"]


@register("regression")
class Regression(FeedForwardMethod):
    """One-call regression with Res-SRDiff's U-Net and eq (13) loss (see the module docstring)."""

    def __init__(self, cfg: RunConfig, *, lpips_net: nn.Module | None = None) -> None:
        super().__init__(cfg)
        method_options(cfg, {}, self.name)  # no options: unknown ones raise
        self.model_cfg = resolve_model_config(cfg.model)
        self.generator = UNetGenerator(self.model_cfg)
        self.lambda_mse = cfg.lambda_mse
        self.loss_description = attach_eq13_lpips(self, cfg, lpips_net)

    def generators(self) -> dict[str, nn.Module]:
        return {"generator": self.generator}

    def networks(self) -> dict[str, nn.Module]:
        return self.generators()

    def signature(self) -> dict[str, Any]:
        return {"method": self.name, "model": self.model_cfg.to_dict()}

    def generate(self, x_lr: Tensor) -> Tensor:
        return self.generator(x_lr)

    def forward(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """One step: eq (13) between ``G(x_LR)`` and ``x_HR`` (``"loss"``, ``"mse"``, and
        ``"lpips"`` when that term is on)."""
        return loss_eq13(self.generator(batch["lr"]), batch["hr"], self.lambda_mse, self.lpips_net)
