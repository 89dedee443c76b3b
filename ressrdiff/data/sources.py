"""Embedded demo data: the ICBM152 2009a T1 template shipped inside the nilearn package.

Nothing is downloaded: the file is read from the installed nilearn package. It is a single,
skull-stripped *average template* (197 x 233 x 189, 1 mm, uint8), not a patient scan; results on it
are demo results. A subject-level train/test split over several volumes is the job of the
bring-your-own-data loaders.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk

from ressrdiff.data.degrade import degrade, resolve_degradation, resolve_factors
from ressrdiff.data.intensity import minmax_slices
from ressrdiff.data.io import read_volume
from ressrdiff.data.slices import PairedSlices, drop_empty, image_axis_to_numpy, volume_to_slices

__all__ = ["ICBM152_FILE", "ICBM152_LABEL", "icbm152_path", "demo_pairs"]

#: Path of the template inside the nilearn package.
ICBM152_FILE = "datasets/data/mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz"
#: Provenance label carried by the demo data.
ICBM152_LABEL = (
    "ICBM152 2009a symmetric T1 template (average of 152 brains, skull-stripped), shipped in "
    "nilearn; licence of the template: 'unknown' per nilearn. DEMO DATA: a single volume."
)


def icbm152_path() -> Path:
    """Path of the ICBM152 2009a T1 template inside the installed nilearn (never downloads).

    Raises:
        ModuleNotFoundError: nilearn is not installed (``pip install nilearn``).
        FileNotFoundError: this nilearn version does not ship the file.
    """
    spec = importlib.util.find_spec("nilearn")  # locate without importing nilearn (slow)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            "the demo data (ICBM152 template) ships inside nilearn, which is not installed: "
            "run `pip install nilearn`"
        )
    for root in spec.submodule_search_locations:
        path = Path(root) / ICBM152_FILE
        if path.is_file():
            return path
    raise FileNotFoundError(
        f"nilearn is installed at {list(spec.submodule_search_locations)} but lacks "
        f"{ICBM152_FILE}; install nilearn>=0.11 (`pip install -U nilearn`)"
    )


def demo_pairs(
    preset: str = "brain-4x",
    regrid_method: str = "nearest",
    axis: int = 2,
    seed: int = 0,
    *,
    train_fraction: float = 0.7,
    gap: int = 8,
    degradation: str = "resample",
    antialias: bool | None = None,
) -> dict[str, Any]:
    """Paired HR/LR slices of the ICBM152 template, split into train and test by slice position.

    **Demo data.** The source is one average template (skull-stripped, 1 mm), so a subject-level
    split is impossible here; it is the job of the later data loaders. The split is made as honest
    as a single volume allows: along image ``axis`` (SimpleITK order, 2 = z = axial), the non-empty
    slices (see :func:`drop_empty`) are sorted, the lowest ``train_fraction`` form the training
    set, the next ``gap`` slices are discarded, and the rest form the test set. Every test slice
    is therefore more than ``gap`` slices from every training slice, which, for the x4 preset,
    also keeps the two sets from sharing the LR slabs (4 slices) that a cubic B-spline re-grid
    mixes.

    Pipeline: read the template, ``LR = degrade(HR, preset, regrid_method, degradation)``
    (down-sampling on an FOV-preserving grid, by default with the paper's linear point sampling,
    then re-gridding to HR; ``degradation`` names a model of
    :data:`ressrdiff.data.degrade.DEGRADATIONS`, and ``antialias=True`` is the older spelling of
    ``"acquisition"``), cut both into slices along ``axis``, drop empty slices, and normalise HR
    and LR slices independently with :func:`minmax_slices` to [-1, 1] (the authors' convention).
    ``seed`` is recorded only: the pipeline is deterministic.

    Returns ``{"train": PairedSlices, "test": PairedSlices, "info": dict}``.
    """
    if not 0.0 < train_fraction < 1.0:
        raise ValueError(f"demo_pairs: train_fraction must be in (0, 1), got {train_fraction}")
    if gap < 0:
        raise ValueError(f"demo_pairs: gap must be >= 0, got {gap}")
    path = icbm152_path()
    hr_img = sitk.Cast(read_volume(path, ndim=3), sitk.sitkFloat32)
    degradation = resolve_degradation(degradation, antialias)
    lr_img = degrade(hr_img, preset, regrid_method=regrid_method, degradation=degradation)
    np_axis = image_axis_to_numpy(axis)
    hr_all = volume_to_slices(sitk.GetArrayViewFromImage(hr_img), np_axis)
    lr_all = volume_to_slices(sitk.GetArrayViewFromImage(lr_img), np_axis)

    _, kept = drop_empty(hr_all)
    if kept.size < 3:
        raise RuntimeError(f"demo_pairs: only {kept.size} non-empty slices along axis {axis}")
    hr, hr_p = minmax_slices(hr_all[kept], axis=0)
    lr, lr_p = minmax_slices(lr_all[kept], axis=0)

    n_train = int(round(train_fraction * kept.size))
    n_train = min(max(n_train, 1), kept.size - 1)
    cut = kept[n_train - 1]  # last training slice index
    train_rows = np.arange(n_train)
    test_rows = np.flatnonzero(kept > cut + gap)
    if test_rows.size == 0:
        raise RuntimeError("demo_pairs: no test slices left after the gap; lower train_fraction")

    subject = "icbm152_2009a_sym"
    factors = resolve_factors(preset, 3)
    meta = {
        "source": str(path),
        "label": ICBM152_LABEL,
        "synthetic": False,
        "preset": preset,
        "factors_xyz": tuple(float(f) for f in factors),
        "regrid_method": regrid_method,
        "degradation": degradation,
        "antialias": degradation == "acquisition",  # the older key, for existing readers
        "axis": axis,
        "normalisation": "minmax per slice to [-1, 1] (HR and LR separately)",
    }
    whole = PairedSlices(
        hr,
        lr,
        np.full(kept.size, subject),
        kept,
        np.stack([hr_p.lo, hr_p.hi], axis=1),
        np.stack([lr_p.lo, lr_p.hi], axis=1),
        meta,
    )
    train, test = whole.subset(train_rows), whole.subset(test_rows)
    info = dict(
        meta,
        seed=seed,
        volume_size_xyz=hr_img.GetSize(),
        spacing_xyz=hr_img.GetSpacing(),
        n_slices=int(hr_all.shape[0]),
        n_nonempty=int(kept.size),
        train_indices=(int(train.index.min()), int(train.index.max())),
        test_indices=(int(test.index.min()), int(test.index.max())),
        gap=gap,
        split="by slice position within one template (no subject-level split possible)",
    )
    return {"train": train, "test": test, "info": info}
