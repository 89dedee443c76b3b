"""Brain/foreground masks: read from a file (checked) or computed by an Otsu threshold.

A mask is a ``uint8`` SimpleITK image with values 0/1 on exactly the grid of its volume.

* :func:`otsu_mask` - the foreground of a head or brain volume: SimpleITK's Otsu threshold (the
  darker class is background), the largest 3-D connected component, then hole filling slice by
  slice along every axis (so ventricles, sinuses and dark CSF inside the head become
  foreground, and a head cut open at the neck is still filled axial slice by axial slice).
* :func:`read_mask` - a mask file given by the user, checked to be on the volume's grid, binary
  and not empty.
* :func:`foreground_mask` - one entry point: ``"otsu"``, a path, an image, or ``None``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from ressrdiff.data.degrade import check_same_grid
from ressrdiff.data.io import VolumeError, read_volume

__all__ = ["otsu_mask", "read_mask", "foreground_mask"]

PathLike = str | os.PathLike[str]


def _largest_component(binary: sitk.Image) -> sitk.Image:
    labels = sitk.RelabelComponent(sitk.ConnectedComponent(binary), sortByObjectSize=True)
    return sitk.Cast(labels == 1, sitk.sitkUInt8)


def _fill_slices(arr: np.ndarray) -> np.ndarray:
    """Fill holes in every 2-D slice along each of the three axes of a bool array.

    Per axis, the background is labelled with an in-plane (4-connected) structure after padding
    every slice with a background frame; background components that reach no frame are holes.
    """
    out = np.asarray(arr, dtype=bool)
    structure = np.zeros((3, 3, 3), dtype=bool)
    structure[1] = ndimage.generate_binary_structure(2, 1)
    for axis in range(3):
        stack = np.pad(np.moveaxis(out, axis, 0), ((0, 0), (1, 1), (1, 1)))
        labels, _ = ndimage.label(~stack, structure=structure)
        frame = np.concatenate([labels[:, [0, -1], :].ravel(), labels[:, :, [0, -1]].ravel()])
        outside = np.zeros(int(labels.max()) + 1, dtype=bool)
        outside[frame] = True
        outside[0] = False  # label 0 is the foreground
        out = np.moveaxis(~outside[labels[:, 1:-1, 1:-1]], 0, axis)
    return np.ascontiguousarray(out)


def otsu_mask(img: sitk.Image, *, bins: int = 128) -> sitk.Image:
    """Foreground mask of ``img`` (uint8 0/1, same grid): Otsu + largest component + hole filling.

    The Otsu threshold splits the histogram into background (the darker class) and foreground;
    the largest 3-D connected component of the foreground is kept (removing background noise
    specks and, e.g., parts of the neck that touch nothing), and holes are filled in the 2-D
    slices along every axis (which also fills every hole enclosed in 3-D).

    Raises:
        VolumeError: the threshold leaves no foreground (a constant or empty volume).
    """
    if img.GetDimension() != 3:
        raise ValueError(f"otsu_mask: need a 3-D image, got {img.GetDimension()}-D")
    src = sitk.Cast(img, sitk.sitkFloat32)
    fg = sitk.OtsuThreshold(src, 0, 1, bins)  # values <= threshold -> 0 (background)
    if not sitk.GetArrayViewFromImage(fg).any():
        raise VolumeError("otsu_mask: the Otsu threshold leaves no foreground voxel")
    # a hole enclosed in 3-D is enclosed in every plane through it: 2-D filling covers 3-D holes
    arr = _fill_slices(sitk.GetArrayFromImage(_largest_component(fg)).astype(bool))
    out = sitk.GetImageFromArray(arr.astype(np.uint8))
    out.CopyInformation(img)
    return out


def read_mask(
    path: PathLike, reference: sitk.Image, *, reference_name: str = "volume"
) -> sitk.Image:
    """Read a mask file and check it against ``reference``; return it as uint8 0/1.

    Any positive value counts as inside; a mask that covers every voxel is valid (everything is
    foreground). Raises :class:`VolumeError` (one line naming the file) when the file cannot be
    read, is on another grid than ``reference``, is not binary (more than two distinct values,
    or values other than 0 and one positive level) or is empty.
    """
    p = Path(path)
    if not p.exists():
        raise VolumeError(f"{path}: mask file not found")
    img = read_volume(p, ndim=3, allow_constant=True)
    check_same_grid(img, reference, names=(str(path), reference_name))
    arr = sitk.GetArrayViewFromImage(img)
    values = np.unique(arr)
    if values.size > 2 or values.min() < 0 or (values.size == 2 and values[0] != 0):
        shown = ", ".join(f"{v:g}" for v in values[:5]) + (", ..." if values.size > 5 else "")
        raise VolumeError(f"{path}: mask is not binary (values {shown}); need 0 and one level > 0")
    inside = arr > 0
    if not inside.any():
        raise VolumeError(f"{path}: empty mask (no voxel > 0)")
    out = sitk.GetImageFromArray(inside.astype(np.uint8))
    out.CopyInformation(reference)
    return out


def foreground_mask(
    img: sitk.Image,
    mask: str | PathLike | sitk.Image | None = "otsu",
    *,
    image_name: str = "volume",
) -> sitk.Image | None:
    """The foreground mask of ``img``: ``"otsu"`` computes it, a path is read with
    :func:`read_mask`, a SimpleITK image is checked the same way, ``None`` gives ``None``."""
    if mask is None:
        return None
    if isinstance(mask, sitk.Image):
        check_same_grid(mask, img, names=("mask", image_name))
        arr = sitk.GetArrayViewFromImage(mask) > 0
        if not arr.any():
            raise VolumeError(f"mask for {image_name}: empty mask (no voxel > 0)")
        out = sitk.GetImageFromArray(arr.astype(np.uint8))
        out.CopyInformation(img)
        return out
    if isinstance(mask, str) and mask == "otsu":
        return otsu_mask(img)
    return read_mask(mask, img, reference_name=image_name)
