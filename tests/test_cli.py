"""The ``ressrdiff`` CLI: train, sample, DDP under torchrun, and clear errors."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import write_npz_run

from ressrdiff.checkpoint import load_checkpoint
from ressrdiff.cli import main


@pytest.fixture
def trained(tmp_path):
    cfg, pairs = write_npz_run(tmp_path)
    assert main(["train", "--config", str(cfg), "--out", str(tmp_path / "run"), "--quiet"]) == 0
    return tmp_path / "run" / "last.pt", pairs


def test_sample_writes_sr_in_input_units_and_refuses_to_overwrite(trained, tmp_path, capsys):
    ckpt, pairs = trained
    lr = (pairs.lr[0, 0].numpy() * 50 + 100).astype(np.float32)  # arbitrary units
    src = tmp_path / "lr.npy"
    np.save(src, lr)
    out = tmp_path / "sr.npy"
    assert main(["sample", str(src), "-o", str(out), "--checkpoint", str(ckpt)]) == 0
    sr = np.load(out)
    assert sr.shape == lr.shape and np.isfinite(sr).all()
    # min-max in, inverse out: the SR lives in the input's intensity range (roughly)
    assert 0 < sr.mean() < 300
    before = src.read_bytes()
    assert main(["sample", str(src), "-o", str(src), "--checkpoint", str(ckpt)]) == 2
    assert "equals the input" in capsys.readouterr().err
    assert src.read_bytes() == before
    # deterministic for a seed
    out2 = tmp_path / "sr2.npy"
    assert main(["sample", str(src), "-o", str(out2), "--checkpoint", str(ckpt)]) == 0
    assert np.array_equal(np.load(out2), sr)


def test_sample_ensemble_and_upsample(trained, tmp_path):
    ckpt, pairs = trained
    small = pairs.hr[0, 0, ::4, ::4].numpy()
    src = tmp_path / "small.npy"
    np.save(src, small)
    out, sd = tmp_path / "sr.nii.gz", tmp_path / "sd.npy"
    assert (
        main(
            [
                "sample",
                str(src),
                "-o",
                str(out),
                "--checkpoint",
                str(ckpt),
                "--upsample",
                "4",
                "--samples",
                "3",
                "--steps",
                "2",
                "--std-out",
                str(sd),
            ]
        )
        == 0
    )
    import SimpleITK as sitk

    assert sitk.GetArrayFromImage(sitk.ReadImage(str(out))).shape == (16, 16)
    s = np.load(sd)
    assert s.shape == (16, 16) and (s >= 0).all() and s.max() > 0


def test_cli_errors_are_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: {preset: tiny-cpu}\ntrain: {stepz: 1}\n")
    assert main(["train", "--config", str(bad), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "bad.yaml" in err and "stepz" in err
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"\x00" * 10)
    src = tmp_path / "x.npy"
    np.save(src, np.random.default_rng(0).random((16, 16)).astype(np.float32))
    assert main(["sample", str(src), "-o", str(tmp_path / "y.npy"), "--checkpoint", str(junk)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "junk.pt" in err
    np.save(src, np.ones((16, 16), np.float32))
    ckpt = tmp_path / "none.pt"
    assert main(["sample", str(src), "-o", str(tmp_path / "y.npy"), "--checkpoint", str(ckpt)]) == 2
    assert "none.pt" in capsys.readouterr().err
    assert not (tmp_path / "y.npy").exists()


def test_help_texts():
    for cmd in (["--help"], ["train", "--help"], ["sample", "--help"], ["sr", "--help"]):
        r = subprocess.run(
            [sys.executable, "-m", "ressrdiff", *cmd], capture_output=True, text=True, check=True
        )
        assert "usage: ressrdiff" in r.stdout
        if cmd != ["--help"]:
            assert "example" in r.stdout.lower(), cmd


@pytest.mark.slow
def test_ddp_two_processes_match_one_process_with_the_global_batch(tmp_path):
    """torchrun with 2 gloo processes and batch 2 per process must reach the same weights as
    one process with batch 4: same samples, same noise, gradients averaged."""
    cfg, _ = write_npz_run(tmp_path, steps=3, batch=2, name="ddp.yaml")
    single, _ = write_npz_run(tmp_path, steps=3, batch=4, name="single.yaml")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            "2",
            "--master_port",
            "29517",
            "-m",
            "ressrdiff",
            "train",
            "--config",
            str(cfg),
            "--out",
            str(tmp_path / "ddp"),
            "--quiet",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert main(["train", "--config", str(single), "--out", str(tmp_path / "one"), "--quiet"]) == 0
    a = load_checkpoint(tmp_path / "ddp" / "last.pt")
    b = load_checkpoint(tmp_path / "one" / "last.pt")
    assert a["world_size"] == 2 and b["world_size"] == 1
    la = [h["loss"] for h in a["history"]]
    lb = [h["loss"] for h in b["history"]]
    np.testing.assert_allclose(la, lb, rtol=1e-5)
    for k, v in a["networks"]["net"].items():
        torch.testing.assert_close(v, b["networks"]["net"][k], rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_training_killed_with_sigkill_resumes_exactly(tmp_path):
    """Kill a real training process mid-run (SIGKILL), resume it, and compare with a run that
    was never interrupted: the same losses at every step and the same final weights."""
    import signal
    import time

    cfg, _ = write_npz_run(tmp_path, steps=40, batch=4)
    text = cfg.read_text(encoding="utf-8").replace("ckpt_every: 100", "ckpt_every: 3")
    cfg.write_text(text)
    killed = tmp_path / "killed"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ressrdiff",
            "train",
            "--config",
            str(cfg),
            "--out",
            str(killed),
            "--quiet",
        ],
        env={**os.environ, "OMP_NUM_THREADS": "2"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 120
    log = killed / "log.jsonl"
    while time.time() < deadline:
        if log.exists() and len(log.read_text(encoding="utf-8").splitlines()) >= 6:
            break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    step_at_kill = load_checkpoint(killed / "last.pt")["step"]
    # six steps were logged, so the checkpoint of step 3 is complete; on a loaded machine the
    # kill can land while step 6's checkpoint is still being written (the atomic write keeps 3)
    assert 3 <= step_at_kill < 40, f"the run was not interrupted mid-way ({step_at_kill})"
    assert main(["train", "--config", str(cfg), "--out", str(killed), "--resume", "--quiet"]) == 0
    assert main(["train", "--config", str(cfg), "--out", str(tmp_path / "whole"), "--quiet"]) == 0
    a = load_checkpoint(killed / "last.pt")
    b = load_checkpoint(tmp_path / "whole" / "last.pt")
    assert a["step"] == b["step"] == 40
    assert [h["loss"] for h in a["history"]] == [h["loss"] for h in b["history"]]
    for k, v in a["networks"]["net"].items():
        assert torch.equal(v, b["networks"]["net"][k]), k
