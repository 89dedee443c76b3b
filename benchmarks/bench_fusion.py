"""Orthogonal-plane fusion: its gain, its through-plane consistency and its cost (issue 15).

A 2-D model trained on axial slices super-resolves a volume one slice at a time; nothing ties
neighbouring slices together, so a reformat across the slicing direction (sagittal, coronal)
can show it. This script takes a central block of one subject's HR volume (the validation
subject by default; the test subject is refused), simulates its LR with the model's own
degradation, and super-resolves it (:func:`ressrdiff.fusion.super_resolve_planes`) across

* the axial plane only (what the paper does),
* the axial, coronal and sagittal planes, combined by the voxel-wise mean and by the median.

Rows: the re-gridded input and each SR. Columns: masked PSNR and SSIM over the whole block
(``psnr_3d``) and the mean masked PSNR of its axial, coronal and sagittal slices (the
through-plane consistency: an axial-only model that is consistent across slices scores its
sagittal reformats like its axial slices), and seconds (the cost; fusion costs one pass per
plane). Intensities are mapped to [-1, 1] by the HR's 0.5/99.5 percentiles inside the brain
mask, the same map for every row, and PSNR uses a data range of 2.

    python benchmarks/bench_fusion.py models/acquisition-cpu.safetensors --block 128 --steps 4
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
import SimpleITK as sitk
import torch

from ressrdiff.diagnosis import degrade_like, percentile_unit, split_volume
from ressrdiff.fusion import super_resolve_planes
from ressrdiff.methods import load_method
from ressrdiff.metrics import psnr, ssim, to_unit

ALLOWED_ROLES = ("val", "train")


def _block(img: sitk.Image, mask: np.ndarray, size: int) -> tuple[slice, ...]:
    """A ``size``-voxel cube (clipped to the volume) centred on the mask's centre of mass,
    as numpy (z, y, x) slices."""
    centre = np.round(np.argwhere(mask).mean(axis=0)).astype(int)
    out = []
    for c, n in zip(centre, mask.shape, strict=True):
        lo = int(np.clip(c - size // 2, 0, max(0, n - size)))
        out.append(slice(lo, min(n, lo + size)))
    return tuple(out)


def _crop(img: sitk.Image, sl: tuple[slice, ...]) -> sitk.Image:
    z, y, x = sl
    return img[x.start : x.stop, y.start : y.stop, z.start : z.stop]  # ITK order (x, y, z)


def _plane_psnr(x: np.ndarray, ref: np.ndarray, mask: np.ndarray, axis: int) -> float:
    """Mean masked PSNR of the slices along numpy ``axis`` with >= 5 % mask."""
    xs, rs, ms = (np.moveaxis(a, axis, 0) for a in (x, ref, mask))
    keep = ms.reshape(len(ms), -1).mean(axis=1) >= 0.05
    t = {
        k: torch.from_numpy(np.ascontiguousarray(v[keep]))[:, None]
        for k, v in {"x": xs, "r": rs, "m": ms}.items()
    }
    return float(psnr(t["x"].float(), t["r"].float(), 2.0, t["m"]).mean())


def score(x: np.ndarray, ref: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    """Masked PSNR/SSIM of the block and per plane (numpy axes 0, 1, 2 = axial, coronal,
    sagittal slices of RAS data stored as (z, y, x))."""
    v = {
        k: torch.from_numpy(np.ascontiguousarray(a))[None, None].float()
        for k, a in {"x": x, "r": ref, "m": mask}.items()
    }
    flat = {k: t.reshape(1, 1, -1, t.shape[-1]) for k, t in v.items()}
    ax = {k: t[0].transpose(0, 1) for k, t in v.items()}  # axial slices as a batch
    return {
        "psnr_3d": float(psnr(flat["x"], flat["r"], 2.0, flat["m"])),
        "ssim_axial": float(
            ssim(to_unit(ax["x"]), to_unit(ax["r"]), ax["m"], data_range=1.0).mean()
        ),
        "psnr_axial": _plane_psnr(x, ref, mask, 0),
        "psnr_coronal": _plane_psnr(x, ref, mask, 1),
        "psnr_sagittal": _plane_psnr(x, ref, mask, 2),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint")
    ap.add_argument("--role", default="val", choices=ALLOWED_ROLES)
    ap.add_argument("--block", type=int, default=128, help="edge of the central block (voxels)")
    ap.add_argument("--steps", type=int, default=None, help="K (default: the model's)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=None)
    a = ap.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    m = load_method(a.checkpoint, device="cpu")
    subject, hr_full, mask_full = split_volume(m, a.role)
    if "pycortex" in subject:
        raise SystemExit(f"refusing to score the test subject ({subject})")
    sl = _block(hr_full, mask_full, a.block)
    hr, mask = _crop(hr_full, sl), mask_full[sl]
    lr = degrade_like(m, hr)
    ref = sitk.GetArrayFromImage(hr)
    unit = percentile_unit(ref, mask)

    rows = [
        {
            "output": "B-spline input",
            "planes": 0,
            "s": 0.0,
            **score(unit(sitk.GetArrayFromImage(lr)), unit(ref), mask),
        }
    ]
    per_plane: dict[str, np.ndarray] = {}
    for plane in ("axial", "coronal", "sagittal"):
        t0 = time.perf_counter()
        sr, _, _ = super_resolve_planes(
            m, lr, planes=[plane], seed=a.seed, steps=a.steps, progress=False
        )
        per_plane[plane] = sitk.GetArrayFromImage(sr)
        rows.append(
            {
                "output": f"{plane} only",
                "planes": 1,
                "s": time.perf_counter() - t0,
                **score(unit(per_plane[plane]), unit(ref), mask),
            }
        )
    stack = np.stack(list(per_plane.values()))
    total = sum(r["s"] for r in rows[1:])
    for how, fused in (("mean", stack.mean(0)), ("median", np.median(stack, 0))):
        rows.append(
            {
                "output": f"3 planes, {how}",
                "planes": 3,
                "s": total,
                **score(unit(fused), unit(ref), mask),
            }
        )
    df = pd.DataFrame(rows)
    axial = df.loc[df.output == "axial only", "psnr_3d"].item()
    df["gain_vs_axial_db"] = df["psnr_3d"] - axial
    pd.set_option("display.width", 200)
    print(
        f"{a.checkpoint}: {subject} ({a.role}), block {tuple(s.stop - s.start for s in sl)} "
        f"(z, y, x) at 0.8 mm, {int(mask.sum())} brain voxels; K={a.steps or m.sample_steps}; "
        f"{torch.get_num_threads()} threads; AMD EPYC CPU"
    )
    print(df.round(3).to_string(index=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
