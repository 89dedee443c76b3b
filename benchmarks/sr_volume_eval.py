"""Run ``ressrdiff sr`` on the default data set's test volume and score it against nearest and
B-spline re-gridding (PSNR, SSIM, GMSD, LPIPS; whole slice and inside the brain/head mask).

The test subject's HR volume is down-sampled with the checkpoint's preset (a genuinely
low-resolution volume on its own grid), super-resolved by the CLI under ``/usr/bin/time -v``
(wall time, peak memory), and every axial slice with at least 5 % foreground is scored. All
volumes are mapped to [-1, 1] with the HR's robust percentiles (inside the mask) before scoring.

Besides ``metrics.csv``, ``sr_volume_eval.json`` in ``--out`` records the commands, the git
commit, the ``sr`` process's wall time and peak RSS, the sampling throughput and the mean
masked/whole PSNR and SSIM per method. The throughput counts only the slices that went through
the network (``network_slices``: constant background slices are copied, not sampled), per second
of sampling time as ``ressrdiff sr`` reports it (reading, re-gridding and writing excluded).

    python benchmarks/sr_volume_eval.py --checkpoint runs/default-cpu/last.pt --out runs/eval
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import shlex
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import torch

from ressrdiff.data.degrade import downsample, regrid
from ressrdiff.data.intensity import robust_volume
from ressrdiff.data.io import read_volume, write_volume
from ressrdiff.data.masks import read_mask
from ressrdiff.data.prepare import prepare_dataset
from ressrdiff.methods import load_method
from ressrdiff.metrics import MetricSuite, score_table, summarise


def _arr(img: sitk.Image) -> np.ndarray:
    return sitk.GetArrayFromImage(img).astype(np.float64)  # (z, y, x)


def _seconds(clock: str) -> float:
    """``/usr/bin/time -v``'s elapsed time (``h:mm:ss`` or ``m:ss.ss``) in seconds."""
    total = 0.0
    for part in clock.split(":"):
        total = 60.0 * total + float(part)
    return total


