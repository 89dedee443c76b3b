"""Reliability (issue 17): a failed write is never success, one line instead of a traceback,
bad values refused, no silent geometry change, a hint for low-resolution input, no leftovers,
clear messages, header-size limits and exit codes. One test (or more) per class of the issue;
each fails on the code before the fix. Module-level imports are of APIs that existed before."""

from __future__ import annotations

import gzip
import json
import os
import struct
import subprocess
import sys
import textwrap
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import torch
import yaml
from conftest import write_npz_run

from ressrdiff.checkpoint import load_checkpoint, save_checkpoint
from ressrdiff.cli import main
from ressrdiff.data.io import VolumeError, read_volume, write_volume

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> dict[str, Path]:
    """A tiny checkpoint (2 steps on synthetic pairs), a copy whose config says it was trained
    on the demo template (1 mm HR), its config and a 64x64x12 input volume."""
    root = tmp_path_factory.mktemp("rel")
    cfg, _ = write_npz_run(root, steps=2, batch=4, n=8)
    assert main(["train", "--config", str(cfg), "--out", str(root / "run"), "--quiet"]) == 0
    ckpt = root / "run" / "last.pt"
    ck = load_checkpoint(ckpt)
    ck["config"]["data"]["source"] = "demo"
    demo = root / "demo.pt"
    save_checkpoint(demo, {k: v for k, v in ck.items() if k != "format"})
    return {"root": root, "cfg": cfg, "ckpt": ckpt, "demo": demo, "vol": volume(root / "in.nii.gz")}


def volume(path: Path, spacing=(0.9, 0.9, 2.5), direction=None, size=(64, 64, 12)) -> Path:
    rng = np.random.default_rng(0)
    x, y, z = size
    a = (200 + 100 * rng.random((z, y, x))).astype(np.float32)
    img = sitk.GetImageFromArray(a)
    img.SetSpacing(spacing)
    if direction is not None:
        img.SetDirection(direction)
    sitk.WriteImage(img, str(path))
    return path


def one_line(err: str) -> str:
    err = err.strip()
    assert err and err.count("\n") == 0, err
    return err


def hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def run_python(script: str, cwd: Path, *args: str, timeout: int = 300):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


# the end of every subprocess script: run each named argv of sys.argv[1] through the CLI and
# print {name: [exit code, stderr]} as JSON
RUN_ARGVS = """
    results = {}
    for name, argv in json.loads(sys.argv[1]).items():
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            rc = main(argv)
        results[name] = [rc, err.getvalue()]
    print(json.dumps(results))
"""

# -- 1. a failed write is never success --------------------------------------------------------

LIMITED = (
    """
    import contextlib, io, json, resource, sys
    hard = resource.getrlimit(resource.RLIMIT_FSIZE)[1]
    resource.setrlimit(resource.RLIMIT_FSIZE, (8192, hard))  # like `ulimit -f 8`
    from ressrdiff.cli import main
"""
    + RUN_ARGVS
)


