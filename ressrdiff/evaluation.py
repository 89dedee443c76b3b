"""The evaluation runner: super-resolve the test subjects with every method and score them.

For each test subject the HR volume is down-sampled with the preset and the ``degradation`` (a
genuinely low-resolution volume on its own grid; :data:`ressrdiff.data.degrade.DEGRADATIONS`:
the paper's ``"resample"`` by default, or the physical ``"acquisition"`` model), every entry
super-resolves it back onto
the HR grid, and the per-slice metrics go into one tidy table (subject, slice, method, region,
metric, value). Two reference entries need no checkpoint: ``nearest`` and ``bspline``
re-gridding of the LR (SimpleITK). A manifest's ``lr_path`` replaces the simulated LR; it must lie
on the HR grid (used as is) or on the preset's LR grid of the HR (re-gridded), and a
``mask_path`` must be a binary mask on the HR grid (:func:`ressrdiff.data.masks.read_mask`).

Every input is checked before anything is written: all subjects are read and every checkpoint
that is not cached is loaded and checked against the preset, so a bad subject or checkpoint
stops the run with a one-line error naming the file and leaves ``out_dir`` as it was.

Outputs under ``out_dir``:

* ``volumes/<subject>/<label>.nii.gz``: the cached SR volumes (input units, HR geometry);
* ``metrics/<label>.csv``: the per-slice table of one entry, with ``<label>.json`` beside it
  holding its provenance (checkpoint sha256, data sha256, package version, steps, seed);
* ``metrics.csv`` and ``provenance.json``: all entries together.

Resumable: an entry whose table exists with the same provenance (checkpoint and data sha256,
preset, degradation, seed, slice choice, package version, LPIPS, SSIM pooling, devices) and whose
SR volumes are all present is read, not recomputed. All volumes are scored after the same
mapping to [-1, 1] (the HR's robust percentiles, upper end inside the mask), on the slices with
at least ``min_foreground`` of mask.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import SimpleITK as sitk
import torch

from . import __version__
from .atomic import text_output, write_files
from .checkpoint import checkpoint_config
from .data.degrade import (
    degradation_of,
    downsample,
    grid_text,
    lr_grid,
    regrid,
    resolve_degradation,
    same_grid,
)
from .data.intensity import IntensityParams, apply_mapping, robust_volume
from .data.io import VolumeError, read_volume, write_volume
from .data.manifest import SubjectEntry, assign_roles, read_subjects
from .data.masks import otsu_mask, read_mask
from .data.prepare import file_sha256
from .metrics import MetricSuite, score_table

__all__ = [
    "Entry",
    "REFERENCES",
    "ROLES",
    "parse_entry",
    "test_subjects",
    "test_volume_shape",
    "evaluate",
    "own_planes",
]

PathLike = str | os.PathLike[str]

#: Entries computed without a checkpoint: re-gridding of the LR onto the HR grid.
REFERENCES = {"nearest": "nearest", "bspline": "bspline"}


@dataclass(frozen=True)
class Entry:
    """One row of the comparison: a reference re-gridding or a checkpoint (at ``steps``)."""

    label: str
    checkpoint: str | None = None  # None: ``label`` must be a REFERENCES key
    steps: int | None = None  # sampling steps / NFE (None: the method's default)

    def __post_init__(self) -> None:
        if not self.label or any(c in self.label for c in "/\\ "):
            raise ValueError(f"entry label {self.label!r}: needs a name without / or spaces")
        if self.checkpoint is None and self.label not in REFERENCES:
            raise ValueError(
                f"entry {self.label!r} needs a checkpoint (references: {', '.join(REFERENCES)})"
            )


def parse_entry(text: str) -> Entry:
    """``LABEL=CHECKPOINT[@STEPS]`` or a reference name (``nearest``, ``bspline``)."""
    if "=" not in text:
        return Entry(text)
    label, rest = text.split("=", 1)
    steps = None
    if "@" in rest:
        rest, k = rest.rsplit("@", 1)
        try:
            steps = int(k)
        except ValueError:
            raise ValueError(f"entry {text!r}: steps after '@' must be an integer") from None
    if not Path(rest).is_file():
        raise ValueError(f"entry {text!r}: checkpoint {rest} not found")
    return Entry(label, rest, steps)


#: subject roles ``evaluate`` can score: the test subjects (reported once per final model) or
#: the validation subjects (where every choice is made)
ROLES = ("test", "val")


def test_subjects(
    data: PathLike | None = None,
    *,
    val: float = 0.1,
    test: float = 0.2,
    seed: int = 0,
    role: str = "test",
) -> list[SubjectEntry]:
    """The test subjects (or, with ``role="val"``, the validation subjects) of the prepared
    default data set (``data`` None) or of a folder/CSV manifest (roles from its ``role``
    column, else the seeded subject-level split)."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
    if data is None:
        from .data.prepare import prepare_dataset

        data = prepare_dataset("default") / "manifest.csv"
    entries = assign_roles(read_subjects(data), val, test, seed)
    chosen = [e for e in entries if e.role == role]
    if not chosen:
        raise ValueError(f"{data}: no {'test' if role == 'test' else 'validation'} subject")
    return chosen


