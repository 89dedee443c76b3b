"""Training runs that chapters and scripts share: reuse a finished run, continue a shorter one,
train a missing one."""

from __future__ import annotations

import json
import time
from pathlib import Path

from .checkpoint import CheckpointError, load_checkpoint
from .config import RunConfig

__all__ = ["same_run", "ensure_run"]


def same_run(saved: dict, cfg: RunConfig) -> bool:
    """Whether a checkpoint's config ``saved`` equals ``cfg`` up to the training device."""
    a, b = json.loads(json.dumps(saved)), json.loads(json.dumps(cfg.to_dict()))
    a["train"].pop("device", None)
    b["train"].pop("device", None)
    return a == b


def ensure_run(cfg: RunConfig, run_dir: str | Path, *, progress: bool = False) -> tuple[Path, str]:
    """``run_dir/last.pt`` for ``cfg``: reused when it is complete, continued when it stopped
    early, trained otherwise (bicubic: a checkpoint holding the config). Returns the path and
    a short note of what happened."""
    from .methods.bicubic import write_checkpoint
    from .training import Trainer

    run_dir = Path(run_dir)
    path = run_dir / "last.pt"
    resume = False
    if cfg.method == "bicubic":
        reusable = False
        if path.is_file():
            try:
                reusable = same_run(load_checkpoint(path)["config"], cfg)
            except (CheckpointError, KeyError):
                pass
        if not reusable:
            run_dir.mkdir(parents=True, exist_ok=True)
            write_checkpoint(cfg, path)
        return path, "interpolation, not trained"
    if path.is_file():
        try:
            ck = load_checkpoint(path)
            if same_run(ck["config"], cfg):
                if int(ck["step"]) == cfg.train.steps:
                    return path, f"reused ({ck['step']} steps)"
                resume = int(ck["step"]) < cfg.train.steps
        except (CheckpointError, KeyError) as exc:
            print(f"{path}: not reusable ({exc})")
    trainer = Trainer(cfg, run_dir, resume=resume, progress=progress)
    start, t0 = trainer.step, time.perf_counter()
    trainer.train()
    how = "continued" if resume else "trained"
    return path, f"{how} {start} → {trainer.step} steps in {time.perf_counter() - t0:.0f} s"
