"""bf16 inference autocast (issue 19): on CUDA, and on the CPU only where bf16 is native."""

from __future__ import annotations

import pytest
import torch

from ressrdiff import devices
from ressrdiff.devices import bf16_autocast, cpu_has_native_bf16


@pytest.fixture
def native(monkeypatch):
    def set_native(value: bool) -> None:
        monkeypatch.setattr(devices, "cpu_has_native_bf16", lambda: value)

    return set_native


def test_cpu_autocast_only_with_native_bf16(native):
    cpu = torch.device("cpu")
    lin = torch.nn.Linear(4, 4)
    x = torch.randn(2, 4)
    native(True)
    with bf16_autocast(cpu):
        assert lin(x).dtype == torch.bfloat16
    with bf16_autocast(cpu, wanted=False):
        assert lin(x).dtype == torch.float32
    native(False)
    with bf16_autocast(cpu):
        assert lin(x).dtype == torch.float32


def test_native_flag_reads_cpuinfo():
    assert isinstance(cpu_has_native_bf16(), bool)
    try:
        flags = open("/proc/cpuinfo").read()
    except OSError:
        pytest.skip("no /proc/cpuinfo here")
    assert cpu_has_native_bf16() == ("avx512_bf16" in flags or "amx_bf16" in flags)
