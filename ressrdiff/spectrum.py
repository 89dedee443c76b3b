"""Spectral fidelity: how much of the HR image's fine detail an SR image carries.

PSNR and SSIM reward a smooth, mean-like estimate; an image that is blurrier than the truth loses
power at high spatial frequencies. The radial power spectrum (the squared magnitude of the 2-D
DFT averaged over rings of equal spatial frequency) shows it, and one number summarises it: the
ratio of the SR image's power to the HR image's power in the top octave of frequencies, from a
quarter of the sampling rate to the Nyquist frequency (0.25 to 0.5 cycles per pixel). A ratio
of 1 has the HR's fine-detail energy; below 1 is blurrier, above 1 is noisier. Pure tensor code.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = [
    "TOP_OCTAVE",
    "radial_frequency",
    "radial_power_spectrum",
    "band_power",
    "band_power_ratio",
]

#: the top octave, in cycles per pixel
TOP_OCTAVE = (0.25, 0.5)


def radial_frequency(h: int, w: int, device: torch.device | None = None) -> Tensor:
    """``(h, w)`` radial spatial frequency (cycles per pixel) of each DFT coefficient."""
    fy = torch.fft.fftfreq(h, device=device, dtype=torch.float64)
    fx = torch.fft.fftfreq(w, device=device, dtype=torch.float64)
    return torch.sqrt(fy[:, None] ** 2 + fx[None, :] ** 2)


def _power(x: Tensor) -> Tensor:
    """``|DFT|^2 / (h w)`` of ``(..., h, w)`` images (Parseval: it sums to the sum of squares)."""
    h, w = x.shape[-2:]
    return torch.fft.fft2(x.to(torch.float64)).abs() ** 2 / (h * w)


def radial_power_spectrum(x: Tensor, bins: int = 32) -> tuple[Tensor, Tensor]:
    """``(f, P)``: ring centres (cycles per pixel, ``bins`` rings up to 0.5) and the mean power
    per DFT coefficient in each ring, for each image of ``(..., h, w)`` (``P`` is
    ``(..., bins)``; an empty ring gives NaN)."""
    h, w = x.shape[-2:]
    f = radial_frequency(h, w, x.device)
    edges = torch.linspace(0.0, 0.5, bins + 1, dtype=torch.float64, device=x.device)
    idx = torch.bucketize(f.flatten(), edges[1:-1], right=True)
    inside = f.flatten() <= 0.5
    p = _power(x).flatten(-2)[..., inside]
    idx = idx[inside]
    total = torch.zeros(*p.shape[:-1], bins, dtype=torch.float64, device=x.device)
    total.index_add_(-1, idx, p)
    count = torch.bincount(idx, minlength=bins).to(torch.float64)
    return (edges[:-1] + edges[1:]) / 2, total / count


def band_power(x: Tensor, band: tuple[float, float] = TOP_OCTAVE) -> Tensor:
    """Total power of each image of ``(..., h, w)`` at radial frequencies in ``[lo, hi]``
    (cycles per pixel), the mean removed first (so a constant offset counts nothing)."""
    lo, hi = band
    x = x.to(torch.float64)
    x = x - x.mean(dim=(-2, -1), keepdim=True)
    f = radial_frequency(*x.shape[-2:], device=x.device)
    keep = (f >= lo) & (f <= hi)
    return (_power(x) * keep).sum(dim=(-2, -1))


def band_power_ratio(x: Tensor, ref: Tensor, band: tuple[float, float] = TOP_OCTAVE) -> Tensor:
    """Per image: ``band_power(x) / band_power(ref)`` (1 = the reference's detail energy)."""
    return band_power(x, band) / band_power(ref, band)