def _git_commit() -> str | None:
    """The repository's HEAD commit (``+dirty`` when tracked files differ), or None."""
    root = Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True
        )
        if head.returncode:
            return None
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
        )
    except OSError:
        return None
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def _write_json(obj: dict, path: Path) -> None:
    """Write ``obj`` to ``path`` atomically (a temporary file beside it, then os.replace)."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        tmp.write_text(json.dumps(obj, indent=1) + "\n", encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def main() -> None:
    t_start = time.perf_counter()
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--out", default="runs/eval")
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--batch", type=int, default=8)
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    root = prepare_dataset("default")
    rows = list(csv.DictReader(open(root / "manifest.csv", encoding="utf-8")))
    test = next(r for r in rows if r["role"] == "test")
    hr = read_volume(root / test["hr_path"])
    mask_img = read_mask(root / test["mask_path"], hr) if test.get("mask_path") else None
    method = load_method(args.checkpoint)
    preset = method.cfg.data.preset
    lr = downsample(hr, preset)
    lr_path = out / f"{test['subject']}_lr.nii.gz"
    write_volume(lr, lr_path)
    sr_path = out / f"{test['subject']}_sr.nii.gz"
    cmd = [
        "/usr/bin/time",
        "-v",
        sys.executable,
        "-m",
        "ressrdiff",
        "sr",
        str(lr_path),
        "-o",
        str(sr_path),
        "--checkpoint",
        args.checkpoint,
        "--lr",
        "--steps",
        str(args.steps),
        "--batch",
        str(args.batch),
        "--device",
        "cpu",
        "--quiet",
    ]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode:
        sys.exit(r.stderr[-3000:])
    wall = re.search(r"Elapsed \(wall clock\) time.*: (\S+)", r.stderr).group(1)
    rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", r.stderr).group(1))
    summary_line = [ln for ln in r.stdout.splitlines() if ln.startswith("ressrdiff sr")]
    summary = summary_line[0] if summary_line else ""
    n_slices = re.search(r"(\d+) slices along", summary)
    n_const = re.search(r"(\d+) constant copied", summary)
    sampling = re.search(r"([\d.]+) s sampling", summary)
    if n_slices is None or sampling is None:
        sys.exit(f"cannot read the slice count and sampling time from: {summary!r}")
    network_slices = int(n_slices.group(1)) - (int(n_const.group(1)) if n_const else 0)
    sampling_s = float(sampling.group(1))

    sr = read_volume(sr_path)
    vols = {
        "nearest": _arr(regrid(lr, hr, "nearest")),
        "B-spline": _arr(regrid(lr, hr, "bspline")),
        "res-srdiff": _arr(sr),
    }
    h = _arr(hr)
    m = _arr(mask_img) > 0 if mask_img is not None else h > np.percentile(h, 50)
    keep = np.flatnonzero(m.reshape(len(m), -1).mean(axis=1) >= 0.05)
    hr_n, params = robust_volume(h, mask=m)

    def norm(v: np.ndarray) -> np.ndarray:
        return np.clip(2 * (v - params.lo) / (params.hi - params.lo) - 1, -1, 1)

    suite = MetricSuite()
    tables = []
    t_hr = torch.from_numpy(hr_n[keep][:, None]).float()
    t_m = torch.from_numpy(m[keep][:, None])
    for name, v in vols.items():
        t = torch.from_numpy(norm(v)[keep][:, None]).float()
        tables.append(
            score_table(
                t,
                t_hr,
                subject=test["subject"],
                slice_index=keep.tolist(),
                method=name,
                mask=t_m,
                suite=suite,
            )
        )
    import pandas as pd

    df = pd.concat(tables, ignore_index=True)
    df.to_csv(out / "metrics.csv", index=False)
    s = summarise(df)
    print(
        f"test subject {test['subject']} ({test.get('source', '')}), preset {preset}, "
        f"{len(keep)} axial slices with >= 5% foreground; checkpoint {args.checkpoint} "
        f"(step {method.trained_step}, {method.cfg.name})"
    )
    print(
        f"ressrdiff sr --lr --steps {args.steps}: wall {wall}, peak RSS "
        f"{rss_kb / 2**20:.2f} GiB; {summary}"
    )
    print(f"LPIPS: {suite.lpips_status}")
    piv = s.pivot_table(index="method", columns=["region", "metric"], values="mean")
    sd = s.pivot_table(index="method", columns=["region", "metric"], values="sd")
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print("\nmean over slices:\n" + piv.round(4).to_string())
        print("\nSD over slices:\n" + sd.round(4).to_string())
    for region in ("mask", "whole"):
        d = df[(df.metric == "psnr") & (df.region == region)].pivot_table(
            index="slice", columns="method", values="value"
        )
        diff = d["res-srdiff"] - d["B-spline"]
        print(
            f"PSNR res-srdiff minus B-spline ({region}): {diff.mean():+.2f} dB, better on "
            f"{int((diff > 0).sum())}/{len(diff)} slices"
        )

    means = df[df.metric.isin(["psnr", "ssim"])].groupby(["method", "region", "metric"])["value"]
    scores: dict[str, dict[str, dict[str, float]]] = {}
    for (name, region, metric), value in means.mean().items():
        scores.setdefault(name, {}).setdefault(region, {})[metric] = float(value)
    record = {
        "command": shlex.join([sys.executable, *sys.argv]),
        "sr_command": shlex.join(cmd),
        "git_commit": _git_commit(),
        "checkpoint": args.checkpoint,
        "subject": test["subject"],
        "preset": preset,
        "steps": args.steps,
        "batch": args.batch,
        "threads": torch.get_num_threads(),
        "sr_wall_s": _seconds(wall),
        "sr_peak_rss_bytes": rss_kb * 1024,
        "sr_sampling_s": sampling_s,
        "slices": int(n_slices.group(1)),
        "network_slices": network_slices,
        "network_slices_per_s": network_slices / sampling_s if sampling_s > 0 else None,
        "slices_per_s_counts": "network_slices only (constant slices are copied, not sampled), "
        "per second of sampling time as reported by ressrdiff sr",
        "scored_slices": int(len(keep)),
        "mean_over_slices": scores,  # method -> region (mask | whole) -> psnr | ssim
        "lpips": suite.lpips_status,
        "benchmark_wall_s": time.perf_counter() - t_start,
    }
    _write_json(record, out / "sr_volume_eval.json")
    print(f"wrote {out / 'sr_volume_eval.json'}")


if __name__ == "__main__":
    main()
