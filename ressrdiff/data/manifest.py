"""Bring your own data: subjects from a folder or a CSV manifest, a subject-level split, and paired
HR/LR slices for training and evaluation.

Inputs (:func:`read_subjects`):

* a **folder of volumes**: every NIfTI / MHA / MHD / NRRD file and every sub-folder that holds a
  DICOM series is one subject, named after the file (without its suffix) or the sub-folder.
  Hidden entries, files of other types and sub-folders without a DICOM series are ignored. A
  folder that holds a ``manifest.csv`` (such as one made by
  :func:`ressrdiff.data.prepare.prepare_dataset`) is read through that manifest instead.
* a **CSV manifest** with columns ``subject, hr_path`` and optionally ``lr_path, mask_path,
  role``; other columns (e.g. ``source, licence, grid``) are kept as information. Relative paths
  resolve against the CSV's folder. An empty cell means "not given".

Roles (:func:`split_subjects`, :func:`assign_roles`): every subject gets exactly one of ``train``,
``val`` and ``test``, by a seeded permutation of the sorted subject ids, so a subject never
contributes slices to two roles; a ``role`` given in the CSV overrides the split.

LR (:func:`load_pairs`): an ``lr_path`` given by the user is used as is, after checking that it
lies on the HR grid (re-grid a genuinely low-resolution scan onto the HR grid first); otherwise
the LR volume is simulated from HR with :func:`ressrdiff.data.degrade.degrade` and a preset.

Two layouts of the paper:

* 7T brain T1 (MP2RAGE maps), 0.8 mm isotropic: preset ``brain-4x`` (x4 on every axis, LR
  3.2 mm isotropic), slices along any axis.
* 1.5T **prostate T2w**, axial slices of 0.66 x 0.66 mm in-plane, 1.5 mm apart: preset
  ``prostate`` (x3, x3, x2 along x, y, z), LR 1.98 x 1.98 x 3.0 mm (the paper's "2 x 2 x 3 mm");
  use ``axis=2`` (z, the 1.5 mm axis) so that the 2-D slices are the axial in-plane images, on the
  HR grid.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ressrdiff.data.catalog import ROLES
from ressrdiff.data.degrade import (
    check_same_grid,
    degrade,
    resolve_degradation,
    resolve_factors,
)
from ressrdiff.data.intensity import robust_volume
from ressrdiff.data.io import VOLUME_SUFFIXES, VolumeError, read_volume, suffix_of
from ressrdiff.data.masks import otsu_mask, read_mask
from ressrdiff.data.slices import (
    MaskedPairedSlices,
    drop_empty,
    drop_empty_masked,
    image_axis_to_numpy,
    volume_to_slices,
)

__all__ = [
    "NORMALISATIONS",
    "LR_PARAMS",
    "SubjectEntry",
    "read_subjects",
    "read_manifest",
    "scan_folder",
    "split_subjects",
    "assign_roles",
    "normalise_pair",
    "load_pairs",
]

PathLike = str | os.PathLike[str]

#: Intensity normalisations of :func:`load_pairs`.
NORMALISATIONS = ("robust-volume", "minmax-slice")
#: Whose parameters map the LR image: the HR's, the LR's (both images), or each its own.
LR_PARAMS = ("hr", "lr", "own")
#: Value of padded pixels (the normalised background).
PAD_VALUE = -1.0


@dataclass(frozen=True)
class SubjectEntry:
    """One subject: its HR volume and optional paired LR, mask and role."""

    subject: str
    hr_path: Path
    lr_path: Path | None = None
    mask_path: Path | None = None
    role: str | None = None
    info: dict[str, str] = field(default_factory=dict)


def _is_dicom_folder(path: Path) -> bool:
    return bool(sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(path)))


def scan_folder(folder: PathLike) -> list[SubjectEntry]:
    """Subjects of a folder: one per volume file or DICOM-series sub-folder (sorted by name)."""
    root = Path(folder)
    if not root.is_dir():
        raise VolumeError(f"{folder}: not a folder")
    found: dict[str, Path] = {}
    for path in sorted(root.iterdir()):
        if path.name.startswith("."):
            continue
        if path.is_dir():
            if not _is_dicom_folder(path):
                continue
            name = path.name
        elif suffix_of(path) in VOLUME_SUFFIXES:
            name = path.name[: -len(suffix_of(path))]
        else:
            continue
        if name in found:
            raise VolumeError(f"{path}: subject name {name!r} also used by {found[name]}")
        found[name] = path
    if not found:
        raise VolumeError(
            f"{folder}: no volumes (NIfTI/MHA/MHD/NRRD files or DICOM series folders) found"
        )
    return [SubjectEntry(name, path) for name, path in found.items()]


def read_manifest(path: PathLike) -> list[SubjectEntry]:
    """Subjects of a CSV manifest (``subject, hr_path[, lr_path, mask_path, role]``).

    Relative paths resolve against the CSV's folder. Raises :class:`VolumeError` (one line naming
    the CSV) for missing columns, empty or duplicate subject ids, unknown roles, or files that do
    not exist.
    """
    csv_path = Path(path)
    if not csv_path.is_file():
        raise VolumeError(f"{path}: manifest not found")
    base = csv_path.parent
    try:
        with open(csv_path, encoding="utf-8-sig", newline="") as fh:
            rows = list(csv.DictReader(fh))
            columns = [c.strip() for c in (rows[0].keys() if rows else [])]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise VolumeError(f"{path}: unreadable CSV ({exc})") from None
    missing = [c for c in ("subject", "hr_path") if c not in columns]
    if not rows:
        raise VolumeError(f"{path}: manifest has no rows")
    if missing:
        raise VolumeError(f"{path}: manifest lacks column(s) {', '.join(missing)}")

    def resolve(value: str | None, row: int) -> Path | None:
        text = (value or "").strip()
        if not text:
            return None
        p = Path(text).expanduser()
        p = p if p.is_absolute() else base / p
        if not p.exists():
            raise VolumeError(f"{p}: file not found (row {row} of {path})")
        return p

    out: list[SubjectEntry] = []
    seen: set[str] = set()
    for i, raw in enumerate(rows, start=2):  # row 1 is the header
        row = {(k or "").strip(): (v or "").strip() for k, v in raw.items() if k is not None}
        subject = row.get("subject", "")
        if not subject:
            raise VolumeError(f"{path}: row {i} has an empty subject")
        if subject in seen:
            raise VolumeError(f"{path}: subject {subject!r} appears twice (row {i})")
        seen.add(subject)
        hr = resolve(row.get("hr_path"), i)
        if hr is None:
            raise VolumeError(f"{path}: row {i} ({subject}) has an empty hr_path")
        role = row.get("role") or None
        if role is not None and role not in ROLES:
            raise VolumeError(f"{path}: row {i} ({subject}) has role {role!r}; use {ROLES}")
        known = {"subject", "hr_path", "lr_path", "mask_path", "role"}
        out.append(
            SubjectEntry(
                subject,
                hr,
                resolve(row.get("lr_path"), i),
                resolve(row.get("mask_path"), i),
                role,
                {k: v for k, v in row.items() if k not in known},
            )
        )
    return out


def read_subjects(manifest_or_folder: PathLike) -> list[SubjectEntry]:
    """Subjects of a CSV manifest, of a folder's ``manifest.csv``, or of a folder of volumes."""
    p = Path(manifest_or_folder)
    if p.is_dir():
        csv_path = p / "manifest.csv"
        return read_manifest(csv_path) if csv_path.is_file() else scan_folder(p)
    if p.is_file() and p.suffix.lower() == ".csv":
        return read_manifest(p)
    if p.exists():
        raise VolumeError(f"{manifest_or_folder}: not a folder or a .csv manifest")
    raise VolumeError(f"{manifest_or_folder}: not found")