def test_volume_shape(data: PathLike | None = None, axis: int = 2) -> tuple[int, int, int]:
    """(slices, height, width) of the first test subject's HR volume cut along image ``axis``
    (0 = x, 1 = y, 2 = z, as ``ressrdiff sr --axis``)."""
    size = read_volume(test_subjects(data)[0].hr_path, ndim=3).GetSize()  # (x, y, z)
    rest = [size[a] for a in (0, 1, 2) if a != axis]
    return int(size[axis]), int(rest[1]), int(rest[0])


def _arr(img: sitk.Image) -> np.ndarray:
    return sitk.GetArrayFromImage(img).astype(np.float64)  # (z, y, x)


def _write_json(obj: dict, path: Path) -> None:
    write_files([text_output(path, json.dumps(obj, indent=1, sort_keys=True))])


def _write_csv(df: pd.DataFrame, path: Path) -> None:
    write_files([text_output(path, df.to_csv(index=False))])


@dataclass
class _Subject:
    entry: SubjectEntry
    hr: sitk.Image
    lr: sitk.Image
    mask: np.ndarray  # (z, y, x) bool
    keep: np.ndarray  # axial slice indices scored
    params: IntensityParams  # the HR's robust mapping to [-1, 1], applied to every volume
    sha: dict[str, str] = field(default_factory=dict)
    lr_on_hr_grid: bool = False  # a given LR already on the HR grid: used as is
    _regridded: dict[str, sitk.Image] = field(default_factory=dict)

    def regridded(self, interpolator: str) -> sitk.Image:
        """The LR re-gridded onto the HR grid (computed once per interpolator)."""
        if self.lr_on_hr_grid:
            return self.lr
        if interpolator not in self._regridded:
            self._regridded[interpolator] = regrid(self.lr, self.hr, interpolator)
        return self._regridded[interpolator]


def _given_lr(e: SubjectEntry, hr: sitk.Image, preset: str) -> tuple[sitk.Image, bool]:
    """The manifest's LR and whether it is on the HR grid; a one-line :class:`VolumeError`
    naming both files when it is on neither the HR grid nor the preset's LR grid of the HR."""
    lr = sitk.Cast(read_volume(e.lr_path, ndim=3), sitk.sitkFloat32)
    if same_grid(lr, hr):
        return lr, True
    expected = lr_grid(hr, preset)
    if same_grid(lr, expected):
        return lr, False
    raise VolumeError(
        f"{e.lr_path} and {e.hr_path}: the LR is on neither the HR grid nor the {preset!r} LR "
        f"grid of the HR (LR: {grid_text(lr)}; HR: {grid_text(hr)}; {preset} LR grid: "
        f"{grid_text(expected)})"
    )


def _load_subject(
    e: SubjectEntry,
    preset: str,
    min_foreground: float,
    axis: int,
    max_slices: int | None,
    degradation: str = "resample",
) -> _Subject:
    if axis != 2:
        raise ValueError("evaluate: only axial slices (axis z = 2) are scored for now")
    hr = sitk.Cast(read_volume(e.hr_path, ndim=3), sitk.sitkFloat32)
    if e.mask_path is not None:
        m_img = read_mask(e.mask_path, hr, reference_name=str(e.hr_path))
    else:
        m_img = otsu_mask(hr)
    m = sitk.GetArrayFromImage(m_img) > 0
    keep = np.flatnonzero(m.reshape(len(m), -1).mean(axis=1) >= min_foreground)
    if max_slices is not None and keep.size > max_slices:  # evenly spread, first and last kept
        keep = keep[np.round(np.linspace(0, keep.size - 1, max_slices)).astype(int)]
    if keep.size == 0:
        raise VolumeError(
            f"{e.mask_path or e.hr_path}: no axial slice has {min_foreground:.0%} foreground"
        )
    _, params = robust_volume(_arr(hr), mask=m)
    sha = {"hr": file_sha256(e.hr_path)}
    if e.mask_path is not None:
        sha["mask"] = file_sha256(e.mask_path)
    on_hr = False
    if e.lr_path is None:
        lr = downsample(hr, preset, degradation=degradation)
    else:
        lr, on_hr = _given_lr(e, hr, preset)
        sha["lr"] = file_sha256(e.lr_path)
    return _Subject(e, hr, lr, m, keep, params, sha, on_hr)


