"""Orthogonal-plane fusion: super-resolve a volume slice-wise across several planes and combine.

The paper super-resolves 3-D MRI as a stack of independent 2-D slices and names this as its
limitation: each slice is consistent with its neighbours only by chance, which shows as stripes
in a reformat across the slicing direction. Running the same 2-D model across two or three
orthogonal planes and averaging (or taking the median of) the results gives every voxel estimates
from differently oriented neighbourhoods, a common remedy for slice-wise 2-D networks in medical
imaging (multi-planar fusion). It costs one full pass per plane.

Planes are named anatomically and found from the image's direction cosines, so a volume stored
in any axis order is sliced as asked: the axial plane is cut across the image axis most aligned
with the physical superior-inferior direction, coronal across anterior-posterior, sagittal across
left-right.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import SimpleITK as sitk

from .config import PLANE_NAMES
from .data.degrade import regrid
from .inference import check_preset, hr_reference, super_resolve_volume
from .methods.base import Method

__all__ = ["PLANES", "COMBINE", "plane_axis", "parse_planes", "super_resolve_planes"]

#: anatomical plane -> the physical axis (ITK's LPS x, y, z) its slices are cut across:
#: sagittal 0, coronal 1, axial 2
PLANES: dict[str, int] = {name: axis for axis, name in enumerate(PLANE_NAMES)}
#: how the per-plane volumes are combined
COMBINE = ("mean", "median")


def plane_axis(img: sitk.Image, plane: str) -> int:
    """The image axis (x=0, y=1, z=2) whose slices are ``plane`` slices of ``img``: the axis
    whose direction cosine is most aligned with the plane's normal."""
    if plane not in PLANES:
        raise ValueError(f"unknown plane {plane!r}; use {', '.join(PLANES)}")
    d = np.abs(np.asarray(img.GetDirection(), dtype=np.float64).reshape(3, 3))
    axis = int(np.argmax(d[PLANES[plane]]))
    return axis


def parse_planes(text: str) -> list[str]:
    """``"axial,coronal"`` -> ``["axial", "coronal"]``; a one-line error for a bad or repeated
    name."""
    names = [p.strip().lower() for p in text.split(",") if p.strip()]
    bad = [p for p in names if p not in PLANES]
    if not names or bad:
        raise ValueError(
            f"--planes: unknown plane(s) {', '.join(map(repr, bad)) or '(none given)'}; "
            f"use a comma-separated list of {', '.join(PLANES)}"
        )
    if len(set(names)) != len(names):
        raise ValueError(f"--planes: a plane is named twice in {text!r}")
    return names


def super_resolve_planes(
    method: Method,
    img: sitk.Image,
    *,
    planes: Sequence[str] = ("axial", "coronal", "sagittal"),
    combine: str = "mean",
    input_is_lr: bool = False,
    preset: str | None = None,
    seed: int = 0,
    samples: int = 1,
    **kwargs: Any,
) -> tuple[sitk.Image, sitk.Image | None, list[int]]:
    """Super-resolve ``img`` slice-wise across each of ``planes`` and combine the volumes.

    Returns ``(sr, std, axes)``: the combined volume (``combine``: voxel-wise mean or median),
    the standard deviation when ``samples`` > 1 (the root of the mean per-plane variance; None
    otherwise) and the image axes the planes were cut across. A ``stats`` dict receives the
    slice counts summed over the planes. A genuinely low-resolution input
    (``input_is_lr``) is re-gridded once, as :func:`super_resolve_volume` would. Plane ``i`` is
    sampled with seed ``seed + i``; other keywords go to :func:`super_resolve_volume`.
    """
    if combine not in COMBINE:
        raise ValueError(f"combine must be one of {', '.join(COMBINE)}, got {combine!r}")
    planes = list(planes)
    if not planes:
        raise ValueError("super_resolve_planes: no planes given")
    if img.GetDimension() != 3:
        raise ValueError(f"plane fusion needs a 3-D volume, got {img.GetDimension()}-D")
    if input_is_lr:
        trained = check_preset(method, preset, kwargs.get("checkpoint"))
        img = regrid(img, hr_reference(img, trained), method.cfg.data.regrid)
    axes = [plane_axis(img, p) for p in planes]
    if len(set(axes)) != len(axes):
        raise ValueError(f"planes {planes} map to the same image axis ({axes}): oblique volume?")
    srs, variances = [], []
    reference: sitk.Image | None = None
    total = kwargs.pop("stats", None)  # summed over the planes
    for i, axis in enumerate(axes):
        stats: dict[str, int] = {}
        sr, std = super_resolve_volume(
            method,
            img,
            axis=axis,
            seed=seed + i,
            samples=samples,
            preset=preset,
            stats=stats,
            progress_desc=f"ressrdiff sr, {planes[i]} ({i + 1}/{len(axes)})",
            **kwargs,
        )
        if total is not None:
            for k, v in stats.items():
                total[k] = total.get(k, 0) + v
        reference = sr
        srs.append(sitk.GetArrayFromImage(sr))
        if std is not None:
            variances.append(sitk.GetArrayFromImage(std).astype(np.float64) ** 2)
    stack = np.stack(srs)
    fused = stack.mean(axis=0) if combine == "mean" else np.median(stack, axis=0)
    out = sitk.GetImageFromArray(fused.astype(np.float32))
    out.CopyInformation(reference)
    std_img = None
    if variances:
        std_img = sitk.GetImageFromArray(np.sqrt(np.mean(variances, axis=0)).astype(np.float32))
        std_img.CopyInformation(reference)
    return out, std_img, axes
