"""One verified, atomic writer for every output file.

:func:`write_files` writes each output to a hidden temporary file beside its target, flushes and
fsyncs it, *verifies* it (its size and a re-read of what was written: a full gzip/zip integrity
read, a re-read header, or the bytes themselves), and only then moves it into place with
:func:`os.replace`. Several outputs written together (an SR volume and its standard-deviation
map) are all-or-nothing: every temporary file is written and verified before the first one is
moved. On any failure the temporary files (and targets already moved by this call) are removed
and :class:`WriteError` is raised: one line naming the *output* path, never the temporary name,
and the cause ("file size limit exceeded", "no space left on device").

A run killed while writing leaves its temporary file behind; the next write to the same output
removes it (and those of older versions of this package), unless the process that made it is
still running.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import resource
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "WriteError",
    "Output",
    "write_files",
    "write_file",
    "bytes_output",
    "text_output",
    "temp_path",
    "remove_stale",
]

PathLike = str | os.PathLike[str]


class WriteError(OSError):
    """An output could not be written; the message is one line naming the output and the
    cause. Nothing was left behind: no temporary file and no partial output."""


@dataclass(frozen=True)
class Output:
    """One file to write: ``write(tmp)`` writes the whole file at the (temporary) path it is
    given; ``verify(tmp)`` raises when what is there is not what was meant (any exception; its
    message becomes the cause). ``mode``: permission bits (default: what ``open`` makes)."""

    target: Path
    write: Callable[[Path], None]
    verify: Callable[[Path], None] | None = None
    mode: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "target", Path(self.target))


def _suffix(name: str) -> str:
    low = name.lower()
    if low.endswith(".nii.gz"):
        return name[-7:]
    return Path(name).suffix


def _split(target: Path) -> tuple[str, str]:
    suffix = _suffix(target.name)
    return target.name[: len(target.name) - len(suffix)], suffix


def temp_path(target: Path) -> Path:
    """A fresh hidden temporary path beside ``target`` that keeps its suffix (writers such as
    SimpleITK choose the format by it) and records this process's id."""
    stem, suffix = _split(target)
    return target.parent / f".{stem}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}{suffix}"


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. EPERM: the process exists, under another user
        return True
    return True


def _stale_patterns(target: Path) -> list[tuple[re.Pattern[str], bool]]:
    """(pattern, has a pid group) of the temporary names earlier writers used for ``target``."""
    stem, suffix = _split(target)
    s, x, n = re.escape(stem), re.escape(suffix), re.escape(target.name)
    return [
        (re.compile(rf"\.{s}\.tmp-(\d+)-[0-9a-f]{{8}}{x}"), True),  # this module
        (re.compile(rf"\.{s}\.tmp-[0-9a-f]{{12}}{x}"), False),  # data.io before it
        (re.compile(rf"\.\.{s}\.pending-[0-9a-f]{{12}}\.tmp-[0-9a-f]{{12}}{x}"), False),
        (re.compile(rf"\.{s}\.pending-[0-9a-f]{{12}}{x}"), False),  # inference before it
        (re.compile(rf"\.{n}\.[A-Za-z0-9_]{{8}}\.tmp"), False),  # mkstemp (checkpoints, models)
    ]


def remove_stale(target: PathLike) -> list[Path]:
    """Remove temporary files of ``target`` left by killed writers; returns what was removed."""
    target = Path(target)
    try:
        names = os.listdir(target.parent)
    except OSError:
        return []
    removed = []
    patterns = _stale_patterns(target)
    for name in names:
        if not name.startswith("."):
            continue
        for pat, with_pid in patterns:
            m = pat.fullmatch(name)
            if m and not (with_pid and _alive(int(m.group(1)))):
                try:
                    (target.parent / name).unlink()
                    removed.append(target.parent / name)
                except OSError:
                    pass
                break
    return removed


def _fsize_limit() -> int | None:
    soft = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    return None if soft == resource.RLIM_INFINITY else int(soft)


def _free_bytes(folder: Path) -> int | None:
    try:
        st = os.statvfs(folder)
    except OSError:
        return None
    blocks = st.f_bfree if os.geteuid() == 0 else st.f_bavail
    return blocks * st.f_frsize


