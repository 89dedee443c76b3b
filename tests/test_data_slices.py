"""Normalisation, slicing, patch/slice datasets and the ICBM152 demo pairs."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from ressrdiff.data.intensity import invert, minmax_slices, robust_volume
from ressrdiff.data.slices import (
    PairedSlices,
    PatchDataset,
    SliceDataset,
    drop_empty,
    image_axis_to_numpy,
    volume_to_slices,
)
from ressrdiff.data.sources import demo_pairs, icbm152_path


def test_minmax_slices_inverse_is_exact() -> None:
    x = np.random.default_rng(0).normal(300, 80, (6, 9, 11)).astype(np.float32)
    x[:, 2] = 42.0  # a constant slice along axis 1
    for axis in (0, 1, 2):
        y, params = minmax_slices(x, axis)
        assert y.dtype == np.float32 and np.isfinite(y).all()
        assert y.min() == -1.0 and y.max() == 1.0
        other = tuple(i for i in range(3) if i != axis)
        np.testing.assert_allclose(y.min(axis=other), -1.0)
        np.testing.assert_allclose(invert(y, params), x, rtol=1e-5, atol=1e-5)
    y, params = minmax_slices(x, 1)
    np.testing.assert_array_equal(y[:, 2], -1.0)  # constant slice: -1, no NaN
    sub = params.select([2, 4])
    np.testing.assert_allclose(invert(y[:, [2, 4]], sub), x[:, [2, 4]], rtol=1e-5, atol=1e-5)


def test_robust_volume_percentiles_and_inverse() -> None:
    rng = np.random.default_rng(1)
    x = rng.gamma(2.0, 50.0, (8, 20, 20))
    y, params = robust_volume(x, 0.5, 99.5)
    p_lo, p_hi = np.percentile(x, [0.5, 99.5])
    assert params.lo == pytest.approx(p_lo) and params.hi == pytest.approx(p_hi)
    assert y.min() == -1.0 and y.max() == 1.0
    inside = (x > p_lo) & (x < p_hi)
    np.testing.assert_allclose(invert(y, params)[inside], x[inside], rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(invert(np.array([-1.0, 1.0]), params), [p_lo, p_hi])

    mask = np.zeros_like(x, dtype=bool)
    mask[:, 5:15, 5:15] = True
    _, masked = robust_volume(x, mask=mask)
    assert masked.lo == pytest.approx(np.percentile(x, 0.5))  # background level: whole volume
    assert masked.hi == pytest.approx(np.percentile(x[mask], 99.5))

    y_const, _ = robust_volume(np.full((3, 4, 5), 7.0))
    assert np.isfinite(y_const).all() and (y_const == -1).all()


def test_volume_to_slices_and_drop_empty() -> None:
    vol = np.zeros((5, 6, 7), dtype=np.float32)  # numpy (z, y, x)
    vol[1:4, 1:5, 1:6] = 10.0
    vol[1, 1, 1] = 11.0
    assert volume_to_slices(vol, 0).shape == (5, 6, 7)
    assert volume_to_slices(vol, 2).shape == (7, 5, 6)
    np.testing.assert_array_equal(
        volume_to_slices(vol, 1, keep=[3, 1]), vol[:, [3, 1]].swapaxes(0, 1)
    )
    assert image_axis_to_numpy(2) == 0 and image_axis_to_numpy(0) == 2

    kept_slices, kept = drop_empty(volume_to_slices(vol, 0))
    np.testing.assert_array_equal(kept, [1, 2, 3])
    np.testing.assert_array_equal(kept_slices, vol[1:4])
    one_pixel = vol.copy()
    one_pixel[0, 0, 0] = 10.0  # 1 of 42 pixels: below the 5 % foreground fraction
    assert drop_empty(one_pixel)[1].tolist() == [1, 2, 3]
    assert drop_empty(one_pixel, frac=0.01)[1].tolist() == [0, 1, 2, 3]


def _pairs(n: int = 4, h: int = 20, w: int = 24) -> PairedSlices:
    hr = np.random.default_rng(2).uniform(-1, 0, (n, h, w)).astype(np.float32)
    return PairedSlices(hr, hr + 1.0, ["subj"] * n, np.arange(n) * 3)


def test_patch_dataset_is_deterministic_and_aligned() -> None:
    pairs = _pairs()
    ds = PatchDataset(pairs, patch=8, seed=7, augment=True)
    assert len(ds) == 8 * len(pairs)
    assert len(PatchDataset(pairs, patch=8, samples_per_epoch=5)) == 5
    a, b = ds[3], PatchDataset(pairs, patch=8, seed=7, augment=True)[3]
    assert a["hr"].shape == (1, 8, 8) and a["lr"].shape == (1, 8, 8)
    assert a["hr"].dtype == torch.float32
    assert torch.equal(a["hr"], b["hr"]) and torch.equal(a["lr"], b["lr"])
    ds.set_epoch(1)
    assert not torch.equal(ds[3]["hr"], a["hr"])  # new epoch: new crop
    ds.set_epoch(0)
    assert torch.equal(ds[3]["hr"], a["hr"])
    assert not torch.equal(PatchDataset(pairs, patch=8, seed=8)[3]["hr"], a["hr"])
    for i in range(len(ds)):
        item = ds[i]
        torch.testing.assert_close(item["lr"] - item["hr"], torch.ones(1, 8, 8))
    with pytest.raises(IndexError):
        ds[len(ds)]


def test_patch_dataset_covers_augmentations_and_pads() -> None:
    ramp = np.arange(16 * 16, dtype=np.float32).reshape(1, 16, 16)
    ds = PatchDataset((ramp, ramp + 1), patch=16, samples_per_epoch=64, augment=True)
    patterns = {tuple(ds[i]["hr"].flatten()[:3].tolist()) for i in range(len(ds))}
    assert len(patterns) == 8  # 4 rotations x 2 flips of a full-size patch

    small = np.arange(5 * 6, dtype=np.float32).reshape(1, 5, 6)
    ds = PatchDataset((small, small + 1), patch=8, samples_per_epoch=3)
    item = ds[0]
    assert item["hr"].shape == (1, 8, 8)
    hr = item["hr"][0].numpy()
    np.testing.assert_array_equal(hr[:5, :6], small[0])  # the slice itself, then reflections
    np.testing.assert_array_equal(hr[5], small[0, 3, [0, 1, 2, 3, 4, 5, 4, 3]])
    torch.testing.assert_close(item["lr"] - item["hr"], torch.ones(1, 8, 8))


def test_slice_dataset() -> None:
    pairs = _pairs(n=3, h=20, w=22)
    item = SliceDataset(pairs)[1]
    assert item["hr"].shape == (1, 20, 22) and item["index"] == 3 and item["subject"] == "subj"
    padded = SliceDataset(pairs, pad_multiple=8)[1]
    assert padded["hr"].shape == (1, 24, 24) and padded["size"].tolist() == [20, 22]
    torch.testing.assert_close(padded["hr"][..., :20, :22], item["hr"])
    batch = next(iter(torch.utils.data.DataLoader(SliceDataset(pairs), batch_size=3)))
    assert batch["hr"].shape == (3, 1, 20, 22)


def test_paired_slices_validates_shapes() -> None:
    with pytest.raises(ValueError, match="must be equal"):
        PairedSlices(np.zeros((2, 4, 4)), np.zeros((2, 4, 5)), ["a"], [0, 1])
    with pytest.raises(ValueError, match="subject ids"):
        PairedSlices(np.zeros((2, 4, 4)), np.zeros((2, 4, 4)), ["a", "b", "c"], [0, 1])


def test_demo_pairs_split_is_honest() -> None:
    assert icbm152_path().is_file()
    demo = demo_pairs()
    train, test, info = demo["train"], demo["test"], demo["info"]
    assert len(train) > 50 and len(test) > 10
    assert train.hr.shape[1:] == (233, 197)  # axial slices (y, x) of the 197 x 233 x 189 volume
    gaps = np.abs(test.index[:, None] - train.index[None, :])
    assert gaps.min() > 8  # no test slice within 8 slices of a training slice
    for part in (train, test):
        assert part.hr.shape == part.lr.shape and part.hr.dtype == np.float32
        for arr in (part.hr, part.lr):
            assert arr.min() >= -1.0 and arr.max() <= 1.0
        assert set(part.subject) == {"icbm152_2009a_sym"}
    assert not np.allclose(train.hr, train.lr)
    assert "DEMO" in info["label"] and info["factors_xyz"] == (4.0, 4.0, 4.0)
    # the stored slice ranges map normalised HR back to the template's own voxels
    template = sitk.GetArrayFromImage(sitk.ReadImage(str(icbm152_path())))  # (z, y, x)
    rows = [0, len(test) - 1]
    units = test.to_units("hr", test.hr[rows], rows=rows)
    np.testing.assert_allclose(units, template[test.index[rows]], atol=1e-3)
