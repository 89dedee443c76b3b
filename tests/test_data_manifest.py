"""Bring-your-own data: folders and CSV manifests, the subject split, paired LR, the prostate
layout, and the HR-parameter normalisation of :func:`load_pairs`."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import torch
import yaml
from scipy import ndimage

from ressrdiff.data.degrade import downsample
from ressrdiff.data.io import VolumeError, write_volume
from ressrdiff.data.manifest import (
    SubjectEntry,
    assign_roles,
    load_pairs,
    normalise_pair,
    read_manifest,
    read_subjects,
    scan_folder,
    split_subjects,
)
from ressrdiff.data.slices import (
    MaskedPairedSlices,
    MaskedPatchDataset,
    PatchDataset,
    SliceDataset,
)


def blob(shape_zyx=(20, 28, 24), spacing=(1.0, 1.0, 1.0), seed: int = 0) -> sitk.Image:
    """A smooth bright ellipsoid with texture on a zero background (float32)."""
    rng = np.random.default_rng(seed)
    z, y, x = np.meshgrid(*[np.arange(n) - (n - 1) / 2 for n in shape_zyx], indexing="ij")
    rr = np.sqrt(sum((c / (0.4 * n)) ** 2 for c, n in zip((z, y, x), shape_zyx, strict=True)))
    arr = np.where(rr <= 1.0, 300.0 + 200.0 * np.cos(x / 2.0) * np.sin(y / 3.0), 0.0)
    arr += np.where(rr <= 1.0, rng.normal(0.0, 10.0, shape_zyx), 0.0)
    img = sitk.GetImageFromArray(arr.astype(np.float32))
    img.SetSpacing(spacing)
    return img


def write_dicom_series(img: sitk.Image, folder: Path) -> None:
    folder.mkdir()
    series = "1.2.826.0.1.3680043.2.1125.1.777"
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    img16 = sitk.Cast(img, sitk.sitkInt16)
    for k in range(img.GetDepth()):
        sl = img16[:, :, k]
        tags = {
            "0008|0060": "MR",
            "0020|000d": series + ".0",
            "0020|000e": series,
            "0020|0037": "1\\0\\0\\0\\1\\0",
            "0020|0032": "\\".join(str(v) for v in img.TransformIndexToPhysicalPoint((0, 0, k))),
            "0020|0013": str(k + 1),
        }
        for key, val in tags.items():
            sl.SetMetaData(key, val)
        writer.SetFileName(str(folder / f"{k:03d}.dcm"))
        writer.Execute(sl)


def test_folder_of_volumes(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    write_volume(blob(seed=1), data / "a.nii.gz")
    write_volume(blob(seed=2), data / "b.mha")
    write_volume(blob(seed=3), data / "c.nrrd")
    write_dicom_series(blob(seed=4), data / "d")
    (data / "notes.txt").write_text("not a volume")
    (data / "misc").mkdir()  # no DICOM series: ignored
    write_volume(blob(seed=5), data / ".hidden.nii.gz")
    entries = scan_folder(data)
    assert [e.subject for e in entries] == ["a", "b", "c", "d"]
    assert read_subjects(data) == entries

    pairs = load_pairs(data, None, "brain-4x", "nearest", crop=False)
    assert isinstance(pairs, MaskedPairedSlices)
    assert set(pairs.subject) == {"a", "b", "c", "d"}
    assert pairs.shape[1:] == (28, 24) and pairs.mask.shape == pairs.shape
    roles = {v["role"] for v in pairs.meta["subjects"].values()}
    assert roles == {"train", "val", "test"}  # 4 subjects: 2 train, 1 val, 1 test
    train = load_pairs(data, "train", "brain-4x")
    test = load_pairs(data, "test", "brain-4x")
    assert not set(train.subject) & set(test.subject)

    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(VolumeError, match="no volumes"):
        scan_folder(empty)


def _write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    columns = list(dict.fromkeys(k for r in rows for k in r))
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, columns)
        w.writeheader()
        w.writerows(rows)
    return path


def test_csv_manifest_relative_paths_and_roles(tmp_path: Path) -> None:
    vols = tmp_path / "vols"
    vols.mkdir()
    for i in range(5):
        write_volume(blob(seed=i), vols / f"s{i}.nii.gz")
    lists = tmp_path / "lists"
    lists.mkdir()
    rows = [{"subject": f"s{i}", "hr_path": f"../vols/s{i}.nii.gz", "role": ""} for i in range(5)]
    rows[0]["role"] = "test"
    rows[1]["role"] = "test"
    rows[2]["site"] = "A"
    path = _write_csv(lists / "manifest.csv", rows)
    entries = read_manifest(path)
    assert entries[0].hr_path == lists / "../vols/s0.nii.gz" and entries[0].hr_path.is_file()
    assert entries[0].role == "test" and entries[2].role is None and entries[2].info["site"] == "A"

    roled = assign_roles(entries, val=0.2, test=0.2, seed=3)
    assert [e.role for e in roled][:2] == ["test", "test"]  # the CSV overrides the split
    assert all(e.role in ("train", "val", "test") for e in roled)
    test = load_pairs(path, "test", "brain-4x", val=0.0, test=0.0)  # the rest: train
    assert set(test.subject) == {"s0", "s1"}
    train = load_pairs(path, "train", "brain-4x", val=0.2, test=0.2, seed=3)
    assert not {"s0", "s1"} & set(train.subject)

    bad = _write_csv(lists / "bad.csv", [{"subject": "x", "hr_path": "nowhere.nii.gz"}])
    with pytest.raises(VolumeError, match="nowhere.nii.gz: file not found"):
        read_manifest(bad)
    nocol = _write_csv(lists / "nocol.csv", [{"name": "x", "hr_path": "../vols/s0.nii.gz"}])
    with pytest.raises(VolumeError, match="lacks column"):
        read_manifest(nocol)
    dup = _write_csv(
        lists / "dup.csv",
        [{"subject": "x", "hr_path": "../vols/s0.nii.gz"}] * 2,
    )
    with pytest.raises(VolumeError, match="appears twice"):
        read_manifest(dup)


def test_split_is_deterministic_disjoint_and_complete() -> None:
    ids = [f"sub-{i:02d}" for i in range(20)]
    a = split_subjects(ids, val=0.1, test=0.2, seed=0)
    b = split_subjects(list(reversed(ids)), val=0.1, test=0.2, seed=0)
    assert a == b  # independent of input order
    assert set(a) == set(ids)  # every subject exactly once (dict keys)
    counts = {r: sum(v == r for v in a.values()) for r in ("train", "val", "test")}
    assert counts == {"train": 14, "val": 2, "test": 4}
    assert split_subjects(ids, seed=1) != a
    assert split_subjects(["x"]) == {"x": "train"}
    assert sorted(split_subjects(["x", "y"]).values()) == ["test", "train"]
    assert sorted(split_subjects(["x", "y", "z"]).values()) == ["test", "train", "val"]
    assert set(split_subjects(ids, val=0, test=0).values()) == {"train"}
    with pytest.raises(ValueError, match="duplicate"):
        split_subjects(["x", "x"])
    with pytest.raises(ValueError):
        split_subjects(ids, val=0.6, test=0.5)


def test_paired_lr_is_used_as_is_and_checked(tmp_path: Path) -> None:
    hr = blob(seed=7)
    lr = sitk.DiscreteGaussian(hr, 2.0)  # a 'scanner' LR already on the HR grid
    hr_path = write_volume(hr, tmp_path / "hr.nii.gz")
    lr_path = write_volume(lr, tmp_path / "lr.nii.gz")
    entry = SubjectEntry("s", hr_path, lr_path, role="test")
    pairs = load_pairs([entry], "test", None, crop=False, normalisation="minmax-slice")
    assert pairs.meta["subjects"]["s"]["lr"] == "given"
    lr_units = pairs.to_units("lr", pairs.lr)
    lr_slices = sitk.GetArrayFromImage(lr)[pairs.index]
    np.testing.assert_allclose(lr_units, np.clip(lr_slices, *pairs.lr_range[0]), atol=1e-2)

    other = sitk.Image(lr)
    other.SetSpacing((1.0, 1.0, 2.0))
    wrong = write_volume(other, tmp_path / "lr_wrong_grid.nii.gz")
    rows = [{"subject": "s", "hr_path": "hr.nii.gz", "lr_path": "lr_wrong_grid.nii.gz"}]
    path = _write_csv(tmp_path / "m.csv", rows)
    with pytest.raises(VolumeError) as info:
        load_pairs(path, None, None)
    msg = str(info.value)
    assert str(wrong) in msg and str(hr_path) in msg and "grids differ" in msg
    assert "\n" not in msg


def test_prostate_layout(tmp_path: Path) -> None:
    """Prostate T2w: 0.66 x 0.66 mm axial slices 1.5 mm apart; preset 'prostate' (x3, x3, x2)."""
    hr = blob((14, 45, 48), spacing=(0.66, 0.66, 1.5), seed=11)
    np.testing.assert_allclose(downsample(hr, "prostate").GetSpacing(), (1.98, 1.98, 3.0))
    write_volume(hr, tmp_path / "prostate_t2w.nii.gz")
    pairs = load_pairs(tmp_path, None, "prostate", "nearest", axis=2, crop=False)
    info = pairs.meta["subjects"]["prostate_t2w"]
    np.testing.assert_allclose(info["lr_spacing_xyz"], (1.98, 1.98, 3.0))
    assert info["spacing_xyz"] == pytest.approx((0.66, 0.66, 1.5))
    assert pairs.shape[1:] == (45, 48)  # axial slices on the HR grid (y, x)
    assert pairs.lr.shape == pairs.hr.shape
    # the LR is blockier in-plane than HR: its 3x3 blocks repeat along x
    row = pairs.lr[len(pairs) // 2, 22]
    assert np.mean(np.diff(row) == 0) > 0.5


def test_hr_params_map_both_backgrounds_to_minus_one(tmp_path: Path) -> None:
    hr = blob((24, 40, 36), seed=5)
    write_volume(hr, tmp_path / "s.nii.gz")
    arr = sitk.GetArrayFromImage(hr)
    for norm in ("minmax-slice", "robust-volume"):
        pairs = load_pairs(
            tmp_path, None, "brain-4x", "bspline", normalisation=norm, lr_params="hr", crop=False
        )
        # background at least 8 pixels (2 LR voxels) away from the foreground mask
        far = ~ndimage.binary_dilation(pairs.mask, np.ones((1, 3, 3), bool), iterations=8)
        assert far.mean() > 0.05
        assert np.all(pairs.hr[far] == -1.0)
        # nothing but the B-spline's faint far ringing (< 1 % of the range) is left above -1
        assert np.mean(pairs.lr[far] + 1.0) < 0.005 and np.all(pairs.lr >= -1.0)
        # inversion returns the HR to its input units (exact where nothing was clipped)
        hr_units = pairs.to_units("hr", pairs.hr)
        slices = arr[pairs.index]
        lo, hi = pairs.hr_range[:, :1, None], pairs.hr_range[:, 1:, None]
        inside = (slices >= lo) & (slices <= hi)
        np.testing.assert_allclose(hr_units[inside], slices[inside], rtol=1e-4, atol=1e-2)
        np.testing.assert_array_equal(pairs.hr_range, pairs.lr_range)

    own = load_pairs(
        tmp_path, None, "brain-4x", "bspline", normalisation="minmax-slice", lr_params="own"
    )
    # the authors' separate per-slice mapping: B-spline undershoot takes -1, background rises
    far = ~ndimage.binary_dilation(own.mask, np.ones((1, 3, 3), bool), iterations=8)
    assert np.mean(own.lr[far] + 1.0) > 0.1
    assert np.any(own.lr_range[:, 0] < 0)

    h = np.zeros((2, 8, 8))
    h[:, 2:6, 2:6] = 100.0
    low = h * 0.9 - 5.0  # a darker LR with undershoot
    _, lr_n, hr_rng, lr_rng = normalise_pair(h, low, normalisation="minmax-slice", lr_params="lr")
    np.testing.assert_array_equal(hr_rng, lr_rng)
    assert lr_n.min() == -1.0 and np.allclose(lr_rng[:, 0], -5.0)


def test_loaders_feed_patch_and_slice_datasets(tmp_path: Path) -> None:
    write_volume(blob((16, 30, 26), seed=1), tmp_path / "a.nii.gz")
    write_volume(blob((16, 24, 20), seed=2), tmp_path / "b.nii.gz")
    pairs = load_pairs(
        [
            SubjectEntry("a", tmp_path / "a.nii.gz", role="train"),
            SubjectEntry("b", tmp_path / "b.nii.gz", role="train"),
        ],
        "train",
    )
    h, w = pairs.shape[1:]
    crops = pairs.meta["subjects"]
    assert (h, w) == (
        max(c["crop"][2] for c in crops.values()),
        max(c["crop"][3] for c in crops.values()),
    )
    small = pairs.subset(np.flatnonzero(pairs.subject == "b"))
    assert isinstance(small, MaskedPairedSlices) and small.mask.shape == small.hr.shape
    _, _, bh, bw = crops["b"]["crop"]
    assert not small.mask[:, bh:, :].any() and np.all(small.hr[:, bh:, :] == -1.0)  # padding
    patches = PatchDataset(pairs, 16, samples_per_epoch=4, seed=0)
    item = patches[0]
    assert item["hr"].shape == (1, 16, 16) and item["lr"].shape == (1, 16, 16)
    # a small subject padded into a large frame: masked crops stay on the foreground
    wide = load_pairs(
        [
            SubjectEntry("a", tmp_path / "a.nii.gz", role="train"),
            SubjectEntry("b", tmp_path / "b.nii.gz", role="train"),
        ],
        "train",
        size=(64, 64),
    )
    plain = PatchDataset(wide, 16, samples_per_epoch=200, seed=1)
    masked = MaskedPatchDataset(wide, 16, samples_per_epoch=200, seed=1)
    air = np.array(
        [[float((d[i]["hr"] == -1).float().mean()) for i in range(200)] for d in (plain, masked)]
    )
    assert np.mean(air[1] == 1.0) == 0.0 and np.mean(air[0] == 1.0) > 0.2
    assert np.mean(air[1]) < np.mean(air[0]) / 2
    assert torch.equal(masked[3]["lr"], masked[3]["lr"])  # deterministic per (seed, epoch, i)
    with pytest.raises(ValueError, match="no mask"):
        MaskedPatchDataset((wide.hr, wide.lr), 16)
    full = SliceDataset(pairs, pad_multiple=8)[0]
    assert full["hr"].shape[-2] % 8 == 0 and full["subject"] in ("a", "b")
    with pytest.raises(ValueError, match="no subject has role"):
        load_pairs(tmp_path, "val", val=0.0, test=0.0)


def test_orientation_option_reorients_after_simulation(tmp_path: Path) -> None:
    hr = sitk.DICOMOrient(blob((14, 45, 48), spacing=(0.66, 0.66, 1.5), seed=3), "LIA")
    write_volume(hr, tmp_path / "p.nii.gz")  # stored with z along anterior
    pairs = load_pairs(tmp_path, None, "prostate", orientation="RAS", crop=False)
    info = pairs.meta["subjects"]["p"]
    assert info["orientation"] == "RAS"
    np.testing.assert_allclose(info["spacing_xyz"], (0.66, 0.66, 1.5))  # z back to 1.5 mm
    # the preset's factors (3, 3, 2) act on the stored axes (x=L 0.66, y=I 1.5, z=A 0.66 mm)
    np.testing.assert_allclose(info["lr_spacing_xyz"], (1.98, 1.32, 4.5), atol=1e-6)
    assert pairs.shape[1:] == (45, 48)


def test_data_config_degradation_reaches_the_simulated_lr(tmp_path: Path, capsys) -> None:
    """``data.degradation`` is passed to load_pairs; a config without the field (an older
    checkpoint's) loads as 'resample', which is left out of ``to_dict`` so such configs still
    compare equal; the legacy ``data.antialias: true`` reads as 'acquisition'; a bad value is a
    one-line error of ``ressrdiff train --set``."""
    from conftest import tiny_config

    from ressrdiff.cli import main as cli_main
    from ressrdiff.config import ConfigError, RunConfig
    from ressrdiff.data.training_data import paired_slices_from_config

    write_volume(blob((16, 30, 26), seed=1), tmp_path / "a.nii.gz")
    write_volume(blob((16, 24, 20), seed=2), tmp_path / "b.nii.gz")
    _write_csv(
        tmp_path / "m.csv",
        [
            {"subject": "a", "hr_path": "a.nii.gz", "role": "train"},
            {"subject": "b", "hr_path": "b.nii.gz", "role": "test"},
        ],
    )
    base = tiny_config(**{"data.source": "manifest", "data.path": str(tmp_path / "m.csv")})
    assert base.data.degradation == "resample" and "degradation" not in base.to_dict()["data"]
    acq = base.replace(**{"data.degradation": "acquisition"})
    assert acq.to_dict()["data"]["degradation"] == "acquisition"
    assert "antialias" not in acq.to_dict()["data"]
    assert RunConfig.from_dict(acq.to_dict()).data.degradation == "acquisition"
    legacy = base.replace(**{"data.antialias": True})  # the older spelling
    assert legacy.data.degradation == "acquisition" and legacy.to_dict() == acq.to_dict()
    old = base.to_dict()  # what a checkpoint written before the field holds
    assert RunConfig.from_dict(old).to_dict() == old
    with pytest.raises(ConfigError, match="data.degradation"):
        base.replace(**{"data.degradation": "blurry"})
    with pytest.raises(ConfigError, match="data.antialias"):
        base.replace(**{"data.antialias": "yes"})
    cfg_path = tmp_path / "run.yaml"
    cfg_path.write_text(yaml.safe_dump(base.to_dict()), encoding="utf-8")
    argv = ["train", "--config", str(cfg_path), "--out", str(tmp_path / "run"), "--quiet"]
    assert cli_main([*argv, "--set", "data.degradation=blurry"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "data.degradation" in err and "blurry" in err
    assert not (tmp_path / "run").exists()

    plain, aa = (paired_slices_from_config(c.data) for c in (base, acq))
    assert plain.meta["degradation"] == "resample" and aa.meta["degradation"] == "acquisition"
    assert plain.meta["antialias"] is False and aa.meta["antialias"] is True  # the older key
    np.testing.assert_array_equal(plain.hr, aa.hr)
    assert not np.allclose(plain.lr, aa.lr)
    # the same as asking load_pairs directly, under either spelling
    direct = load_pairs(tmp_path / "m.csv", "train", degradation="acquisition")
    np.testing.assert_array_equal(direct.lr, aa.lr)
    np.testing.assert_array_equal(load_pairs(tmp_path / "m.csv", "train", antialias=True).lr, aa.lr)
    with pytest.raises(ValueError, match="unknown degradation 'blurry'"):
        load_pairs(tmp_path / "m.csv", "train", degradation="blurry")


def test_trainer_with_bad_data_leaves_no_run_folder(tmp_path: Path) -> None:
    from conftest import tiny_config

    from ressrdiff.training import Trainer

    data = tmp_path / "data"
    data.mkdir()
    bad = sitk.GetArrayFromImage(blob(seed=1))
    bad[3, 4, 5] = np.nan
    sitk.WriteImage(sitk.GetImageFromArray(bad), str(data / "a.nii.gz"))
    write_volume(blob(seed=2), data / "b.nii.gz")
    rows = [
        {"subject": "a", "hr_path": "a.nii.gz", "role": "train"},
        {"subject": "b", "hr_path": "b.nii.gz", "role": "test"},
    ]
    cfg = tiny_config(
        **{"data.source": "manifest", "data.path": str(_write_csv(data / "m.csv", rows))}
    )
    run = tmp_path / "run"
    with pytest.raises(VolumeError, match="NaN"):
        Trainer(cfg, run, progress=False)
    assert not run.exists()
