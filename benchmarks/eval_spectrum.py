"""Spectral fidelity of the volumes a ``ressrdiff eval`` run cached: per method, the top-octave
power of each scored slice relative to HR's (:func:`ressrdiff.spectrum.band_power_ratio`; 1 =
HR's detail energy), summarised as its mean and as the mean ``|log ratio|`` (0 = HR; smaller is
closer). The scored slices and subjects are those in the run's table; the role (test or
validation) is read from its provenance.

    python benchmarks/eval_spectrum.py runs/eval-val-fused
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd
import SimpleITK as sitk
import torch

from ressrdiff.data.io import read_volume
from ressrdiff.evaluation import test_subjects
from ressrdiff.spectrum import band_power_ratio


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path, help="the folder ressrdiff eval wrote")
    ap.add_argument("--data", default=None, help="the eval run's --data (default: default set)")
    a = ap.parse_args(argv)
    df = pd.read_csv(a.out / "metrics.csv")
    prov = json.loads((a.out / "provenance.json").read_text(encoding="utf-8"))
    role = next(iter(prov.values())).get("role", "test")
    rows = []
    for e in test_subjects(a.data, role=role):
        sub = df[df.subject == e.subject]
        if sub.empty:
            continue
        keep = np.sort(sub["slice"].unique())
        hr = sitk.GetArrayFromImage(read_volume(e.hr_path, ndim=3)).astype(np.float64)[keep]
        ref = torch.from_numpy(hr)
        for method in sorted(sub["method"].unique()):
            path = a.out / "volumes" / e.subject / f"{method}.nii.gz"
            v = sitk.GetArrayFromImage(sitk.ReadImage(str(path))).astype(np.float64)[keep]
            r = band_power_ratio(torch.from_numpy(v), ref).numpy()
            rows.append(
                {
                    "subject": e.subject,
                    "method": method,
                    "hf_ratio_mean": float(r.mean()),
                    "abs_log_hf": float(np.abs(np.log(r)).mean()),
                    "n": int(r.size),
                }
            )
    print(f"{a.out}: top-octave power relative to HR, per scored slice ({role} subjects)")
    print(pd.DataFrame(rows).round(4).to_string(index=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
