"""Paired gain of each method over a reference in a ``ressrdiff eval`` table, with 95 % CIs.

Reads ``OUT/metrics.csv`` (or the per-entry CSVs under ``OUT/metrics/``) written by
``ressrdiff eval`` and prints, per method and metric, the mean over slices of
``method - reference`` (paired by subject and slice), its 95 % confidence interval (Student t
over slices; :func:`ressrdiff.stats.paired_matrix` pairs the slices) and n:

    python benchmarks/paired_gain.py runs/eval-acq-s1 --reference bspline --region mask
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats as sps

from ressrdiff.stats import paired_matrix


def load(out: Path) -> pd.DataFrame:
    if (out / "metrics.csv").is_file():
        return pd.read_csv(out / "metrics.csv")
    return pd.concat([pd.read_csv(p) for p in sorted((out / "metrics").glob("*.csv"))])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path, help="the folder ressrdiff eval wrote")
    ap.add_argument("--reference", default="bspline")
    ap.add_argument("--region", default="mask", choices=["mask", "whole"])
    ap.add_argument("--metrics", nargs="+", default=["psnr", "ssim"])
    a = ap.parse_args(argv)
    df = load(a.out)
    rows = []
    for metric in a.metrics:
        wide = paired_matrix(df, metric, region=a.region)
        for method in wide.columns:
            if method == a.reference:
                continue
            d = (wide[method] - wide[a.reference]).to_numpy(dtype=float)
            n = d.size
            half = sps.t.ppf(0.975, n - 1) * d.std(ddof=1) / np.sqrt(n)
            rows.append(
                {
                    "method": method,
                    "metric": metric,
                    "reference": float(wide[a.reference].mean()),
                    "method_mean": float(wide[method].mean()),
                    "gain": d.mean(),
                    "ci_low": d.mean() - half,
                    "ci_high": d.mean() + half,
                    "n": n,
                }
            )
    pd.set_option("display.width", 160)
    print(f"{a.out}: region {a.region}, paired over slices, reference {a.reference}")
    print(pd.DataFrame(rows).round(4).to_string(index=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
