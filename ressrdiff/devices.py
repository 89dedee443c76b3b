"""Which torch device a ``--device`` (or ``train.device``) names, checked before any work.

``torch.device("cuda")`` is accepted on a machine without a GPU and fails later, deep inside
the first ``.to()``, with a long traceback; :func:`resolve_device` says so in one line instead.
"""

from __future__ import annotations

import torch

__all__ = ["DeviceError", "resolve_device"]


class DeviceError(ValueError):
    """A device that does not exist here; the message is one line."""


def resolve_device(name: str | torch.device | None, *, what: str = "--device") -> torch.device:
    """``name`` (``cpu``, ``cuda``, ``cuda:N``, ``mps``; None or ``auto``: CUDA when available,
    else the CPU) as a :class:`torch.device` that exists on this machine.

    Raises:
        DeviceError: an unknown device type, or a CUDA/MPS device this machine does not have.
    """
    if name is None or str(name) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except (RuntimeError, TypeError, ValueError):
        raise DeviceError(f"{what} {name!r}: unknown device; use cpu, cuda or cuda:N") from None
    if dev.type == "cpu":
        return dev
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(
                f"{what} {name}: no CUDA device is available on this machine; use --device cpu"
            )
        n = torch.cuda.device_count()
        if dev.index is not None and dev.index >= n:
            raise DeviceError(
                f"{what} {name}: this machine has {n} CUDA device(s), cuda:0 to cuda:{n - 1}"
            )
        return dev
    if dev.type == "mps":
        if not torch.backends.mps.is_available():
            raise DeviceError(f"{what} {name}: MPS is not available on this machine")
        return dev
    raise DeviceError(f"{what} {name!r}: device type {dev.type!r} is not supported; use cpu, cuda")
