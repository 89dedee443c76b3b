"""The learnability fit in closed form: a known filter is recovered, an input that carries nothing
beyond itself gains nothing, the mask selects the equations, and a seed fixes the subsample."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
import torch
import torch.nn.functional as F

from ressrdiff.data.degrade import degrade
from ressrdiff.data.manifest import normalise_pair
from ressrdiff.learnability import (
    LinearFilter,
    apply_linear_filter,
    filter_gain,
    fit_linear_filter,
    mean_radial_spectrum,
)
from ressrdiff.spectrum import radial_power_spectrum

KERNEL = np.array([[0.05, -0.1, 0.02], [-0.15, 1.3, -0.2], [0.01, -0.12, 0.04]])
BIAS = 0.07


def _lr(n: int = 6, h: int = 40, w: int = 48, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-0.4, 0.4, (n, h, w))


def _correlate(lr: np.ndarray, k: np.ndarray, b: float) -> tuple[np.ndarray, np.ndarray]:
    """``b + sum_ij k[i, j] lr[y + i - r, x + j - r]`` written out, on the interior only, and the
    interior mask (the border of r pixels is False and left 0)."""
    r = k.shape[0] // 2
    n, h, w = lr.shape
    out = np.zeros_like(lr)
    for i in range(k.shape[0]):
        for j in range(k.shape[1]):
            out[:, r : h - r, r : w - r] += k[i, j] * lr[:, i : h - 2 * r + i, j : w - 2 * r + j]
    mask = np.zeros(lr.shape, dtype=bool)
    mask[:, r : h - r, r : w - r] = True
    return np.where(mask, out + b, 0.0), mask


def test_a_known_filter_and_bias_are_recovered_and_gain_a_lot():
    lr = _lr()
    hr, mask = _correlate(lr, KERNEL, BIAS)
    filt = fit_linear_filter(lr[:4], hr[:4], mask[:4], size=5, ridge=0.0)
    expected = np.zeros((5, 5))
    expected[1:4, 1:4] = KERNEL  # the outer ring of a larger filter is not used
    np.testing.assert_allclose(filt.weights, expected, atol=1e-9)
    assert filt.bias == pytest.approx(BIAS, abs=1e-9)
    assert filt.size == 5 and filt.n_pixels == int(mask[:4].sum())
    out = apply_linear_filter(filt, lr[4:])
    np.testing.assert_allclose(out[mask[4:]], hr[4:][mask[4:]], atol=1e-9)
    gain = filter_gain(filt, lr[4:], hr[4:], mask[4:])
    assert list(gain.columns) == ["slice", "psnr_input", "psnr_filter", "psnr_gain"]
    assert len(gain) == 2 and (gain["psnr_gain"] > 100).all()  # exact on held-out slices


def test_an_input_that_carries_nothing_more_gains_nothing():
    """HR = LR + independent noise: the best linear estimate is the input itself."""
    g = np.random.default_rng(1)
    lr = _lr(8, 64, 64, seed=2)
    hr = lr + g.normal(0.0, 0.05, lr.shape)
    mask = np.ones(lr.shape, dtype=bool)
    filt = fit_linear_filter(lr[:6], hr[:6], mask[:6], size=5)
    delta = np.zeros((5, 5))
    delta[2, 2] = 1.0
    np.testing.assert_allclose(filt.weights, delta, atol=0.01)
    assert abs(filt.bias) < 1e-3
    gain = filter_gain(filt, lr[6:], hr[6:], mask[6:])
    assert np.abs(gain["psnr_gain"]).max() < 0.01
    np.testing.assert_allclose(gain["psnr_input"], gain["psnr_filter"], atol=0.01)


def test_pixels_outside_the_mask_are_ignored():
    lr = _lr(4)
    hr, mask = _correlate(lr, KERNEL, BIAS)
    mask[:, :10] = False  # a region whose HR is garbage below
    junk = np.where(mask, hr, np.random.default_rng(3).normal(0.0, 100.0, hr.shape))
    clean, dirty = (fit_linear_filter(lr, y, mask, size=3, ridge=0.0) for y in (hr, junk))
    np.testing.assert_allclose(dirty.weights, clean.weights, atol=1e-12)
    np.testing.assert_allclose(dirty.weights, KERNEL, atol=1e-9)
    a, b = filter_gain(clean, lr, hr, mask), filter_gain(clean, lr, junk, mask)
    np.testing.assert_allclose(a["psnr_input"], b["psnr_input"], rtol=1e-12)
    np.testing.assert_allclose(a["psnr_gain"], b["psnr_gain"], rtol=1e-12)


def test_an_empty_mask_gives_nan_and_cannot_be_fitted():
    lr = _lr(2)
    mask = np.zeros(lr.shape, dtype=bool)
    mask[0, 5:20, 5:20] = True
    filt = LinearFilter(np.ones((1, 1)), 0.0, 0)
    gain = filter_gain(filt, lr, lr + 0.1, mask)
    assert np.isfinite(gain["psnr_gain"][0]) and np.isnan(gain["psnr_gain"][1])
    with pytest.raises(ValueError, match="no pixel"):
        fit_linear_filter(lr, lr, np.zeros_like(mask))
    with pytest.raises(ValueError, match="odd"):
        fit_linear_filter(lr, lr, mask, size=4)


def test_the_pixel_subsample_is_fixed_by_its_seed():
    g = np.random.default_rng(4)
    lr = _lr(3)
    hr = lr + g.normal(0.0, 0.1, lr.shape)
    mask = np.ones(lr.shape, dtype=bool)
    a, b, c = (fit_linear_filter(lr, hr, mask, 3, max_pixels=500, seed=s) for s in (7, 7, 8))
    assert a.n_pixels == 500
    np.testing.assert_array_equal(a.weights, b.weights)
    assert a.bias == b.bias
    assert not np.array_equal(a.weights, c.weights)
    assert fit_linear_filter(lr, hr, mask, 3, max_pixels=10**9).n_pixels == mask.sum()


def test_tensors_and_channel_axes_are_accepted():
    lr = _lr(3)
    hr, mask = _correlate(lr, KERNEL, BIAS)
    t = lambda a: torch.from_numpy(a)[:, None]  # noqa: E731
    filt = fit_linear_filter(t(lr).float(), t(hr), t(mask), size=3, ridge=0.0)
    np.testing.assert_allclose(filt.weights, KERNEL, atol=1e-5)  # float32 input
    assert apply_linear_filter(filt, lr[0]).shape == (1, *lr.shape[1:])


def test_mean_radial_spectrum_averages_the_package_spectrum_in_cycles_per_mm():
    x = _lr(4, 32, 32)
    f, p = mean_radial_spectrum(x, bins=8)
    f_ref, p_ref = radial_power_spectrum(
        torch.from_numpy(x - x.mean(axis=(1, 2), keepdims=True)), 8
    )
    np.testing.assert_allclose(f, f_ref.numpy())
    np.testing.assert_allclose(p, p_ref.mean(dim=0).numpy())
    f_mm, p_mm = mean_radial_spectrum(x + 3.0, bins=8, spacing=2.0)  # offset removed
    np.testing.assert_allclose(f_mm, f / 2.0)
    np.testing.assert_allclose(p_mm, p, rtol=1e-9)
    assert f_mm[-1] < 0.25  # below the Nyquist frequency of 2 mm pixels


def _pairs(hr_img: sitk.Image, degradation: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    lr_img = degrade(hr_img, 4, regrid_method="bspline", degradation=degradation)
    hr, lr = sitk.GetArrayFromImage(hr_img), sitk.GetArrayFromImage(lr_img)
    mask = np.ones(hr.shape, dtype=bool)
    mask[:, :8], mask[:, -8:], mask[:, :, :8], mask[:, :, -8:] = False, False, False, False
    hr_n, lr_n, _, _ = normalise_pair(hr, lr, mask)
    return hr_n, lr_n, mask


def test_averaging_acquisition_is_more_learnable_than_point_sampling():
    """On a smooth random volume, a Gaussian voxel profile is partly invertible by a linear filter
    and aliased point samples are not: the held-out gain is larger for ``acquisition``."""
    g = np.random.default_rng(5)
    vol = g.normal(size=(48, 64, 64)).astype(np.float32)
    img = sitk.SmoothingRecursiveGaussian(sitk.GetImageFromArray(vol), 1.5)
    gains = {}
    for name in ("resample", "acquisition"):
        hr, lr, mask = _pairs(img, name)
        filt = fit_linear_filter(lr[8:28], hr[8:28], mask[8:28], size=7)
        gains[name] = float(
            filter_gain(filt, lr[32:44], hr[32:44], mask[32:44])["psnr_gain"].mean()
        )
    assert gains["acquisition"] > gains["resample"] + 0.5, gains


def test_the_response_of_a_delta_is_flat_and_of_a_box_falls_to_its_zero():
    delta = LinearFilter(np.pad(np.ones((1, 1)), 2), 0.0, 0)
    f, g = delta.response(bins=8)
    np.testing.assert_allclose(g, 1.0, atol=1e-12)
    box = LinearFilter(np.full((3, 3), 1.0 / 9.0), 0.0, 0)
    _, g_box = box.response(bins=8)
    assert g_box[0] == pytest.approx(1.0, abs=0.05) and np.all(np.diff(g_box[:6]) < 0)
    assert g_box[5] < 0.1  # near the zero of (1 + 2 cos 2 pi f) / 3 at f = 1/3
    assert f[0] == pytest.approx(1.0 / 32.0)


def test_the_ridge_tames_the_weights_of_a_smooth_input_at_little_cost():
    """A smooth input barely excites high frequencies: unpenalised, the weights blow up there."""
    g = torch.Generator().manual_seed(6)
    x = torch.randn(6, 1, 64, 64, generator=g, dtype=torch.float64)
    k = torch.exp(-(torch.arange(-7.0, 8.0, dtype=torch.float64) ** 2) / 8)  # Gaussian, sigma 2
    k = k / k.sum()
    lr = 2 * F.conv2d(F.conv2d(x, k.view(1, 1, 1, -1)), k.view(1, 1, -1, 1))[:, 0]
    hr = lr + 0.02 * torch.randn(lr.shape, generator=g, dtype=torch.float64)
    mask = np.ones(lr.shape, dtype=bool)
    free, tamed = (fit_linear_filter(lr, hr, mask, 7, ridge=r) for r in (0.0, 1e-4))
    assert np.abs(tamed.weights).max() < 0.5 * np.abs(free.weights).max()
    a, b = (filter_gain(f, lr, hr, mask)["psnr_filter"].mean() for f in (free, tamed))
    assert b > a - 0.1
