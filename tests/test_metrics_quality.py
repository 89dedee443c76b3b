"""PSNR, SSIM and GMSD against scikit-image, piq and an independent NumPy GMSD; mask semantics."""

from __future__ import annotations

import numpy as np
import piq
import pytest
import torch
import torch.nn.functional as F
from scipy import ndimage
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from ressrdiff.metrics import GMSD_C, gmsd, psnr, ssim, ssim_map

SHAPES = [(3, 1, 64, 64), (2, 1, 41, 50), (1, 1, 37, 45)]  # even, mixed and odd sizes


def make_pair(shape: tuple[int, ...], seed: int = 0, noise: float = 0.08):
    """Smooth 'anatomy' in [0, 1] (float64) and a noisy, slightly blurred version of it."""
    g = torch.Generator().manual_seed(seed)
    b, c, h, w = shape
    base = F.avg_pool2d(torch.rand(b, c, h + 6, w + 6, generator=g, dtype=torch.float64), 7, 1)
    base = (base - base.amin((2, 3), keepdim=True)) / (
        base.amax((2, 3), keepdim=True) - base.amin((2, 3), keepdim=True)
    )
    blurred = F.avg_pool2d(base, 3, 1, padding=1, count_include_pad=False)
    x = (blurred + noise * torch.randn(shape, generator=g, dtype=torch.float64)).clamp(0, 1)
    return x, base


def disc_mask(shape: tuple[int, ...], frac: float = 0.35) -> torch.Tensor:
    """Centred elliptical 'brain' mask."""
    _, _, h, w = shape
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, h), torch.linspace(-1, 1, w), indexing="ij")
    m = (xx**2 + yy**2) < 2 * frac
    return m.expand(shape).clone()


# --------------------------------------------------------------------------- PSNR / SSIM vs skimage


@pytest.mark.parametrize("shape", SHAPES)
def test_psnr_matches_skimage(shape):
    x, y = make_pair(shape)
    ours = psnr(x, y, data_range=1.0).numpy()
    ref = [
        peak_signal_noise_ratio(y[i, 0].numpy(), x[i, 0].numpy(), data_range=1.0)
        for i in range(len(x))
    ]
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-8)


SK = dict(
    data_range=1.0, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, win_size=11
)


@pytest.mark.parametrize("shape", SHAPES)
def test_ssim_matches_skimage_on_valid_region(shape):
    x, y = make_pair(shape)
    ours_map = ssim_map(x, y).numpy()
    ours = ssim(x, y).numpy()
    r = 5  # (win - 1) / 2: skimage crops this from its (reflect-padded) map before the mean
    for i in range(len(x)):
        mssim, full = structural_similarity(x[i, 0].numpy(), y[i, 0].numpy(), full=True, **SK)
        cropped = full[r:-r, r:-r]
        assert cropped.shape == ours_map[i, 0].shape
        np.testing.assert_allclose(ours_map[i, 0], cropped, atol=1e-6)
        assert abs(ours[i] - cropped.mean()) < 1e-4
        assert abs(ours[i] - mssim) < 1e-4


def test_masked_ssim_matches_skimage_map():
    shape = (2, 1, 48, 56)
    x, y = make_pair(shape, seed=3)
    m = disc_mask(shape)
    ours = ssim(x, y, mask=m).numpy()
    for i in range(2):
        _, full = structural_similarity(x[i, 0].numpy(), y[i, 0].numpy(), full=True, **SK)
        mc = m[i, 0, 5:-5, 5:-5].numpy()
        assert abs(ours[i] - full[5:-5, 5:-5][mc].mean()) < 1e-4


# --------------------------------------------------------------------------- SSIM / GMSD vs piq


@pytest.mark.parametrize("shape", SHAPES)
def test_ssim_and_gmsd_match_piq(shape):
    x, y = make_pair(shape, seed=1)
    ref_ssim = piq.ssim(x, y, data_range=1.0, downsample=False, reduction="none")
    ref_gmsd = piq.gmsd(x, y, data_range=1.0, reduction="none")
    torch.testing.assert_close(ssim(x, y), ref_ssim, rtol=0, atol=1e-5)
    torch.testing.assert_close(gmsd(x, y), ref_gmsd, rtol=0, atol=1e-5)
    # float32 inputs (what callers usually pass) give the same numbers
    torch.testing.assert_close(ssim(x.float(), y.float()), ref_ssim, rtol=0, atol=1e-5)
    torch.testing.assert_close(gmsd(x.float(), y.float()), ref_gmsd, rtol=0, atol=1e-5)


def test_ssim_downsample_reproduces_piq_default():
    shape = (1, 1, 384, 384)  # round(384 / 256) = 2: piq's default pools x2 here
    x, y = make_pair(shape, seed=2)
    piq_default = piq.ssim(x, y, data_range=1.0, reduction="none")
    torch.testing.assert_close(ssim(x, y, downsample=True), piq_default, rtol=0, atol=1e-5)
    assert abs(ssim(x, y).item() - piq_default.item()) > 1e-3  # default here: no pooling
    small = make_pair((1, 1, 197, 233), seed=2)  # round(197 / 256) = 1: pooling is a no-op
    torch.testing.assert_close(ssim(*small, downsample=True), ssim(*small))


