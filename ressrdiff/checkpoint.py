"""Checkpoints: atomic writes, a versioned format, and clear errors for the wrong file."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from . import __version__

__all__ = ["CheckpointError", "FORMAT", "atomic_save", "save_checkpoint", "load_checkpoint"]

FORMAT = "ressrdiff-checkpoint/1"


class CheckpointError(ValueError):
    """A checkpoint is missing, unreadable, or does not fit the requested configuration."""


def atomic_save(obj: Any, path: str | Path) -> Path:
    """``torch.save`` to a temporary file in the target folder, then ``os.replace`` it."""
    path = Path(path)
    if not path.parent.is_dir():
        raise CheckpointError(f"{path}: folder {path.parent} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> Path:
    """Write a checkpoint dict (adds the format tag and package version)."""
    return atomic_save({"format": FORMAT, "ressrdiff_version": __version__, **payload}, path)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`, or fail with a one-line error."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint file not found")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as e:  # noqa: BLE001 - any unpickling failure means "not a checkpoint"
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"{path}: not a readable ressrdiff checkpoint ({reason})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        found = ckpt.get("format") if isinstance(ckpt, dict) else type(ckpt).__name__
        raise CheckpointError(
            f"{path}: not a ressrdiff checkpoint (format {found!r}, need {FORMAT})"
        )
    return ckpt
