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
    df = evaluate(
        entries,
        out,
        data=root / "manifest.csv",
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
    ]
    assert cli_main([*argv, "--out", str(tmp_path / "o"), "--no-lpips", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "psnr" in out and "tiny" in out
    df = pd.read_csv(tmp_path / "o" / "metrics.csv")
    assert set(df["method"]) == {"nearest", "tiny"}
    assert df.groupby("subject")["slice"].nunique().max() == 3  # --max-slices


def test_test_volume_shape_cuts_along_the_chosen_axis(tmp_path):
    sitk.WriteImage(_head(0, size=(20, 16, 8)), str(tmp_path / "a.nii.gz"))
    sitk.WriteImage(_head(1), str(tmp_path / "b.nii.gz"))
    man = tmp_path / "manifest.csv"
    man.write_text("subject,hr_path,role\nb,b.nii.gz,train\na,a.nii.gz,test\n", encoding="utf-8")
    assert evaluation.test_volume_shape(man, axis=2) == (8, 16, 20)  # axial: z slices of y x x
    assert evaluation.test_volume_shape(man, axis=0) == (20, 8, 16)  # sagittal: x slices, z x y
