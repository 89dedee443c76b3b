"""A synthetic T2-weighted pelvis phantom on the paper's prostate grid (not real anatomy).

The paper's second data set is 1.5T prostate T2w MRI: axial slices of 0.66 x 0.66 mm in-plane,
1.5 mm apart, degraded with the ``prostate`` preset (x3, x3, x2) to about 2 x 2 x 3 mm. No
prostate MRI can be had offline, so chapter 4 of the book shows the geometry of that preset on
this phantom: nested ellipsoids with T2w-like relative intensities, smooth multiplicative
texture and a little Gaussian noise. It models the *grid* (spacing, field of view, which axis is
the thick-slice one) and a plausible contrast ordering, not real anatomy, and nothing measured
on it says anything about prostate MRI.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import SimpleITK as sitk

__all__ = ["PROSTATE_SPACING", "PELVIS_TISSUES", "pelvis_labels", "synthetic_pelvis"]

PROSTATE_SPACING: tuple[float, float, float] = (0.66, 0.66, 1.5)
"""The paper's prostate grid (mm, along x, y, z): 0.66 x 0.66 mm in-plane, 1.5 mm slices."""

PELVIS_TISSUES: dict[str, float] = {
    "fat": 0.8,  # subcutaneous fat: bright on T2w
    "muscle": 0.3,  # dark
    "bladder": 1.0,  # urine: brightest
    "gland": 0.45,  # central/transition zone: intermediate
    "peripheral zone": 0.7,  # brighter than the central gland
    "rectal wall": 0.25,  # dark
    "rectal lumen": 0.1,  # darkest inside the body
    "vessel": 0.95,  # small bright vessels (slow flow)
}
"""Relative T2w intensity of each tissue; label ``k`` (1-based, in this order) in
:func:`pelvis_labels`, 0 is background (air)."""

_N_VESSELS = 12
_VESSEL_RADIUS_MM = 0.8


def _check(size_xyz: Sequence[int], spacing: Sequence[float]) -> tuple[int, int, int]:
    size = tuple(int(v) for v in size_xyz)
    if len(size) != 3 or min(size) < 2:
        raise ValueError(f"size_xyz must be three sizes >= 2, got {tuple(size_xyz)}")
    if len(spacing) != 3 or min(float(s) for s in spacing) <= 0:
        raise ValueError(f"spacing must be three positive values (mm), got {tuple(spacing)}")
    return size  # type: ignore[return-value]


def _labels(
    size: tuple[int, int, int], spacing: Sequence[float], rng: np.random.Generator
) -> np.ndarray:
    """Tissue labels, (z, y, x) uint8; draws the vessel positions from ``rng``."""
    nx, ny, nz = size
    zz, yy, xx = np.meshgrid(
        *[
            (np.arange(n) - (n - 1) / 2) * float(s)
            for n, s in zip((nz, ny, nx), tuple(spacing)[::-1], strict=True)
        ],
        indexing="ij",
    )
    fx, fy, fz = nx * spacing[0] / 2, ny * spacing[1] / 2, nz * spacing[2] / 2

    def ell(cx: float, cy: float, cz: float, ax: float, ay: float, az: float) -> np.ndarray:
        return ((xx - cx) / ax) ** 2 + ((yy - cy) / ay) ** 2 + ((zz - cz) / az) ** 2 <= 1

    label = {name: k for k, name in enumerate(PELVIS_TISSUES, start=1)}
    out = np.zeros(xx.shape, dtype=np.uint8)
    out[ell(0, 0, 0, 0.95 * fx, 0.85 * fy, 1e9)] = label["fat"]
    out[ell(0, 0, 0, 0.8 * fx, 0.7 * fy, 1e9)] = label["muscle"]
    out[ell(0, 0.25 * fy, 0.6 * fz, 0.35 * fx, 0.3 * fy, 0.8 * fz)] = label["bladder"]
    out[ell(0, -0.05 * fy, -0.1 * fz, 0.22 * fx, 0.2 * fy, 0.7 * fz)] = label["gland"]
    pz = ell(0, -0.12 * fy, -0.1 * fz, 0.2 * fx, 0.12 * fy, 0.6 * fz) & (yy < -0.1 * fy)
    out[pz] = label["peripheral zone"]
    out[ell(0, -0.45 * fy, 0, 0.14 * fx, 0.12 * fy, 1e9)] = label["rectal wall"]
    out[ell(0, -0.45 * fy, 0, 0.08 * fx, 0.06 * fy, 1e9)] = label["rectal lumen"]
    r = _VESSEL_RADIUS_MM
    for _ in range(_N_VESSELS):  # running through every slice
        cx, cy = rng.uniform(-0.6 * fx, 0.6 * fx), rng.uniform(-0.5 * fy, 0.5 * fy)
        out[ell(cx, cy, 0, r, r, 1e9)] = label["vessel"]
    return out


def pelvis_labels(
    size_xyz: Sequence[int] = (192, 160, 24),
    spacing: Sequence[float] = PROSTATE_SPACING,
    seed: int = 0,
) -> np.ndarray:
    """The tissue labels behind :func:`synthetic_pelvis` with the same arguments: a (z, y, x)
    uint8 array, 0 for air and ``k`` for the ``k``-th tissue of :data:`PELVIS_TISSUES`."""
    return _labels(_check(size_xyz, spacing), spacing, np.random.default_rng(seed))


def synthetic_pelvis(
    size_xyz: Sequence[int] = (192, 160, 24),
    spacing: Sequence[float] = PROSTATE_SPACING,
    seed: int = 0,
) -> sitk.Image:
    """A SYNTHETIC T2w-like pelvis volume on a prostate grid (not real anatomy).

    Axis-aligned ellipsoids centred in the field of view: subcutaneous fat (bright) around
    muscle (dark); the bladder (brightest) anterior and superior; the gland (intermediate) with
    a brighter peripheral zone on its posterior side; the rectum (dark wall, darker lumen)
    posterior; twelve bright vessels of radius 0.8 mm through every slice. Intensities are
    :data:`PELVIS_TISSUES` times 1000, modulated inside the body by a smooth texture (a
    Gaussian random field, 15 % standard deviation), plus noise of standard deviation 10 and
    clipped at 0. ``y`` points anterior, ``z`` superior; ``z`` is the 1.5 mm slice axis of the
    default :data:`PROSTATE_SPACING`.

    Args:
        size_xyz: voxels along x, y, z (each >= 2).
        spacing: voxel size in mm along x, y, z.
        seed: the vessel positions, texture and noise; the same seed gives the same volume.

    Returns:
        A float32 ``SimpleITK.Image`` with that size and spacing, origin 0, identity direction.
    """
    size = _check(size_xyz, spacing)
    rng = np.random.default_rng(seed)
    labels = _labels(size, spacing, rng)
    level = np.array([0.0, *PELVIS_TISSUES.values()])
    vol = level[labels]
    body = labels > 0
    tex = sitk.GetArrayFromImage(
        sitk.SmoothingRecursiveGaussian(sitk.GetImageFromArray(rng.normal(size=vol.shape)), 2.0)
    )
    vol = np.where(body, vol * (1 + 0.15 * tex / tex.std()), 0) + rng.normal(0, 0.01, vol.shape)
    img = sitk.GetImageFromArray((1000 * np.clip(vol, 0, None)).astype(np.float32))
    img.SetSpacing(tuple(float(s) for s in spacing))
    return img
