"""Volume and slice I/O: round trips, DICOM series, one-line errors, atomic writes."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from ressrdiff.atomic import WriteError
from ressrdiff.data.io import (
    VolumeError,
    read_slice_2d,
    read_volume,
    write_slice_2d,
    write_volume,
)


def _rotation(theta: float = 0.3, phi: float = 0.2) -> np.ndarray:
    rz = np.array(
        [[np.cos(theta), -np.sin(theta), 0], [np.sin(theta), np.cos(theta), 0], [0, 0, 1]]
    )
    rx = np.array([[1, 0, 0], [0, np.cos(phi), -np.sin(phi)], [0, np.sin(phi), np.cos(phi)]])
    return rz @ rx


def _volume(shape=(5, 6, 7), dtype=np.float32, seed: int = 0) -> sitk.Image:
    """A small random volume (numpy shape z, y, x) with a non-identity geometry."""
    arr = (np.random.default_rng(seed).random(shape) * 1000).astype(dtype)
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing((0.5, 0.75, 1.5))
    img.SetOrigin((10.0, -20.5, 30.25))
    img.SetDirection(_rotation().ravel().tolist())
    return img


def _assert_same(a: sitk.Image, b: sitk.Image) -> None:
    np.testing.assert_array_equal(sitk.GetArrayFromImage(a), sitk.GetArrayFromImage(b))
    np.testing.assert_allclose(a.GetSpacing(), b.GetSpacing(), atol=1e-6)
    np.testing.assert_allclose(a.GetOrigin(), b.GetOrigin(), atol=1e-5)
    np.testing.assert_allclose(a.GetDirection(), b.GetDirection(), atol=1e-6)


@pytest.mark.parametrize("suffix", [".nii.gz", ".nii", ".mha", ".nrrd"])
def test_round_trip_keeps_voxels_and_geometry(tmp_path: Path, suffix: str) -> None:
    img = _volume()
    out = write_volume(img, tmp_path / f"vol{suffix}")
    assert out.name == f"vol{suffix}"
    _assert_same(img, read_volume(out))
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"vol{suffix}"]  # no temp files


def test_dicom_series_folder(tmp_path: Path) -> None:
    img = _volume(dtype=np.int16)
    direction = np.asarray(img.GetDirection()).reshape(3, 3)
    series = "1.2.826.0.1.3680043.2.1125.1.424242"
    folder = tmp_path / "series"
    folder.mkdir()
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    for k in range(img.GetDepth()):
        sl = img[:, :, k]
        tags = {
            "0008|0060": "MR",
            "0020|000d": series + ".0",
            "0020|000e": series,
            "0020|0037": "\\".join(str(v) for v in [*direction[:, 0], *direction[:, 1]]),
            "0020|0032": "\\".join(str(v) for v in img.TransformIndexToPhysicalPoint((0, 0, k))),
            "0020|0013": str(k + 1),
        }
        for key, val in tags.items():
            sl.SetMetaData(key, val)
        writer.SetFileName(str(folder / f"{k:03d}.dcm"))
        writer.Execute(sl)
    _assert_same(img, read_volume(folder))


def test_empty_folder_is_not_a_series(tmp_path: Path) -> None:
    with pytest.raises(VolumeError, match="no DICOM series"):
        read_volume(tmp_path)


def _error(path: Path, **kw) -> str:
    with pytest.raises(VolumeError) as info:
        read_volume(path, **kw)
    msg = str(info.value)
    assert path.name in msg and "\n" not in msg
    return msg


def test_bad_inputs_name_the_file(tmp_path: Path) -> None:
    assert "not found" in _error(tmp_path / "missing.nii.gz")

    garbage = tmp_path / "garbage.nii.gz"
    garbage.write_bytes(np.random.default_rng(0).bytes(700))
    assert "corrupt" in _error(garbage)

    good = tmp_path / "good.nii.gz"
    sitk.WriteImage(_volume(), str(good))
    blob = good.read_bytes()
    truncated = tmp_path / "truncated.nii.gz"
    truncated.write_bytes(blob[: len(blob) - 20])
    assert "truncated" in _error(truncated)

    plain = tmp_path / "plain.nii"
    sitk.WriteImage(_volume(), str(plain))
    cut = tmp_path / "cut.nii"
    cut.write_bytes(plain.read_bytes()[:-100])
    assert "truncated" in _error(cut)

    cut_mha = tmp_path / "cut.mha"
    sitk.WriteImage(_volume(), str(cut_mha), False)
    cut_mha.write_bytes(cut_mha.read_bytes()[:-100])
    _error(cut_mha)

    flat = tmp_path / "flat.nii.gz"
    sitk.WriteImage(sitk.GetImageFromArray(np.random.default_rng(1).random((6, 7))), str(flat))
    assert "2-D" in _error(flat)
    assert read_volume(flat, ndim=None).GetDimension() == 2

    four = tmp_path / "four.nii.gz"
    arr4 = np.random.default_rng(2).random((3, 4, 5, 6)).astype(np.float32)
    sitk.WriteImage(sitk.GetImageFromArray(arr4, isVector=False), str(four))
    assert "4-D" in _error(four)

    for suffix in (".nii.gz", ".mha"):
        arr = sitk.GetArrayFromImage(_volume())
        arr[0, 0, : 12 // 2] = np.nan
        arr[1, 1, 1] = np.inf
        nan = tmp_path / f"nan{suffix}"
        sitk.WriteImage(sitk.GetImageFromArray(arr), str(nan))
        assert f"{nan}: contains 6 NaN voxels and 1 Inf voxels" == _error(nan)

    const = tmp_path / "const.nrrd"
    sitk.WriteImage(sitk.GetImageFromArray(np.full((4, 5, 6), 7, np.int16)), str(const))
    assert "constant" in _error(const)
    # allowed on request (a mask covering every voxel), other checks still apply
    assert read_volume(const, allow_constant=True).GetSize() == (6, 5, 4)

    empty = tmp_path / "empty.mha"
    empty.touch()
    assert "empty" in _error(empty)


def test_single_frame_4d_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "oneframe.nii.gz"
    arr = np.random.default_rng(3).random((1, 4, 5, 6)).astype(np.float32)
    sitk.WriteImage(sitk.GetImageFromArray(arr, isVector=False), str(path))
    img = read_volume(path)
    assert img.GetSize() == (6, 5, 4)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(img), arr[0])


def test_write_refuses_inputs_and_missing_folders(tmp_path: Path) -> None:
    img = _volume()
    src = write_volume(img, tmp_path / "in.nii.gz")
    before = src.read_bytes()
    alias = tmp_path / "sub" / ".." / "in.nii.gz"
    (tmp_path / "sub").mkdir()
    with pytest.raises(VolumeError, match="refusing to overwrite an input") as info:
        write_volume(_volume(seed=5), alias, refuse=[src])
    assert "in.nii.gz" in str(info.value)
    assert src.read_bytes() == before

    with pytest.raises(VolumeError, match="does not exist"):
        write_volume(img, tmp_path / "nowhere" / "out.nii.gz")
    with pytest.raises(VolumeError, match="cannot write suffix"):
        write_volume(img, tmp_path / "out.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.nii.gz", "sub"]


def test_failed_write_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = write_volume(_volume(), tmp_path / "out.mha")
    before = target.read_bytes()

    def broken_writer(img: sitk.Image, path: str, *args: object, **kw: object) -> None:
        Path(path).write_bytes(b"partial")  # the writer got half-way, then failed
        raise RuntimeError("sitk::ERROR: disk full")

    monkeypatch.setattr(sitk, "WriteImage", broken_writer)
    with pytest.raises(WriteError, match="out.mha: write failed: disk full"):
        write_volume(_volume(seed=1), target)
    assert [p.name for p in tmp_path.iterdir()] == ["out.mha"]
    assert target.read_bytes() == before  # the old file is untouched

    (tmp_path / "taken.nii.gz").mkdir()
    with pytest.raises(VolumeError, match="is a folder"):
        write_volume(_volume(), tmp_path / "taken.nii.gz")


def test_unwritable_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    if os.geteuid() == 0:  # root ignores permission bits: make the check see a read-only folder
        monkeypatch.setattr(os, "access", lambda *args, **kw: False)
    try:
        with pytest.raises(VolumeError, match="ro/out.nii.gz: output folder .* is not writable"):
            write_volume(_volume(), folder / "out.nii.gz")
    finally:
        folder.chmod(0o700)
    assert list(folder.iterdir()) == []


def test_slice_2d_formats(tmp_path: Path) -> None:
    arr = np.random.default_rng(4).random((9, 11)).astype(np.float32) * 50 - 10
    for suffix in (".npy", ".nii.gz", ".mha"):
        path = write_slice_2d(arr, tmp_path / f"s{suffix}")
        got = read_slice_2d(path)
        assert got.dtype == np.float32 and got.shape == (9, 11)
        np.testing.assert_array_equal(got, arr)
    png = read_slice_2d(write_slice_2d(arr, tmp_path / "s.png"))  # lossy: uint8 after min-max
    assert png.shape == (9, 11) and png.min() == 0 and png.max() == 255
    np.testing.assert_allclose(png / 255, (arr - arr.min()) / np.ptp(arr), atol=0.5 / 255 + 1e-6)

    np.save(tmp_path / "one.npy", arr[None])  # singleton axis is squeezed
    np.testing.assert_array_equal(read_slice_2d(tmp_path / "one.npy"), arr)
    sitk.WriteImage(sitk.GetImageFromArray(arr[None]), str(tmp_path / "one.nii.gz"))
    np.testing.assert_array_equal(read_slice_2d(tmp_path / "one.nii.gz"), arr)


def test_slice_2d_errors(tmp_path: Path) -> None:
    cases = {
        "vol.npy": np.random.default_rng(5).random((2, 3, 4)),
        "nan.npy": np.where(np.eye(4) > 0, np.nan, 1.0),
        "const.npy": np.zeros((4, 4)),
    }
    for name, arr in cases.items():
        np.save(tmp_path / name, arr)
    (tmp_path / "bad.npy").write_bytes(b"not numpy at all")
    (tmp_path / "bad.png").write_bytes(b"\x89PNG garbage")
    expected = {
        "vol.npy": "not a 2-D slice",
        "nan.npy": "contains 4 NaN voxels",
        "const.npy": "constant",
        "bad.npy": "not a readable slice",
        "bad.png": "not a readable slice",
        "missing.npy": "not found",
    }
    for name, text in expected.items():
        with pytest.raises(VolumeError, match=text) as info:
            read_slice_2d(tmp_path / name)
        assert name in str(info.value)
    with pytest.raises(ValueError):
        write_slice_2d(np.zeros((2, 2, 2)), tmp_path / "x.npy")
