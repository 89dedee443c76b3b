"""What an image file declares, read from its header alone, before any voxel is read.

A small file can declare a huge volume (a 510 KB ``.nii.gz`` of zeros inflates to 512 MiB), so
:func:`check_header` compares the declared size with a limit *before* the voxels are read or
decompressed: at most ``RESSRDIFF_MAX_VOXELS`` voxels (default 100 million), and at most four
bytes per voxel of that (400 MB of voxel data by default). Set the environment variable to
read larger volumes. NIfTI headers are parsed here (only the first 544 bytes are read, or
decompressed), which also catches a zero voxel spacing that ITK would silently turn into 1 mm;
other formats are read with :meth:`SimpleITK.ImageFileReader.ReadImageInformation`, ``.npy``
with numpy's header reader.
"""

from __future__ import annotations

import gzip
import math
import os
import re
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "MAX_VOXELS_ENV",
    "DEFAULT_MAX_VOXELS",
    "Header",
    "NiftiHeader",
    "max_voxels",
    "nifti_header",
    "read_header",
    "check_header",
    "check_voxel_count",
]

PathLike = str | os.PathLike[str]

#: Environment variable bounding the voxels one file (or one re-gridded volume) may hold.
MAX_VOXELS_ENV = "RESSRDIFF_MAX_VOXELS"
#: Its default: 100 million voxels (e.g. 464^3), 400 MB as float32.
DEFAULT_MAX_VOXELS = 100_000_000

_NIFTI_DTYPES = {
    2: "uint8", 4: "int16", 8: "int32", 16: "float32", 32: "complex64", 64: "float64",
    128: "rgb24", 256: "int8", 512: "uint16", 768: "uint32", 1024: "int64", 1280: "uint64",
    1536: "float128", 1792: "complex128", 2048: "complex256", 2304: "rgba32",
}  # fmt: skip


def _error(message: str) -> Exception:
    from .io import VolumeError  # io imports this module

    return VolumeError(message)


@dataclass(frozen=True)
class Header:
    """Size and voxel type an image file declares (x, y, z order)."""

    size: tuple[int, ...]
    bytes_per_voxel: int
    dtype: str

    @property
    def voxels(self) -> int:
        return math.prod(self.size)


@dataclass(frozen=True)
class NiftiHeader(Header):
    """A NIfTI-1/2 header: also the byte order, datatype code, data offset and ``pixdim``."""

    order: str = "<"
    datatype: int = 0
    vox_offset: int = 352
    pixdim: tuple[float, ...] = ()


def max_voxels() -> int:
    """The voxel limit: ``$RESSRDIFF_MAX_VOXELS`` or :data:`DEFAULT_MAX_VOXELS`."""
    text = os.environ.get(MAX_VOXELS_ENV, "").strip()
    if not text:
        return DEFAULT_MAX_VOXELS
    try:
        value = int(float(text))
    except ValueError:
        value = 0
    if value < 1:
        raise ValueError(f"{MAX_VOXELS_ENV}={text!r}: expected a positive number of voxels")
    return value


def check_voxel_count(
    path: PathLike, size: tuple[int, ...], bytes_per_voxel: int = 4, dtype: str = "float32"
) -> None:
    """A one-line error when a volume of ``size`` voxels is beyond :func:`max_voxels`."""
    limit = max_voxels()
    n = math.prod(int(s) for s in size)
    nbytes = n * int(bytes_per_voxel)
    if n <= limit and nbytes <= 4 * limit:
        return
    raise _error(
        f"{path}: declares {'x'.join(map(str, size))} {dtype} voxels ({n:,} voxels, "
        f"{_human(nbytes)}), over the limit of {limit:,} voxels and {_human(4 * limit)}; "
        f"set {MAX_VOXELS_ENV} to read it"
    )


def _human(nbytes: int) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if nbytes >= scale:
            return f"{nbytes / scale:,.1f} {unit}"
    return f"{nbytes} bytes"


