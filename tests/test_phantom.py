"""The synthetic pelvis phantom of chapter 4: grid, determinism, contrast, the prostate preset."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from ressrdiff.data.degrade import downsample
from ressrdiff.data.phantom import (
    PELVIS_TISSUES,
    PROSTATE_SPACING,
    pelvis_labels,
    synthetic_pelvis,
)

SIZE = (72, 60, 12)  # x, y, z: multiples of the prostate factors (3, 3, 2)


@pytest.fixture(scope="module")
def phantom() -> sitk.Image:
    return synthetic_pelvis(SIZE, seed=3)


def test_grid_is_the_paper_prostate_grid(phantom: sitk.Image):
    assert PROSTATE_SPACING == (0.66, 0.66, 1.5)
    assert phantom.GetSize() == SIZE
    assert phantom.GetSpacing() == pytest.approx(PROSTATE_SPACING)
    assert phantom.GetOrigin() == (0.0, 0.0, 0.0)
    assert phantom.GetPixelID() == sitk.sitkFloat32
    arr = sitk.GetArrayFromImage(phantom)
    assert arr.shape == SIZE[::-1] and arr.min() >= 0 and np.isfinite(arr).all()


def test_same_seed_same_volume_other_seed_other_volume(phantom: sitk.Image):
    a = sitk.GetArrayFromImage(phantom)
    assert np.array_equal(a, sitk.GetArrayFromImage(synthetic_pelvis(SIZE, seed=3)))
    assert not np.array_equal(a, sitk.GetArrayFromImage(synthetic_pelvis(SIZE, seed=4)))
    assert np.array_equal(pelvis_labels(SIZE, seed=3), pelvis_labels(SIZE, seed=3))


def test_tissues_have_their_designed_t2w_contrast(phantom: sitk.Image):
    arr = sitk.GetArrayFromImage(phantom)
    labels = pelvis_labels(SIZE, seed=3)
    assert labels.shape == arr.shape
    means = {}
    for k, name in enumerate(PELVIS_TISSUES, start=1):
        inside = labels == k
        assert inside.sum() >= 10, f"{name}: {inside.sum()} voxels"
        means[name] = float(arr[inside].mean())
        # texture (15 %) and noise keep each tissue near its designed level (x 1000)
        assert means[name] == pytest.approx(1000 * PELVIS_TISSUES[name], rel=0.1), name
    air = float(arr[labels == 0].mean())
    assert air < 0.05 * means["rectal lumen"]  # air is (noise clipped at 0) nearly black
    assert means["bladder"] > means["fat"] > means["peripheral zone"] > means["gland"]
    assert means["gland"] > means["muscle"] > means["rectal wall"] > means["rectal lumen"]
    # anatomy: the peripheral zone lies posterior (lower y) of the gland's centre, the rectum
    # posterior of both, the bladder anterior and superior
    centre = {
        name: np.argwhere(labels == k).mean(axis=0)  # (z, y, x)
        for k, name in enumerate(PELVIS_TISSUES, start=1)
    }
    assert centre["peripheral zone"][1] < centre["gland"][1]
    assert centre["rectal lumen"][1] < centre["peripheral zone"][1]
    assert centre["bladder"][1] > centre["gland"][1] and centre["bladder"][0] > centre["gland"][0]


def test_prostate_preset_gives_the_2x2x3_mm_grid(phantom: sitk.Image):
    lr = downsample(phantom, "prostate")
    assert lr.GetSpacing() == pytest.approx((1.98, 1.98, 3.0))
    assert lr.GetSize() == (SIZE[0] // 3, SIZE[1] // 3, SIZE[2] // 2)
    # the field of view is kept: both grids span the same physical extent
    hr_extent = np.multiply(phantom.GetSize(), phantom.GetSpacing())
    lr_extent = np.multiply(lr.GetSize(), lr.GetSpacing())
    assert lr_extent == pytest.approx(hr_extent)


def test_bad_grids_are_refused():
    with pytest.raises(ValueError, match="size_xyz"):
        synthetic_pelvis((10, 10, 1))
    with pytest.raises(ValueError, match="spacing"):
        synthetic_pelvis((10, 10, 4), spacing=(0.66, 0.0, 1.5))
