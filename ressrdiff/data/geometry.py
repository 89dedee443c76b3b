"""Voxel geometry: what a format can store, what is plausible for MRI, and whether a written
file kept the geometry it was given.

Every function returns a one-line message naming the field (or None when all is well); the
callers decide whether it is an error or a warning. Spacings are in mm.
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

__all__ = [
    "SPACING_RANGE_MM",
    "MAX_ANISOTROPY",
    "NIFTI_SUFFIXES",
    "non_orthogonal",
    "unstorable",
    "implausible_spacing",
    "geometry_difference",
]

#: Voxel spacings outside this range (mm) are warned about: no MRI scan has them.
SPACING_RANGE_MM = (0.05, 20.0)
#: Largest over smallest spacing above this is warned about (a typo'd or unit-confused header).
MAX_ANISOTROPY = 20.0
NIFTI_SUFFIXES = (".nii", ".nii.gz")

_AXES = "xyz"


def _fmt(values) -> str:
    return " x ".join(f"{v:g}" for v in values)


def non_orthogonal(img: sitk.Image, tol: float = 1e-4) -> str | None:
    """A description of how ``img``'s direction matrix is not orthonormal, or None."""
    dim = img.GetDimension()
    d = np.asarray(img.GetDirection(), dtype=np.float64).reshape(dim, dim)
    gram = d.T @ d
    if np.allclose(gram, np.eye(dim), atol=tol):
        return None
    off = np.abs(gram - np.diag(np.diag(gram)))
    i, j = np.unravel_index(int(np.argmax(off)), off.shape)
    if off[i, j] > tol:
        cos = gram[i, j] / np.sqrt(gram[i, i] * gram[j, j])
        angle = float(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))))
        return f"direction matrix is skewed ({_AXES[i]} and {_AXES[j]} axes at {angle:.1f} deg)"
    return "direction matrix columns are not unit vectors"


def unstorable(img: sitk.Image, suffix: str) -> str | None:
    """Why a file of ``suffix`` cannot store ``img``'s geometry exactly, or None.

    NIfTI stores the orientation as a rotation (quaternion): ITK coerces a skewed direction
    matrix to the nearest orthogonal one on writing, a silent change of geometry."""
    if suffix in NIFTI_SUFFIXES:
        why = non_orthogonal(img)
        if why:
            return f"the {why}; NIfTI cannot store it: write .mha or .nrrd instead"
    return None


def implausible_spacing(img: sitk.Image) -> str | None:
    """A warning when ``img``'s voxel spacing is outside :data:`SPACING_RANGE_MM` or more
    anisotropic than :data:`MAX_ANISOTROPY` (a header in the wrong unit, say), else None."""
    s = np.asarray(img.GetSpacing(), dtype=np.float64)
    lo, hi = SPACING_RANGE_MM
    out = [f"{_AXES[i]} = {v:g} mm" for i, v in enumerate(s) if not lo <= v <= hi]
    if out:
        return (
            f"voxel spacing {_fmt(s)} mm has {', '.join(out)}, outside "
            f"{lo:g}..{hi:g} mm (check the header's spacing)"
        )
    ratio = float(s.max() / s.min())
    if ratio > MAX_ANISOTROPY:
        return (
            f"voxel spacing {_fmt(s)} mm is {ratio:.0f}:1 anisotropic, more than "
            f"{MAX_ANISOTROPY:g}:1 (check the header's spacing)"
        )
    return None


def geometry_difference(
    written: sitk.Image, meant: sitk.Image, *, rtol: float = 1e-5, atol: float = 1e-4
) -> str | None:
    """The first field (size, spacing, origin, direction) in which ``written`` differs from
    ``meant``, as one line; None when they agree (within float32 round-off of the header)."""
    if written.GetSize() != meant.GetSize():
        return f"size {written.GetSize()} instead of {meant.GetSize()}"
    for name in ("spacing", "origin", "direction"):
        a = np.asarray(getattr(written, f"Get{name.title()}")(), dtype=np.float64)
        b = np.asarray(getattr(meant, f"Get{name.title()}")(), dtype=np.float64)
        if not np.allclose(a, b, rtol=rtol, atol=atol):
            return f"{name} {_fmt(np.round(a, 6))} instead of {_fmt(np.round(b, 6))}"
    return None
