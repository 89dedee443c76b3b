"""Through-plane consistency of slice-wise 2-D super-resolution, and what plane fusion buys.

A 2-D model trained on axial slices super-resolves a volume one slice at a time; nothing ties
neighbouring slices together, so a reformat across the slicing direction (a sagittal or coronal
slice of the output) can show stripes that no axial slice shows. :func:`fusion_study` measures
this on one subject of the default data set (the test subject is refused: choices are made on
validation): a central block of its HR volume is degraded as the model was trained, then
super-resolved (:func:`ressrdiff.fusion.super_resolve_planes`) across the axial plane alone (the
paper's way), each other plane alone, and all three combined by the voxel-wise mean and median.
:func:`volume_scores` scores each output over the block (masked PSNR of the volume, SSIM of its
axial slices) and per plane (the mean masked PSNR of its axial, coronal and sagittal slices: a
model consistent across slices scores its reformats like its own slices). Intensities are mapped
to [-1, 1] by the HR's 0.5/99.5 percentiles in the brain mask, the same map for every output
(:func:`ressrdiff.diagnosis.percentile_unit`), and PSNR uses a data range of 2.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
import SimpleITK as sitk
import torch

from .diagnosis import degrade_like, percentile_unit, split_volume
from .fusion import super_resolve_planes
from .methods.base import Method
from .metrics import psnr, ssim, to_unit

__all__ = [
    "SLICE_AXES",
    "FusionStudy",
    "central_block",
    "fusion_study",
    "plane_psnr",
    "volume_scores",
]

#: numpy axis of a (z, y, x) array -> the plane its slices are, for data stored RAS/LPS-like
SLICE_AXES = {"axial": 0, "coronal": 1, "sagittal": 2}


def central_block(mask: np.ndarray, size: int) -> tuple[slice, ...]:
    """A ``size``-voxel cube (clipped to the volume) centred on the mask's centre of mass, as
    numpy (z, y, x) slices."""
    centre = np.round(np.argwhere(mask).mean(axis=0)).astype(int)
    out = []
    for c, n in zip(centre, mask.shape, strict=True):
        lo = int(np.clip(c - size // 2, 0, max(0, n - size)))
        out.append(slice(lo, min(n, lo + size)))
    return tuple(out)


def _crop(img: sitk.Image, block: tuple[slice, ...]) -> sitk.Image:
    z, y, x = block
    return img[x.start : x.stop, y.start : y.stop, z.start : z.stop]  # ITK order (x, y, z)


def plane_psnr(
    x: np.ndarray, ref: np.ndarray, mask: np.ndarray, axis: int, min_foreground: float = 0.05
) -> float:
    """Mean masked PSNR (data range 2) of the slices of ``x`` against ``ref`` along numpy
    ``axis``, over the slices with at least ``min_foreground`` of ``mask``."""
    xs, rs, ms = (np.moveaxis(a, axis, 0) for a in (x, ref, mask))
    keep = ms.reshape(len(ms), -1).mean(axis=1) >= min_foreground
    t = [torch.from_numpy(np.ascontiguousarray(v[keep]))[:, None] for v in (xs, rs, ms)]
    return float(psnr(t[0].float(), t[1].float(), 2.0, t[2]).mean())


def volume_scores(x: np.ndarray, ref: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    """Masked PSNR of the whole volume ``x`` against ``ref`` (both on [-1, 1], (z, y, x)), the
    mean SSIM of its axial slices in the mask, and the mean masked PSNR of its slices along each
    plane (:data:`SLICE_AXES`)."""
    v = {
        k: torch.from_numpy(np.ascontiguousarray(a))[None, None].float()
        for k, a in {"x": x, "r": ref, "m": mask}.items()
    }
    flat = {k: t.reshape(1, 1, -1, t.shape[-1]) for k, t in v.items()}
    ax = {k: t[0].transpose(0, 1) for k, t in v.items()}  # axial slices as a batch
    out = {
        "psnr_3d": float(psnr(flat["x"], flat["r"], 2.0, flat["m"])),
        "ssim_axial": float(
            ssim(to_unit(ax["x"]), to_unit(ax["r"]), ax["m"], data_range=1.0).mean()
        ),
    }
    for plane, axis in SLICE_AXES.items():
        out[f"psnr_{plane}"] = plane_psnr(x, ref, mask, axis)
    return out


@dataclass
class FusionStudy:
    """What :func:`fusion_study` returns: the table (one row per output), the outputs
    themselves on [-1, 1] (``volumes``: label -> (z, y, x) array, the HR under ``"HR"``), the
    block's brain mask, and its subject and size."""

    table: pd.DataFrame
    volumes: dict[str, np.ndarray]
    mask: np.ndarray
    subject: str
    block: tuple[int, int, int]


def fusion_study(
    method: Method,
    *,
    role: str = "val",
    block: int = 128,
    steps: int | None = None,
    seed: int = 0,
) -> FusionStudy:
    """Super-resolve a central ``block``-voxel cube of the first ``role`` subject (val or
    train; the test subject is refused) across each plane and both combinations; rows: the
    B-spline input, each plane alone, the 3-plane mean and median, with :func:`volume_scores`,
    the seconds each took (fusion: the sum of its planes) and the gain of ``psnr_3d`` over the
    axial-only output."""
    if role not in ("val", "train"):
        raise ValueError(
            f"fusion_study: role must be val or train, not {role!r} (choices are made on "
            "validation; the test subject is scored once)"
        )
    subject, hr_full, mask_full = split_volume(method, role)
    sl = central_block(mask_full, block)
    hr, mask = _crop(hr_full, sl), mask_full[sl]
    lr = degrade_like(method, hr)
    ref = sitk.GetArrayFromImage(hr)
    unit = percentile_unit(ref, mask)
    vols = {"HR": unit(ref), "B-spline input": unit(sitk.GetArrayFromImage(lr))}
    rows = [{"output": "B-spline input", "planes": 0, "s": 0.0}]
    per_plane = {}
    for i, plane in enumerate(SLICE_AXES):
        t0 = time.perf_counter()
        sr, _, _ = super_resolve_planes(
            method, lr, planes=[plane], seed=seed + i, steps=steps, progress=False
        )
        per_plane[plane] = sitk.GetArrayFromImage(sr)  # input units: combined before mapping
        vols[f"{plane} only"] = unit(per_plane[plane])
        rows.append({"output": f"{plane} only", "planes": 1, "s": time.perf_counter() - t0})
    stack = np.stack(list(per_plane.values()))
    total = sum(r["s"] for r in rows[1:])
    # the planes were sampled with seeds seed, seed + 1, seed + 2 above, as
    # super_resolve_planes(planes=all three) does, so these are its mean and median
    for how, fused in (("mean", stack.mean(0)), ("median", np.median(stack, 0))):
        vols[f"3 planes, {how}"] = unit(fused)
        rows.append({"output": f"3 planes, {how}", "planes": 3, "s": total})
    for r in rows:
        r.update(volume_scores(vols[r["output"]], vols["HR"], mask))
    df = pd.DataFrame(rows)
    axial = df.loc[df.output == "axial only", "psnr_3d"].item()
    df["gain_vs_axial_db"] = df["psnr_3d"] - axial
    size = tuple(int(s.stop - s.start) for s in sl)
    return FusionStudy(df, vols, mask, subject, size)  # type: ignore[arg-type]
