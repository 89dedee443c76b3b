"""Foreground masks: Otsu on a head-like phantom, checked mask files, mask-based slice selection."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from ressrdiff.data.io import VolumeError, write_volume
from ressrdiff.data.masks import foreground_mask, otsu_mask, read_mask
from ressrdiff.data.slices import drop_empty_masked


def head_phantom(shape_zyx=(36, 44, 40), seed: int = 0) -> tuple[sitk.Image, np.ndarray]:
    """A noisy 'head': bright scalp/skull shell, grey brain, dark ventricles (CSF), noisy air.

    Returns the image and the true head (the whole ellipsoid, ventricles included).
    """
    rng = np.random.default_rng(seed)
    z, y, x = np.meshgrid(*[np.arange(n) - (n - 1) / 2 for n in shape_zyx], indexing="ij")
    radii = [0.42 * n for n in shape_zyx]
    rr = np.sqrt((z / radii[0]) ** 2 + (y / radii[1]) ** 2 + (x / radii[2]) ** 2)
    head = rr <= 1.0
    arr = np.abs(rng.normal(0.0, 25.0, shape_zyx))  # Rayleigh-like background
    arr[head] = 500.0 + rng.normal(0.0, 30.0, int(head.sum()))
    arr[(rr > 0.85) & head] = 900.0
    ventricles = (z / 4.0) ** 2 + (y / 6.0) ** 2 + (x / 3.0) ** 2 <= 1.0
    arr[ventricles] = 40.0
    img = sitk.GetImageFromArray(arr.astype(np.float32))
    img.SetSpacing((1.0, 1.1, 1.2))
    img.SetOrigin((-20.0, 5.0, 3.0))
    return img, head


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2.0 * float((a & b).sum()) / float(a.sum() + b.sum())


def test_otsu_mask_matches_the_head() -> None:
    img, truth = head_phantom()
    mask = otsu_mask(img)
    arr = sitk.GetArrayFromImage(mask)
    assert mask.GetPixelID() == sitk.sitkUInt8 and set(np.unique(arr)) <= {0, 1}
    assert mask.GetSpacing() == img.GetSpacing() and mask.GetOrigin() == img.GetOrigin()
    assert dice(arr > 0, truth) > 0.9
    z, y, x = (n // 2 for n in truth.shape)
    assert arr[z, y, x] == 1  # the dark ventricles are filled
    assert arr[0, 0, 0] == 0 and arr[-1, -1, -1] == 0  # air stays out


def test_otsu_mask_skull_stripped_and_empty() -> None:
    img, truth = head_phantom(seed=1)
    arr = sitk.GetArrayFromImage(img)
    arr[~truth] = 0.0  # a skull-stripped-like volume: zero background
    stripped = sitk.GetImageFromArray(arr)
    assert dice(sitk.GetArrayFromImage(otsu_mask(stripped)) > 0, truth) > 0.9
    with pytest.raises(VolumeError, match="no foreground"):
        otsu_mask(sitk.Image(8, 8, 8, sitk.sitkFloat32))


def test_mask_file_checks(tmp_path: Path) -> None:
    img, truth = head_phantom()
    good = sitk.GetImageFromArray(truth.astype(np.uint8) * 255)
    good.CopyInformation(img)
    path = write_volume(good, tmp_path / "good_mask.nii.gz")
    got = read_mask(path, img)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(got), truth.astype(np.uint8))

    empty = sitk.Image(good.GetSize(), sitk.sitkUInt8)
    empty.CopyInformation(img)
    empty_path = write_volume(empty, tmp_path / "empty_mask.nii.gz")
    with pytest.raises(VolumeError) as info:
        read_mask(empty_path, img)
    msg = str(info.value)
    assert str(empty_path) in msg and "empty" in msg and "\n" not in msg

    shifted = sitk.Image(good)
    shifted.SetOrigin((0.0, 0.0, 0.0))
    other_path = write_volume(shifted, tmp_path / "other_grid_mask.nii.gz")
    with pytest.raises(VolumeError) as info:
        read_mask(other_path, img, reference_name="t1.nii.gz")
    msg = str(info.value)
    assert str(other_path) in msg and "t1.nii.gz" in msg and "grids differ" in msg
    assert "\n" not in msg

    three = sitk.GetImageFromArray(truth.astype(np.uint8) + (np.arange(truth.shape[2]) > 20))
    three.CopyInformation(img)
    three_path = write_volume(three, tmp_path / "labels.nii.gz")
    with pytest.raises(VolumeError, match="not binary"):
        read_mask(three_path, img)
    with pytest.raises(VolumeError, match="not found"):
        read_mask(tmp_path / "absent.nii.gz", img)

    # a mask covering every voxel (any one positive level) is valid: everything is inside
    full = sitk.Image(good.GetSize(), sitk.sitkUInt8) + 3
    full.CopyInformation(img)
    got = read_mask(write_volume(full, tmp_path / "full_mask.nii.gz"), img)
    assert sitk.GetArrayViewFromImage(got).all() and sitk.GetArrayViewFromImage(got).max() == 1
    negative = sitk.Cast(full, sitk.sitkInt16) * -1
    with pytest.raises(VolumeError, match="not binary"):
        read_mask(write_volume(negative, tmp_path / "negative_mask.nii.gz"), img)


def test_foreground_mask_dispatch(tmp_path: Path) -> None:
    img, truth = head_phantom()
    assert foreground_mask(img, None) is None
    as_image = sitk.GetImageFromArray(truth.astype(np.uint8))
    as_image.CopyInformation(img)
    np.testing.assert_array_equal(
        sitk.GetArrayFromImage(foreground_mask(img, as_image)), truth.astype(np.uint8)
    )
    assert dice(sitk.GetArrayFromImage(foreground_mask(img, "otsu")) > 0, truth) > 0.9
    path = write_volume(as_image, tmp_path / "m.nrrd")
    assert sitk.GetArrayFromImage(foreground_mask(img, path)).sum() == truth.sum()


def test_drop_empty_masked() -> None:
    slices = np.random.default_rng(0).random((4, 10, 10)).astype(np.float32)
    masks = np.zeros((4, 10, 10), dtype=bool)
    masks[1, :5] = True  # 50 %
    masks[2, 0, :3] = True  # 3 %
    masks[3] = True
    kept_slices, kept = drop_empty_masked(slices, masks, frac=0.05)
    assert kept.tolist() == [1, 3]
    np.testing.assert_array_equal(kept_slices, slices[[1, 3]])
    assert drop_empty_masked(slices, masks, frac=0.01)[1].tolist() == [1, 2, 3]
    with pytest.raises(ValueError):
        drop_empty_masked(slices, masks[:2])