def test_writes_beyond_the_file_size_limit_fail_in_one_line_and_leave_nothing(run, tmp_path):
    """Under RLIMIT_FSIZE every output (sr to .nii.gz/.nii/.mha, the _std map, sample, a
    training checkpoint) fails with exit 1 and one line naming the output and the cause."""
    np.save(tmp_path / "slice.npy", np.random.default_rng(1).random((128, 128)).astype("f4"))
    ck, vol, out = str(run["ckpt"]), str(run["vol"]), tmp_path / "out"
    out.mkdir()
    sr = ["sr", vol, "--checkpoint", ck, "--device", "cpu", "--quiet", "--steps", "1", "-o"]
    cases = {
        "nii.gz": [*sr, str(out / "a.nii.gz")],
        "nii": [*sr, str(out / "b.nii")],
        "mha": [*sr, str(out / "c.mha")],
        "std": [*sr, str(out / "d.nii"), "--samples", "2"],
        "sample": ["sample", str(tmp_path / "slice.npy"), "-o", str(out / "e.nii.gz")]
        + ["--checkpoint", ck, "--device", "cpu", "--steps", "1"],
        "train": ["train", "--config", str(run["cfg"]), "--out", str(tmp_path / "r"), "--quiet"],
    }
    proc = run_python(LIMITED, tmp_path, json.dumps(cases))
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(proc.stdout)
    where = {"std": out / "d_std.nii", "train": tmp_path / "r" / "last.pt"}
    for name, (rc, err) in results.items():
        line = one_line(err)
        assert rc == 1, (name, line)
        target = where[name] if name in where else Path(cases[name][cases[name].index("-o") + 1])
        assert f"{target}: write failed: file size limit exceeded" in line, (name, line)
        assert ".tmp" not in line, line  # the output is named, never the temporary file
    assert (
        results["train"][1]
        .strip()
        .endswith("no checkpoint was written; removed " + str(tmp_path / "r"))
    )
    assert list(out.iterdir()) == [] and not (tmp_path / "r").exists()
    assert proc.stderr.strip() == ""  # nothing else: no library messages


