"""Degradations: FOV-preserving LR grid, no systematic shift, presets, re-gridding, and the named
models (the paper's ``resample``, the physical ``acquisition`` and its k-space variant) checked
against closed forms."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from ressrdiff.config import DEGRADATION_NAMES
from ressrdiff.data.degrade import (
    DEGRADATIONS,
    PRESETS,
    antialias_sigmas,
    check_same_grid,
    degradation_of,
    degrade,
    downsample,
    kspace_lr,
    kspace_window,
    lr_grid,
    lr_noise_sd,
    regrid,
    resolve_degradation,
    same_grid,
)
from ressrdiff.data.io import VolumeError

N = 40  # HR size per axis, a multiple of 4


def _direction() -> np.ndarray:
    a, b = 0.4, 0.2
    rz = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, np.cos(b), -np.sin(b)], [0, np.sin(b), np.cos(b)]])
    return rz @ rx


def _blobs(seed: int = 1) -> sitk.Image:
    """Smooth sum of Gaussian blobs inside an N^3 volume with an oblique, anisotropic grid."""
    rng = np.random.default_rng(seed)
    g = np.arange(N, dtype=np.float64)
    zz, yy, xx = np.meshgrid(g, g, g, indexing="ij")
    vol = np.zeros((N, N, N))
    for _ in range(5):
        c = rng.uniform(14, 26, 3)
        s = rng.uniform(3, 5)
        vol += rng.uniform(0.5, 1) * np.exp(
            -((zz - c[0]) ** 2 + (yy - c[1]) ** 2 + (xx - c[2]) ** 2) / (2 * s * s)
        )
    img = sitk.GetImageFromArray(vol.astype(np.float32))
    img.SetSpacing((0.8, 1.1, 0.9))
    img.SetOrigin((5.0, -7.0, 3.0))
    img.SetDirection(_direction().ravel().tolist())
    return img


def _com(arr: np.ndarray) -> np.ndarray:
    """Centre of mass in voxel indices, numpy (z, y, x) order."""
    a = np.asarray(arr, dtype=np.float64)
    grids = np.meshgrid(*(np.arange(n) for n in a.shape), indexing="ij")
    return np.array([(a * g).sum() / a.sum() for g in grids])


def test_lr_grid_keeps_field_of_view() -> None:
    hr = _blobs()
    lr = downsample(hr, 4)
    sp = np.asarray(hr.GetSpacing())
    np.testing.assert_allclose(lr.GetSpacing(), sp * 4)
    assert lr.GetSize() == (N // 4,) * 3
    assert lr.GetDirection() == hr.GetDirection()
    first_centre = np.asarray(lr.TransformIndexToPhysicalPoint((0, 0, 0)))
    expected = np.asarray(hr.GetOrigin()) + _direction() @ (1.5 * sp)
    np.testing.assert_allclose(first_centre, expected, atol=1e-9)
    # the LR and HR voxel blocks share their outer edges: same physical extent
    hr_edge = hr.TransformContinuousIndexToPhysicalPoint((N - 0.5,) * 3)
    lr_edge = lr.TransformContinuousIndexToPhysicalPoint((N // 4 - 0.5,) * 3)
    np.testing.assert_allclose(hr_edge, lr_edge, atol=1e-9)
    # lr_grid is that grid without the resampling, for checking a given LR file
    for factors in (4, "prostate", (2, 3, 1)):
        ref = lr_grid(hr, factors)
        assert same_grid(ref, downsample(hr, factors), tol=0.0)
        assert ref.GetPixelID() == sitk.sitkFloat32


def test_no_systematic_shift_and_naive_origin_fails() -> None:
    hr = _blobs()
    hr_arr = sitk.GetArrayFromImage(hr)
    c_hr = _com(hr_arr)
    lr = downsample(hr, 4)
    up = regrid(lr, hr, "bspline")
    assert same_grid(up, hr)
    assert np.all(np.abs(_com(sitk.GetArrayFromImage(up)) - c_hr) < 0.1)

    # Array-space nearest up-sampling (each LR voxel -> its block of 4^3 HR voxels) assumes the
    # FOV-preserving grid: consistent for our LR ...
    blocks = sitk.GetArrayFromImage(lr).repeat(4, 0).repeat(4, 1).repeat(4, 2)
    assert np.all(np.abs(_com(blocks) - c_hr) < 0.1)
    # ... but a naive LR with origin = HR origin samples the block corners, not their centres.
    naive = sitk.Resample(
        hr, lr.GetSize(), sitk.Transform(), sitk.sitkLinear, hr.GetOrigin(),
        lr.GetSpacing(), hr.GetDirection(), 0.0, sitk.sitkFloat32,
    )  # fmt: skip
    naive_on_fov_grid = sitk.GetImageFromArray(sitk.GetArrayFromImage(naive))
    naive_on_fov_grid.CopyInformation(lr)
    shift = _com(sitk.GetArrayFromImage(regrid(naive_on_fov_grid, hr, "bspline"))) - c_hr
    np.testing.assert_allclose(shift, 1.5, atol=0.1)  # (f - 1) / 2 HR voxels on every axis


def test_prostate_preset() -> None:
    assert PRESETS["prostate"] == (3, 3, 2)
    arr = np.random.default_rng(0).random((12, 30, 30)).astype(np.float32)
    hr = sitk.GetImageFromArray(arr)
    hr.SetSpacing((0.66, 0.66, 1.5))
    lr = downsample(hr, "prostate")
    np.testing.assert_allclose(lr.GetSpacing(), (1.98, 1.98, 3.0))
    assert lr.GetSize() == (10, 10, 6)
    out = degrade(hr, "prostate", regrid_method="bspline")
    assert same_grid(out, hr) and out.GetSize() == hr.GetSize()
    with pytest.raises(ValueError, match="unknown degradation preset"):
        degrade(hr, "knee")


def test_regrid_returns_hr_grid_and_methods_differ() -> None:
    hr = _blobs(seed=2)
    nearest = degrade(hr, "brain-4x")
    bspline = degrade(hr, "brain-4x", regrid_method="bspline")
    for out in (nearest, bspline):
        assert out.GetSize() == hr.GetSize()
        assert out.GetSpacing() == hr.GetSpacing()
        assert out.GetOrigin() == hr.GetOrigin()
        assert out.GetDirection() == hr.GetDirection()
        assert out.GetPixelID() == sitk.sitkFloat32
    a, b = sitk.GetArrayFromImage(nearest), sitk.GetArrayFromImage(bspline)
    assert np.abs(a - b).max() > 1e-2
    # nearest: every value comes from the LR image, in blocks of 4 voxels
    lr_vals = np.unique(sitk.GetArrayFromImage(downsample(hr, 4)))
    assert np.isin(np.unique(a), lr_vals).all()
    np.testing.assert_array_equal(a[:4, :4, :4], a[0, 0, 0])


def test_outside_lr_fov_takes_edge_value() -> None:
    # 10 is not a multiple of 4: the last 2 HR voxels per axis lie outside the LR FOV
    arr = np.arange(10, dtype=np.float32)[None, None, :].repeat(10, 0).repeat(10, 1) + 5
    hr = sitk.GetImageFromArray(arr)
    lr = downsample(hr, 4)
    assert lr.GetSize() == (2, 2, 2)
    edge = sitk.GetArrayFromImage(lr)[0, 0, -1]  # the LR voxel centred at HR x = 5.5
    assert edge == pytest.approx(10.5)
    for method in ("nearest", "linear", "bspline"):
        out = sitk.GetArrayFromImage(regrid(lr, hr, method))
        assert out.min() > 5.0, method  # never the 0 of a default pixel value
        np.testing.assert_allclose(out[..., 8:], edge, atol=1e-4)  # nearest edge value


def _stripes(period: float, n: int = 96, spacing: float = 0.5) -> sitk.Image:
    """cos(2 pi x / period) along x (``period`` in HR voxels) on an n x 6 x 4 volume."""
    x = np.arange(n, dtype=np.float64)
    arr = np.cos(2 * np.pi * x / period)[None, None, :].repeat(4, 0).repeat(6, 1)
    img = sitk.GetImageFromArray(arr.astype(np.float32))
    img.SetSpacing((spacing, 0.7, 1.3))
    return img


def _amplitude(lr: sitk.Image, period: float, f: float) -> tuple[float, float]:
    """Least-squares (cos, sin) amplitudes of the LR profile along x at the HR frequency, away
    from the ends; LR voxel j is centred on HR index (f - 1) / 2 + f j."""
    prof = sitk.GetArrayFromImage(lr)[1, 2].astype(np.float64)
    xs = (f - 1) / 2 + f * np.arange(prof.size)
    basis = np.stack([np.cos(2 * np.pi * xs / period), np.sin(2 * np.pi * xs / period)], 1)
    mid = slice(4, -4)
    if np.abs(basis[:, 1]).max() < 1e-9:  # the HR Nyquist frequency sampled on HR voxels
        return float(np.dot(basis[mid, 0], prof[mid]) / np.dot(basis[mid, 0], basis[mid, 0])), 0.0
    coef, *_ = np.linalg.lstsq(basis[mid], prof[mid], rcond=None)
    return float(coef[0]), float(coef[1])


def test_degradations_are_named_and_bad_names_are_one_line_errors() -> None:
    assert list(DEGRADATIONS)[:2] == ["resample", "acquisition"]
    assert "acquisition-kspace" in DEGRADATIONS
    assert tuple(DEGRADATIONS) == DEGRADATION_NAMES  # what a config accepts
    assert resolve_degradation(None) == "resample"  # an older config or checkpoint
    assert resolve_degradation("resample", antialias=True) == "acquisition"  # the old spelling
    assert resolve_degradation("acquisition", antialias=False) == "acquisition"
    assert degradation_of({"preset": "brain-4x"}) == "resample"
    assert degradation_of({"antialias": True}) == "acquisition"
    assert degradation_of({"degradation": "acquisition"}) == "acquisition"
    hr = _blobs()
    bad = [
        (lambda: downsample(hr, 4, degradation="blur"), "unknown degradation 'blur'; use one of"),
        (lambda: degrade(hr, 4, degradation="Acquisition"), "unknown degradation"),
        (
            lambda: downsample(hr, 4, degradation="acquisition-kspace", antialias=True),
            "contradicts",
        ),
        (lambda: downsample(hr, 4, noise_sd=1.0), "'resample' has no noise model"),
        (lambda: downsample(hr, 4, degradation="acquisition", noise_sd=-1.0), "noise_sd"),
        (lambda: kspace_window(8, 1.0, 2.0, tukey_alpha=2.0), "tukey_alpha"),
        (lambda: downsample(hr, 4, degradation="acquisition-kspace", interpolator="x"), "interp"),
    ]
    for call, text in bad:
        with pytest.raises(ValueError, match=text) as info:
            call()
        assert "\n" not in str(info.value)


def test_constant_stays_constant_under_every_degradation() -> None:
    arr = np.full((12, 20, 24), 7.25, dtype=np.float32)
    hr = sitk.GetImageFromArray(arr)
    hr.SetSpacing((0.8, 1.1, 2.0))
    hr.SetOrigin((5.0, -7.0, 3.0))
    hr.SetDirection(_direction().ravel().tolist())
    for name in DEGRADATIONS:
        for factors in ((3, 2, 2), "brain-4x", (2.5, 1, 1.5)):
            lr = downsample(hr, factors, degradation=name)
            assert same_grid(lr, lr_grid(hr, factors), tol=1e-9), (name, factors)
            np.testing.assert_allclose(sitk.GetArrayFromImage(lr), 7.25, atol=1e-4)
        out = sitk.GetArrayFromImage(
            degrade(hr, (3, 2, 2), degradation=name, regrid_method="bspline")
        )
        np.testing.assert_allclose(out, 7.25, atol=1e-4)


def test_acquisition_attenuates_by_the_gaussian_transfer_while_resample_aliases() -> None:
    """f = 3 along x: LR centres sit on HR voxels 1, 4, 7, ... A Gaussian of sigma (mm) passes
    frequency k (cycles/mm) with the factor exp(-2 pi^2 sigma^2 k^2); at the HR Nyquist frequency
    that is < 1e-3, while point sampling keeps the stripes at full amplitude (aliased to the LR
    Nyquist frequency)."""
    f, s = 3, 0.5
    sigma = antialias_sigmas((s,), (f,))[0]
    # total FWHM (this Gaussian with the HR voxel's FWHM = s, in quadrature) = the LR voxel
    assert np.hypot(sigma * 2 * np.sqrt(2 * np.log(2)), s) == pytest.approx(f * s)
    for period in (2, 4, 5, 8, 10, 12):
        hr = _stripes(period, spacing=s)
        expected = np.exp(-2 * np.pi**2 * sigma**2 / (period * s) ** 2)
        plain, _ = _amplitude(downsample(hr, (f, 1, 1)), period, f)
        acq, acq_sin = _amplitude(downsample(hr, (f, 1, 1), degradation="acquisition"), period, f)
        assert plain == pytest.approx(1.0, abs=1e-4), period  # nothing is averaged away
        assert acq == pytest.approx(expected, abs=6e-3), period
        assert abs(acq_sin) < 1e-3  # no shift
        if period == 2:  # the HR Nyquist frequency
            assert expected < 1e-3 and abs(acq) < 3e-3
            lr = sitk.GetArrayFromImage(downsample(hr, (f, 1, 1)))[1, 2]
            np.testing.assert_allclose(lr[:6], [-1, 1, -1, 1, -1, 1], atol=1e-5)  # aliased


def test_kspace_passes_exactly_the_window_of_the_lr_extent() -> None:
    """Frequencies on DFT bins come out scaled by the Tukey window and evaluated exactly at the
    LR centres, also between HR voxels (f = 2) and for a non-integer factor."""
    s, n = 0.5, 96
    for f, alpha, period, weight in [
        (3, 0.5, 12, 1.0),  # k = k_c / 2 = (1 - alpha) k_c: the flat top
        (3, 0.5, 8, 0.5),  # k = 3/4 k_c: half-way down the cosine taper
        (3, 0.5, 6, 0.0),  # k = k_c
        (3, 0.5, 2, 0.0),  # the HR Nyquist frequency
        (3, 0.0, 8, 1.0),  # a sharp cut keeps everything below k_c ...
        (3, 0.0, 6, 0.5),  # ... and half of a bin exactly at k_c
        (3, 1.0, 12, 0.5),  # Hann: cos^2(pi k / (2 k_c)) at k_c / 2
        (2, 0.5, 12, 1.0),  # LR centres half-way between HR voxels
        (2, 0.5, 6, 0.75),  # k = 2/3 k_c: (1 + cos(pi / 3)) / 2
        (1.5, 0.5, 16, 1.0),  # k_c = 1 / (3 s): 1/16 voxel^-1 < (1 - alpha) k_c
    ]:
        hr = _stripes(period, n=n, spacing=s)
        k = 1.0 / (period * s)
        w = kspace_window(n, s, f, alpha)
        assert w[int(round(k * n * s))] == pytest.approx(weight, abs=1e-12)
        lr = kspace_lr(hr, (f, 1, 1), tukey_alpha=alpha)
        if alpha == 0.5:  # the default of the named degradation
            named = downsample(hr, (f, 1, 1), degradation="acquisition-kspace")
            assert sitk.GetArrayFromImage(named).tobytes() == sitk.GetArrayFromImage(lr).tobytes()
        # the whole LR profile is the weighted sinusoid at the LR centres, ends included
        prof = sitk.GetArrayFromImage(lr)[1, 2]
        xs = (f - 1) / 2 + f * np.arange(prof.size)
        assert prof.size == int(n // f)
        np.testing.assert_allclose(
            prof, weight * np.cos(2 * np.pi * xs / period), atol=2e-6, err_msg=str((f, alpha))
        )


def test_acquisition_noise_sd_matches_the_closed_form() -> None:
    """Monte Carlo: the LR noise SD is the HR-voxel SD / sqrt(LR voxel volume / HR voxel
    volume), for the Gaussian and the k-space model; noise_sd = 0 adds nothing."""
    arr = np.full((32, 48, 64), 100.0, dtype=np.float32)
    hr = sitk.GetImageFromArray(arr)
    hr.SetSpacing((0.8, 0.8, 1.6))
    sd_hr = 2.0
    for factors in ((4, 4, 2), (2, 1, 1)):
        expected = sd_hr / np.sqrt(np.prod(factors))
        assert lr_noise_sd(sd_hr, factors) == pytest.approx(expected)
        for name in ("acquisition", "acquisition-kspace"):
            noise = np.concatenate(
                [
                    sitk.GetArrayFromImage(
                        downsample(hr, factors, degradation=name, noise_sd=sd_hr, seed=seed)
                    ).ravel()
                    - 100.0
                    for seed in range(4)
                ]
            )
            assert noise.size >= 12288  # SD known to ~0.6 %: 3 % is a 4.7-sigma bound
            assert noise.std() == pytest.approx(expected, rel=0.03), (name, factors)
            assert abs(noise.mean()) < 4 * expected / np.sqrt(noise.size)
    # reproducible for a seed, different for another, bitwise noiseless at 0
    one = downsample(hr, 4, degradation="acquisition", noise_sd=1.0, seed=7)
    two = downsample(hr, 4, degradation="acquisition", noise_sd=1.0, seed=7)
    other = downsample(hr, 4, degradation="acquisition", noise_sd=1.0, seed=8)
    assert np.array_equal(sitk.GetArrayFromImage(one), sitk.GetArrayFromImage(two))
    assert not np.array_equal(sitk.GetArrayFromImage(one), sitk.GetArrayFromImage(other))
    quiet = downsample(hr, 4, degradation="acquisition", noise_sd=0.0)
    default = downsample(hr, 4, degradation="acquisition")
    assert sitk.GetArrayFromImage(quiet).tobytes() == sitk.GetArrayFromImage(default).tobytes()
    assert (sitk.GetArrayFromImage(quiet) == 100.0).all()


def _frozen_gaussian_path(img: sitk.Image, f: np.ndarray) -> sitk.Image:
    """The LR of ``downsample(img, f, antialias=True)`` before the degradations were named (the
    code that produced the training data of the ``acquisition-cpu`` model), kept verbatim."""
    src = sitk.Cast(img, sitk.sitkFloat32)
    spacing = np.asarray(img.GetSpacing(), dtype=np.float64)
    sigmas = spacing * np.sqrt(np.maximum(f**2 - 1.0, 0.0)) / (2.0 * np.sqrt(2.0 * np.log(2.0)))
    for axis, sigma in enumerate(sigmas):
        if sigma <= 0:
            continue
        if src.GetSize()[axis] >= 4:
            order = sitk.RecursiveGaussianImageFilter.ZeroOrder
            src = sitk.RecursiveGaussian(src, float(sigma), False, order, axis)
        else:
            var = [0.0] * img.GetDimension()
            var[axis] = float(sigma) ** 2
            src = sitk.DiscreteGaussian(src, var, 32, 0.001, True)
    size = np.asarray(img.GetSize())
    direction = np.asarray(img.GetDirection()).reshape(3, 3)
    lr_size = np.maximum(1, np.floor(size / f + 1e-9)).astype(np.int64)
    lr_origin = np.asarray(img.GetOrigin()) + direction @ ((f - 1.0) / 2.0 * spacing)
    return sitk.Resample(
        src, [int(v) for v in lr_size], sitk.Transform(), sitk.sitkLinear, lr_origin.tolist(),
        (spacing * f).tolist(), img.GetDirection(), float(sitk.GetArrayViewFromImage(src).min()),
        sitk.sitkFloat32, True,
    )  # fmt: skip


def test_acquisition_default_is_bitwise_the_old_gaussian_path() -> None:
    """A model trained on ``data.degradation: acquisition`` saw exactly this LR: the default
    acquisition (no noise) must stay bitwise equal to the former ``antialias=True`` output."""
    thin = sitk.GetImageFromArray(np.random.default_rng(3).random((3, 30, 28)).astype(np.float32))
    thin.SetSpacing((0.7, 0.7, 2.0))  # z has < 4 voxels: the DiscreteGaussian branch
    for hr, factors in [(_blobs(), "brain-4x"), (_blobs(4), "prostate"), (thin, (2, 3, 2))]:
        f = np.asarray(PRESETS[factors] if isinstance(factors, str) else factors, float)
        ref = sitk.GetArrayFromImage(_frozen_gaussian_path(hr, f))
        for kw in ({"degradation": "acquisition"}, {"antialias": True}, {"noise_sd": 0.0}):
            kw = {"degradation": "acquisition", **kw}
            lr = downsample(hr, factors, **kw)
            assert same_grid(lr, lr_grid(hr, factors), tol=0.0)
            assert sitk.GetArrayFromImage(lr).tobytes() == ref.tobytes(), (factors, kw)
        up = degrade(hr, factors, regrid_method="bspline", degradation="acquisition")
        ref_img = sitk.GetImageFromArray(ref)
        ref_img.CopyInformation(lr_grid(hr, factors))
        old_up = regrid(ref_img, hr, "bspline")
        assert sitk.GetArrayFromImage(up).tobytes() == sitk.GetArrayFromImage(old_up).tobytes()
        # and the paper's resample is plain linear sampling, also unchanged
        plain = sitk.Resample(
            sitk.Cast(hr, sitk.sitkFloat32), lr_grid(hr, factors), sitk.Transform(),
            sitk.sitkLinear, float(sitk.GetArrayViewFromImage(hr).min()), sitk.sitkFloat32, True,
        )  # fmt: skip
        got = sitk.GetArrayFromImage(downsample(hr, factors, antialias=False))
        assert got.tobytes() == sitk.GetArrayFromImage(plain).tobytes()


def test_grid_checks_name_both_files() -> None:
    a = _blobs()
    b = downsample(a, 2)
    assert same_grid(a, a) and not same_grid(a, b)
    check_same_grid(a, a, ("hr.nii.gz", "lr.nii.gz"))
    with pytest.raises(VolumeError, match="hr.nii.gz and lr.nii.gz: grids differ"):
        check_same_grid(a, b, ("hr.nii.gz", "lr.nii.gz"))
    moved = sitk.Image(a)
    moved.SetOrigin(tuple(np.asarray(a.GetOrigin()) + 0.01))
    assert not same_grid(a, moved)