def nifti_header(path: PathLike) -> NiftiHeader:
    """Parse the header of a single-file NIfTI-1/2 (``.nii``/``.nii.gz``), reading (or
    decompressing) only its first 544 bytes. One-line :class:`~ressrdiff.data.io.VolumeError`
    for a file that is not one."""
    p = Path(path)
    gz = p.name.lower().endswith(".gz")
    try:
        with gzip.open(p, "rb") if gz else open(p, "rb") as fh:
            raw = fh.read(544)
    except (EOFError, gzip.BadGzipFile, zlib.error, OSError) as exc:
        raise _error(f"{path}: corrupt or truncated gzip stream ({exc})") from None
    if len(raw) < 348:
        raise _error(f"{path}: too short for a NIfTI header ({len(raw)} bytes)")
    for order in ("<", ">"):
        sizeof_hdr = int(np.frombuffer(raw, order + "i4", 1, 0)[0])
        if sizeof_hdr in (348, 540):
            break
    else:
        raise _error(f"{path}: not a NIfTI file (bad header size field)")
    if sizeof_hdr == 348:
        magic = raw[344:347]
        dim = np.frombuffer(raw, order + "i2", 8, 40).astype(np.int64)
        datatype = int(np.frombuffer(raw, order + "i2", 1, 70)[0])
        bitpix = int(np.frombuffer(raw, order + "i2", 1, 72)[0])
        pixdim = np.frombuffer(raw, order + "f4", 8, 76).astype(np.float64)
        vox_offset = max(int(np.frombuffer(raw, order + "f4", 1, 108)[0]), 352)
    else:
        if len(raw) < 540:
            raise _error(f"{path}: truncated NIfTI-2 header")
        magic = raw[4:7]
        datatype = int(np.frombuffer(raw, order + "i2", 1, 12)[0])
        bitpix = int(np.frombuffer(raw, order + "i2", 1, 14)[0])
        dim = np.frombuffer(raw, order + "i8", 8, 16).astype(np.int64)
        pixdim = np.frombuffer(raw, order + "f8", 8, 104).astype(np.float64)
        vox_offset = max(int(np.frombuffer(raw, order + "i8", 1, 168)[0]), 544)
    if magic not in (b"n+1", b"n+2"):
        raise _error(f"{path}: not a single-file NIfTI (magic {magic!r})")
    ndim = int(dim[0])
    if not 1 <= ndim <= 7 or np.any(dim[1 : ndim + 1] < 1) or bitpix <= 0:
        raise _error(f"{path}: corrupt NIfTI header (dim {dim.tolist()}, bitpix {bitpix})")
    return NiftiHeader(
        size=tuple(int(v) for v in dim[1 : ndim + 1]),
        bytes_per_voxel=max(1, bitpix // 8),
        dtype=_NIFTI_DTYPES.get(datatype, f"datatype {datatype}"),
        order=order,
        datatype=datatype,
        vox_offset=vox_offset,
        pixdim=tuple(float(v) for v in pixdim[1 : ndim + 1]),
    )


def _sitk_header(path: Path) -> Header:
    import SimpleITK as sitk

    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    reader.ReadImageInformation()
    kind = sitk.GetPixelIDValueAsString(reader.GetPixelID())
    bits = re.search(r"(\d+)-bit", kind)
    per = (int(bits.group(1)) // 8 if bits else 8) * (2 if "complex" in kind else 1)
    n_comp = max(1, int(reader.GetNumberOfComponents()))
    return Header(tuple(int(s) for s in reader.GetSize()), per * n_comp, kind)


def _npy_header(path: Path) -> Header:
    fmt = np.lib.format
    with open(path, "rb") as fh:
        version = fmt.read_magic(fh)
        read = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
        shape, _, dtype = read(fh)
    return Header(tuple(int(s) for s in shape[::-1]), int(dtype.itemsize), str(dtype))


def read_header(path: PathLike) -> Header:
    """The size and voxel type ``path`` declares (NIfTI, ``.npy`` or any format SimpleITK
    reads), from its header alone."""
    p = Path(path)
    name = p.name.lower()
    if name.endswith((".nii", ".nii.gz")):
        return nifti_header(p)
    if name.endswith(".npy"):
        return _npy_header(p)
    return _sitk_header(p)


_AXES = "xyz"


def check_header(path: PathLike, *, spacing: bool = True) -> Header:
    """Read ``path``'s header and refuse, in one line, a volume beyond :func:`max_voxels` or
    (NIfTI, with ``spacing``) a zero or non-finite voxel spacing. Returns the header; a file
    whose header cannot be parsed is left to the full reader, which names the problem."""
    from .io import VolumeError

    try:
        header = read_header(path)
    except VolumeError:
        raise
    except Exception:  # noqa: BLE001 - the full reader reports unreadable files
        return Header((), 0, "unknown")
    if header.size:
        check_voxel_count(path, header.size, header.bytes_per_voxel, header.dtype)
    if spacing and isinstance(header, NiftiHeader):
        for i, v in enumerate(header.pixdim[:3]):
            if not (math.isfinite(v) and v != 0.0):
                raise _error(
                    f"{path}: voxel spacing along {_AXES[i]} is {v:g} (NIfTI pixdim[{i + 1}]); "
                    "refusing to guess one (fix the header)"
                )
    return header