def test_a_silently_truncated_write_is_caught_and_named(tmp_path, monkeypatch):
    """A writer that stops half-way without an error (as niftilib does on a full disk) is caught
    by reading the file back; the cause is read off the folder's free space."""
    target = write_volume(
        sitk.GetImageFromArray(np.ones((4, 5, 6), np.float32) * 3), tmp_path / "v.nii.gz"
    )
    before = target.read_bytes()
    real_write = sitk.WriteImage

    def truncating(img, path, *args, **kw):
        real_write(img, path, *args, **kw)
        data = Path(path).read_bytes()
        Path(path).write_bytes(data[: len(data) // 2])

    class Full:  # os.statvfs of a full disk
        f_bfree = f_bavail = 0
        f_frsize = 4096

    monkeypatch.setattr(sitk, "WriteImage", truncating)
    monkeypatch.setattr(os, "statvfs", lambda p: Full())
    img = sitk.GetImageFromArray(np.random.default_rng(0).random((4, 5, 6)).astype(np.float32))
    with pytest.raises(OSError, match=r"v.nii.gz: write failed: no space left on device"):
        write_volume(img, target)
    assert target.read_bytes() == before and hidden(tmp_path) == []


def test_the_writer_maps_errors_and_is_all_or_nothing(tmp_path):
    import errno

    from ressrdiff.atomic import Output, WriteError, bytes_output, write_files

    keep = tmp_path / "a.txt"
    keep.write_text("old")

    def failing(code):
        def write(tmp):
            tmp.write_bytes(b"part")
            raise OSError(code, os.strerror(code))

        return write

    for code, cause in ((errno.ENOSPC, "no space left on device"), (errno.EFBIG, "file size")):
        with pytest.raises(WriteError, match=f"b.txt: write failed: {cause}"):
            write_files([bytes_output(keep, b"new"), Output(tmp_path / "b.txt", failing(code))])
        assert keep.read_text() == "old" and sorted(os.listdir(tmp_path)) == ["a.txt"]


# -- 2. one line instead of a traceback --------------------------------------------------------


@pytest.mark.parametrize("device", ["cuda", "cuda:7", "tpu"])
def test_a_missing_device_is_one_line(run, tmp_path, capsys, monkeypatch, device):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    np.save(tmp_path / "s.npy", np.random.default_rng(0).random((16, 16)).astype("f4"))
    ck = str(run["ckpt"])
    cases = [
        ["sr", str(run["vol"]), "-o", str(tmp_path / "o.nii.gz"), "--checkpoint", ck, "--quiet"],
        ["sample", str(tmp_path / "s.npy"), "-o", str(tmp_path / "o.npy"), "--checkpoint", ck],
    ]
    if device == "cuda":  # train --device takes cpu, cuda or auto
        cases.append(["train", "--config", str(run["cfg"]), "--out", str(tmp_path / "r")])
    for argv in cases:
        assert main([*argv, "--device", device]) == 2, argv
        line = one_line(capsys.readouterr().err)
        assert f"{device}" in line and ("no CUDA device" in line or "unknown device" in line), line
    assert sorted(os.listdir(tmp_path)) == ["s.npy"]


def test_a_wrong_type_in_the_model_section_is_one_line(run, tmp_path, capsys):
    cfg = yaml.safe_load(run["cfg"].read_text())
    cfg["model"]["base_channels"] = "sixteen"
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(cfg))
    assert main(["train", "--config", str(bad), "--out", str(tmp_path / "r"), "--quiet"]) == 2
    line = one_line(capsys.readouterr().err)
    assert "model.base_channels must be an integer, got 'sixteen'" in line
    assert not (tmp_path / "r").exists()  # class 6: a config error leaves no run folder


INTERRUPT = (
    """
    import contextlib, io, json, os, signal, sys, time
    from ressrdiff import inference, training
    from ressrdiff.cli import main

    # Python leaves SIGINT ignored when it starts ignored (a job started with & by a
    # non-interactive shell): install the handler a terminal's Ctrl-C meets
    signal.signal(signal.SIGINT, signal.default_int_handler)

    def ctrl_c():
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(30)

    inference.super_resolve_volume = lambda *a, **k: ctrl_c()
    step = training.Trainer.train_step

    def train_step(self):
        rec = step(self)
        if self.step == 3:
            ctrl_c()
        return rec

    training.Trainer.train_step = train_step
"""
    + RUN_ARGVS
)


def test_ctrl_c_is_one_line_and_exit_130(run, tmp_path):
    cfg = yaml.safe_load(run["cfg"].read_text())
    cfg["train"].update(steps=6, ckpt_every=2)
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    out = tmp_path / "sr.nii.gz"
    cases = {
        "sr": ["sr", str(run["vol"]), "-o", str(out), "--checkpoint", str(run["ckpt"])]
        + ["--device", "cpu", "--quiet"],
        "train": ["train", "--config", str(path), "--out", str(tmp_path / "r"), "--quiet"],
    }
    proc = run_python(INTERRUPT, tmp_path, json.dumps(cases))
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads(proc.stdout)
    assert (
        res["sr"][0] == 130
        and one_line(res["sr"][1]) == "ressrdiff sr: interrupted; nothing written"
    )
    assert res["train"][0] == 130
    last = tmp_path / "r" / "last.pt"
    assert (
        one_line(res["train"][1])
        == f"ressrdiff train: interrupted; last checkpoint at {last} (step 2)"
    )
    assert not out.exists() and load_checkpoint(last)["step"] == 2


# -- 3. bad values -----------------------------------------------------------------------------


def test_bad_sample_and_train_values_are_refused(run, tmp_path, capsys):
    np.save(tmp_path / "s.npy", np.random.default_rng(0).random((16, 16)).astype("f4"))
    base = ["sample", str(tmp_path / "s.npy"), "-o", str(tmp_path / "o.npy")]
    base += ["--checkpoint", str(run["ckpt"]), "--device", "cpu"]
    for extra, text in (
        (["--steps", "0"], "steps=0"),
        (["--samples", "0"], "samples=0"),
        (["--upsample", "0"], "--upsample must be a factor >= 1, got 0"),
    ):
        assert main([*base, *extra]) == 2, extra
        assert text in one_line(capsys.readouterr().err)
    cfg = yaml.safe_load(run["cfg"].read_text())
    for value, shown in ((1.5, "1.5"), (True, "True")):
        cfg["train"]["steps"] = value
        bad = tmp_path / "bad.yaml"
        bad.write_text(yaml.safe_dump(cfg))
        assert main(["train", "--config", str(bad), "--out", str(tmp_path / "r"), "--quiet"]) == 2
        line = one_line(capsys.readouterr().err)
        assert f"train.steps must be an integer, got {shown}" in line
    assert sorted(os.listdir(tmp_path)) == ["bad.yaml", "s.npy"]


# -- 4. geometry -------------------------------------------------------------------------------


def test_geometry_is_never_changed_silently(run, tmp_path, capsys):
    ck = str(run["ckpt"])
    zero = tmp_path / "zero.nii"
    volume(zero)
    raw = bytearray(zero.read_bytes())
    raw[88:92] = struct.pack("<f", 0.0)  # NIfTI-1 pixdim[3] = 0
    zero.write_bytes(raw)
    argv = ["--checkpoint", ck, "--device", "cpu", "--quiet"]
    assert main(["sr", str(zero), "-o", str(tmp_path / "z.nii.gz"), *argv]) == 2
    assert "voxel spacing along z is 0 (NIfTI pixdim[3])" in one_line(capsys.readouterr().err)

    skew = volume(tmp_path / "skew.mha", direction=(1, 0, 0, 0.5, 1, 0, 0, 0, 1))
    assert main(["sr", str(skew), "-o", str(tmp_path / "s.nii.gz"), *argv]) == 2
    line = one_line(capsys.readouterr().err)
    assert "direction matrix is skewed" in line and "NIfTI cannot store it" in line
    assert main(["sr", str(skew), "-o", str(tmp_path / "s.mha"), *argv]) == 0
    got = sitk.ReadImage(str(tmp_path / "s.mha"))
    np.testing.assert_allclose(got.GetDirection(), sitk.ReadImage(str(skew)).GetDirection())

    absurd = volume(tmp_path / "absurd.nii.gz", spacing=(0.01, 0.01, 500))
    assert main(["sr", str(absurd), "-o", str(tmp_path / "a.nii.gz"), *argv]) == 0
    warning = one_line(capsys.readouterr().err)
    assert warning.startswith("ressrdiff sr: warning: ") and "x = 0.01 mm" in warning
    names = sorted(os.listdir(tmp_path))
    assert names == ["a.nii.gz", "absurd.nii.gz", "s.mha", "skew.mha", "zero.nii"]


def test_a_write_that_changes_the_geometry_is_refused(tmp_path, monkeypatch):
    real_write = sitk.WriteImage

    def shifting(img, path, *args, **kw):  # a writer that loses the spacing
        moved = sitk.Image(img)
        moved.SetSpacing((1.0, 1.0, 1.0))
        real_write(moved, path, *args, **kw)

    monkeypatch.setattr(sitk, "WriteImage", shifting)
    img = sitk.GetImageFromArray(np.random.default_rng(0).random((4, 5, 6)).astype(np.float32))
    img.SetSpacing((0.5, 0.5, 3.0))
    with pytest.raises(OSError, match=r"v.mha: write failed: the file read back has spacing"):
        write_volume(img, tmp_path / "v.mha")
    assert os.listdir(tmp_path) == []


# -- 5. a low-resolution input without --lr ----------------------------------------------------


def test_a_low_resolution_input_without_lr_gets_one_hint(run, tmp_path, capsys):
    lr = volume(tmp_path / "lr.nii.gz", spacing=(4.0, 4.0, 4.0), size=(16, 16, 8))
    hr = volume(tmp_path / "hr.nii.gz", spacing=(1.0, 1.0, 1.0), size=(16, 16, 8))
    argv = ["--checkpoint", str(run["demo"]), "--device", "cpu", "--quiet", "--steps", "1"]
    assert main(["sr", str(lr), "-o", str(tmp_path / "a.nii.gz"), *argv]) == 0
    hint = one_line(capsys.readouterr().err)
    assert hint.startswith(f"ressrdiff sr: warning: {lr}: spacing 4 x 4 x 4 mm") and "--lr" in hint
    assert main(["sr", str(hr), "-o", str(tmp_path / "b.nii.gz"), *argv]) == 0
    assert capsys.readouterr().err == ""


# -- 6. leftovers ------------------------------------------------------------------------------


def test_stale_temporary_files_of_the_output_are_removed(tmp_path):
    dead = 2**22 + 12345  # above the usual pid_max
    stale = [
        "..sr.pending-0123456789ab.tmp-0123456789ab.nii.gz",  # inference before the fix
        ".sr.tmp-0123456789ab.nii.gz",  # data.io before the fix
        f".sr.tmp-{dead}-0123abcd.nii.gz",
    ]
    others = [f".sr.tmp-{os.getppid()}-0123abcd.nii.gz", ".other.tmp-0123456789ab.nii.gz"]
    for name in stale + others:
        (tmp_path / name).write_bytes(b"partial")
    img = sitk.GetImageFromArray(np.random.default_rng(0).random((4, 5, 6)).astype(np.float32))
    write_volume(img, tmp_path / "sr.nii.gz")
    assert hidden(tmp_path) == sorted(others)  # a live writer's and another output's are kept


def test_failed_training_leaves_no_run_folder_and_keeps_an_earlier_log(run, tmp_path, capsys):
    cfg = str(run["cfg"])
    missing = tmp_path / "missing"
    assert main(["train", "--config", cfg, "--out", str(missing), "--resume", "--quiet"]) == 2
    assert "nothing to resume from" in one_line(capsys.readouterr().err)
    assert not missing.exists()
    earlier = tmp_path / "earlier"
    earlier.mkdir()
    (earlier / "log.jsonl").write_text('{"step": 99}\n')
    assert main(["train", "--config", cfg, "--out", str(earlier), "--quiet"]) == 2
    line = one_line(capsys.readouterr().err)
    assert "holds log.jsonl of an earlier run but no last.pt" in line
    assert os.listdir(earlier) == ["log.jsonl"] and "99" in (earlier / "log.jsonl").read_text()


# -- 7. messages -------------------------------------------------------------------------------


def test_messages_say_what_is_wrong(run, tmp_path, capsys):
    vol, ck = str(run["vol"]), str(run["ckpt"])
    out = str(tmp_path / "o.nii.gz")
    argv = ["--device", "cpu", "--quiet"]
    assert (
        main(["sr", vol, "-o", out, "--checkpoint", ck, "--samples", "2", "--std-out", out, *argv])
        == 2
    )
    line = one_line(capsys.readouterr().err)
    assert "the same file as the SR output" in line and "input" not in line
    assert main(["sr", vol, "-o", out, "--checkpoint", str(run["ckpt"].parent), *argv]) == 2
    line = one_line(capsys.readouterr().err)
    assert f"{run['ckpt'].parent}: is a folder, not a checkpoint file; did you mean {ck}?" in line
    assert os.listdir(tmp_path) == []


def test_a_truncated_last_checkpoint_names_the_kept_ones(run, tmp_path, capsys):
    cfg = yaml.safe_load(run["cfg"].read_text())
    cfg["train"].update(steps=4, ckpt_every=2, keep_every=2)
    path = tmp_path / "k.yaml"
    path.write_text(yaml.safe_dump(cfg))
    out = tmp_path / "r"
    assert main(["train", "--config", str(path), "--out", str(out), "--quiet"]) == 0
    capsys.readouterr()
    last = out / "last.pt"
    last.write_bytes(last.read_bytes()[:2000])
    cfg["train"]["steps"] = 6
    path.write_text(yaml.safe_dump(cfg))
    assert main(["train", "--config", str(path), "--out", str(out), "--resume", "--quiet"]) == 2
    line = one_line(capsys.readouterr().err)
    assert f"checkpoint {last} is corrupt (truncated?)" in line
    assert "resume from one of: step_000004.pt, step_000002.pt" in line
    for kept in out.glob("step_*.pt"):
        kept.unlink()
    assert main(["train", "--config", str(path), "--out", str(out), "--resume", "--quiet"]) == 2
    assert "keeps no step checkpoints" in one_line(capsys.readouterr().err)


# -- 8. resource bombs -------------------------------------------------------------------------


def _nifti_header(size_xyz, datatype=16, bitpix=32) -> bytes:
    """A NIfTI-1 header (352 bytes) declaring ``size_xyz`` voxels of ``datatype``."""
    hdr = bytearray(352)
    hdr[0:4] = struct.pack("<i", 348)
    hdr[40:56] = struct.pack("<8h", 3, *size_xyz, 1, 1, 1, 1)
    hdr[70:74] = struct.pack("<hh", datatype, bitpix)
    hdr[76:108] = struct.pack("<8f", 1, 1, 1, 1, 0, 0, 0, 0)
    hdr[108:112] = struct.pack("<f", 352.0)
    hdr[344:348] = b"n+1\0"
    return bytes(hdr)


def test_a_decompression_bomb_is_refused_from_its_header(tmp_path, monkeypatch, capsys):
    bomb = tmp_path / "bomb.nii.gz"
    with gzip.open(bomb, "wb", compresslevel=1) as fh:  # 64 MiB of zeros in ~300 KB
        fh.write(_nifti_header((256, 256, 256), datatype=2, bitpix=8))
        for _ in range(64):
            fh.write(bytes(1 << 20))
    monkeypatch.setenv("RESSRDIFF_MAX_VOXELS", "1000000")
    tracemalloc.start()
    try:
        with pytest.raises(VolumeError, match="RESSRDIFF_MAX_VOXELS") as info:
            read_volume(bomb)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 * 2**20, f"{peak / 2**20:.0f} MiB allocated before refusing"
    assert "declares 256x256x256 uint8 voxels (16,777,216 voxels" in str(info.value)
    mha = tmp_path / "big.mha"
    sitk.WriteImage(sitk.GetImageFromArray(np.ones((20, 20, 20), np.float32)), str(mha))
    monkeypatch.setenv("RESSRDIFF_MAX_VOXELS", "1000")
    with pytest.raises(VolumeError, match=r"declares 20x20x20 .* over the limit of 1,000 voxels"):
        read_volume(mha)
    monkeypatch.delenv("RESSRDIFF_MAX_VOXELS")
    huge = tmp_path / "huge.nii"  # 32 GiB declared, 352 bytes on disk: the default limit
    huge.write_bytes(_nifti_header((2048, 2048, 2048)))
    out = str(tmp_path / "o.nii.gz")
    assert main(["sr", str(huge), "-o", out, "--checkpoint", "none.pt", "--device", "cpu"]) == 2
    assert "over the limit of 100,000,000 voxels" in one_line(capsys.readouterr().err)


# -- 9. exit codes and progress bars -----------------------------------------------------------


def test_usage_errors_exit_2_and_no_progress_bar_off_a_terminal(run, tmp_path, capsys, monkeypatch):
    monkeypatch.delitem(sys.modules, "ipykernel", raising=False)  # not a Jupyter kernel
    cfg = str(run["cfg"])
    assert main(["train", "--config", cfg, "--out", str(run["ckpt"].parent), "--quiet"]) == 2
    assert "a run already exists there" in one_line(capsys.readouterr().err)
    argv = ["train", "--config", cfg, "--out", str(tmp_path / "r"), "--set", "nonsense"]
    assert main(argv) == 2
    assert "expected KEY=VALUE" in one_line(capsys.readouterr().err)
    book = ["book", "run", "--root", str(ROOT), "--batch", cfg, "--quiet"]
    assert main(book) == 2
    assert "--batch needs --notebook" in one_line(capsys.readouterr().err)
    out = tmp_path / "o.nii.gz"
    argv = ["sr", str(run["vol"]), "-o", str(out), "--checkpoint", str(run["ckpt"])]
    assert main([*argv, "--device", "cpu", "--steps", "1"]) == 0  # no --quiet
    assert capsys.readouterr().err == ""  # stderr is not a terminal: no progress bar
    assert main(["train", "--config", cfg, "--out", str(tmp_path / "t")]) == 0
    assert one_line(capsys.readouterr().err).startswith("ressrdiff train: res-srdiff")