def _cached(info: dict, out: Path, label: str, subjects: list[_Subject]) -> dict | None:
    """The stored provenance of ``label`` when its table, provenance and every SR volume exist
    and the provenance matches ``info``; else None."""
    table_path = out / "metrics" / f"{label}.csv"
    info_path = out / "metrics" / f"{label}.json"
    if not (table_path.is_file() and info_path.is_file()):
        return None
    if not all((out / "volumes" / s.entry.subject / f"{label}.nii.gz").is_file() for s in subjects):
        return None
    try:
        old = json.loads(info_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(old, dict):
        return None
    if "degradation" not in old:  # written before the field: antialias named the degradation
        old = {**old, "degradation": "acquisition" if old.get("antialias") else "resample"}
    old = {"role": "test", "planes": None, **old}  # written before these fields: test, axial
    if {k: old.get(k) for k in info} != info:
        return None
    return old


def own_planes(checkpoint: str | Path) -> list[str] | None:
    """The checkpoint's ``infer.planes``, read from its config alone (no network is loaded for
    an entry that turns out to be cached); None when it names none or the file cannot be read
    (:func:`~ressrdiff.inference.load_sr_method` then gives the one-line error)."""
    try:
        return (checkpoint_config(checkpoint).get("infer") or {}).get("planes")
    except Exception:  # noqa: BLE001 - unreadable: the full loader names the problem
        return None


def _sr_volume(
    entry: Entry,
    subj: _Subject,
    method,
    seed: int,
    batch: int,
    progress: bool,
    planes: Sequence[str] | None = None,
):
    """The entry's volume on the HR grid. Axial-only SR super-resolves only the scored slices
    (2-D SR treats slices independently); the other slices hold the re-gridded input. With
    ``planes`` (more than the axial plane; orthogonal-plane fusion,
    :func:`ressrdiff.fusion.super_resolve_planes`, the voxel-wise mean) the whole volume is
    super-resolved across each plane."""
    if entry.checkpoint is None:
        return subj.regridded(REFERENCES[entry.label])
    from .inference import super_resolve_volume

    base = subj.regridded(method.cfg.data.regrid)
    if planes:
        from .fusion import super_resolve_planes

        sr, _, _ = super_resolve_planes(
            method,
            base,
            planes=planes,
            steps=entry.steps,
            seed=seed,
            batch=batch,
            progress=progress,
        )
        return sr
    arr = sitk.GetArrayFromImage(base)  # (z, y, x), a copy
    sub = sitk.GetImageFromArray(np.ascontiguousarray(arr[subj.keep]))
    sub.SetSpacing(base.GetSpacing())
    sr, _ = super_resolve_volume(
        method, sub, steps=entry.steps, seed=seed, batch=batch, progress=progress
    )
    arr[subj.keep] = sitk.GetArrayFromImage(sr)
    out = sitk.GetImageFromArray(arr)
    out.CopyInformation(base)
    return out


def _score(vol: sitk.Image, subj: _Subject, label: str, suite: MetricSuite) -> pd.DataFrame:
    def norm(v: np.ndarray) -> torch.Tensor:
        y = apply_mapping(v, subj.params)
        return torch.from_numpy(y[subj.keep][:, None]).float()

    return score_table(
        norm(_arr(vol)),
        norm(_arr(subj.hr)),
        subject=subj.entry.subject,
        slice_index=subj.keep.tolist(),
        method=label,
        mask=torch.from_numpy(subj.mask[subj.keep][:, None]),
        suite=suite,
    )


def evaluate(
    entries: Sequence[Entry],
    out_dir: PathLike,
    *,
    data: PathLike | None = None,
    preset: str = "brain-4x",
    seed: int = 0,
    batch: int = 8,
    min_foreground: float = 0.05,
    max_slices: int | None = None,
    axis: int = 2,
    device: str = "cpu",
    progress: bool = True,
    suite: MetricSuite | None = None,
    degradation: str = "resample",
    antialias: bool | None = None,
    role: str = "test",
    planes: Sequence[str] | None = None,
    log=print,
) -> pd.DataFrame:
    """Run every entry on every test subject (see the module docstring); returns the table.

    Checkpoints must have been trained for ``preset`` (checked, with every subject, before
    anything is written). ``data``: None for the prepared default data set, else a folder or CSV
    manifest. ``max_slices`` scores an evenly spread subset of each subject's slices (a CPU
    budget knob; None: all). ``degradation`` simulates the LR from HR
    (:data:`ressrdiff.data.degrade.DEGRADATIONS`; ``antialias=True`` is its older spelling of
    ``"acquisition"``); it is part of the cache key. A checkpoint trained on another degradation
    is evaluated all the same, with a one-line warning through ``log`` and its own recorded as
    ``trained_degradation`` in the provenance. ``role="val"`` scores the validation subjects
    instead, where choices are made (the test subjects are scored once per final model).
    ``planes`` (e.g. ``("axial", "coronal", "sagittal")``; ``("axial",)``: axial only; None:
    each checkpoint's own ``infer.planes``, as ``ressrdiff sr`` does) super-resolves checkpoint
    entries with orthogonal-plane fusion; the scored slices stay axial. Role and planes are part
    of the cache key.
    """
    from .inference import check_preset, load_sr_method

    degradation = resolve_degradation(degradation, antialias)
    labels = [e.label for e in entries]
    if len(set(labels)) != len(labels):
        raise ValueError(f"evaluate: duplicate entry labels in {labels}")
    out = Path(out_dir)
    # -- every check first: nothing is written before all inputs have been read ----------------
    subjects = [
        _load_subject(e, preset, min_foreground, axis, max_slices, degradation)
        for e in test_subjects(data, role=role)
    ]
    if planes is not None:
        from .fusion import parse_planes

        planes = parse_planes(",".join(planes))
    suite = suite or MetricSuite()
    infos: dict[str, dict] = {}
    cached: dict[str, dict] = {}
    methods: dict[str, object] = {}
    for entry in entries:
        fused = None  # the planes a checkpoint entry is fused across (None: axial only)
        if entry.checkpoint is not None:
            fused = planes if planes is not None else own_planes(entry.checkpoint)
            fused = None if fused in (None, ["axial"]) else list(fused)
        info = {
            "entry": asdict(entry),
            "checkpoint_sha256": file_sha256(entry.checkpoint) if entry.checkpoint else None,
            "data_sha256": {s.entry.subject: s.sha for s in subjects},
            "preset": preset,
            "degradation": degradation,
            "antialias": degradation == "acquisition",  # the older key
            "seed": seed,
            "role": role,
            "planes": fused,
            "min_foreground": min_foreground,
            "max_slices": max_slices,
            "ressrdiff": __version__,
            "lpips": suite.lpips_status,
            "ssim_downsample": bool(suite.ssim_downsample),
            "device": str(torch.device(device)),
            "metrics_device": str(suite.device),
        }
        infos[entry.label] = info
        old = _cached(info, out, entry.label, subjects)
        if old is not None:
            cached[entry.label] = old
        elif entry.checkpoint is not None:
            method = load_sr_method(entry.checkpoint, device=device)
            check_preset(method, preset, entry.checkpoint)
            methods[entry.label] = method

    # -- compute what is not cached ----------------------------------------------------------
    (out / "metrics").mkdir(parents=True, exist_ok=True)
    tables, prov = [], {}
    for entry in entries:
        info = infos[entry.label]
        table_path = out / "metrics" / f"{entry.label}.csv"
        info_path = out / "metrics" / f"{entry.label}.json"
        if entry.label in cached:
            log(f"evaluate: {entry.label}: cached ({table_path})")
            tables.append(pd.read_csv(table_path))
            prov[entry.label] = cached[entry.label]
            continue
        method = methods.pop(entry.label, None)
        if method is not None:
            info["method"] = method.name
            info["trained_step"] = getattr(method, "trained_step", None)
            trained = degradation_of(method.cfg.data)
            info["trained_degradation"] = trained
            if trained != degradation:
                log(
                    f"evaluate: warning: {entry.label}: {entry.checkpoint} was trained on "
                    f"degradation {trained!r}, evaluated on {degradation!r}"
                )
        per_subject = []
        for subj in subjects:
            vdir = out / "volumes" / subj.entry.subject
            vdir.mkdir(parents=True, exist_ok=True)
            start = time.perf_counter()
            vol = _sr_volume(entry, subj, method, seed, batch, progress, info["planes"])
            seconds = time.perf_counter() - start
            write_volume(vol, vdir / f"{entry.label}.nii.gz")
            df = _score(vol, subj, entry.label, suite)
            per_subject.append(df)
            info.setdefault("seconds", {})[subj.entry.subject] = seconds
            info["threads"] = torch.get_num_threads()
            log(f"evaluate: {entry.label} on {subj.entry.subject}: {seconds:.1f} s")
        table = pd.concat(per_subject, ignore_index=True)
        _write_csv(table, table_path)
        _write_json(info, info_path)
        tables.append(table)
        prov[entry.label] = info
    df = pd.concat(tables, ignore_index=True)
    _write_csv(df, out / "metrics.csv")
    _write_json(prov, out / "provenance.json")
    return df
