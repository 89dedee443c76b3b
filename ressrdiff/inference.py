"""Whole-volume super-resolution: a trained 2-D method applied slice by slice to a 3-D volume.

The volume is cut into 2-D slices along one image axis, each slice is min-max normalised to
[-1, 1] (as in training), slices are super-resolved in batches, mapped back to the input's
intensity units and stacked onto the HR grid. A genuinely low-resolution volume is first
re-gridded onto the FOV-preserving HR grid of the checkpoint's degradation preset, the inverse of
:func:`ressrdiff.data.degrade.downsample`.

:func:`super_resolve_file` adds the file handling: every input and output problem is reported as
a one-line error naming the file *before* the checkpoint is loaded, and the outputs (SR and, for
an ensemble, the standard-deviation map) are written together or not at all, each verified by
reading it back (:mod:`ressrdiff.atomic`). A geometry the output format cannot store is refused
before any work, an implausible spacing is warned about, and so is an input whose spacing
suggests a genuinely low-resolution scan given without ``--lr``.
"""

from __future__ import annotations

import math
import os
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk
import torch
from tqdm.auto import tqdm

from .atomic import write_files
from .checkpoint import CheckpointError
from .data.degrade import PRESETS, regrid, resolve_factors
from .data.geometry import implausible_spacing, unstorable
from .data.header import MAX_VOXELS_ENV, max_voxels
from .data.intensity import invert, minmax_slices, robust_volume
from .data.io import (
    VolumeError,
    check_output_path,
    read_volume,
    suffix_of,
    volume_output,
)
from .data.masks import otsu_mask
from .data.slices import image_axis_to_numpy
from .devices import bf16_autocast, channels_last_networks, resolve_device
from .methods import Method, load_method
from .progress import progress_enabled

__all__ = [
    "AXES",
    "SRReport",
    "background_slices",
    "check_preset",
    "default_std_path",
    "hr_reference",
    "lr_input_hint",
    "load_sr_method",
    "super_resolve_file",
    "super_resolve_volume",
]

PathLike = str | os.PathLike[str]

#: Image axis names (SimpleITK order) accepted on the command line.
AXES: dict[str, int] = {"x": 0, "y": 1, "z": 2}


def load_sr_method(path: PathLike, *, device: str | torch.device = "cpu") -> Method:
    """:func:`~ressrdiff.methods.load_method` with EMA weights; the method remembers ``path``
    (``method.checkpoint_path``) so that later errors can name the checkpoint."""
    method = load_method(path, device=device, use_ema=True)
    method.checkpoint_path = str(path)
    return method


def _ckpt_name(method: Method, checkpoint: PathLike | None) -> str:
    return str(checkpoint or getattr(method, "checkpoint_path", None) or "checkpoint")


def check_preset(method: Method, preset: str | None, checkpoint: PathLike | None = None) -> str:
    """The checkpoint's degradation preset; a one-line :class:`CheckpointError` when ``preset``
    is given and differs from it."""
    trained = method.cfg.data.preset
    if preset is not None:
        if preset not in PRESETS:
            raise ValueError(f"unknown preset {preset!r}; use one of {', '.join(PRESETS)}")
        if preset != trained:
            raise CheckpointError(
                f"{_ckpt_name(method, checkpoint)}: trained for preset {trained!r}, not {preset!r}"
            )
    return trained


def hr_reference(lr: sitk.Image, factors: str | float | np.ndarray) -> sitk.Image:
    """An empty float32 image on the HR grid of a genuinely low-resolution volume ``lr``.

    Same FOV as :func:`~ressrdiff.data.degrade.downsample`, inverted: HR spacing ``s / f``, size
    ``n * f`` and origin ``o - D @ ((f - 1) / 2 * s / f)`` (``D`` the direction matrix).
    """
    dim = lr.GetDimension()
    f = resolve_factors(factors, dim)
    size = np.asarray(lr.GetSize(), dtype=np.float64)
    spacing = np.asarray(lr.GetSpacing(), dtype=np.float64) / f
    direction = np.asarray(lr.GetDirection(), dtype=np.float64).reshape(dim, dim)
    origin = np.asarray(lr.GetOrigin(), dtype=np.float64) - direction @ ((f - 1.0) / 2.0 * spacing)
    ref = sitk.Image([int(round(v)) for v in size * f], sitk.sitkFloat32)
    ref.SetSpacing(spacing.tolist())
    ref.SetOrigin(origin.tolist())
    ref.SetDirection(lr.GetDirection())
    return ref