def _one_line(text: str, tmp: Path, target: Path, limit: int = 200) -> str:
    lines = [ln.strip() for ln in str(text).splitlines() if ln.strip()]
    for key in ("ERROR:", "Description:"):  # ITK: "sitk::ERROR: ..." / "Description: ..."
        hit = [ln.split(key, 1)[1].strip() for ln in lines if key in ln]
        if hit and hit[0]:
            lines = hit
            break
    line = lines[0] if lines else ""
    line = line.replace(str(tmp), str(target)).replace(tmp.name, target.name)
    line = line.removeprefix(f"{target}: ")
    return re.sub(r"\w+\(0x[0-9a-fA-F]+\):\s*", "", line)[:limit]


def _cause(exc: BaseException, tmp: Path, target: Path) -> str:
    """Why writing ``tmp`` failed, in a few words (checked before ``tmp`` is removed)."""
    code = getattr(exc, "errno", None)
    if code is None and isinstance(exc.__cause__ or exc.__context__, OSError):
        code = getattr(exc.__cause__ or exc.__context__, "errno", None)
    try:
        size = tmp.stat().st_size
    except OSError:
        size = 0
    limit = _fsize_limit()
    if code == errno.EFBIG or (limit is not None and size + 65536 >= limit):
        return "file size limit exceeded (ulimit -f)"
    free = _free_bytes(target.parent)
    if code == errno.ENOSPC or (free is not None and free < (1 << 20)):
        return "no space left on device"
    if code == errno.EDQUOT:
        return "disk quota exceeded"
    if code is not None:
        return os.strerror(code).lower()
    return _one_line(str(exc) or type(exc).__name__, tmp, target)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_folder(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_files(outputs: Sequence[Output]) -> list[Path]:
    """Write every output to a temporary file, verify each, then move them all into place.

    All or nothing: on any failure (including Ctrl-C) every temporary file and every target
    this call already moved is removed, and :class:`WriteError` is raised (KeyboardInterrupt
    and other non-``Exception`` errors propagate unchanged after the clean-up). Returns the
    targets."""
    pending: list[tuple[Path, Output]] = []
    moved: list[Path] = []
    current: tuple[Path, Output] | None = None
    try:
        for out in outputs:
            remove_stale(out.target)
            tmp = temp_path(out.target)
            current = (tmp, out)
            pending.append(current)
            out.write(tmp)
            if not tmp.is_file():
                raise OSError(f"the writer left no file at {tmp}")
            if out.mode is not None:
                os.chmod(tmp, out.mode)
            _fsync(tmp)
            if out.verify is not None:
                out.verify(tmp)
        current = None
        for tmp, out in pending:
            os.replace(tmp, out.target)
            moved.append(out.target)
        for folder in {out.target.parent for out in outputs}:
            _fsync_folder(folder)
    except BaseException as exc:
        failed = current or (pending[len(moved)] if len(moved) < len(pending) else None)
        ok = failed is not None and isinstance(exc, Exception)
        cause = _cause(exc, failed[0], failed[1].target) if ok else None
        for tmp, _ in pending:
            tmp.unlink(missing_ok=True)
        for target in moved:
            target.unlink(missing_ok=True)
        if cause is None:
            raise
        target = failed[1].target
        raise WriteError(f"{target}: write failed: {cause}") from None
    return [out.target for out in outputs]


def write_file(
    target: PathLike,
    write: Callable[[Path], None],
    verify: Callable[[Path], None] | None = None,
    *,
    mode: int | None = None,
) -> Path:
    """:func:`write_files` for a single output."""
    return write_files([Output(target, write, verify, mode)])[0]


def _write_bytes(tmp: Path, data: bytes) -> None:
    with open(tmp, "xb") as fh:
        fh.write(data)
        fh.flush()


def _verify_bytes(tmp: Path, data: bytes) -> None:
    size = tmp.stat().st_size
    if size != len(data):
        raise OSError(f"{size} of {len(data)} bytes on disk")
    digest = hashlib.sha256(data).digest()
    h = hashlib.sha256()
    with open(tmp, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    if h.digest() != digest:
        raise OSError("the bytes read back differ from those written")


def bytes_output(target: PathLike, data: bytes, *, mode: int | None = None) -> Output:
    """An :class:`Output` writing ``data``, verified by its size and a checksum read back."""
    return Output(
        Path(target),
        lambda tmp: _write_bytes(tmp, data),
        lambda tmp: _verify_bytes(tmp, data),
        mode,
    )


def text_output(target: PathLike, text: str, *, mode: int | None = None) -> Output:
    """:func:`bytes_output` of ``text`` in UTF-8."""
    return bytes_output(target, text.encode("utf-8"), mode=mode)
