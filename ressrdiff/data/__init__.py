"""Data layer: volume I/O, the paper's degradation, normalisation, slices and demo data.

Knows no model; imports nothing from ``ressrdiff`` outside this package.
"""

from ressrdiff.data.degrade import PRESETS, check_same_grid, degrade, downsample, regrid, same_grid
from ressrdiff.data.intensity import IntensityParams, invert, minmax_slices, robust_volume
from ressrdiff.data.io import (
    VolumeError,
    read_slice_2d,
    read_volume,
    write_slice_2d,
    write_volume,
)
from ressrdiff.data.slices import (
    PairedSlices,
    PatchDataset,
    SliceDataset,
    drop_empty,
    volume_to_slices,
)
from ressrdiff.data.sources import demo_pairs, icbm152_path

__all__ = [
    "PRESETS",
    "IntensityParams",
    "PairedSlices",
    "PatchDataset",
    "SliceDataset",
    "VolumeError",
    "check_same_grid",
    "degrade",
    "demo_pairs",
    "downsample",
    "drop_empty",
    "icbm152_path",
    "invert",
    "minmax_slices",
    "read_slice_2d",
    "read_volume",
    "regrid",
    "robust_volume",
    "same_grid",
    "volume_to_slices",
    "write_slice_2d",
    "write_volume",
]
