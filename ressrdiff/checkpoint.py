"""Checkpoints: verified atomic writes, a versioned format, and clear errors for the wrong file."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import torch

from . import __version__
from .atomic import Output, write_files

__all__ = [
    "CheckpointError",
    "CorruptCheckpointError",
    "FORMAT",
    "atomic_save",
    "check_checkpoint_file",
    "save_checkpoint",
    "load_checkpoint",
    "checkpoint_config",
]

FORMAT = "ressrdiff-checkpoint/1"


class CheckpointError(ValueError):
    """A checkpoint is missing, unreadable, or does not fit the requested configuration."""


class CorruptCheckpointError(CheckpointError):
    """A checkpoint file that exists but cannot be read (truncated, say)."""


def check_checkpoint_file(path: str | Path, what: str = "checkpoint") -> Path:
    """``path`` as a :class:`Path`, or a one-line :class:`CheckpointError` when it is missing or
    a folder (naming the checkpoint inside it, if there is one)."""
    p = Path(path)
    if p.is_dir():
        inside = [p / "last.pt"] if (p / "last.pt").is_file() else sorted(p.glob("*.safetensors"))
        hint = f"; did you mean {inside[0]}?" if inside else " (it holds no last.pt)"
        raise CheckpointError(f"{p}: is a folder, not a {what} file{hint}")
    if not p.is_file():
        raise CheckpointError(f"{p}: {what} file not found")
    return p


def _torch_save(obj: Any, tmp: Path, sizes: dict[Path, int]) -> None:
    with open(tmp, "xb") as fh:
        torch.save(obj, fh)
        fh.flush()
        sizes[tmp] = fh.tell()


def _verify_zip(tmp: Path, sizes: dict[Path, int]) -> None:
    """The file is as long as what torch wrote, and every member's CRC checks out."""
    size = tmp.stat().st_size
    if size != sizes.get(tmp, size):
        raise OSError(f"{size} of {sizes[tmp]} bytes on disk")
    try:
        with zipfile.ZipFile(tmp) as zf:
            bad = zf.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise OSError(f"the checkpoint read back is not a valid archive ({exc})") from None
    if bad is not None:
        raise OSError(f"the checkpoint read back is corrupt (member {bad})")


def atomic_save(obj: Any, path: str | Path) -> Path:
    """``torch.save`` to a temporary file in the target folder, verified (its length and a full
    CRC read of the archive) before ``os.replace`` (:mod:`ressrdiff.atomic`); a failure raises
    :class:`~ressrdiff.atomic.WriteError` naming ``path``."""
    path = Path(path)
    if not path.parent.is_dir():
        raise CheckpointError(f"{path}: folder {path.parent} does not exist")
    sizes: dict[Path, int] = {}
    write_files(
        [Output(path, lambda tmp: _torch_save(obj, tmp, sizes), lambda t: _verify_zip(t, sizes))]
    )
    return path


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> Path:
    """Write a checkpoint dict (adds the format tag and package version)."""
    return atomic_save({"format": FORMAT, "ressrdiff_version": __version__, **payload}, path)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`, or fail with a one-line error."""
    path = check_checkpoint_file(path)
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as e:  # noqa: BLE001 - any unpickling failure means "not a checkpoint"
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CorruptCheckpointError(
            f"{path}: not a readable ressrdiff checkpoint ({reason})"
        ) from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        found = ckpt.get("format") if isinstance(ckpt, dict) else type(ckpt).__name__
        raise CheckpointError(
            f"{path}: not a ressrdiff checkpoint (format {found!r}, need {FORMAT})"
        )
    return ckpt


def checkpoint_config(path: str | Path) -> dict[str, Any]:
    """The config dict a checkpoint was made with, a training ``.pt`` or a shipped
    ``.safetensors`` (its metadata), read without loading the network's tensors (the ``.pt`` is
    memory-mapped). Errors are the reader's own; callers that need a one-line error wrap it."""
    p = Path(path)
    if p.suffix == ".safetensors":
        from safetensors import safe_open

        with safe_open(str(p), framework="pt") as f:
            return json.loads((f.metadata() or {})["config"])
    try:  # memory-mapped: the tensors are not read
        ckpt = torch.load(p, map_location="cpu", weights_only=False, mmap=True)
    except Exception:  # noqa: BLE001 - an old format or junk: the full loader decides
        ckpt = load_checkpoint(p)
    return ckpt["config"]