# --------------------------------------------------------------------------- GMSD vs NumPy


def gmsd_numpy(x: np.ndarray, y: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Xue et al. 2014 from the paper/MATLAB recipe (population std, as piq)."""

    def pool(a: np.ndarray) -> np.ndarray:  # conv2(a, ones(2)/4, 'same') then a(1:2:end, 1:2:end)
        h, w = a.shape
        a = np.pad(a, ((0, h % 2), (0, w % 2)))
        return a.reshape(a.shape[0] // 2, 2, a.shape[1] // 2, 2).mean(axis=(1, 3))

    kx = np.array([[1.0, 0.0, -1.0]] * 3) / 3

    def magnitude(a: np.ndarray) -> np.ndarray:
        gx = ndimage.convolve(a, kx, mode="constant", cval=0.0)
        gy = ndimage.convolve(a, kx.T, mode="constant", cval=0.0)
        return np.sqrt(gx**2 + gy**2)

    mx, my = magnitude(pool(x)), magnitude(pool(y))
    gms = (2 * mx * my + GMSD_C) / (mx**2 + my**2 + GMSD_C)
    if mask is not None:
        share = pool(mask.astype(float)) / pool(np.ones_like(mask, dtype=float))
        gms = gms[share >= 0.5]
    return float(np.std(gms))


@pytest.mark.parametrize("shape", SHAPES)
def test_gmsd_matches_numpy_reference(shape):
    x, y = make_pair(shape, seed=4)
    m = disc_mask(shape)
    ours, ours_m = gmsd(x, y).numpy(), gmsd(x, y, mask=m).numpy()
    for i in range(len(x)):
        a, b, mi = x[i, 0].numpy(), y[i, 0].numpy(), m[i, 0].numpy()
        assert abs(ours[i] - gmsd_numpy(a, b)) < 1e-5
        assert abs(ours_m[i] - gmsd_numpy(a, b, mi)) < 1e-5


# --------------------------------------------------------------------------- identities and masks


def test_identical_images():
    x, _ = make_pair((2, 1, 40, 44))
    assert (psnr(x, x) >= 199.99).all()  # MSE 0: capped at 10 log10(1 / 1e-20) = 200 dB
    torch.testing.assert_close(ssim(x, x), torch.ones(2, dtype=torch.float64))
    torch.testing.assert_close(gmsd(x, x), torch.zeros(2, dtype=torch.float64))
    m = disc_mask(x.shape)
    torch.testing.assert_close(ssim(x, x, mask=m), torch.ones(2, dtype=torch.float64))
    torch.testing.assert_close(gmsd(x, x, mask=m), torch.zeros(2, dtype=torch.float64))


@pytest.mark.parametrize("shape", SHAPES)
def test_all_true_mask_equals_unmasked(shape):
    x, y = make_pair(shape, seed=5)
    m = torch.ones(shape, dtype=torch.bool)
    torch.testing.assert_close(psnr(x, y, mask=m), psnr(x, y))
    torch.testing.assert_close(ssim(x, y, mask=m), ssim(x, y))
    torch.testing.assert_close(gmsd(x, y, mask=m), gmsd(x, y))


def test_masked_metrics_ignore_errors_outside_the_mask():
    shape = (2, 1, 64, 64)
    x, y = make_pair(shape, seed=6)
    m = torch.zeros(shape, dtype=torch.bool)
    m[..., 16:48, 12:52] = True
    bad = x.clone()
    bad[..., :8, :] = 1 - bad[..., :8, :]  # large errors >= 8 px away from the mask
    bad[..., 56:, :] = 0.0
    bad[..., :, :4] = torch.rand(2, 1, 64, 4, dtype=torch.float64)
    for fn in (psnr, ssim, gmsd):
        torch.testing.assert_close(fn(bad, y, mask=m), fn(x, y, mask=m), rtol=0, atol=1e-12)
        assert not torch.allclose(fn(bad, y), fn(x, y), atol=1e-3)  # whole-image scores move
    torch.testing.assert_close(
        ssim(bad, y, mask=m, downsample=True), ssim(x, y, mask=m, downsample=True)
    )


def test_empty_mask_gives_nan():
    x, y = make_pair((1, 1, 32, 32))
    m = torch.zeros_like(x, dtype=torch.bool)
    assert torch.isnan(ssim(x, y, mask=m)).all()
    assert torch.isnan(gmsd(x, y, mask=m)).all()


def test_shape_errors():
    x, y = make_pair((1, 1, 32, 32))
    with pytest.raises(ValueError):
        ssim(x, y[..., :30])
    with pytest.raises(ValueError):
        gmsd(x, y, mask=torch.ones(1, 1, 30, 30, dtype=torch.bool))
    with pytest.raises(ValueError):
        ssim(x[..., :8, :8], y[..., :8, :8])  # smaller than the 11x11 window
