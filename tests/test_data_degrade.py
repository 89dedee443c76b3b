"""The paper's degradation: FOV-preserving LR grid, no systematic shift, presets, re-gridding."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from ressrdiff.data.degrade import (
    PRESETS,
    check_same_grid,
    degrade,
    downsample,
    lr_grid,
    regrid,
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


def test_antialias_suppresses_aliasing() -> None:
    x = np.indices((12, 12, 24))[2]
    stripes = (x % 2).astype(np.float32)  # Nyquist-frequency stripes along x
    hr = sitk.GetImageFromArray(stripes)
    # f = 3: LR centres sit on HR voxels 1, 4, 7, ... and pick up 1, 0, 1, ...
    plain = sitk.GetArrayFromImage(downsample(hr, (3, 1, 1)))
    smooth = sitk.GetArrayFromImage(downsample(hr, (3, 1, 1), antialias=True))
    assert plain.std() > 0.4
    assert smooth.std() < 0.05 and abs(smooth.mean() - 0.5) < 0.05


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