def split_subjects(
    subjects: Iterable[str], val: float = 0.1, test: float = 0.2, seed: int = 0
) -> dict[str, str]:
    """Assign every subject to exactly one role: ``{subject: "train" | "val" | "test"}``.

    The sorted ids are permuted by ``numpy.random.default_rng(seed)``; the first
    ``round(test * n)`` are ``test``, the next ``round(val * n)`` are ``val``, the rest ``train``.
    A positive fraction gets at least one subject as long as one subject is left for training
    (so 2 subjects give 1 train + 1 test, 3 give one of each). The result does not depend on the
    order of ``subjects``.
    """
    ids = list(subjects)
    if len(set(ids)) != len(ids):
        dup = sorted({s for s in ids if ids.count(s) > 1})
        raise ValueError(f"split_subjects: duplicate subject ids {dup}")
    if not (0.0 <= val < 1.0 and 0.0 <= test < 1.0 and val + test < 1.0):
        raise ValueError(f"split_subjects: need val, test >= 0, val + test < 1; got {val}, {test}")
    ids = sorted(ids)
    n = len(ids)
    n_test = round(test * n)
    if test > 0 and n >= 2:
        n_test = min(max(n_test, 1), n - 1)
    n_val = round(val * n)
    if val > 0 and n - n_test >= 2:
        n_val = min(max(n_val, 1), n - n_test - 1)
    else:
        n_val = 0
    order = np.random.default_rng(seed).permutation(n)
    roles = {}
    for rank, k in enumerate(order):
        roles[ids[k]] = "test" if rank < n_test else "val" if rank < n_test + n_val else "train"
    return roles


