"""Training data described by a run config's ``data`` section (no model knowledge)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .augment import IntensityAugment
from .degrade import degradation_of
from .io import VolumeError
from .slices import MaskedPatchDataset, PairedSlices, PatchDataset
from .sources import demo_pairs

__all__ = ["paired_slices_from_config", "patch_dataset_from_config", "load_npz_pairs"]


def load_npz_pairs(path: str | Path) -> PairedSlices:
    """Aligned ``hr`` and ``lr`` arrays (N, H, W) in [-1, 1] from an ``.npz`` file."""
    p = Path(path)
    if not p.is_file():
        raise VolumeError(f"{p}: file not found")
    try:
        with np.load(p, allow_pickle=False) as z:
            hr, lr = np.asarray(z["hr"], np.float32), np.asarray(z["lr"], np.float32)
    except KeyError as e:
        raise VolumeError(f"{p}: needs arrays 'hr' and 'lr' ({e} missing)") from None
    except (OSError, ValueError) as e:
        raise VolumeError(f"{p}: not a readable .npz file ({e})") from None
    if hr.ndim != 3 or hr.shape != lr.shape:
        raise VolumeError(f"{p}: hr {hr.shape} and lr {lr.shape} must both be (N, H, W)")
    if not (np.isfinite(hr).all() and np.isfinite(lr).all()):
        raise VolumeError(f"{p}: contains NaN or Inf values")
    n = hr.shape[0]
    return PairedSlices(hr=hr, lr=lr, subject=np.array([p.stem] * n), index=np.arange(n))


def paired_slices_from_config(data: Any, seed: int = 0) -> PairedSlices:
    """The training slices for ``data`` (a :class:`ressrdiff.config.DataConfig`); the LR is
    simulated with the degradation ``data.degradation`` (:func:`degradation_of`)."""
    degradation = degradation_of(data)
    if data.source == "demo":
        pairs = demo_pairs(
            data.preset, data.regrid, axis=data.axis, seed=seed, degradation=degradation
        )
        return pairs["train"]
    if data.source == "npz":
        if not data.path:
            raise ValueError("data.source 'npz' needs data.path")
        return load_npz_pairs(data.path)
    if data.source in ("default", "manifest"):
        from .manifest import load_pairs
        from .prepare import prepare_dataset

        if data.source == "manifest" and not data.path:
            raise ValueError("data.source 'manifest' needs data.path (a folder or a CSV)")
        src = data.path if data.source == "manifest" else prepare_dataset("default")
        return load_pairs(
            src,
            "train",
            data.preset,
            data.regrid,
            axis=data.axis,
            normalisation=data.resolved_normalisation,
            seed=seed,
            degradation=degradation,
        )
    raise ValueError(f"data.source {data.source!r} unknown")


def patch_dataset_from_config(data: Any, seed: int = 0) -> PatchDataset:
    """Random ``data.patch``-sized crops of the training slices (with ``data.intensity``'s
    augmentation when set)."""
    pairs = paired_slices_from_config(data, seed)
    intensity = IntensityAugment.from_config(getattr(data, "intensity", None))
    # crops centred on the foreground when the slices carry a mask
    cls = MaskedPatchDataset if getattr(pairs, "mask", None) is not None else PatchDataset
    return cls(
        pairs,
        data.patch,
        samples_per_epoch=data.samples_per_epoch,
        seed=seed,
        augment=data.augment,
        intensity=intensity,
    )
