"""I2SB: an image-to-image Schrödinger bridge from x_LR (t = 1) to x_HR (t = 0).

Liu et al. (2023). Training draws a node n ~ U{1..N} and ``x_n`` from the closed-form bridge
marginal between the pair (eq 11), and regresses ``(x_n - x_HR) / sigma_n`` (eq 12). Sampling
starts at ``x_N = x_LR`` and walks back to n = 0 with the DDPM posterior (eq 4) at ``nfe``
network evaluations. The network is the Res-SRDiff U-Net (``model`` takes the same keys), which
also sees the clean ``x_LR`` as a second input channel (I2SB's ``cond_x1``).

``options.x1_noise`` (default 0) adds Gaussian noise of that standard deviation to the start
``x_1 = x_LR`` (in training and sampling; the conditioning channel stays clean), as I2SB's
``add_x1_noise`` does for one of its tasks.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..bridge import BridgeSchedule, bridge_marginal, sample, training_target
from ..config import RunConfig
from ..diffusion import randn
from .base import Method, per_sample_draws, register
from .ddpm import build_backbone, resolve_options

__all__ = ["I2SB", "I2SB_DEFAULTS"]

#: ``options:`` of an i2sb config, and their defaults (those of the I2SB code, NFE aside)
I2SB_DEFAULTS: dict[str, Any] = {
    "N": 1000,  # intervals of [0, 1]
    "beta_min": 1.0e-4,
    "beta_max": 0.3,
    "nfe": 1000,  # network evaluations when sampling (steps=None)
    "x1_noise": 0.0,  # std of the noise added to x_1 = x_LR
    "clip_x0": True,  # clip the predicted x_0 to [-1, 1] at every step
}


@register("i2sb")
class I2SB(Method):
    """I2SB; ``cfg.options`` as in :data:`I2SB_DEFAULTS`, ``cfg.model`` as for Res-SRDiff."""

    def __init__(self, cfg: RunConfig) -> None:
        super().__init__(cfg)
        o = resolve_options(cfg.options, I2SB_DEFAULTS, self.name)
        self.bridge = BridgeSchedule.symmetric(
            int(o["N"]), float(o["beta_min"]), float(o["beta_max"])
        )
        if not 1 <= int(o["nfe"]) <= self.bridge.N:
            raise ValueError(f"i2sb: options.nfe must lie in 1..{self.bridge.N}, got {o['nfe']}")
        if float(o["x1_noise"]) < 0:
            raise ValueError(f"i2sb: options.x1_noise must be >= 0, got {o['x1_noise']}")
        self.options = o
        self.net, self.model_cfg = build_backbone(cfg.model, self.bridge.N, self.name, "unet")
        self.loss_description = "MSE to (x_t - x_0) / sigma_t (Liu et al. 2023, eq 12)"

    def networks(self) -> dict[str, nn.Module]:
        return {"net": self.net}

    @property
    def nfe_default(self) -> int:
        """Network evaluations of ``super_resolve`` when ``steps`` is None."""
        return int(self.options["nfe"])

    def signature(self) -> dict[str, Any]:
        o = self.options
        return {
            "method": self.name,
            "model": self.model_cfg,
            "bridge": {
                "N": int(o["N"]),
                "beta_min": float(o["beta_min"]),
                "beta_max": float(o["beta_max"]),
                "x1_noise": float(o["x1_noise"]),
            },
        }

    def forward(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """Liu et al. 2023, Algorithm 1: n ~ U{1..N}, x_n ~ q(x_n | x_HR, x_1) (eq 11), and the
        loss of eq (12)."""
        x_hr, x_lr = batch["hr"], batch["lr"]
        n, noise = per_sample_draws(
            batch["seed"], self.bridge.N, (2, *x_hr.shape[1:]), x_hr.device, x_hr.dtype
        )
        x1 = x_lr + float(self.options["x1_noise"]) * noise[:, 1]
        mean, var = bridge_marginal(x_hr, x1, n, self.bridge)
        x_n = mean + var.sqrt() * noise[:, 0]
        target = training_target(x_n, x_hr, n, self.bridge)
        loss = F.mse_loss(self.net(x_n, x_lr, n).float(), target.float())
        return {"loss": loss, "mse_target": loss.detach(), "t_mean": n.float().mean()}

    @torch.no_grad()
    def super_resolve(
        self, x_lr: Tensor, steps: int | None = None, generator: torch.Generator | None = None
    ) -> Tensor:
        """Algorithm 2 of I2SB with ``steps`` network evaluations (default ``options.nfe``)."""
        nfe = int(steps or self.options["nfe"])
        x1 = x_lr
        if float(self.options["x1_noise"]) > 0:
            x1 = x_lr + float(self.options["x1_noise"]) * randn(x_lr, generator)
        return sample(
            self.net,
            x1,
            x_lr,
            self.bridge,
            nfe,
            generator=generator,
            clip_x0=bool(self.options["clip_x0"]),
        )
