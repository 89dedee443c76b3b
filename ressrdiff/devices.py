"""Which torch device a ``--device`` (or ``train.device``) names, checked before any work.

``torch.device("cuda")`` is accepted on a machine without a GPU and fails later, deep inside
the first ``.to()``, with a long traceback; :func:`resolve_device` says so in one line instead.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterable
from pathlib import Path

import torch

__all__ = [
    "DeviceError",
    "resolve_device",
    "cpu_has_native_bf16",
    "bf16_autocast",
    "channels_last_networks",
]


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


@functools.cache
def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (x86 ``avx512_bf16`` or ``amx_bf16`` in
    ``/proc/cpuinfo``). Elsewhere oneDNN emulates bf16, which is slower than fp32, so bf16
    inference is only the CPU default where this is true."""
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return False
    flags = set()
    for line in text.splitlines():
        if line.startswith("flags"):
            flags.update(line.split(":", 1)[-1].split())
            break
    return bool(flags & {"avx512_bf16", "amx_bf16"})


def bf16_autocast(
    device: torch.device, wanted: bool = True
) -> contextlib.AbstractContextManager[object]:
    """bf16 autocast for inference on ``device`` when ``wanted``: always on CUDA, on the CPU
    only with native bf16 (:func:`cpu_has_native_bf16`); otherwise a no-op context (fp32).

    On the 2-core AMD EPYC (avx512_bf16) it speeds the default model's K=4 sampling of 256 x 256
    slices, 8 per call, from 1.44 to 0.67 s per slice, with a masked PSNR of 60 dB against the
    fp32 output (``benchmarks/results/cpu-levers-acquisition-cpu-exposure.txt``)."""
    if wanted and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    if wanted and device.type == "cpu" and cpu_has_native_bf16():
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


@contextlib.contextmanager
def channels_last_networks(networks: Iterable[torch.nn.Module], wanted: bool = True):
    """Within the block, ``networks`` hold their 4-D weights in channels-last (NHWC) memory
    format, which lets oneDNN (CPU) and cuDNN pick their NHWC convolution kernels; afterwards
    every network is put back in the contiguous format. A no-op when not ``wanted``.

    Under bf16 autocast on the 2-core AMD EPYC (avx512_bf16) it speeds the default model's K=4
    sampling of 256 x 256 slices from 0.67 to 0.45 s per slice, with a masked PSNR of 60 dB
    against the fp32 output (``benchmarks/results/cpu-levers-acquisition-cpu-exposure.txt``)."""
    nets = list(networks) if wanted else []
    try:
        for net in nets:
            net.to(memory_format=torch.channels_last)
        yield
    finally:
        for net in nets:
            net.to(memory_format=torch.contiguous_format)