#: HR voxel spacing (mm) of the training data of a data source, where it is known: the demo
#: template (ICBM152 at 1 mm) and the default data set (0.5 to 1 mm; the coarsest is taken).
TRAINING_HR_SPACING_MM: dict[str, float] = {"demo": 1.0, "default": 1.0}


def lr_input_hint(spacing: tuple[float, ...], data: Any) -> str | None:
    """A hint when a volume of ``spacing`` (mm), given on its own grid, looks genuinely
    low-resolution for a checkpoint trained on ``data`` (its ``DataConfig``): along every axis
    the preset degrades, the spacing is at least 0.7 times the preset's factor times the
    training HR spacing. None when it does not, or when the training spacing is unknown."""
    hr = TRAINING_HR_SPACING_MM.get(getattr(data, "source", ""))
    if hr is None or data.preset not in PRESETS:
        return None
    f = np.asarray(PRESETS[data.preset], dtype=np.float64)
    ratio = np.asarray(spacing, dtype=np.float64) / hr
    coarse = f > 1
    if not coarse.any() or not np.all(ratio[coarse] >= 0.7 * f[coarse]):
        return None
    fmt = " x ".join
    return (
        f"spacing {fmt(f'{v:g}' for v in spacing)} mm is about {fmt(f'{v:g}' for v in f)} "
        f"times the checkpoint's training HR spacing ({hr:g} mm, preset {data.preset!r}); "
        "if this is a genuinely low-resolution scan, pass --lr to re-grid it first"
    )


def _check_hr_size(path: PathLike, img: sitk.Image, factors: Any) -> None:
    f = resolve_factors(factors, img.GetDimension())
    size = [int(round(n * v)) for n, v in zip(img.GetSize(), f, strict=True)]
    n, limit = math.prod(size), max_voxels()
    if n > limit:
        raise VolumeError(
            f"{path}: re-gridded by the preset's factors it would be {'x'.join(map(str, size))}"
            f" = {n:,} voxels, over the limit of {limit:,} (set {MAX_VOXELS_ENV} to allow it)"
        )


def _on_grid(arr: np.ndarray, reference: sitk.Image) -> sitk.Image:
    img = sitk.GetImageFromArray(np.ascontiguousarray(arr, dtype=np.float32))
    img.CopyInformation(reference)
    return img


