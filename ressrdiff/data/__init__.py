"""Data layer: volume I/O, the degradations (the paper's and a physical acquisition model),
normalisation, slices and demo data.

Knows no model; imports nothing from ``ressrdiff`` outside this package. Names are imported
lazily, so that ``ressrdiff.data.slices`` (numpy and torch only) works where SimpleITK is absent.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "catalog": [
        "CATALOG",
        "DATASETS",
        "Source",
        "SourceError",
        "SourceHashError",
        "SourceMissingError",
        "dataset_sources",
    ],
    "commands": ["add_data_parser"],
    "degrade": [
        "DEGRADATIONS",
        "PRESETS",
        "check_same_grid",
        "degradation_of",
        "degrade",
        "downsample",
        "lr_grid",
        "regrid",
        "same_grid",
        "upsample_slice",
    ],
    "intensity": ["IntensityParams", "invert", "minmax_slices", "robust_volume"],
    "io": ["VolumeError", "read_slice_2d", "read_volume", "write_slice_2d", "write_volume"],
    "manifest": [
        "SubjectEntry",
        "assign_roles",
        "load_pairs",
        "normalise_pair",
        "read_subjects",
        "split_subjects",
    ],
    "masks": ["foreground_mask", "otsu_mask", "read_mask"],
    "prepare": ["data_root", "prepare_dataset", "source_dirs", "verify_source"],
    "slices": [
        "MaskedPairedSlices",
        "MaskedPatchDataset",
        "PairedSlices",
        "PatchDataset",
        "SliceDataset",
        "drop_empty",
        "drop_empty_masked",
        "volume_to_slices",
    ],
    "sources": ["demo_pairs", "icbm152_path"],
}
_WHERE = {name: mod for mod, names in _EXPORTS.items() for name in names}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'ressrdiff.data' has no attribute {name!r}")
    return getattr(importlib.import_module(f"ressrdiff.data.{_WHERE[name]}"), name)
