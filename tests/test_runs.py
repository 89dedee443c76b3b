"""ensure_run: reuse a finished run, continue a shorter one, train a missing one."""

from __future__ import annotations

from conftest import write_npz_run

from ressrdiff.checkpoint import load_checkpoint
from ressrdiff.config import load_config
from ressrdiff.runs import ensure_run, same_run
from ressrdiff.training import Trainer


def test_ensure_run_trains_reuses_and_continues(tmp_path):
    cfg_path, _ = write_npz_run(tmp_path, steps=2, batch=4, n=8)
    cfg = load_config(str(cfg_path))
    path, how = ensure_run(cfg, tmp_path / "run")
    assert how.startswith("trained 0 → 2 steps") and load_checkpoint(path)["step"] == 2
    mtime = path.stat().st_mtime_ns
    assert ensure_run(cfg, tmp_path / "run") == (path, "reused (2 steps)")
    assert path.stat().st_mtime_ns == mtime  # not rewritten
    # a run killed after step 1 is continued, not restarted
    Trainer(cfg, tmp_path / "killed", progress=False).train(stop_at=1)
    assert load_checkpoint(tmp_path / "killed" / "last.pt")["step"] == 1
    _, how = ensure_run(cfg, tmp_path / "killed")
    assert how.startswith("continued 1 → 2 steps")
    # another config in the same folder (here: more steps, so another lr schedule) is trained
    # afresh, not mistaken for this one
    other = cfg.replace(**{"train.steps": 3})
    assert not same_run(load_checkpoint(path)["config"], other)
    _, how = ensure_run(other, tmp_path / "run")
    assert how.startswith("trained 0 → 3 steps") and load_checkpoint(path)["step"] == 3


def test_ensure_run_writes_a_bicubic_checkpoint_without_training(tmp_path):
    cfg = load_config("bicubic-smoke")
    path, how = ensure_run(cfg, tmp_path / "b")
    assert how == "interpolation, not trained"
    ck = load_checkpoint(path)
    assert ck["step"] == 0 and ck["networks"] == {} and same_run(ck["config"], cfg)
