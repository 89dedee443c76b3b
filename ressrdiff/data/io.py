"""Reading and writing MRI volumes and 2-D slices, with one-line errors that name the file.

Volumes are :class:`SimpleITK.Image` objects so that spacing, origin and direction travel with the
voxels. Every problem with an input (missing, corrupt, wrong dimension, NaN/Inf, constant) raises
:class:`VolumeError`, a :class:`ValueError` whose message is a single line starting with the path.
Every file is checked against its own header first (:func:`ressrdiff.data.header.check_header`):
a volume declaring more voxels than ``RESSRDIFF_MAX_VOXELS`` is refused before any voxel is
read, and a zero NIfTI spacing is refused rather than read as 1 mm. Writes go through the
verified atomic writer (:mod:`ressrdiff.atomic`): the file is written beside the target, read
back and compared (voxels and geometry) before it is moved into place, and a geometry the format
cannot store (a skewed direction in NIfTI) is refused, so a failed write never leaves a partial
file and never reports success; it raises :class:`ressrdiff.atomic.WriteError`.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import os
import re
import tempfile
import zlib
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..atomic import Output, bytes_output, write_files
from .geometry import geometry_difference, unstorable
from .header import check_header, nifti_header

__all__ = [
    "VolumeError",
    "VOLUME_SUFFIXES",
    "SLICE_SUFFIXES",
    "WRITE_SUFFIXES",
    "SLICE_WRITE_SUFFIXES",
    "check_output_path",
    "suffix_of",
    "read_volume",
    "write_volume",
    "volume_output",
    "read_slice_2d",
    "write_slice_2d",
    "slice_output",
]

PathLike = str | os.PathLike[str]

#: Volume formats read by :func:`read_volume` (a folder is read as a DICOM series).
VOLUME_SUFFIXES = (".nii.gz", ".nii", ".mha", ".mhd", ".nrrd", ".nhdr")
#: Volume formats written by :func:`write_volume` (single-file formats only, for atomicity).
WRITE_SUFFIXES = (".nii.gz", ".nii", ".mha", ".nrrd")
#: 2-D slice formats read by :func:`read_slice_2d`.
SLICE_SUFFIXES = (".npy", ".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp") + VOLUME_SUFFIXES
SLICE_WRITE_SUFFIXES = (".npy", ".png") + WRITE_SUFFIXES


class VolumeError(ValueError):
    """A volume or slice file that cannot be used; the message is one line naming the file."""


def suffix_of(path: PathLike) -> str:
    """Lower-case file suffix, keeping double suffixes such as ``.nii.gz``."""
    name = Path(path).name.lower()
    if name.endswith(".nii.gz"):
        return ".nii.gz"
    return Path(name).suffix


def _one_line(msg: str, limit: int = 160) -> str:
    """Condense a (multi-line ITK) message to its most telling single line."""
    lines = [ln.strip() for ln in str(msg).splitlines() if ln.strip()]
    # ITK messages look like "sitk::ERROR: ..." or "Description: ..."; prefer those lines.
    for key in ("ERROR:", "Description:"):
        for ln in lines:
            if key in ln:
                text = ln.split(key, 1)[1].strip()
                if text:
                    return re.sub(r"\w+\(0x[0-9a-fA-F]+\):\s*", "", text)[:limit]
    text = lines[-1] if lines else "unknown error"
    return re.sub(r"\w+\(0x[0-9a-fA-F]+\):\s*", "", text)[:limit]


# NIfTI datatype code -> numpy dtype (RGB types are left to ITK: no NaN possible there).
_NIFTI_FLOAT_DTYPES = {16: "f4", 32: "c8", 64: "f8", 1792: "c16"}


def _nifti_raw_check(path: Path) -> tuple[int, int]:
    """Check a .nii/.nii.gz file against its own header; return its (NaN, Inf) voxel counts.

    ITK's NIfTI reader accepts truncated files (missing voxels read as garbage) and turns NaN into
    0, so the data length and float values are checked here on the raw bytes (a .nii.gz is
    decompressed in full, which checks its CRC). Call :func:`check_header` first: this reads
    every byte the header declares.
    """
    h = nifti_header(path)
    opener = gzip.open if suffix_of(path) == ".nii.gz" else open
    try:
        with opener(path, "rb") as fh:
            raw = fh.read()
    except (EOFError, gzip.BadGzipFile, zlib.error, OSError) as exc:
        raise VolumeError(f"{path}: corrupt or truncated gzip stream ({exc})") from None
    n_vox = h.voxels
    need = h.vox_offset + n_vox * h.bytes_per_voxel
    if len(raw) < need:
        raise VolumeError(
            f"{path}: truncated: {max(len(raw) - h.vox_offset, 0)} of {need - h.vox_offset} "
            "data bytes present"
        )
    code = _NIFTI_FLOAT_DTYPES.get(h.datatype)
    if code is None:
        return 0, 0
    data = np.frombuffer(raw, h.order + code, n_vox, h.vox_offset)
    return int(np.isnan(data).sum()), int(np.isinf(data).sum())


def _nan_inf_message(path: PathLike, n_nan: int, n_inf: int) -> str:
    parts = [f"{n} {kind} voxels" for n, kind in ((n_nan, "NaN"), (n_inf, "Inf")) if n]
    return f"{path}: contains {' and '.join(parts)}"


def _check_values(
    arr: np.ndarray, path: PathLike, what: str, *, allow_constant: bool = False
) -> None:
    """Raise VolumeError for NaN/Inf voxels or (unless ``allow_constant``) a constant array."""
    if arr.size == 0:
        raise VolumeError(f"{path}: empty {what} (shape {arr.shape})")
    if np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.complexfloating):
        n_nan = int(np.isnan(arr).sum())
        n_inf = int(np.isinf(arr).sum())
        if n_nan or n_inf:
            raise VolumeError(_nan_inf_message(path, n_nan, n_inf))
    lo, hi = arr.min(), arr.max()
    if lo == hi and not allow_constant:
        raise VolumeError(f"{path}: constant {what} (all voxels = {lo.item():g})")


def _read_dicom_series(folder: Path, series_id: str | None) -> sitk.Image:
    ids = sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(folder))
    if not ids:
        raise VolumeError(f"{folder}: folder holds no DICOM series")
    if series_id is None:
        if len(ids) > 1:
            raise VolumeError(
                f"{folder}: folder holds {len(ids)} DICOM series ({', '.join(ids)}); "
                "pass series_id to choose one"
            )
        series_id = ids[0]
    elif series_id not in ids:
        raise VolumeError(f"{folder}: no DICOM series with id {series_id}")
    files = sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder), series_id)
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(files)
    return reader.Execute()


def _squeeze_trailing(img: sitk.Image) -> sitk.Image:
    """Drop trailing singleton dimensions beyond the third (e.g. a 4-D NIfTI with one frame)."""
    while img.GetDimension() > 3 and img.GetSize()[-1] == 1:
        size = list(img.GetSize())
        size[-1] = 0  # Extract collapses a zero-size axis
        img = sitk.Extract(img, size, [0] * len(size))
    return img


def read_volume(
    path: PathLike,
    *,
    ndim: int | None = 3,
    series_id: str | None = None,
    allow_constant: bool = False,
) -> sitk.Image:
    """Read a scalar volume (NIfTI, MHA/MHD, NRRD, or a DICOM series folder).

    Spacing, origin and direction are kept; the pixel type is the file's. A 4-D file with a
    single frame is reduced to 3-D. With ``ndim=3`` the result must be a true volume (at least two
    voxels along every axis); ``ndim=2`` requires a 2-D image; ``ndim=None`` accepts 2-D or 3-D.
    NIfTI files are also checked against their own header on the raw bytes, because ITK silently
    reads a truncated NIfTI and turns NaN voxels into 0. A folder is read as a DICOM series
    (``series_id`` picks one when the folder holds several). ``allow_constant`` accepts a
    constant volume (a mask that covers every voxel, say).

    Raises:
        VolumeError: one line ``"{path}: {problem}"`` for a missing file, an unreadable, corrupt
            or truncated file, a vector/colour image, the wrong dimension, a 4-D volume,
            NaN/Inf voxels or a constant volume.
    """
    if ndim not in (None, 2, 3):
        raise ValueError(f"read_volume: ndim must be 2, 3 or None, got {ndim}")
    p = Path(path)
    if not p.exists():
        raise VolumeError(f"{path}: file not found")
    try:
        if p.is_dir():
            img = _read_dicom_series(p, series_id)
        else:
            if p.stat().st_size == 0:
                raise VolumeError(f"{path}: empty file (0 bytes)")
            check_header(p)  # declared size and spacing, before any voxel is read
            if suffix_of(p) in (".nii", ".nii.gz"):
                n_nan, n_inf = _nifti_raw_check(p)
                if n_nan or n_inf:
                    raise VolumeError(_nan_inf_message(path, n_nan, n_inf))
            img = sitk.ReadImage(str(p))
    except VolumeError:
        raise
    except (RuntimeError, OSError) as exc:
        raise VolumeError(
            f"{path}: not a readable image (corrupt or truncated?): {_one_line(str(exc))}"
        ) from None

    img = _squeeze_trailing(img)
    if img.GetNumberOfComponentsPerPixel() != 1:
        raise VolumeError(
            f"{path}: {img.GetNumberOfComponentsPerPixel()} components per voxel "
            "(colour/vector image); a scalar image is required"
        )
    dim, size = img.GetDimension(), img.GetSize()
    size_txt = "x".join(str(s) for s in size)
    if dim > 3:
        raise VolumeError(f"{path}: {dim}-D volume (size {size_txt}); a 3-D volume is required")
    if ndim == 3 and (dim == 2 or min(size) == 1):
        raise VolumeError(f"{path}: 2-D image (size {size_txt}); a 3-D volume is required")
    if ndim == 2 and dim != 2:
        raise VolumeError(f"{path}: {dim}-D image (size {size_txt}); a 2-D image is required")
    try:
        arr = sitk.GetArrayViewFromImage(img)
    except RuntimeError as exc:  # e.g. a pixel type numpy cannot view
        raise VolumeError(f"{path}: unsupported pixel type: {_one_line(str(exc))}") from None
    _check_values(arr, path, "volume" if dim == 3 else "image", allow_constant=allow_constant)
    return img


def _resolved(path: PathLike) -> Path:
    return Path(path).expanduser().resolve()


def check_output_path(
    path: PathLike,
    *,
    allowed: tuple[str, ...] = WRITE_SUFFIXES,
    refuse: Mapping[str, PathLike | None] | Iterable[PathLike | None] = (),
    outputs: Mapping[str, PathLike | None] | None = None,
) -> Path:
    """Check, without writing, that ``path`` may be written: a suffix in ``allowed``, not one of
    ``refuse`` (input paths, or ``{role: path}`` to name the role in the error), not one of the
    command's other ``outputs`` (``{role: path}``), and an existing, writable folder. Returns
    the resolved path.

    Raises:
        VolumeError: one line naming ``path``.
    """
    target = Path(path).expanduser()
    suffix = suffix_of(target)
    if suffix not in allowed:
        raise VolumeError(
            f"{path}: cannot write suffix {suffix or '(none)'!r}; use one of {', '.join(allowed)}"
        )
    resolved = _resolved(target)
    named = refuse.items() if isinstance(refuse, Mapping) else (("", p) for p in refuse)
    for role, other in named:
        if other is not None and _resolved(other) == resolved:
            what = f"output path equals the {role}" if role else "output path is an input file"
            raise VolumeError(f"{path}: {what}; refusing to overwrite an input file")
    for role, other in (outputs or {}).items():
        if other is not None and _resolved(other) == resolved:
            raise VolumeError(f"{path}: the same file as the {role}; give each output its own path")
    folder = resolved.parent
    if not folder.is_dir():
        raise VolumeError(f"{path}: output folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise VolumeError(f"{path}: output folder {folder} is not writable")
    if resolved.is_dir():
        raise VolumeError(f"{path}: is a folder, not a file")
    return resolved


@contextlib.contextmanager
def _native_stderr_muted() -> Iterator[None]:
    """Swallow what C/C++ libraries print straight to file descriptor 2 (niftilib's
    "** ERROR: NWAD", MetaImage's "file stream is fail"): a failed write is reported once,
    in one line, by :mod:`ressrdiff.atomic`."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    try:
        with tempfile.TemporaryFile() as sink:
            os.dup2(sink.fileno(), 2)
            try:
                yield
            finally:
                os.dup2(saved, 2)
    finally:
        os.close(saved)


def _sitk_write(img: sitk.Image, tmp: Path, compress: bool) -> None:
    with _native_stderr_muted():
        sitk.WriteImage(img, str(tmp), compress)


def _same_voxels(a: np.ndarray, b: np.ndarray) -> bool:
    if a.shape != b.shape:
        return False
    floats = np.issubdtype(a.dtype, np.inexact) and np.issubdtype(b.dtype, np.inexact)
    return bool(np.array_equal(a, b, equal_nan=floats))


def _verify_image(tmp: Path, img: sitk.Image, *, values: bool = True) -> None:
    """Read ``tmp`` back and compare it with ``img``: the whole file (a NIfTI's gzip CRC and
    data length), its geometry and, with ``values``, every voxel."""
    if suffix_of(tmp) in (".nii", ".nii.gz"):
        _nifti_raw_check(tmp)
    with _native_stderr_muted():
        back = sitk.ReadImage(str(tmp))
    diff = geometry_difference(back, img)
    if diff:
        raise VolumeError(f"the file read back has {diff}")
    if values and not _same_voxels(
        sitk.GetArrayViewFromImage(back), sitk.GetArrayViewFromImage(img)
    ):
        raise VolumeError("the voxels read back differ from those written")


def volume_output(img: sitk.Image, path: PathLike, *, compress: bool = True) -> Output:
    """An :class:`~ressrdiff.atomic.Output` writing ``img`` to ``path`` (suffix picks the
    format), verified by reading it back (voxels and geometry). Check ``path`` with
    :func:`check_output_path` first."""
    if not isinstance(img, sitk.Image):
        raise TypeError(f"volume_output: expected a SimpleITK.Image, got {type(img).__name__}")
    why = unstorable(img, suffix_of(path))
    if why:
        raise VolumeError(f"{path}: {why}")
    return Output(
        Path(path),
        lambda tmp: _sitk_write(img, tmp, compress),
        lambda tmp: _verify_image(tmp, img),
    )


def write_volume(
    img: sitk.Image,
    path: PathLike,
    *,
    refuse: Iterable[PathLike] = (),
    compress: bool = True,
) -> Path:
    """Write ``img`` atomically to ``.nii.gz``, ``.nii``, ``.mha`` or ``.nrrd``, verified by
    reading it back (:mod:`ressrdiff.atomic`).

    ``refuse`` lists paths that must not be overwritten (typically the inputs); they are compared
    after resolving symlinks and ``..``. Returns the resolved output path.

    Raises:
        VolumeError: the target is an input, the folder is missing or unwritable, the suffix is
            not supported, or the format cannot store the image's geometry.
        ressrdiff.atomic.WriteError: the write failed (no partial or temporary file is left).
    """
    resolved = check_output_path(path, refuse=refuse)
    return write_files([volume_output(img, resolved, compress=compress)])[0]


def read_slice_2d(path: PathLike) -> np.ndarray:
    """Read one 2-D slice as a float32 ``(H, W)`` array.

    Accepts ``.npy``, images read by SimpleITK (``.png``, ``.jpg``, ``.tif``, ``.bmp``; RGB(A) is
    turned to grey as the mean of R, G, B) and 2-D NIfTI/MHA/NRRD. Singleton axes are squeezed, so
    a ``(1, H, W)`` array or a one-slice volume is accepted.

    Raises:
        VolumeError: missing/corrupt file, not 2-D after squeezing, NaN/Inf or constant values.
    """
    p = Path(path)
    if not p.exists():
        raise VolumeError(f"{path}: file not found")
    if p.is_dir():
        raise VolumeError(f"{path}: is a folder, a 2-D slice file is required")
    suffix = suffix_of(p)
    if suffix not in SLICE_SUFFIXES:
        raise VolumeError(f"{path}: unsupported slice format {suffix or '(none)'!r}")
    try:
        check_header(p, spacing=False)  # declared size, before any voxel is read
        if suffix == ".npy":
            arr = np.load(p, allow_pickle=False)
        else:
            if suffix in (".nii", ".nii.gz"):
                n_nan, n_inf = _nifti_raw_check(p)
                if n_nan or n_inf:
                    raise VolumeError(_nan_inf_message(path, n_nan, n_inf))
            img = sitk.ReadImage(str(p))
            arr = sitk.GetArrayFromImage(img)
            n_comp = img.GetNumberOfComponentsPerPixel()
            if n_comp in (3, 4):
                arr = arr[..., :3].astype(np.float64).mean(axis=-1)
            elif n_comp != 1:
                raise VolumeError(f"{path}: {n_comp} components per pixel; expected grey or RGB")
    except VolumeError:
        raise
    except (RuntimeError, OSError, ValueError, EOFError) as exc:
        raise VolumeError(
            f"{path}: not a readable slice (corrupt or truncated?): {_one_line(str(exc))}"
        ) from None
    arr = np.asarray(arr)
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
        raise VolumeError(f"{path}: non-numeric array (dtype {arr.dtype})")
    if np.iscomplexobj(arr):
        raise VolumeError(f"{path}: complex-valued array; a real image is required")
    squeezed = np.squeeze(arr)
    if squeezed.ndim != 2:
        raise VolumeError(f"{path}: array of shape {arr.shape} is not a 2-D slice")
    _check_values(squeezed, path, "slice")
    return squeezed.astype(np.float32)


def _png_image(a: np.ndarray) -> sitk.Image:
    f = a.astype(np.float64)
    lo, hi = float(f.min()), float(f.max())
    scaled = (f - lo) / (hi - lo) * 255.0 if hi > lo else np.zeros_like(f)
    return sitk.GetImageFromArray(np.clip(np.rint(scaled), 0, 255).astype(np.uint8))


def slice_output(arr: np.ndarray, path: PathLike) -> Output:
    """An :class:`~ressrdiff.atomic.Output` writing a 2-D array as .npy, .nii.gz, .nii, .mha,
    .nrrd or .png (see :func:`write_slice_2d`), verified by reading it back."""
    a = np.asarray(arr)
    if a.ndim != 2:
        raise ValueError(f"write_slice_2d: expected a 2-D array, got shape {a.shape}")
    suffix = suffix_of(path)
    if suffix == ".npy":
        buf = io.BytesIO()
        np.save(buf, a.astype(np.float32), allow_pickle=False)
        return bytes_output(path, buf.getvalue())
    img = _png_image(a) if suffix == ".png" else sitk.GetImageFromArray(a.astype(np.float32))
    return Output(
        Path(path),
        lambda tmp: _sitk_write(img, tmp, suffix != ".png"),
        lambda tmp: _verify_image(tmp, img),
    )


def write_slice_2d(arr: np.ndarray, path: PathLike, *, refuse: Iterable[PathLike] = ()) -> Path:
    """Write a 2-D array atomically as .npy, .nii.gz, .nii, .mha, .nrrd or .png, verified by
    reading it back.

    ``.npy`` and the volume formats keep float32 values exactly (unit spacing). ``.png`` is
    **lossy**: values are min-max scaled to 0..255 and rounded to uint8 (a constant slice is
    written as zeros); use it for viewing only.
    """
    if np.ndim(arr) != 2:
        raise ValueError(f"write_slice_2d: expected a 2-D array, got shape {np.shape(arr)}")
    resolved = check_output_path(path, allowed=SLICE_WRITE_SUFFIXES, refuse=refuse)
    return write_files([slice_output(arr, resolved)])[0]