def super_resolve_volume(
    method: Method,
    img: sitk.Image,
    *,
    steps: int | None = None,
    samples: int = 1,
    axis: int = 2,
    batch: int = 8,
    seed: int = 0,
    device: str | torch.device | None = None,
    bf16: bool = True,
    input_is_lr: bool = False,
    preset: str | None = None,
    progress: bool = True,
    checkpoint: PathLike | None = None,
    stats: dict[str, int] | None = None,
    sr_options: dict[str, Any] | None = None,
    skip_background: bool = True,
    channels_last: bool = True,
    progress_desc: str = "ressrdiff sr",
) -> tuple[sitk.Image, sitk.Image | None]:
    """Super-resolve a 3-D volume slice by slice; returns ``(sr, std)`` (float32, HR grid).

    ``img`` is on the HR grid already (e.g. re-gridded LR, as in the paper) unless
    ``input_is_lr``: then it is re-gridded onto the HR grid of the checkpoint's preset factors
    with the checkpoint's ``data.regrid`` interpolator. ``axis`` is the image axis (x=0, y=1,
    z=2) the 2-D slices are cut across; ``batch`` bounds the network inputs per pass. Constant
    slices are passed through unchanged, and so are, with ``skip_background``, the slices that
    hold no foreground (:func:`background_slices`). With ``samples`` > 1 the SR is the ensemble
    mean and ``std`` the pixel-wise standard deviation in the input's units (else ``std`` is
    None). Deterministic for a given ``seed``, ``batch`` and device. ``device`` (default: where
    the method is) moves the method there if needed; ``bf16`` samples under bf16 autocast on
    CUDA and on CPUs with native bf16 (:func:`ressrdiff.devices.bf16_autocast`), else fp32;
    ``channels_last`` runs the networks in channels-last memory format
    (:func:`ressrdiff.devices.channels_last_networks`; both off: the reference path).
    ``checkpoint`` names the checkpoint in errors (default ``method.checkpoint_path``); a
    ``stats`` dict receives the number of ``slices`` and of ``network_slices`` (sampled).
    ``sr_options`` are keywords of ``method.super_resolve`` (e.g. ``window=None`` for
    whole-slice network calls; default: the method's, sliding windows of the training patch
    size for Res-SRDiff). The progress bar (on a terminal or in a notebook, with ``progress``)
    counts the sampled slices, with their rate and an ETA, under ``progress_desc``.
    """
    if img.GetDimension() != 3:
        raise ValueError(f"super_resolve_volume: need a 3-D volume, got {img.GetDimension()}-D")
    if samples < 1 or batch < 1 or (steps is not None and steps < 1):
        raise ValueError(
            f"super_resolve_volume: samples, batch and steps must be >= 1 "
            f"(got samples={samples}, batch={batch}, steps={steps})"
        )
    trained = check_preset(method, preset, checkpoint)
    np_axis = image_axis_to_numpy(axis)
    here = method.device
    dev = torch.device(device) if device is not None else here
    if here != dev:
        method.to(dev)

    if input_is_lr:
        reference = hr_reference(img, trained)
        src = regrid(img, reference, method.cfg.data.regrid)
    else:
        reference, src = img, img
    stack = np.moveaxis(sitk.GetArrayViewFromImage(src), np_axis, 0)  # (S, H, W)
    # intensities are mapped as in training (the checkpoint's data.normalisation)
    fg = None
    if method.cfg.data.resolved_normalisation == "robust-volume" or skip_background:
        fg = _foreground(src, np_axis)
    if method.cfg.data.resolved_normalisation == "robust-volume":
        y, params = robust_volume(stack, mask=fg if fg is not None and fg.any() else None)
        scale = np.full(len(stack), (float(params.hi) - float(params.lo)) / 2.0)
    else:
        y, params = minmax_slices(stack, axis=0)
        scale = (params.hi - params.lo) / 2.0
    flat = stack.reshape(len(stack), -1)
    keep = flat.max(axis=1) > flat.min(axis=1)  # constant slices skip the net
    if skip_background and fg is not None:
        keep &= ~background_slices(fg)
    active = np.flatnonzero(keep)
    sd = np.zeros_like(y) if samples > 1 else None
    if stats is not None:
        stats.update(slices=int(y.shape[0]), network_slices=int(active.size))

    gen = torch.Generator(device=dev).manual_seed(int(seed))
    per_pass = max(1, batch // samples) if samples > 1 else batch
    opts = dict(sr_options or {})
    bar = tqdm(
        total=int(active.size),
        unit="slice",
        desc=progress_desc,
        disable=not progress_enabled(progress),
        file=sys.stderr,
        leave=False,
    )
    try:
        nets = method.networks().values()
        with bf16_autocast(dev, bf16), channels_last_networks(nets, channels_last):
            for start in range(0, active.size, per_pass):
                idx = active[start : start + per_pass]
                x_lr = torch.from_numpy(y[idx][:, None]).to(dev)
                if samples > 1:
                    ens = method.super_resolve_ensemble(
                        x_lr, samples, steps=steps, generator=gen, chunk=batch, **opts
                    )
                    out, spread = ens.mean, ens.std
                    sd[idx] = spread[:, 0].float().cpu().numpy()
                else:
                    out = method.super_resolve(x_lr, steps=steps, generator=gen, **opts)
                y[idx] = out[:, 0].float().cpu().numpy()
                bar.update(idx.size)
    finally:
        bar.close()

    units = invert(y, params)
    inactive = np.setdiff1d(np.arange(len(stack)), active)
    units[inactive] = stack[inactive]  # constant and background slices are returned as given
    sr = np.moveaxis(units, 0, np_axis)
    std_img = None
    if sd is not None:
        std_img = _on_grid(np.moveaxis(sd * scale[:, None, None], 0, np_axis), reference)
    return _on_grid(sr, reference), std_img


def _foreground(src: sitk.Image, np_axis: int) -> np.ndarray | None:
    """The Otsu foreground of ``src`` as (S, H, W) along ``np_axis``; None if it has none."""
    try:
        # a copy, not a view: a view of a temporary image dangles once the image is freed
        return np.moveaxis(sitk.GetArrayFromImage(otsu_mask(src)), np_axis, 0) > 0
    except VolumeError:
        return None


def background_slices(fg: np.ndarray, margin: int = 1) -> np.ndarray:
    """(S,) bool: slices of a (S, H, W) foreground mask with no foreground voxel within
    ``margin`` slices. They are copied instead of sampled: 45 of the 256 axial slices of the
    validation head are such background (``benchmarks/bench_cpu_levers.py --volume``), and a
    network pass over noise gains nothing a reader could use. A volume whose mask is empty
    keeps every slice."""
    has = fg.reshape(len(fg), -1).any(axis=1)
    if not has.any():
        return np.zeros(len(fg), dtype=bool)
    near = has.copy()
    for k in range(1, margin + 1):
        near[k:] |= has[:-k]
        near[:-k] |= has[k:]
    return ~near


def default_std_path(output: PathLike) -> Path:
    """``OUTPUT`` with ``_std`` before its suffix (``sr.nii.gz`` -> ``sr_std.nii.gz``)."""
    p = Path(output)
    suffix = suffix_of(p)
    stem = p.name[: len(p.name) - len(suffix)] if suffix else p.name
    return p.with_name(f"{stem}_std{p.name[len(stem) :]}")


@dataclass(frozen=True)
class SRReport:
    """What :func:`super_resolve_file` did."""

    output: Path
    std_output: Path | None
    size: tuple[int, int, int]  # HR grid size (x, y, z)
    axis: int
    slices: int  # slices along ``axis``
    network_slices: int  # slices sent to the network (not constant, not background)
    seconds: float  # wall time, reading to writing
    sampling_seconds: float  # time spent in super_resolve_volume
    planes: tuple[str, ...] = ()  # orthogonal-plane fusion (ressrdiff.fusion); () = one axis

    @property
    def slices_per_second(self) -> float:
        """Slices per second of sampling time, constant (copied) slices included."""
        t = self.sampling_seconds
        return self.slices / t if t > 0 else float("inf")

    @property
    def network_slices_per_second(self) -> float:
        """Slices that went through the network per second of sampling time (the honest
        throughput: constant and background slices are copied, not sampled)."""
        t = self.sampling_seconds
        return self.network_slices / t if t > 0 else float("inf")


def super_resolve_file(
    input_path: PathLike,
    output_path: PathLike,
    checkpoint: PathLike,
    *,
    std_output: PathLike | None = None,
    steps: int | None = None,
    samples: int = 1,
    axis: int | None = None,
    batch: int = 8,
    seed: int = 0,
    device: str | torch.device | None = None,
    bf16: bool = True,
    input_is_lr: bool = False,
    preset: str | None = None,
    progress: bool = True,
    sr_options: dict[str, Any] | None = None,
    warn: Callable[[str], None] | None = None,
    planes: Sequence[str] | None = None,
    combine: str = "mean",
    skip_background: bool = True,
    channels_last: bool = True,
) -> SRReport:
    """Read ``input_path``, super-resolve it with ``checkpoint`` and write ``output_path``.

    With ``samples`` > 1 the standard-deviation map goes to ``std_output`` (default:
    :func:`default_std_path`). ``axis`` defaults to the checkpoint's training axis (``data.axis``)
    and ``device`` to CUDA when available (a device this machine lacks is a one-line
    :class:`~ressrdiff.devices.DeviceError`). All inputs, outputs and the device are checked
    before the checkpoint is loaded; both outputs are written, or neither, each verified by
    reading it back (a failure raises :class:`~ressrdiff.atomic.WriteError`). ``warn`` receives
    one-line warnings (an implausible spacing; an input that looks genuinely low-resolution
    without ``input_is_lr``); default: :func:`warnings.warn`. ``planes`` (e.g. ``["axial",
    "coronal", "sagittal"]``) super-resolves across each anatomical plane and combines them
    (``combine``: mean or median; :func:`ressrdiff.fusion.super_resolve_planes`) instead of
    slicing along ``axis``; when neither is given, the checkpoint's ``infer.planes`` (the
    fusion chosen for it on the validation head) applies, or, when that is None, its training
    axis. Other arguments as in :func:`super_resolve_volume`.
    """
    if warn is None:

        def warn(text: str) -> None:
            warnings.warn(text, stacklevel=3)

    t0 = time.perf_counter()
    if planes is not None and axis is not None:
        raise ValueError("give either planes (fusion) or axis, not both")
    if combine not in ("mean", "median"):
        raise ValueError(f"combine must be mean or median, got {combine!r}")
    if samples < 1 or batch < 1 or (steps is not None and steps < 1):
        raise ValueError(
            f"samples, batch and steps must be >= 1 (got samples={samples}, batch={batch}, "
            f"steps={steps})"
        )
    if axis is not None and axis not in (0, 1, 2):
        raise ValueError(f"axis must be 0 (x), 1 (y) or 2 (z), got {axis}")
    if std_output is not None and samples == 1:
        raise ValueError(f"{std_output}: a standard-deviation map needs samples > 1")
    if samples > 1 and std_output is None:
        std_output = default_std_path(output_path)
    if preset is not None and preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; use one of {', '.join(PRESETS)}")

    dev = resolve_device(device)
    # one-line errors for a missing/corrupt file, 2-D or 4-D, NaN/Inf or constant voxels
    img = read_volume(input_path, ndim=3)
    refuse = {"input": input_path, "checkpoint": checkpoint}
    out = check_output_path(output_path, refuse=refuse)
    std_out = None
    if std_output is not None:
        std_out = check_output_path(std_output, refuse=refuse, outputs={"SR output (-o)": out})
    for target in (out, std_out):
        why = target is not None and unstorable(img, suffix_of(target))
        if why:
            raise VolumeError(f"{target}: cannot keep the geometry of {input_path}: {why}")
    odd = implausible_spacing(img)
    if odd:
        warn(f"{input_path}: {odd}")

    method = load_sr_method(checkpoint, device=dev)
    check_preset(method, preset, checkpoint)
    if input_is_lr:
        _check_hr_size(input_path, img, method.cfg.data.preset)
    else:
        hint = lr_input_hint(img.GetSpacing(), method.cfg.data)
        if hint:
            warn(f"{input_path}: {hint}")
    ax = method.cfg.data.axis if axis is None else axis
    if planes is None and axis is None:
        planes = method.cfg.infer.planes  # the model's own default (None: one plane)
    stats: dict[str, int] = {}
    t1 = time.perf_counter()
    common: dict[str, Any] = dict(
        steps=steps,
        samples=samples,
        batch=batch,
        seed=seed,
        device=dev,
        bf16=bf16,
        input_is_lr=input_is_lr,
        preset=preset,
        progress=progress,
        checkpoint=checkpoint,
        stats=stats,
        sr_options=sr_options,
        skip_background=skip_background,
        channels_last=channels_last,
    )
    if planes:
        from .fusion import super_resolve_planes  # fusion builds on this module

        sr, sd, axes = super_resolve_planes(
            method, img, planes=list(planes), combine=combine, **common
        )
        ax = axes[0]
    else:
        sr, sd = super_resolve_volume(method, img, axis=ax, **common)
    t2 = time.perf_counter()
    outputs = [volume_output(sr, out)]
    if sd is not None and std_out is not None:
        outputs.insert(0, volume_output(sd, std_out))  # std first: the SR appears last
    write_files(outputs)  # both or neither, each verified by reading it back
    return SRReport(
        output=out,
        std_output=std_out if sd is not None else None,
        size=tuple(sr.GetSize()),
        axis=ax,
        slices=stats["slices"],
        network_slices=stats["network_slices"],
        seconds=time.perf_counter() - t0,
        sampling_seconds=t2 - t1,
        planes=tuple(planes or ()),
    )
