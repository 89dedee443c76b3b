"""Spectral fidelity in closed form: sinusoids and white noise."""

from __future__ import annotations

import math

import torch

from ressrdiff.spectrum import band_power, band_power_ratio, radial_power_spectrum


def _sinusoid(freq: float, amp: float, n: int = 64) -> torch.Tensor:
    x = torch.arange(n, dtype=torch.float64)
    return amp * torch.cos(2 * math.pi * freq * x)[None, :].expand(n, n)


def test_a_sinusoid_in_the_top_octave_has_power_amp2_over_2_per_pixel():
    n, amp = 64, 0.7
    s = _sinusoid(20 / 64, amp, n)  # 0.3125 cycles/pixel, on the DFT grid
    assert math.isclose(band_power(s).item(), n * n * amp**2 / 2, rel_tol=1e-12)
    assert band_power(_sinusoid(8 / 64, amp, n)).item() < 1e-18  # 0.125: below the band
    ratio = band_power_ratio(_sinusoid(20 / 64, 0.5), _sinusoid(20 / 64, 1.0))
    assert math.isclose(ratio.item(), 0.25, rel_tol=1e-12)  # (A / B)^2


def test_white_noise_ratio_is_the_variance_ratio():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(16, 128, 128, generator=g, dtype=torch.float64)
    b = torch.randn(16, 128, 128, generator=g, dtype=torch.float64)
    r = band_power_ratio(0.5 * a, b).mean().item()
    assert abs(r - 0.25) < 0.01  # Monte-Carlo: 16 x ~6000 coefficients per image


def test_radial_spectrum_of_white_noise_is_flat_and_an_offset_is_ignored():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(8, 128, 128, generator=g, dtype=torch.float64)
    f, p = radial_power_spectrum(x, bins=8)
    assert f.shape == (8,) and p.shape == (8, 8)
    mean = p[:, 1:].mean(0)  # ring 0 holds the DC term and few coefficients
    assert torch.allclose(mean, torch.ones_like(mean), atol=0.05)  # unit variance per coefficient
    assert torch.allclose(band_power(x + 3.0), band_power(x))