def assign_roles(
    entries: Sequence[SubjectEntry], val: float = 0.1, test: float = 0.2, seed: int = 0
) -> list[SubjectEntry]:
    """Entries with a role each: a role already given (CSV) is kept; the others are split with
    :func:`split_subjects` among themselves."""
    free = [e.subject for e in entries if e.role is None]
    split = split_subjects(free, val, test, seed) if free else {}
    return [e if e.role is not None else replace(e, role=split[e.subject]) for e in entries]


def _map(x: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """``2 (x - lo) / (hi - lo) - 1`` in float64 (-1 where ``hi <= lo``)."""
    rng = hi - lo
    y = 2.0 * (x - lo) / np.where(rng > 0, rng, 1.0) - 1.0
    return np.where(rng > 0, y, -1.0)


def _range_of(
    x: np.ndarray, mask: np.ndarray | None, normalisation: str, percentiles: tuple[float, float]
) -> tuple[np.ndarray, np.ndarray]:
    """(lo, hi) per slice, shaped ``(N, 1, 1)``: per-slice min/max or the volume's percentiles."""
    n = x.shape[0]
    if normalisation == "minmax-slice":
        flat = x.reshape(n, -1)
        return flat.min(axis=1)[:, None, None], flat.max(axis=1)[:, None, None]
    m = None if mask is None or not mask.any() else mask
    _, p = robust_volume(x, percentiles[0], percentiles[1], mask=m)
    return np.full((n, 1, 1), float(p.lo)), np.full((n, 1, 1), float(p.hi))


def normalise_pair(
    hr: np.ndarray,
    lr: np.ndarray,
    mask: np.ndarray | None = None,
    *,
    normalisation: str = "robust-volume",
    lr_params: str = "hr",
    percentiles: tuple[float, float] = (0.5, 99.5),
    clip: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Map aligned HR and LR slice stacks ``(N, H, W)`` of one subject to [-1, 1].

    ``normalisation``:

    * ``"robust-volume"``: one mapping for the subject, the ``percentiles`` of the values inside
      ``mask`` (all values if ``mask`` is None) go to -1/+1. Robust to background noise, skull
      and fat, it suits whole-head scans.
    * ``"minmax-slice"``: every slice from its own [min, max] to [-1, 1] (the authors' mapping).

    ``lr_params`` says whose parameters map the LR stack:

    * ``"hr"`` (default): the HR's. HR and LR then share one intensity scale, so the HR and the
      LR background both land on -1. Mapping the LR by its own min/max instead (``"own"``) moves
      its background away from -1 whenever the LR over- or undershoots: a cubic B-spline re-grid
      rings below the background, its minimum becomes the new -1 and the real background lands
      above it, which alone costs the B-spline baseline several dB of whole-slice PSNR (measured
      here: 20.1 dB B-spline vs 23.6 dB nearest on whole slices, but 23.3 vs 18.5 dB inside the
      foreground).
    * ``"lr"``: the LR's parameters map both stacks; this is what inference can do, where no HR
      exists (with ``"robust-volume"`` the HR and LR percentiles differ little).
    * ``"own"``: each stack its own parameters (the authors' convention with ``"minmax-slice"``).

    ``clip`` clips both results to [-1, 1] (an undershoot below the background becomes -1).
    Returns ``(hr_n, lr_n, hr_range, lr_range)``: float32 stacks and the ``(N, 2)`` (lo, hi) that
    were mapped to (-1, +1), for :meth:`PairedSlices.to_units`.
    """
    if normalisation not in NORMALISATIONS:
        raise ValueError(f"normalisation must be one of {NORMALISATIONS}, got {normalisation!r}")
    if lr_params not in LR_PARAMS:
        raise ValueError(f"lr_params must be one of {LR_PARAMS}, got {lr_params!r}")
    h = np.asarray(hr, dtype=np.float64)
    low = np.asarray(lr, dtype=np.float64)
    if h.ndim != 3 or h.shape != low.shape:
        raise ValueError(f"normalise_pair: need equal (N, H, W) stacks, got {h.shape}, {low.shape}")
    hr_lo, hr_hi = _range_of(h, mask, normalisation, percentiles)
    if lr_params == "hr":
        lr_lo, lr_hi = hr_lo, hr_hi
    else:
        lr_lo, lr_hi = _range_of(low, mask, normalisation, percentiles)
        if lr_params == "lr":
            hr_lo, hr_hi = lr_lo, lr_hi
    y_hr, y_lr = _map(h, hr_lo, hr_hi), _map(low, lr_lo, lr_hi)
    if clip:
        y_hr, y_lr = np.clip(y_hr, -1.0, 1.0), np.clip(y_lr, -1.0, 1.0)
    hr_range = np.concatenate([hr_lo.reshape(-1, 1), hr_hi.reshape(-1, 1)], axis=1)
    lr_range = np.concatenate([lr_lo.reshape(-1, 1), lr_hi.reshape(-1, 1)], axis=1)
    return y_hr.astype(np.float32), y_lr.astype(np.float32), hr_range, lr_range


def _bbox(mask: np.ndarray, margin: int) -> tuple[int, int, int, int]:
    """In-plane (y0, x0, h, w) covering the union of an ``(N, H, W)`` mask, plus ``margin``."""
    _, height, width = mask.shape
    ys = np.flatnonzero(mask.any(axis=(0, 2)))
    xs = np.flatnonzero(mask.any(axis=(0, 1)))
    if ys.size == 0:
        return 0, 0, height, width
    y0, y1 = max(0, ys[0] - margin), min(height, ys[-1] + 1 + margin)
    x0, x1 = max(0, xs[0] - margin), min(width, xs[-1] + 1 + margin)
    return int(y0), int(x0), int(y1 - y0), int(x1 - x0)


def _pad(stack: np.ndarray, height: int, width: int, value: float | bool) -> np.ndarray:
    _, h, w = stack.shape
    if (h, w) == (height, width):
        return stack
    return np.pad(stack, ((0, 0), (0, height - h), (0, width - w)), constant_values=value)


def _reoriented_spacing(
    img: sitk.Image, spacing: Sequence[float], orientation: str
) -> tuple[float, ...]:
    """``spacing`` (per axis of ``img``) permuted as ``DICOMOrient(img, orientation)`` permutes."""
    probe = sitk.Image([2] * img.GetDimension(), sitk.sitkUInt8)
    probe.SetDirection(img.GetDirection())
    probe.SetSpacing([float(v) for v in spacing])
    return tuple(sitk.DICOMOrient(probe, orientation).GetSpacing())


def _subject_mask(
    entry: SubjectEntry, hr: sitk.Image, mask: str | None
) -> tuple[sitk.Image | None, str | None]:
    if mask is None:
        return None, None
    if mask not in ("auto", "otsu", "file"):
        raise ValueError(f"mask must be 'auto', 'otsu', 'file' or None, got {mask!r}")
    if mask == "file" and entry.mask_path is None:
        raise VolumeError(f"{entry.hr_path}: mask='file' but subject {entry.subject} has no mask")
    if mask in ("auto", "file") and entry.mask_path is not None:
        return read_mask(entry.mask_path, hr, reference_name=str(entry.hr_path)), "file"
    return otsu_mask(hr), "otsu"


def load_pairs(
    manifest_or_folder: PathLike | Sequence[SubjectEntry],
    role: str | None = "train",
    preset: str | Sequence[float] | None = "brain-4x",
    regrid: str = "nearest",
    axis: int = 2,
    normalisation: str = "robust-volume",
    mask: str | None = "auto",
    *,
    lr_params: str = "hr",
    percentiles: tuple[float, float] = (0.5, 99.5),
    clip: bool = True,
    min_foreground: float = 0.05,
    crop: bool = True,
    margin: int = 4,
    size: tuple[int, int] | None = None,
    val: float = 0.1,
    test: float = 0.2,
    seed: int = 0,
    degradation: str = "resample",
    antialias: bool | None = None,
    orientation: str | None = None,
) -> MaskedPairedSlices:
    """Aligned, normalised HR/LR slices of the subjects with role ``role`` (``None``: all).

    Per subject: read HR; take its foreground mask (``mask="auto"``: the manifest's mask file if
    given, else :func:`ressrdiff.data.masks.otsu_mask`; ``"otsu"``; ``"file"``: the manifest's,
    required; ``None``: no mask); take the given LR (checked to be on the HR grid) or simulate it
    with ``degrade(hr, preset, regrid_method=regrid, degradation=degradation)`` (a model of
    :data:`ressrdiff.data.degrade.DEGRADATIONS`; ``antialias=True`` is the older spelling of
    ``"acquisition"``); cut both along image ``axis`` (SimpleITK
    order; 2 = z = axial for the prepared data, RAS); keep the slices whose mask covers at least
    ``min_foreground`` (without a mask: :func:`ressrdiff.data.slices.drop_empty`); normalise
    with :func:`normalise_pair`. With ``crop`` every subject's slices are cut to the in-plane
    bounding box of its mask (plus ``margin``); slices of all subjects are then padded at the
    bottom/right with -1 (mask False) to a common size (``size``, or the largest).

    Roles come from the manifest's ``role`` column or from :func:`assign_roles` with ``val``,
    ``test`` and ``seed``. Volumes keep their stored orientation unless ``orientation`` (a
    ``SimpleITK.DICOMOrient`` code such as ``"RAS"``) is given: then HR, LR and mask are
    permuted/flipped (never resampled) to it after LR simulation, so that the preset's factors
    always apply to the axes as acquired and ``axis`` refers to the reoriented axes (the prepared
    data set is stored in RAS already).

    The result feeds :class:`ressrdiff.data.slices.PatchDataset` or
    :class:`ressrdiff.data.slices.MaskedPatchDataset` (training patches; the latter centres crops
    on the foreground, so padding and air are rarely drawn) and
    :class:`ressrdiff.data.slices.SliceDataset` (whole slices). Its ``hr_range``/``lr_range``
    return values to scanner units, ``mask`` holds each slice's foreground (for masked metrics),
    and ``meta["subjects"]`` records, per subject, the files, grids, the crop ``(y0, x0, h, w)``
    and whether LR was given or simulated.
    """
    if role is not None and role not in ROLES:
        raise ValueError(f"role must be one of {ROLES} or None, got {role!r}")
    degradation = resolve_degradation(degradation, antialias)
    if isinstance(manifest_or_folder, (str, os.PathLike)):
        entries = read_subjects(manifest_or_folder)
        origin = str(manifest_or_folder)
    else:
        entries = list(manifest_or_folder)
        origin = "entries"
    entries = assign_roles(entries, val, test, seed)
    chosen = [e for e in entries if role is None or e.role == role]
    if not chosen:
        raise ValueError(f"load_pairs: no subject has role {role!r} in {origin}")
    np_axis = image_axis_to_numpy(axis)

    stacks: list[tuple[np.ndarray, ...]] = []
    info: dict[str, dict] = {}
    for e in chosen:
        hr_img = sitk.Cast(read_volume(e.hr_path, ndim=3), sitk.sitkFloat32)
        m_img, m_kind = _subject_mask(e, hr_img, mask)
        if e.lr_path is not None:
            lr_img = sitk.Cast(read_volume(e.lr_path, ndim=3), sitk.sitkFloat32)
            check_same_grid(lr_img, hr_img, names=(str(e.lr_path), str(e.hr_path)))
            lr_kind, lr_spacing = "given", lr_img.GetSpacing()
        else:
            if preset is None:
                raise ValueError(f"load_pairs: {e.subject} has no lr_path and preset is None")
            lr_img = degrade(hr_img, preset, regrid_method=regrid, degradation=degradation)
            f = resolve_factors(preset, 3)
            lr_kind = "simulated"
            lr_spacing = tuple(float(s * k) for s, k in zip(hr_img.GetSpacing(), f, strict=True))
        if orientation is not None:
            lr_spacing = _reoriented_spacing(hr_img, lr_spacing, orientation)
            hr_img, lr_img = (sitk.DICOMOrient(im, orientation) for im in (hr_img, lr_img))
            if m_img is not None:
                m_img = sitk.DICOMOrient(m_img, orientation)
        hr_all = volume_to_slices(sitk.GetArrayViewFromImage(hr_img), np_axis)
        lr_all = volume_to_slices(sitk.GetArrayViewFromImage(lr_img), np_axis)
        if m_img is not None:
            m_all = volume_to_slices(sitk.GetArrayViewFromImage(m_img), np_axis) > 0
            _, kept = drop_empty_masked(hr_all, m_all, min_foreground)
            m_k = m_all[kept]
        else:
            _, kept = drop_empty(hr_all, min_foreground)
            m_k = None
        if kept.size == 0:
            raise VolumeError(
                f"{e.hr_path}: no slice along axis {axis} has {min_foreground:.0%} foreground"
            )
        hr_n, lr_n, hr_rng, lr_rng = normalise_pair(
            hr_all[kept],
            lr_all[kept],
            m_k,
            normalisation=normalisation,
            lr_params=lr_params,
            percentiles=percentiles,
            clip=clip,
        )
        if m_k is None:
            m_k = np.ones(hr_n.shape, dtype=bool)
        y0, x0, h, w = _bbox(m_k, margin) if crop else (0, 0, *hr_n.shape[1:])
        win = (slice(None), slice(y0, y0 + h), slice(x0, x0 + w))
        stacks.append((hr_n[win], lr_n[win], m_k[win], kept, hr_rng, lr_rng))
        info[e.subject] = {
            **e.info,
            "role": e.role,
            "hr_path": str(e.hr_path),
            "lr_path": None if e.lr_path is None else str(e.lr_path),
            "lr": lr_kind,
            "mask": m_kind,
            "mask_path": None if e.mask_path is None else str(e.mask_path),
            "size_xyz": tuple(hr_img.GetSize()),
            "spacing_xyz": tuple(hr_img.GetSpacing()),
            "lr_spacing_xyz": tuple(lr_spacing),
            "orientation": sitk.DICOMOrientImageFilter.GetOrientationFromDirectionCosines(
                hr_img.GetDirection()
            ),
            "crop": (y0, x0, h, w),
            "n_slices": int(kept.size),
        }

    height = max(s[0].shape[1] for s in stacks)
    width = max(s[0].shape[2] for s in stacks)
    if size is not None:
        if size[0] < height or size[1] < width:
            raise ValueError(f"load_pairs: size {tuple(size)} < slice size {height}x{width}")
        height, width = int(size[0]), int(size[1])
    hr = np.concatenate([_pad(s[0], height, width, PAD_VALUE) for s in stacks])
    lr = np.concatenate([_pad(s[1], height, width, PAD_VALUE) for s in stacks])
    msk = np.concatenate([_pad(s[2], height, width, False) for s in stacks])
    subject = np.concatenate(
        [np.full(s[3].size, e.subject) for s, e in zip(stacks, chosen, strict=True)]
    )
    meta = {
        "role": role,
        "source": origin,
        "preset": preset if isinstance(preset, str) or preset is None else tuple(preset),
        "regrid_method": regrid,
        "degradation": degradation,
        "antialias": degradation == "acquisition",  # the older key, for existing readers
        "axis": axis,
        "orientation": orientation,
        "normalisation": normalisation,
        "lr_params": lr_params,
        "percentiles": tuple(percentiles),
        "clip": clip,
        "pad_value": PAD_VALUE,
        "subjects": info,
    }
    return MaskedPairedSlices(
        hr,
        lr,
        subject,
        np.concatenate([s[3] for s in stacks]),
        np.concatenate([s[4] for s in stacks]),
        np.concatenate([s[5] for s in stacks]),
        meta,
        msk,
    )
