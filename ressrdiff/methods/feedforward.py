"""Shared parts of the one-pass (non-diffusion) methods: Bicubic, Pix2pix, CycleGAN and SPSR.

A one-pass method maps an LR slice to its SR slice with a single evaluation (NFE = 1, or 0 for
an interpolator), deterministically: ``steps`` and ``generator`` of ``super_resolve`` exist only
so that every method has the same call signature.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from ..config import RunConfig
from ..nn import UNet, UNetConfig
from ..tiling import tiled_map
from .base import Method

__all__ = ["FeedForwardMethod", "UNetGenerator", "method_options"]


def method_options(cfg: RunConfig, defaults: dict[str, Any], method: str) -> dict[str, Any]:
    """``cfg.options`` merged over ``defaults``; unknown keys and values of the wrong type raise a
    one-line ValueError. Numbers are converted to the type of the default (YAML reads ``1e-2``
    as a string)."""
    given = dict(cfg.options or {})
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise ValueError(
            f"{cfg.name}: options {unknown} unknown for method {method!r}; "
            f"allowed: {sorted(defaults)}"
        )
    out = dict(defaults)
    for k, v in given.items():
        d = defaults[k]
        try:
            if isinstance(d, bool):
                if not isinstance(v, bool):
                    raise TypeError
                out[k] = v
            elif isinstance(d, int | float):
                if isinstance(v, bool):
                    raise TypeError
                out[k] = float(v)
                if not math.isfinite(out[k]):
                    raise ValueError
                if isinstance(d, int):
                    if out[k] != int(out[k]):
                        raise ValueError
                    out[k] = int(out[k])
            elif isinstance(d, str):
                out[k] = str(v)
            else:
                out[k] = v
        except (TypeError, ValueError):
            raise ValueError(
                f"{cfg.name}: options.{k} for method {method!r} must be like {d!r}, got {v!r}"
            ) from None
    return out


class UNetGenerator(nn.Module):
    """The shared U-Net backbone used as a one-pass generator ``x -> G(x)``.

    The U-Net takes two images and a time step; here both image inputs are ``x`` (or ``x`` and
    an auxiliary map) and ``t`` is the constant 0, so the time embedding becomes a learnt
    constant bias. With ``residual_output`` the net returns ``x + head(...)``, and the head
    starts at zero, so an untrained generator is exactly the identity."""

    def __init__(self, cfg: UNetConfig) -> None:
        super().__init__()
        self.unet = UNet(cfg)

    def forward(self, x: Tensor, aux: Tensor | None = None) -> Tensor:
        t = torch.zeros(x.shape[0], device=x.device)
        return self.unet(x if aux is None else aux, x, t)


class FeedForwardMethod(Method):
    """A method whose ``super_resolve`` is one deterministic pass of :meth:`generate`."""

    #: network evaluations per slice at inference
    nfe: ClassVar[int] = 1
    #: whether :meth:`generate` may be evaluated on windows (False: it must see whole slices)
    tileable: ClassVar[bool] = True

    def generate(self, x_lr: Tensor) -> Tensor:
        raise NotImplementedError

    @torch.no_grad()
    def super_resolve(
        self,
        x_lr: Tensor,
        steps: int | None = None,
        generator: torch.Generator | None = None,
        *,
        window: int | str | None = "model",
        overlap: float | None = None,
        sw_batch_size: int | None = None,
    ) -> Tensor:
        """SR of ``x_lr`` (B, 1, H, W) in [-1, 1]. ``steps`` must be None or 1 (one pass);
        ``generator`` is unused (the method is deterministic). ``window`` (default: the model's
        ``infer.window``, whole slices unless it says otherwise; see :meth:`Method.window_spec`)
        evaluates the pass on overlapping windows with Gaussian blending
        (:mod:`ressrdiff.tiling`)."""
        if steps not in (None, 1):
            raise ValueError(
                f"method {self.name!r} super-resolves in one pass; steps must be 1 or None, "
                f"got {steps}"
            )
        if x_lr.ndim != 4 or x_lr.shape[1] != 1:
            raise ValueError(f"{self.name}: x_lr must be (B, 1, H, W), got {tuple(x_lr.shape)}")
        if not self.tileable and window not in (None, "auto", "model"):
            raise ValueError(f"method {self.name!r} works on whole slices; window must be None")
        spec = self.window_spec(x_lr, window, overlap, sw_batch_size)
        if spec is None or not self.tileable:
            return self.generate(x_lr).to(x_lr.dtype)
        return tiled_map(self.generate, spec)(x_lr).to(x_lr.dtype)

    def super_resolve_ensemble(self, *args: Any, **kwargs: Any) -> Any:
        raise ValueError(
            f"method {self.name!r} is deterministic: N samples would be identical "
            "(use one sample; there is no uncertainty map)"
        )
