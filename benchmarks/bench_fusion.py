"""Orthogonal-plane fusion: its gain, its through-plane consistency and its cost (issue 15).

A 2-D model trained on axial slices super-resolves a volume one slice at a time; nothing ties
neighbouring slices together, so a reformat across the slicing direction (sagittal, coronal)
can show it. This script takes a central block of one subject's HR volume (the validation
subject by default; the test subject is refused), simulates its LR with the model's own
degradation, and super-resolves it (:func:`ressrdiff.fusion.super_resolve_planes`) across

* the axial plane only (what the paper does),
* the axial, coronal and sagittal planes, combined by the voxel-wise mean and by the median.

Rows: the re-gridded input and each SR (:func:`ressrdiff.consistency.fusion_study`).
Columns: masked PSNR and SSIM over the whole block
(``psnr_3d``) and the mean masked PSNR of its axial, coronal and sagittal slices (the
through-plane consistency: an axial-only model that is consistent across slices scores its
sagittal reformats like its axial slices), and seconds (the cost; fusion costs one pass per
plane). Intensities are mapped to [-1, 1] by the HR's 0.5/99.5 percentiles inside the brain
mask, the same map for every row, and PSNR uses a data range of 2.

    python benchmarks/bench_fusion.py models/acquisition-cpu.safetensors --block 128 --steps 4
"""

from __future__ import annotations

import argparse

import pandas as pd
import torch

from ressrdiff.consistency import fusion_study
from ressrdiff.methods import load_method
from ressrdiff.timing import machine_description


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint")
    ap.add_argument("--role", default="val", choices=("val", "train"))
    ap.add_argument("--block", type=int, default=128, help="edge of the central block (voxels)")
    ap.add_argument("--steps", type=int, default=None, help="K (default: the model's)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=None)
    a = ap.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    m = load_method(a.checkpoint, device="cpu")
    study = fusion_study(m, role=a.role, block=a.block, steps=a.steps, seed=a.seed)
    pd.set_option("display.width", 200)
    print(
        f"{a.checkpoint}: {study.subject} ({a.role}), block {study.block} (z, y, x), "
        f"{int(study.mask.sum())} brain voxels; K={a.steps or m.sample_steps}; "
        f"{torch.get_num_threads()} threads; {machine_description()}"
    )
    print(study.table.round(3).to_string(index=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
