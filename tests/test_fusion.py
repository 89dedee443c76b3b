"""Orthogonal-plane fusion (ressrdiff.fusion): plane lookup, combination in closed form."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from conftest import write_npz_run

from ressrdiff.cli import main as cli_main
from ressrdiff.fusion import parse_planes, plane_axis, super_resolve_planes
from ressrdiff.inference import super_resolve_volume
from ressrdiff.methods import load_method


@pytest.fixture(scope="module")
def method(tmp_path_factory):
    root = tmp_path_factory.mktemp("fusion")
    cfg, _ = write_npz_run(root, steps=2, batch=4, n=8)
    assert cli_main(["train", "--config", str(cfg), "--out", str(root / "run"), "--quiet"]) == 0
    m = load_method(root / "run" / "last.pt")
    m.checkpoint_file = str(root / "run" / "last.pt")
    return m


def _volume(direction=(1, 0, 0, 0, 1, 0, 0, 0, 1)) -> sitk.Image:
    rng = np.random.default_rng(0)
    a = rng.random((12, 16, 20)).astype(np.float32)  # (z, y, x)
    a = 100 + 900 * (a + np.roll(a, 1, 0) + np.roll(a, 1, 1) + np.roll(a, 1, 2)) / 4
    img = sitk.GetImageFromArray(a)
    img.SetSpacing((1.0, 1.0, 1.0))
    img.SetDirection(direction)
    return img


def test_planes_are_found_from_the_direction_cosines():
    img = _volume()
    assert [plane_axis(img, p) for p in ("sagittal", "coronal", "axial")] == [0, 1, 2]
    # a volume stored with image x along physical z (superior), y along x, z along y
    permuted = _volume(direction=(0, 1, 0, 0, 0, 1, 1, 0, 0))
    assert plane_axis(permuted, "axial") == 0
    assert plane_axis(permuted, "sagittal") == 1
    assert plane_axis(permuted, "coronal") == 2


def test_parse_planes_gives_one_line_errors():
    assert parse_planes("Axial, coronal,sagittal") == ["axial", "coronal", "sagittal"]
    for bad, text in (
        ("axial,transverse", "'transverse'"),
        ("", "none given"),
        ("axial,axial", "twice"),
    ):
        with pytest.raises(ValueError, match=text) as info:
            parse_planes(bad)
        assert "\n" not in str(info.value)


def test_fusion_is_the_voxelwise_mean_or_median_of_the_per_plane_volumes(method):
    img = _volume()
    kw = dict(steps=2, progress=False, batch=4)
    per_axis = [
        sitk.GetArrayFromImage(super_resolve_volume(method, img, axis=a, seed=i, **kw)[0])
        for i, a in enumerate((2, 1, 0))
    ]
    assert not np.allclose(per_axis[0], per_axis[2], atol=1e-3)  # the planes do differ
    mean, std, axes = super_resolve_planes(method, img, **kw)
    assert axes == [2, 1, 0] and std is None
    np.testing.assert_allclose(sitk.GetArrayFromImage(mean), np.mean(per_axis, 0), rtol=1e-6)
    median, _, _ = super_resolve_planes(method, img, combine="median", **kw)
    np.testing.assert_allclose(sitk.GetArrayFromImage(median), np.median(per_axis, 0), rtol=1e-6)
    one, _, _ = super_resolve_planes(method, img, planes=["axial"], **kw)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(one), per_axis[0])
    assert sitk.GetArrayFromImage(mean).shape == sitk.GetArrayFromImage(img).shape


def test_fusion_std_is_the_root_mean_variance(method):
    img = _volume()
    kw = dict(steps=2, progress=False, batch=4, samples=2)
    stds = [
        sitk.GetArrayFromImage(super_resolve_volume(method, img, axis=a, seed=i, **kw)[1])
        for i, a in enumerate((2, 1))
    ]
    _, std, _ = super_resolve_planes(method, img, planes=["axial", "coronal"], **kw)
    want = np.sqrt((stds[0].astype(np.float64) ** 2 + stds[1].astype(np.float64) ** 2) / 2)
    np.testing.assert_allclose(sitk.GetArrayFromImage(std), want, rtol=1e-5)


def test_bad_combine_is_refused(method):
    with pytest.raises(ValueError, match="combine"):
        super_resolve_planes(method, _volume(), combine="max", progress=False)


def test_sr_planes_on_the_command_line(method, tmp_path, capsys):
    inp, out = tmp_path / "in.nii.gz", tmp_path / "out.nii.gz"
    img = _volume()
    sitk.WriteImage(img, str(inp))
    ck = method.checkpoint_file
    argv = ["sr", str(inp), "-o", str(out), "--checkpoint", ck, "--steps", "1", "--quiet"]
    assert cli_main([*argv, "--planes", "axial,coronal", "--device", "cpu"]) == 0
    said = capsys.readouterr().out
    assert "axial+coronal (mean of 2 planes)" in said
    sr = sitk.ReadImage(str(out))
    assert sr.GetSize() == img.GetSize() and sr.GetSpacing() == img.GetSpacing()
    assert cli_main([*argv, "-o", str(tmp_path / "x.nii.gz"), "--planes", "axial,oblique"]) == 2
    err = capsys.readouterr().err.strip()
    assert "'oblique'" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "x.nii.gz").exists()


def test_a_model_that_records_planes_is_fused_by_default(method, tmp_path, capsys):
    """``infer.planes`` in a shipped model is what ``ressrdiff sr`` fuses when neither --planes
    nor --axis is given; --planes axial or --axis runs one plane. The same volume as asking for
    the planes by name."""
    ck = method.checkpoint_file
    shipped = tmp_path / "m.safetensors"
    assert (
        cli_main(["export", ck, "-o", str(shipped), "--infer-planes", "axial,coronal,sagittal"])
        == 0
    )
    assert load_method(shipped).cfg.infer.planes == ["axial", "coronal", "sagittal"]
    inp = tmp_path / "in.nii.gz"
    sitk.WriteImage(_volume(), str(inp))
    capsys.readouterr()
    runs = {
        "default": [],
        "named": ["--planes", "axial,coronal,sagittal"],
        "one": ["--planes", "axial"],
        "axis": ["--axis", "z"],
    }
    vols = {}
    for name, extra in runs.items():
        out = tmp_path / f"{name}.nii.gz"
        argv = ["sr", str(inp), "-o", str(out), "--checkpoint", str(shipped), "--steps", "1"]
        assert cli_main([*argv, "--quiet", "--device", "cpu", *extra]) == 0
        said = capsys.readouterr().out
        assert ("mean of 3 planes" in said) == (name in ("default", "named"))
        vols[name] = sitk.GetArrayFromImage(sitk.ReadImage(str(out)))
    np.testing.assert_array_equal(vols["default"], vols["named"])
    np.testing.assert_array_equal(vols["one"], vols["axis"])
    assert not np.array_equal(vols["default"], vols["one"])


def test_infer_planes_in_a_config_are_checked_and_omitted_while_none():
    from ressrdiff.config import PLANE_NAMES, ConfigError, load_config
    from ressrdiff.fusion import PLANES

    assert set(PLANE_NAMES) == set(PLANES)
    cfg = load_config("smoke")
    assert cfg.infer.planes is None and "planes" not in cfg.to_dict().get("infer", {})
    fused = cfg.replace(**{"infer.planes": ["axial", "sagittal"]})
    assert fused.to_dict()["infer"]["planes"] == ["axial", "sagittal"]
    for bad in (["axial", "oblique"], ["axial", "axial"], [], "axial"):
        with pytest.raises(ConfigError, match="infer.planes"):
            cfg.replace(**{"infer.planes": bad})


def test_channels_last_changes_a_volume_by_rounding_only(method):
    img = _volume()
    kw = dict(steps=2, progress=False, batch=4, bf16=False)
    a, _ = super_resolve_volume(method, img, channels_last=False, **kw)
    b, _ = super_resolve_volume(method, img, channels_last=True, **kw)
    a, b = sitk.GetArrayFromImage(a), sitk.GetArrayFromImage(b)
    assert np.abs(a - b).max() <= 1e-4 * (a.max() - a.min())
    assert all(p.is_contiguous() for p in method.parameters())


def test_progress_bars_name_each_plane_and_quiet_silences_them(method, capsys, monkeypatch):
    import ressrdiff.inference as inference

    monkeypatch.setattr(inference, "progress_enabled", lambda wanted, stream=None: wanted)
    img = _volume()
    super_resolve_planes(method, img, steps=1, progress=True, batch=4)
    err = capsys.readouterr().err
    for i, plane in enumerate(("axial", "coronal", "sagittal")):
        assert f"ressrdiff sr, {plane} ({i + 1}/3)" in err
    assert "slice/s" in err or "s/slice" in err  # tqdm's rate, beside its ETA
    super_resolve_planes(method, img, steps=1, progress=False, batch=4)
    assert capsys.readouterr().err == ""
