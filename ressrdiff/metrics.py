"""Image-quality metrics on single-channel slices.

Only PSNR lives here so far; SSIM, GMSD and LPIPS (via ``piq`` / ``lpips``) come with the data
and evaluation work. Inputs in [-1, 1] are mapped to [0, 1] with :func:`to_unit` first, so that
``data_range = 1`` as in the authors' evaluation.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["to_unit", "psnr"]


def to_unit(x: Tensor) -> Tensor:
    """Map [-1, 1] to [0, 1] (clamped)."""
    return ((x + 1.0) / 2.0).clamp(0.0, 1.0)


def psnr(x: Tensor, ref: Tensor, data_range: float = 1.0, mask: Tensor | None = None) -> Tensor:
    """Per-image PSNR in dB, ``10 log10(data_range^2 / MSE)``, shape (B,). With ``mask`` (same
    shape, boolean) the MSE is taken over the masked pixels of each image only."""
    err = (x.double() - ref.double()) ** 2
    dims = tuple(range(1, err.dim()))
    if mask is None:
        mse = err.mean(dim=dims)
    else:
        m = mask.to(err.dtype)
        mse = (err * m).sum(dim=dims) / m.sum(dim=dims).clamp_min(1.0)
    return 10.0 * torch.log10(data_range**2 / mse.clamp_min(1e-20))
