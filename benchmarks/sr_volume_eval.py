"""Run ``ressrdiff sr`` on the default data set's test volume and score it against nearest and
B-spline re-gridding (PSNR, SSIM, GMSD, LPIPS; whole slice and inside the brain/head mask).

The test subject's HR volume is down-sampled with the checkpoint's preset (a genuinely
low-resolution volume on its own grid), super-resolved by the CLI under ``/usr/bin/time -v``
(wall time, peak memory), and every axial slice with at least 5 % foreground is scored. All
volumes are mapped to [-1, 1] with the HR's robust percentiles (inside the mask) before scoring.

    python benchmarks/sr_volume_eval.py --checkpoint runs/default-cpu/last.pt --out runs/eval
"""

from __future__ import annotations

import argparse
import csv
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import torch

from ressrdiff.data.degrade import downsample, regrid
from ressrdiff.data.intensity import robust_volume
from ressrdiff.data.io import read_volume, write_volume
from ressrdiff.data.prepare import prepare_dataset
from ressrdiff.methods import load_method
from ressrdiff.metrics import MetricSuite, score_table, summarise


def _arr(img: sitk.Image) -> np.ndarray:
    return sitk.GetArrayFromImage(img).astype(np.float64)  # (z, y, x)


def main() -> None:
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
    mask_img = read_volume(root / test["mask_path"], ndim=3) if test.get("mask_path") else None
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
        f"{rss_kb / 2**20:.2f} GiB; {summary_line[0] if summary_line else ''}"
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


if __name__ == "__main__":
    main()
