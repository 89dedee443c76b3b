"""The evaluation runner: references, checkpoints, cached volumes, provenance and resume."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
from conftest import write_npz_run

from ressrdiff import evaluation
from ressrdiff.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from ressrdiff.cli import main as cli_main
from ressrdiff.evaluation import Entry, evaluate, parse_entry
from ressrdiff.metrics import MetricSuite


def _head(seed: int, size=(32, 32, 8)) -> sitk.Image:
    """A smooth bright ellipsoid with texture on a dark background (a toy head)."""
    rng = np.random.default_rng(seed)
    x, y, z = size
    zz, yy, xx = np.meshgrid(*(np.linspace(-1, 1, n) for n in (z, y, x)), indexing="ij")
    inside = (xx / 0.8) ** 2 + (yy / 0.7) ** 2 + (zz / 1.2) ** 2 < 1
    tex = np.sin(6 * xx + seed) * np.cos(5 * yy) + 0.1 * rng.standard_normal(xx.shape)
    a = np.where(inside, 400 + 150 * tex, 5.0).astype(np.float32)
    img = sitk.GetImageFromArray(a)
    img.SetSpacing((1.0, 1.0, 1.5))
    return img


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval")
    rows = ["subject,hr_path,role"]
    for i, role in enumerate(["train", "test", "test"]):
        sitk.WriteImage(_head(i), str(root / f"s{i}.nii.gz"))
        rows.append(f"s{i},s{i}.nii.gz,{role}")
    (root / "manifest.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    cfg, _ = write_npz_run(root, steps=2, batch=4, n=8)
    assert cli_main(["train", "--config", str(cfg), "--out", str(root / "run"), "--quiet"]) == 0
    return root, str(root / "run" / "last.pt")


def _run(root, entries, out, **kw):
    logs: list[str] = []
    kw.setdefault("data", root / "manifest.csv")
    df = evaluate(
        entries,
        out,
        progress=False,
        suite=MetricSuite(lpips="off"),
        log=logs.append,
        **kw,
    )
    return df, logs


def test_table_volumes_provenance_and_resume(setup, tmp_path, monkeypatch):
    root, ckpt = setup
    out = tmp_path / "out"
    entries = [Entry("nearest"), Entry("bspline"), Entry("tiny", ckpt, steps=2)]
    df, logs = _run(root, entries, out)

    assert set(df["method"]) == {"nearest", "bspline", "tiny"}
    assert set(df["subject"]) == {"s1", "s2"}  # only the test subjects
    assert {"subject", "slice", "method", "metric", "value"} <= set(df.columns)
    assert df[df.metric != "lpips"]["value"].notna().all()
    # every SR volume is cached on the HR grid
    hr = sitk.ReadImage(str(root / "s1.nii.gz"))
    for label in ("nearest", "bspline", "tiny"):
        v = sitk.ReadImage(str(out / "volumes" / "s1" / f"{label}.nii.gz"))
        assert v.GetSize() == hr.GetSize() and v.GetSpacing() == hr.GetSpacing()
    # the smooth toy head is better re-gridded by a B-spline than by nearest neighbour
    psnr = df[df.metric == "psnr"].groupby("method")["value"].mean()
    assert psnr["bspline"] > psnr["nearest"]
    prov = json.loads((out / "provenance.json").read_text(encoding="utf-8"))
    assert prov["tiny"]["checkpoint_sha256"] == evaluation.file_sha256(ckpt)
    assert set(prov["nearest"]["data_sha256"]) == {"s1", "s2"}
    assert prov["tiny"]["ressrdiff"] and prov["tiny"]["entry"]["steps"] == 2

    # resume: nothing is recomputed (a recomputation would hit the failing regrid)
    def boom(*a, **k):
        raise AssertionError("recomputed")

    monkeypatch.setattr(evaluation, "_sr_volume", boom)
    monkeypatch.setattr("ressrdiff.inference.load_sr_method", boom)  # nor loaded
    df2, logs2 = _run(root, entries, out)
    assert sum("cached" in line for line in logs2) == 3
    pd.testing.assert_frame_equal(
        df.reset_index(drop=True), df2.reset_index(drop=True), check_dtype=False
    )
    # a changed entry (other steps) is recomputed, the others stay cached
    monkeypatch.undo()
    _, logs3 = _run(root, [Entry("nearest"), Entry("tiny", ckpt, steps=1)], out)
    assert any("nearest: cached" in line for line in logs3)
    assert not any("tiny: cached" in line for line in logs3)


def test_preset_mismatch_and_bad_entries(setup, tmp_path):
    root, ckpt = setup
    c = load_checkpoint(ckpt)
    c["config"]["data"]["preset"] = "prostate"
    other = tmp_path / "prostate.pt"
    save_checkpoint(other, {k: v for k, v in c.items() if k != "format"})
    with pytest.raises(CheckpointError, match="trained for preset 'prostate'"):
        _run(root, [Entry("p", str(other))], tmp_path / "o")
    with pytest.raises(ValueError, match="duplicate"):
        _run(root, [Entry("nearest"), Entry("nearest")], tmp_path / "o")
    with pytest.raises(ValueError, match="needs a checkpoint"):
        Entry("mystery")
    with pytest.raises(ValueError, match="not found"):
        parse_entry("x=/no/such.pt")
    with pytest.raises(ValueError, match="integer"):
        parse_entry(f"x={ckpt}@four")
    assert parse_entry(f"x={ckpt}@4") == Entry("x", ckpt, 4)
    assert parse_entry("bspline") == Entry("bspline")


def test_cli_eval_writes_the_table(setup, tmp_path, capsys):
    root, ckpt = setup
    argv = [
        "eval",
        "nearest",
        f"tiny={ckpt}@1",
        "--data",
        str(root / "manifest.csv"),
        "--max-slices",
        "3",
        "--degradation",
        "acquisition",
    ]
    assert cli_main([*argv, "--out", str(tmp_path / "o"), "--no-lpips", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "psnr" in out and "tiny" in out
    # the checkpoint was trained on 'resample': evaluated all the same, with one warning line
    warnings = [line for line in out.splitlines() if "warning" in line]
    assert warnings == [
        f"evaluate: warning: tiny: {ckpt} was trained on degradation 'resample', evaluated on "
        "'acquisition'"
    ]
    df = pd.read_csv(tmp_path / "o" / "metrics.csv")
    assert set(df["method"]) == {"nearest", "tiny"}
    assert df.groupby("subject")["slice"].nunique().max() == 3  # --max-slices
    prov = json.loads((tmp_path / "o" / "provenance.json").read_text(encoding="utf-8"))
    assert prov["nearest"]["degradation"] == "acquisition" == prov["tiny"]["degradation"]
    assert prov["tiny"]["trained_degradation"] == "resample"
    assert prov["nearest"]["antialias"] is True  # the older key, kept for existing readers
    # --antialias is the hidden older spelling; an unknown name is a one-line error
    from ressrdiff.cli import build_parser

    assert build_parser().parse_args(["eval", "nearest", "--antialias"]).degradation == (
        "acquisition"
    )
    assert build_parser().parse_args(["eval", "nearest"]).degradation == "resample"
    with pytest.raises(SystemExit):
        cli_main(["eval", "--help"])
    assert "--antialias" not in capsys.readouterr().out
    assert cli_main([*argv[:-1], "blurry", "--out", str(tmp_path / "b"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "unknown degradation 'blurry'" in err
    assert not (tmp_path / "b").exists()


def test_test_volume_shape_cuts_along_the_chosen_axis(tmp_path):
    sitk.WriteImage(_head(0, size=(20, 16, 8)), str(tmp_path / "a.nii.gz"))
    sitk.WriteImage(_head(1), str(tmp_path / "b.nii.gz"))
    man = tmp_path / "manifest.csv"
    man.write_text("subject,hr_path,role\nb,b.nii.gz,train\na,a.nii.gz,test\n", encoding="utf-8")
    assert evaluation.test_volume_shape(man, axis=2) == (8, 16, 20)  # axial: z slices of y x x
    assert evaluation.test_volume_shape(man, axis=0) == (20, 8, 16)  # sagittal: x slices, z x y


def _manifest(tmp_path, root, **cols) -> str:
    """A new one-test-subject manifest (s1 of ``setup``) in ``tmp_path``, with extra columns
    such as mask_path."""
    extra = "".join(f",{k}" for k in cols)
    values = "".join(f",{v}" for v in cols.values())
    man = tmp_path / f"manifest_{len(list(tmp_path.glob('manifest_*.csv')))}.csv"
    man.write_text(
        f"subject,hr_path,role{extra}\ns1,{root / 's1.nii.gz'},test{values}\n", encoding="utf-8"
    )
    return str(man)


def _like(img: sitk.Image, arr: np.ndarray) -> sitk.Image:
    out = sitk.GetImageFromArray(arr)
    out.CopyInformation(img)
    return out


def test_bad_inputs_are_one_line_errors_and_write_nothing(setup, tmp_path):
    """Every subject and every checkpoint is checked before OUT is created: a wrong checkpoint
    after a reference, an empty mask, a mask or an LR on another grid."""
    root, ckpt = setup
    hr = sitk.ReadImage(str(root / "s1.nii.gz"))
    c = load_checkpoint(ckpt)
    c["config"]["data"]["preset"] = "prostate"
    other = tmp_path / "prostate.pt"
    save_checkpoint(other, {k: v for k, v in c.items() if k != "format"})
    empty = tmp_path / "empty_mask.nii.gz"
    sitk.WriteImage(_like(hr, np.zeros(sitk.GetArrayFromImage(hr).shape, np.uint8)), str(empty))
    shifted_mask = tmp_path / "shifted_mask.nii.gz"
    m = _like(hr, np.ones(sitk.GetArrayFromImage(hr).shape, np.uint8))
    m.SetOrigin((0.0, 0.0, 3.0))
    sitk.WriteImage(m, str(shifted_mask))
    lr = evaluation.downsample(hr, "brain-4x")
    odd = tmp_path / "lr_2x.nii.gz"  # a x2 LR grid: neither the HR nor the brain-4x LR grid
    sitk.WriteImage(evaluation.downsample(hr, 2), str(odd))
    shifted_lr = tmp_path / "lr_shifted.nii.gz"
    lr.SetOrigin((9.0, 9.0, 9.0))
    sitk.WriteImage(lr, str(shifted_lr))
    s1 = str(root / "s1.nii.gz")
    cases = {
        "checkpoint after nearest": (
            [Entry("nearest"), Entry("p", str(other))],
            root / "manifest.csv",
            [str(other), "trained for preset 'prostate'"],
        ),
        "empty mask": (
            [Entry("nearest")],
            _manifest(tmp_path, root, mask_path=empty),
            [str(empty), "empty mask"],
        ),
        "mask on another grid": (
            [Entry("nearest")],
            _manifest(tmp_path, root, mask_path=shifted_mask),
            [str(shifted_mask), s1, "grids differ"],
        ),
        "LR on another grid": (
            [Entry("nearest")],
            _manifest(tmp_path, root, lr_path=odd),
            [str(odd), s1, "neither the HR grid nor the 'brain-4x' LR grid"],
        ),
        "LR shifted": (
            [Entry("nearest")],
            _manifest(tmp_path, root, lr_path=shifted_lr),
            [str(shifted_lr), s1],
        ),
    }
    out = tmp_path / "out"
    for name, (entries, data, expect) in cases.items():
        with pytest.raises((ValueError, CheckpointError)) as info:
            evaluate(entries, out, data=data, progress=False, suite=MetricSuite(lpips="off"))
        msg = str(info.value)
        assert "\n" not in msg, (name, msg)
        for text in expect:
            assert text in msg, (name, msg)
        assert not out.exists(), f"{name}: {sorted(p.name for p in out.rglob('*'))}"


def test_given_lr_on_either_grid_and_a_full_mask(setup, tmp_path):
    """A manifest LR on the brain-4x LR grid is re-gridded like the simulated one; an LR on the
    HR grid is used as is (nearest = that LR); a mask covering every voxel is accepted."""
    root, _ = setup
    hr = sitk.ReadImage(str(root / "s1.nii.gz"))
    lr = evaluation.downsample(hr, "brain-4x")
    lr_file, on_hr_file = tmp_path / "lr.nii.gz", tmp_path / "lr_hr_grid.nii.gz"
    sitk.WriteImage(lr, str(lr_file))
    on_hr = evaluation.regrid(lr, hr, "bspline")
    sitk.WriteImage(on_hr, str(on_hr_file))
    full = tmp_path / "full_mask.nii.gz"
    sitk.WriteImage(_like(hr, np.ones(sitk.GetArrayFromImage(hr).shape, np.uint8)), str(full))

    sim, _ = _run(root, [Entry("nearest")], tmp_path / "sim", data=_manifest(tmp_path, root))
    man = _manifest(tmp_path, root, lr_path=lr_file)
    given, _ = _run(root, [Entry("nearest")], tmp_path / "given", data=man)
    pd.testing.assert_frame_equal(sim, given)  # the same LR, given or simulated
    man = _manifest(tmp_path, root, lr_path=on_hr_file, mask_path=full)
    df, _ = _run(root, [Entry("nearest"), Entry("bspline")], tmp_path / "hrgrid", data=man)
    vol = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "hrgrid/volumes/s1/nearest.nii.gz")))
    np.testing.assert_array_equal(vol, sitk.GetArrayFromImage(on_hr))
    assert df["slice"].nunique() == hr.GetSize()[2]  # the full mask keeps every slice
    # whole-slice and masked scores agree when the mask is everything
    piv = df[df.metric == "psnr"].pivot_table(
        index=["method", "slice"], columns="region", values="value"
    )
    np.testing.assert_allclose(piv["mask"], piv["whole"])


def test_cache_key_covers_ssim_pooling_degradation_and_missing_volumes(setup, tmp_path):
    root, _ = setup
    out = tmp_path / "out"
    entries = [Entry("nearest")]
    df, logs = _run(root, entries, out)
    _, logs = _run(root, entries, out)
    assert any("nearest: cached" in line for line in logs)
    prov = json.loads((out / "metrics" / "nearest.json").read_text(encoding="utf-8"))
    assert prov["ssim_downsample"] is False and prov["degradation"] == "resample"
    # a table written before the degradation was named (antialias only) is still read back
    old = {k: v for k, v in prov.items() if k != "degradation"}
    (out / "metrics" / "nearest.json").write_text(json.dumps(old), encoding="utf-8")
    _, logs = _run(root, entries, out)
    assert any("nearest: cached" in line for line in logs)
    assert prov["device"] == "cpu" and prov["metrics_device"] == "cpu"
    # another SSIM pooling: recomputed
    logs = []
    evaluate(
        entries,
        out,
        data=root / "manifest.csv",
        progress=False,
        suite=MetricSuite(lpips="off", ssim_downsample=True),
        log=logs.append,
    )
    assert not any("cached" in line for line in logs)
    # the acquisition model's LR: recomputed, and a different (smoother) nearest volume
    before = sitk.GetArrayFromImage(sitk.ReadImage(str(out / "volumes/s1/nearest.nii.gz")))
    df_aa, logs = _run(root, entries, out, degradation="acquisition")
    assert not any("cached" in line for line in logs)
    after = sitk.GetArrayFromImage(sitk.ReadImage(str(out / "volumes/s1/nearest.nii.gz")))
    assert not np.array_equal(before, after)
    prov = json.loads((out / "metrics" / "nearest.json").read_text())
    assert prov["degradation"] == "acquisition" and prov["antialias"] is True
    _, logs = _run(root, entries, out, antialias=True)  # the older spelling: the same key
    assert any("nearest: cached" in line for line in logs)
    _, logs = _run(root, entries, out, degradation="acquisition-kspace")  # another model
    assert not any("cached" in line for line in logs)
    assert json.loads((out / "metrics" / "nearest.json").read_text())["antialias"] is False
    # a deleted SR volume: the entry is recomputed, not read back
    (out / "volumes" / "s2" / "nearest.nii.gz").unlink()
    _, logs = _run(root, entries, out, degradation="acquisition")
    assert not any("cached" in line for line in logs)
    assert (out / "volumes" / "s2" / "nearest.nii.gz").is_file()
    _, logs = _run(root, entries, out, degradation="acquisition")
    assert any("nearest: cached" in line for line in logs)


def test_validation_role_and_plane_fusion(setup, tmp_path):
    """``role="val"`` scores the validation subjects only; ``planes`` fuses per-plane SR of the
    whole volume (the same volume :func:`super_resolve_planes` returns), recorded in the
    provenance and in the cache key, while references ignore it."""
    from ressrdiff.fusion import super_resolve_planes
    from ressrdiff.inference import load_sr_method

    root, ckpt = setup
    rows = ["subject,hr_path,role", "s0,s0.nii.gz,train", "s1,s1.nii.gz,val", "s2,s2.nii.gz,test"]
    (root / "roles.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    entries = [Entry("nearest"), Entry("bspline"), Entry("tiny", ckpt, steps=1)]
    df, _ = _run(root, entries, out, data=root / "roles.csv", role="val")
    assert set(df["subject"]) == {"s1"}
    axial = sitk.GetArrayFromImage(sitk.ReadImage(str(out / "volumes/s1/tiny.nii.gz")))
    planes = ("axial", "coronal", "sagittal")
    df3, logs = _run(root, entries, out, data=root / "roles.csv", role="val", planes=planes)
    assert any("nearest: cached" in line for line in logs)  # a reference has no planes
    assert not any("tiny: cached" in line for line in logs)
    prov = json.loads((out / "metrics" / "tiny.json").read_text(encoding="utf-8"))
    assert prov["planes"] == list(planes) and prov["role"] == "val"
    fused = sitk.GetArrayFromImage(sitk.ReadImage(str(out / "volumes/s1/tiny.nii.gz")))
    assert not np.allclose(fused, axial)
    method = load_sr_method(ckpt)
    regrid = method.cfg.data.regrid  # the re-gridded input the method starts from
    base = sitk.ReadImage(str(out / f"volumes/s1/{regrid}.nii.gz"))
    want, _, _ = super_resolve_planes(method, base, planes=planes, steps=1, progress=False)
    np.testing.assert_allclose(fused, sitk.GetArrayFromImage(want), atol=1e-4)
    with pytest.raises(ValueError, match="no validation subject"):
        _run(root, entries, tmp_path / "x", role="val")  # the setup manifest has none
    with pytest.raises(ValueError, match="unknown plane"):
        _run(root, entries, tmp_path / "y", planes=("axial", "oblique"))


def test_own_planes_reads_the_exported_choice(setup, tmp_path):
    """``own_planes`` returns the planes an export recorded, None for a checkpoint without
    them, and None (not an exception) for an unreadable file, which the loader reports."""
    root, ckpt = setup
    assert evaluation.own_planes(ckpt) is None
    out = tmp_path / "fused.safetensors"
    args = ["export", ckpt, "-o", str(out), "--infer-planes", "axial,coronal,sagittal"]
    assert cli_main(args) == 0
    assert evaluation.own_planes(str(out)) == ["axial", "coronal", "sagittal"]
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a checkpoint")
    assert evaluation.own_planes(str(bad)) is None
