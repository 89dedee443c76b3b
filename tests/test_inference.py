"""Whole-volume super-resolution (``ressrdiff sr``): grids, ensembles, presets, clear errors."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from conftest import write_npz_run

from ressrdiff import inference
from ressrdiff.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from ressrdiff.cli import main as cli_main
from ressrdiff.config import ConfigError
from ressrdiff.data.degrade import PRESETS, downsample, same_grid
from ressrdiff.inference import (
    background_slices,
    default_std_path,
    hr_reference,
    load_sr_method,
    super_resolve_volume,
)
from ressrdiff.sr_command import add_sr_parser, checkpoint_degradation

# a rotation about z by 30 degrees, then a flip of y: a non-identity direction cosine matrix
_C, _S = np.cos(np.pi / 6), np.sin(np.pi / 6)
DIRECTION = tuple(np.array([[_C, _S, 0.0], [_S, -_C, 0.0], [0.0, 0.0, 1.0]]).ravel().tolist())


def sr_main(argv: list[str]) -> int:
    """``ressrdiff sr`` through a parser built like ``cli.main`` (same error handling)."""
    parser = argparse.ArgumentParser(prog="ressrdiff")
    add_sr_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["sr", *argv])
    try:
        return args.func(args)
    except (ConfigError, CheckpointError, ValueError, FileNotFoundError) as e:
        print(f"ressrdiff {args.command}: error: {e}", file=sys.stderr)
        return 2


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory) -> dict[str, str]:
    """A tiny checkpoint trained for 2 steps ('brain-4x'), a copy relabelled 'prostate', one
    trained for 1 step with ``--set data.degradation=acquisition`` and a copy of the first with
    the legacy ``data.antialias: true``."""
    root = tmp_path_factory.mktemp("ckpt")
    cfg, _ = write_npz_run(root, steps=2, batch=4, n=8)
    argv = ["train", "--config", str(cfg), "--out", str(root / "run"), "--quiet"]
    assert cli_main(argv) == 0
    brain = root / "run" / "last.pt"
    ckpt = load_checkpoint(brain)
    assert ckpt["config"]["data"]["preset"] == "brain-4x"
    ckpt["config"]["data"]["preset"] = "prostate"
    prostate = root / "prostate.pt"
    save_checkpoint(prostate, {k: v for k, v in ckpt.items() if k != "format"})
    ckpt["config"]["data"]["preset"] = "brain-4x"
    ckpt["config"]["data"]["antialias"] = True  # written before data.degradation existed
    legacy = root / "legacy.pt"
    save_checkpoint(legacy, {k: v for k, v in ckpt.items() if k != "format"})
    acq_run = root / "acq"
    argv = ["train", "--config", str(cfg), "--out", str(acq_run), "--quiet"]
    assert cli_main([*argv, "--set", "data.degradation=acquisition", "--set", "train.steps=1"]) == 0
    return {
        "brain": str(brain),
        "prostate": str(prostate),
        "acquisition": str(acq_run / "last.pt"),
        "legacy": str(legacy),
    }


def make_volume(
    size_xyz=(20, 24, 6), spacing=(0.7, 0.9, 2.5), origin=(-10.0, 4.0, 7.5), seed=0
) -> sitk.Image:
    """A smooth random volume in arbitrary units (50..1050) with a non-identity direction."""
    rng = np.random.default_rng(seed)
    x, y, z = size_xyz
    a = rng.random((z + 2, y + 4, x + 4))
    a = (a[:-2] + a[1:-1] + a[2:])[:, :-4] + np.roll(a[1:-1], 1, axis=1)[:, :-4]  # smooth-ish
    a = a[..., :-4] + a[..., 2:-2] + a[..., 4:]
    a = 50 + 1000 * (a - a.min()) / (a.max() - a.min())
    img = sitk.GetImageFromArray(a.astype(np.float32))
    img.SetSpacing(spacing)
    img.SetOrigin(origin)
    img.SetDirection(DIRECTION)
    return img


def write(img: sitk.Image, path) -> str:
    sitk.WriteImage(img, str(path))
    return str(path)


def read(path) -> tuple[sitk.Image, np.ndarray]:
    img = sitk.ReadImage(str(path))
    return img, sitk.GetArrayFromImage(img)


def listing(folder) -> set[str]:
    return set(os.listdir(folder))


def test_hr_grid_volume_keeps_grid_units_and_is_deterministic(ckpts, tmp_path, capsys):
    src = make_volume()
    arr = sitk.GetArrayFromImage(src)
    inp = write(src, tmp_path / "in.nii.gz")
    out, out2 = tmp_path / "sr.nii.gz", tmp_path / "sr2.nii.gz"
    args = [inp, "-o", str(out), "--checkpoint", ckpts["brain"], "--quiet", "--batch", "4"]
    assert sr_main(args) == 0
    summary = capsys.readouterr().out.strip()
    assert summary.count("\n") == 0 and "slices/s" in summary and str(out) in summary
    img, sr = read(out)
    assert same_grid(img, src, tol=1e-6) and img.GetSize() == src.GetSize()
    assert sr.dtype == np.float32 and np.isfinite(sr).all()
    lo, hi = float(arr.min()), float(arr.max())
    pad = 0.5 * (hi - lo)
    assert lo - pad < sr.min() and sr.max() < hi + pad and lo < sr.mean() < hi
    assert not np.allclose(sr, arr)  # the network did something
    # deterministic for a seed, different for another seed
    assert sr_main([*args[:2], str(out2), *args[3:]]) == 0
    assert np.array_equal(read(out2)[1], sr)
    out3 = tmp_path / "sr3.nii.gz"
    assert sr_main([*args[:2], str(out3), *args[3:], "--seed", "1"]) == 0
    assert not np.array_equal(read(out3)[1], sr)
    assert not (tmp_path / "sr_std.nii.gz").exists()


def test_ensemble_writes_std_on_the_same_grid(ckpts, tmp_path, capsys):
    src = make_volume(size_xyz=(16, 12, 4))
    inp = write(src, tmp_path / "in.mha")
    out = tmp_path / "sr.nii.gz"
    argv = [inp, "-o", str(out), "--checkpoint", ckpts["brain"], "--samples", "3", "--quiet"]
    assert sr_main([*argv, "--steps", "2"]) == 0
    std_path = tmp_path / "sr_std.nii.gz"
    assert str(std_path) in capsys.readouterr().out
    sr_img, sr = read(out)
    sd_img, sd = read(std_path)
    assert same_grid(sd_img, src, tol=1e-6) and same_grid(sr_img, src, tol=1e-6)
    assert np.isfinite(sd).all() and (sd >= 0).all() and sd.max() > 0
    # the std is in the input's units: a fraction of the slice range, not of [-1, 1]
    assert sd.max() > 1.0 and sd.max() < float(np.ptp(sitk.GetArrayViewFromImage(src)))
    # an explicit --std-out, and one without samples > 1 is refused
    custom = tmp_path / "sd.nrrd"
    assert sr_main([*argv, "-o", str(tmp_path / "b.nii.gz"), "--std-out", str(custom)]) == 0
    assert custom.exists() and not (tmp_path / "b_std.nii.gz").exists()
    bad = [inp, "-o", str(tmp_path / "c.nii.gz"), "--checkpoint", ckpts["brain"]]
    assert sr_main([*bad, "--std-out", str(tmp_path / "c_sd.nii.gz")]) == 2
    assert "samples > 1" in capsys.readouterr().err
    assert not (tmp_path / "c.nii.gz").exists()


def test_genuinely_lr_input_lands_on_the_original_hr_grid(ckpts, tmp_path):
    hr = make_volume(size_xyz=(24, 16, 8), spacing=(0.8, 0.8, 0.8), origin=(3.0, -2.0, 1.0))
    lr = downsample(hr, "brain-4x")
    assert lr.GetSize() == (6, 4, 2)
    inp = write(lr, tmp_path / "lr.nii.gz")
    out = tmp_path / "sr.nii.gz"
    argv = [inp, "-o", str(out), "--checkpoint", ckpts["brain"], "--lr", "--quiet"]
    assert sr_main([*argv, "--preset", "brain-4x"]) == 0
    img, sr = read(out)
    assert img.GetSize() == hr.GetSize()
    np.testing.assert_allclose(img.GetSpacing(), hr.GetSpacing(), atol=1e-4)
    np.testing.assert_allclose(img.GetOrigin(), hr.GetOrigin(), atol=1e-4)
    np.testing.assert_allclose(img.GetDirection(), hr.GetDirection(), atol=1e-6)
    assert np.isfinite(sr).all()
    # hr_reference inverts downsample exactly
    assert same_grid(hr_reference(lr, PRESETS["brain-4x"]), hr, tol=1e-4)


def test_prostate_checkpoint_and_preset_mismatch(ckpts, tmp_path, capsys):
    hr = make_volume(size_xyz=(18, 15, 8), spacing=(0.66, 0.66, 1.5))
    lr = downsample(hr, "prostate")
    inp = write(lr, tmp_path / "prostate_lr.nii.gz")
    out = tmp_path / "sr.nii.gz"
    argv = [inp, "-o", str(out), "--lr", "--quiet", "--preset", "prostate"]
    assert sr_main([*argv, "--checkpoint", ckpts["prostate"]]) == 0
    img, _ = read(out)
    assert img.GetSize() == hr.GetSize()
    np.testing.assert_allclose(img.GetSpacing(), hr.GetSpacing(), atol=1e-4)
    np.testing.assert_allclose(img.GetOrigin(), hr.GetOrigin(), atol=1e-4)
    # a brain checkpoint asked to do prostate: one line naming the checkpoint, nothing written
    out2 = tmp_path / "sr2.nii.gz"
    before = listing(tmp_path)
    assert sr_main([inp, "-o", str(out2), "--checkpoint", ckpts["brain"], "--preset", "prostate"])
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and ckpts["brain"] in err
    assert "trained for preset 'brain-4x', not 'prostate'" in err
    assert listing(tmp_path) == before


def test_checkpoints_record_their_degradation(ckpts):
    """``train --set data.degradation=acquisition`` lands in the checkpoint; older checkpoints
    read as 'resample' (no field) or 'acquisition' (the legacy antialias: true)."""
    assert load_checkpoint(ckpts["acquisition"])["config"]["data"]["degradation"] == "acquisition"
    assert "degradation" not in load_checkpoint(ckpts["brain"])["config"]["data"]
    assert checkpoint_degradation(ckpts["acquisition"]) == "acquisition"
    assert checkpoint_degradation(ckpts["brain"]) == "resample"
    assert checkpoint_degradation(ckpts["legacy"]) == "acquisition"
    assert load_sr_method(ckpts["acquisition"]).cfg.data.degradation == "acquisition"


def test_degradation_mismatch_is_one_warning_line(ckpts, tmp_path, capsys):
    inp = write(make_volume(size_xyz=(12, 10, 4)), tmp_path / "in.nii.gz")
    acq = ckpts["acquisition"]
    opts = ["--checkpoint", acq, "--quiet", "--batch", "4"]
    # the checkpoint's own degradation (by default or named): no warning, the summary names it
    outs = []
    for i, extra in enumerate(
        ([], ["--degradation", "acquisition"], ["--degradation", "resample"])
    ):
        outs.append(tmp_path / f"sr{i}.nii.gz")
        assert sr_main([inp, "-o", str(outs[-1]), *opts, *extra]) == 0
        cap = capsys.readouterr()
        assert "; checkpoint trained on degradation 'acquisition'; " in cap.out
        if i < 2:
            assert cap.err == ""
    # another: exactly one warning line naming both; the volume is super-resolved all the same
    assert cap.err == (
        f"ressrdiff sr: warning: checkpoint {acq} was trained on degradation 'acquisition', "
        "input simulated with 'resample'\n"
    )
    assert np.array_equal(read(outs[0])[1], read(outs[2])[1])
    # --lr: nothing is simulated; a declared degradation is compared with the checkpoint's
    hr = make_volume(size_xyz=(24, 16, 8), spacing=(0.8, 0.8, 0.8), origin=(3.0, -2.0, 1.0))
    lr = write(downsample(hr, "brain-4x", degradation="acquisition"), tmp_path / "lr.nii.gz")
    brain = ckpts["brain"]
    argv = [lr, "-o", str(tmp_path / "lr_sr.nii.gz"), "--checkpoint", brain, "--lr", "--quiet"]
    assert sr_main([*argv, "--degradation", "acquisition"]) == 0
    cap = capsys.readouterr()
    assert cap.err == (
        f"ressrdiff sr: warning: checkpoint {brain} was trained on degradation 'resample', "
        "input declared 'acquisition'\n"
    )
    assert cap.out.count("\n") == 1 and "checkpoint trained on degradation 'resample'" in cap.out
    # an unknown name: a one-line error before any work, nothing written
    before = listing(tmp_path)
    assert sr_main([inp, "-o", str(tmp_path / "x.nii.gz"), *opts, "--degradation", "blurry"]) == 2
    cap = capsys.readouterr()
    assert cap.err.count("\n") == 1 and "unknown degradation 'blurry'; use one of" in cap.err
    assert listing(tmp_path) == before


def test_axis_option_keeps_the_grid(ckpts, tmp_path):
    src = make_volume(size_xyz=(12, 10, 8))
    inp = write(src, tmp_path / "in.nii.gz")
    outs = {}
    for axis in ("z", "y"):
        out = tmp_path / f"sr_{axis}.nii.gz"
        argv = [inp, "-o", str(out), "--checkpoint", ckpts["brain"], "--axis", axis, "--quiet"]
        assert sr_main(argv) == 0
        img, outs[axis] = read(out)
        assert same_grid(img, src, tol=1e-6)
        assert np.isfinite(outs[axis]).all()
    assert not np.allclose(outs["z"], outs["y"])


def test_constant_slices_are_copied_and_api_matches(ckpts):
    method = load_sr_method(ckpts["brain"])
    src = make_volume(size_xyz=(12, 10, 5))
    arr = sitk.GetArrayFromImage(src)
    arr[0] = 0.0  # an empty background slice (numpy axis 0 = image z)
    arr[3] = 7.5
    img = sitk.GetImageFromArray(arr)
    img.CopyInformation(src)
    stats: dict[str, int] = {}
    kw = {"progress": False, "skip_background": False}  # a noise volume has no head to find
    sr, sd = super_resolve_volume(method, img, stats=stats, **kw)
    out = sitk.GetArrayFromImage(sr)
    assert sd is None and stats == {"slices": 5, "network_slices": 3}
    assert (out[0] == 0).all() and (out[3] == 7.5).all()
    sr2, _ = super_resolve_volume(method, img, **kw)
    assert np.array_equal(sitk.GetArrayFromImage(sr2), out)
    _, sd = super_resolve_volume(method, img, samples=2, steps=2, **kw)
    assert (sitk.GetArrayFromImage(sd)[[0, 3]] == 0).all()
    with pytest.raises(CheckpointError, match="brain-4x"):
        super_resolve_volume(method, img, preset="prostate", progress=False)


def test_background_slices_are_copied(ckpts):
    """A bright block (the 'head') in slices 3-6 of 10, faint noise elsewhere: the slices more
    than one slice away from the Otsu foreground are copied, the rest are sampled."""
    method = load_sr_method(ckpts["brain"])
    rng = np.random.default_rng(0)
    arr = (0.01 * rng.random((10, 12, 12))).astype(np.float32)  # numpy (z, y, x)
    arr[3:7, 2:10, 2:10] += 1.0 + 0.1 * rng.random((4, 8, 8)).astype(np.float32)
    img = sitk.GetImageFromArray(arr)
    stats: dict[str, int] = {}
    sr, _ = super_resolve_volume(method, img, progress=False, stats=stats)
    out = sitk.GetArrayFromImage(sr)
    assert stats == {"slices": 10, "network_slices": 6}  # slices 2-7
    for k in (0, 1, 8, 9):
        assert np.array_equal(out[k], arr[k])
    assert not np.array_equal(out[2], arr[2]) and not np.array_equal(out[5], arr[5])
    every: dict[str, int] = {}
    super_resolve_volume(method, img, progress=False, stats=every, skip_background=False)
    assert every["network_slices"] == 10


def test_background_slices_margin_and_empty_mask():
    fg = np.zeros((7, 2, 2), dtype=bool)
    fg[3, 0, 0] = True
    assert background_slices(fg).tolist() == [True, True, False, False, False, True, True]
    assert background_slices(fg, margin=0).tolist() == [True] * 3 + [False] + [True] * 3
    assert not background_slices(np.zeros((4, 2, 2), dtype=bool)).any()


def test_default_std_path():
    assert default_std_path("a/sr.nii.gz").as_posix() == "a/sr_std.nii.gz"
    assert default_std_path("sr.mha").as_posix() == "sr_std.mha"


def _bad_inputs(tmp_path) -> dict[str, tuple[str, str]]:
    """name -> (input file, expected text in the error)."""
    garbage = tmp_path / "garbage.nii.gz"
    garbage.write_bytes(os.urandom(300))
    flat = sitk.GetImageFromArray(np.random.default_rng(0).random((8, 8)).astype(np.float32))
    vol4 = sitk.JoinSeries([make_volume(size_xyz=(6, 6, 4), seed=i) for i in range(3)])
    nan = sitk.GetArrayFromImage(make_volume(size_xyz=(8, 8, 4)))
    nan[1, 2, 3] = np.nan
    const = sitk.GetImageFromArray(np.full((4, 8, 8), 3.0, np.float32))
    inf = sitk.GetArrayFromImage(make_volume(size_xyz=(8, 8, 4), seed=2))
    inf[2, 1, 0] = np.inf
    # a truncated NIfTI: the last 100 voxel bytes are missing (ITK alone would read garbage)
    full_nii = Path(write(make_volume(size_xyz=(8, 8, 4), seed=3), tmp_path / "full.nii"))
    truncated = tmp_path / "truncated.nii"
    truncated.write_bytes(full_nii.read_bytes()[:-100])
    full_nii.unlink()
    cut_gz = Path(write(make_volume(size_xyz=(8, 8, 4), seed=4), tmp_path / "cut.nii.gz"))
    cut_gz.write_bytes(cut_gz.read_bytes()[:-40])  # a gzip stream cut short
    return {
        "garbage": (str(garbage), "gzip"),
        "truncated": (str(truncated), "truncated"),
        "truncated gzip": (str(cut_gz), "truncated"),
        "inf": (write(sitk.GetImageFromArray(inf), tmp_path / "inf.nii.gz"), "1 Inf voxels"),
        "2d": (write(flat, tmp_path / "flat.nii.gz"), "2-D"),
        "4d": (write(vol4, tmp_path / "vol4.nii.gz"), "4-D"),
        "nan": (write(sitk.GetImageFromArray(nan), tmp_path / "nan.nii.gz"), "NaN"),
        "constant": (write(const, tmp_path / "const.nii.gz"), "constant"),
    }


def test_bad_inputs_are_one_line_errors_and_write_nothing(ckpts, tmp_path, capsys, monkeypatch):
    loaded: list[str] = []
    real_load = inference.load_sr_method
    monkeypatch.setattr(
        inference, "load_sr_method", lambda p, **kw: loaded.append(str(p)) or real_load(p, **kw)
    )
    good = write(make_volume(size_xyz=(8, 8, 4)), tmp_path / "good.nii.gz")
    junk_ckpt = tmp_path / "junk.pt"
    junk_ckpt.write_bytes(b"not a checkpoint at all")
    out = str(tmp_path / "sr.nii.gz")
    brain = ckpts["brain"]
    cases = {
        name: ([f, "-o", out, "--checkpoint", brain], [f, text])
        for name, (f, text) in _bad_inputs(tmp_path).items()
    }
    cases["output == input"] = ([good, "-o", good, "--checkpoint", brain], [good, "input"])
    missing = str(tmp_path / "nope" / "sr.nii.gz")
    cases["missing folder"] = ([good, "-o", missing, "--checkpoint", brain], [missing, "exist"])
    cases["bad suffix"] = ([good, "-o", str(tmp_path / "sr.txt"), "--checkpoint", brain], [".txt"])
    absent = str(tmp_path / "absent.nii.gz")
    cases["missing input"] = ([absent, "-o", out, "--checkpoint", brain], [absent, "not found"])
    cases["junk checkpoint"] = ([good, "-o", out, "--checkpoint", str(junk_ckpt)], ["junk.pt"])
    cases["other preset"] = (
        [good, "-o", out, "--checkpoint", brain, "--preset", "prostate"],
        [brain, "'brain-4x', not 'prostate'"],
    )
    before = listing(tmp_path)
    good_bytes = open(good, "rb").read()
    for name, (argv, expect) in cases.items():
        loaded.clear()
        assert sr_main([*argv, "--quiet"]) == 2, name
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0, (name, err)
        assert err.startswith("ressrdiff sr: error: "), (name, err)
        for text in expect:
            assert text in err, (name, err)
        if name not in ("junk checkpoint", "other preset"):
            assert not loaded, f"{name}: the checkpoint was loaded before the check"
        assert listing(tmp_path) == before, name
    assert open(good, "rb").read() == good_bytes


def test_unwritable_output_folder(ckpts, tmp_path, capsys, monkeypatch):
    good = write(make_volume(size_xyz=(8, 8, 4)), tmp_path / "good.nii.gz")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    real_access = os.access  # root may write anywhere: make the folder read-only for everyone
    monkeypatch.setattr(
        os, "access", lambda p, mode, **kw: Path(p) != ro and real_access(p, mode, **kw)
    )
    try:
        out = ro / "sr.nii.gz"
        argv = [good, "-o", str(out), "--checkpoint", ckpts["brain"], "--quiet"]
        assert sr_main(argv) == 2
        err = capsys.readouterr().err
        assert "not writable" in err and str(out) in err
        assert list(ro.iterdir()) == []
    finally:
        ro.chmod(0o755)


def test_a_failed_write_leaves_neither_output(ckpts, tmp_path, monkeypatch, capsys):
    good = write(make_volume(size_xyz=(8, 8, 4)), tmp_path / "good.nii.gz")
    real = sitk.WriteImage
    calls: list[str] = []

    def flaky(img, path, *args, **kw):
        calls.append(str(path))
        if len(calls) == 2:  # the std map is written first, then the SR fails
            raise RuntimeError("sitk::ERROR: disk full")
        return real(img, path, *args, **kw)

    monkeypatch.setattr(sitk, "WriteImage", flaky)
    before = listing(tmp_path)
    argv = ["sr", good, "-o", str(tmp_path / "sr.nii.gz"), "--checkpoint", ckpts["brain"]]
    assert cli_main([*argv, "--samples", "2", "--steps", "1", "--quiet"]) == 1
    assert "sr.nii.gz: write failed: disk full" in capsys.readouterr().err
    assert len(calls) == 2 and listing(tmp_path) == before


def test_help_has_examples():
    parser = argparse.ArgumentParser(prog="ressrdiff")
    sr = add_sr_parser(parser.add_subparsers(dest="command"))
    text = sr.format_help()
    assert "examples:" in text and "--lr" in text and "--std-out" in text
    assert sr.get_default("func").__name__ == "run_sr"


def test_hr_reference_is_float_exact_for_anisotropic_factors():
    lr = make_volume(size_xyz=(6, 5, 4), spacing=(1.98, 1.98, 3.0))
    ref = hr_reference(lr, "prostate")
    assert ref.GetSize() == (18, 15, 8)
    np.testing.assert_allclose(ref.GetSpacing(), (0.66, 0.66, 1.5), atol=1e-12)
    back = downsample(ref, "prostate")
    assert same_grid(back, lr, tol=1e-9)


def test_robust_volume_checkpoint_maps_intensities_like_training(tmp_path, ckpts):
    """A checkpoint trained with robust-volume normalisation: sr computes an Otsu foreground
    mask of the input and maps the input with its percentiles."""
    ck = load_checkpoint(ckpts["brain"])
    ck["config"]["data"]["normalisation"] = "robust-volume"
    path = tmp_path / "robust.pt"
    save_checkpoint(path, {k: v for k, v in ck.items() if k != "format"})
    rng = np.random.default_rng(1)
    z, y, x = np.mgrid[:6, :24, :20]
    vol = 100.0 * ((x - 10) ** 2 + (y - 12) ** 2 < 60) + rng.normal(0, 2, x.shape)
    img = sitk.GetImageFromArray(vol.astype(np.float32))
    src = tmp_path / "in.nii.gz"
    sitk.WriteImage(img, str(src))
    out = tmp_path / "out.nii.gz"
    assert cli_main(["sr", str(src), "-o", str(out), "--checkpoint", str(path), "--quiet"]) == 0
    arr = sitk.GetArrayFromImage(sitk.ReadImage(str(out)))
    assert arr.shape == vol.shape and np.isfinite(arr).all()
