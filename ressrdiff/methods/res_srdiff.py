"""Res-SRDiff: the U-Net g_phi with the residual-shifting diffusion (Algorithms 1 and 2)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import RunConfig
from ..diffusion import EnsembleResult, q_sample, sample, sample_ensemble
from ..nn import PAPER_GPU, TINY_CPU, UNet, UNetConfig
from ..perceptual import lpips_distance
from ..schedule import Schedule
from ..tiling import tiled_predictor
from .base import Method, per_sample_draws, register

__all__ = ["ResSRDiff", "MODEL_PRESETS", "resolve_model_config", "loss_eq13"]

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
        desc = self.attach_lpips(
            lpips_net,
            wanted=cfg.loss.lpips != "off",
            dropped=f"Training uses {self.lambda_mse:g}*MSE alone (eq 13 without its LPIPS "
            "term); the checkpoint records this.",
        )
        self.loss_description = f"{self.lambda_mse:g}*MSE" + (
            f" + {desc}"
            if self.lpips_net is not None
            else " (LPIPS switched off)"
            if cfg.loss.lpips == "off"
            else f" alone ({desc})"
        )

    # -- protocol ------------------------------------------------------------------------------
    def networks(self) -> dict[str, nn.Module]:
        return {"net": self.net}

    def signature(self) -> dict[str, Any]:
        return {
            "method": self.name,
            "model": self.model_cfg.to_dict(),
            "schedule": self.schedule.to_dict(),
            "scale_input": self.scale_input,
        }

    def predictor(self, net: nn.Module | None = None):
        """g_phi as a callable ``(x_t, x_lr, t_model) -> x_HR_hat`` with the input scaling:
        x_t is divided by ``sqrt(gamma^2 beta_t + 1)``, its standard deviation scale under eq (4)
        for unit-variance images (as in ResShift's ``normalize_input``)."""
        net = net or self.net
        full = self.schedule

        def g(x_t: Tensor, x_lr: Tensor, t: Tensor) -> Tensor:
            if self.scale_input:
                b = full.table("beta", t, x_t)
                x_t = x_t / torch.sqrt(full.gamma**2 * b + 1.0)
            return net(x_t, x_lr, t)

        return g

    def forward(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """Algorithm 1: t ~ U{1..T}, x_t ~ q(x_t | x_HR, x_LR) by eq (4), loss eq (13)."""
        x_hr, x_lr = batch["hr"], batch["lr"]
        t, noise = per_sample_draws(
            batch["seed"], self.schedule.T, tuple(x_hr.shape[1:]), x_hr.device, x_hr.dtype
        )
        x_t = q_sample(x_hr, x_lr, t, self.schedule, noise)
        x_hat = self.predictor()(x_t, x_lr, t)
        out = loss_eq13(x_hat, x_hr, self.lambda_mse, self.lpips_net)
        out["t_mean"] = t.float().mean()
        return out

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
    ):
        """Algorithm 2 with ``steps`` sampling steps (default: the preset's; respaced if < T).

        Each network call is evaluated on overlapping ``window`` x ``window`` windows blended
        with Gaussian weights (``overlap`` fraction, ``sw_batch_size`` windows per call); the
        sampler's state and noise stay whole-slice. ``window="model"`` (default) is the model's
        ``infer`` setting (:class:`ressrdiff.config.InferConfig`; whole slices unless it says
        otherwise, and ``overlap``/``sw_batch_size`` None take it from there too); ``"auto"`` is
        the training patch size when the slice is larger; ``None`` runs the network on whole
        slices."""
        return sample(
            self.inference_predictor(x_lr, window, overlap, sw_batch_size),
            x_lr,
            self.sampling_schedule(steps),
            generator=generator,
            return_trajectory=return_trajectory,
        )

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
    ) -> EnsembleResult:
        """N samples per input with mean and standard-deviation (uncertainty) maps; ``window``,
        ``overlap`` and ``sw_batch_size`` as in :meth:`super_resolve`."""
        return sample_ensemble(
            self.inference_predictor(x_lr, window, overlap, sw_batch_size),
            x_lr,
            self.sampling_schedule(steps),
            num_samples,
            generator=generator,
            chunk=chunk,
        )
