"""Train the reference models that the book ships (issue 7), one `ressrdiff train` per config.

Each run goes to ``<out>/<config>/`` and is resumable: a finished run is skipped, a killed one
continues from its last checkpoint (``--resume``). The wall time, the machine and the exact
command are written to ``<out>/<config>/train_record.json``; ``ressrdiff export`` copies them into
the shipped model's manifest.

    python benchmarks/train_reference.py --out runs/ref            # every cpu reference config
    python benchmarks/train_reference.py --out runs/ref --only default-cpu
    python benchmarks/train_reference.py --out runs/ref --ship models   # then export them all

``--ship DIR`` exports every finished run with ``ressrdiff export`` to ``DIR/<config>.safetensors``
and its manifest entry to ``DIR/manifest.json`` (plus the raw, non-EMA weights of
``default-cpu`` for chapter 12's EMA comparison, and the kept checkpoints of ``KEPT_STEPS`` as
``DIR/<config>-step<N>.safetensors`` for chapter 13's budget curve).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from ressrdiff.config import load_config
from ressrdiff.methods.bicubic import write_checkpoint
from ressrdiff.timing import machine_description

REFERENCE_CONFIGS = [
    "default-cpu",
    "default-cpu-authors",
    "default-cpu-noswin",
    "bicubic-cpu",
    "pix2pix-cpu",
    "cyclegan-cpu",
    "spsr-cpu",
    "i2sb-cpu",
    "tm-ddpm-cpu",
    "tm-ddpm-unet-cpu",
    "default-cpu-long",  # the budget curve of chapter 13 (2400 steps; not an equal-budget entry)
]
#: checkpoints kept by train.keep_every that are shipped too: config -> steps
KEPT_STEPS = {"default-cpu-long": (400, 1200)}


def machine() -> str:
    """Where this ran, with the thread setting of the training processes."""
    threads = os.environ.get("OMP_NUM_THREADS", "default")
    return f"{machine_description('cpu')}; OMP_NUM_THREADS={threads}"


def _write_record(run: Path, record: dict) -> None:
    tmp = run / "train_record.json.tmp"
    tmp.write_text(json.dumps(record, indent=1), encoding="utf-8")
    os.replace(tmp, run / "train_record.json")


def finished(run: Path, steps: int) -> bool:
    """Whether ``run`` holds a checkpoint at its final step."""
    info = run / "run.json"
    if not (run / "last.pt").exists() or not info.exists():
        return False
    return int(json.loads(info.read_text(encoding="utf-8")).get("step", -1)) >= steps


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("runs/ref"))
    ap.add_argument("--only", nargs="*", help="a subset of the reference configs")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--ship", type=Path, help="export the finished runs into this folder")
    a = ap.parse_args(argv)
    if a.ship:
        return ship(a.out, a.ship, a.only or REFERENCE_CONFIGS)
    names = a.only or REFERENCE_CONFIGS
    for name in names:
        cfg = load_config(name)
        run = a.out / name
        if cfg.method == "bicubic":  # nothing to train: a checkpoint holding the config
            run.mkdir(parents=True, exist_ok=True)
            write_checkpoint(cfg, run / "last.pt")
            _write_record(
                run,
                {
                    "config": name,
                    "command": f'python -c "from ressrdiff.config import load_config; '
                    f"from ressrdiff.methods.bicubic import write_checkpoint; "
                    f"write_checkpoint(load_config('{name}'), '{run / 'last.pt'}')\"",
                    "wall_s": 0.0,
                    "resumed": False,
                    "machine": machine(),
                    "steps": 0,
                },
            )
            print(f"{name}: no training (interpolation); checkpoint written", flush=True)
            continue
        if finished(run, cfg.train.steps):
            print(f"{name}: finished earlier, skipped", flush=True)
            continue
        cmd = ["ressrdiff", "train", "--config", name, "--out", str(run), "--device", a.device]
        cmd += ["--quiet"]
        if (run / "last.pt").exists():
            cmd.append("--resume")
        record_path = run / "train_record.json"
        prev = json.loads(record_path.read_text(encoding="utf-8")) if record_path.exists() else {}
        t0 = time.perf_counter()
        res = subprocess.run([sys.executable, "-m", "ressrdiff", *cmd[1:]], check=False)
        wall = time.perf_counter() - t0
        if res.returncode:
            print(f"{name}: training failed (exit {res.returncode})", file=sys.stderr)
            return res.returncode
        record = {
            "config": name,
            "command": " ".join(c for c in cmd if c not in ("--quiet", "--resume")),
            "wall_s": round(prev.get("wall_s", 0.0) + wall, 1),
            "resumed": "--resume" in cmd,
            "machine": machine(),
            "steps": cfg.train.steps,
        }
        _write_record(run, record)
        print(f"{name}: {cfg.train.steps} steps in {wall:.0f} s", flush=True)
    return 0


def ship(runs: Path, dest: Path, names: list[str]) -> int:
    """``ressrdiff export`` of every finished run in ``runs`` into ``dest``."""
    jobs = [(runs / name / "last.pt", "ema", name) for name in names]
    if "default-cpu" in names:
        jobs.append((runs / "default-cpu" / "last.pt", "raw", "default-cpu-raw"))
    for name in names:
        for step in KEPT_STEPS.get(name, ()):
            jobs.append((runs / name / f"step_{step:06d}.pt", "ema", f"{name}-step{step}"))
    for ckpt, weights, stem in jobs:
        name = ckpt.parent.name
        if not ckpt.is_file():
            print(f"{name}: no finished run in {runs}", file=sys.stderr)
            return 1
        cmd = ["export", str(ckpt), "-o", str(dest / f"{stem}.safetensors")]
        cmd += ["--manifest", str(dest / "manifest.json"), "--weights", weights]
        cmd += ["--record", str(ckpt.parent / "train_record.json")]
        res = subprocess.run([sys.executable, "-m", "ressrdiff", *cmd], check=False)
        if res.returncode:
            return res.returncode
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
