"""Inference timing: warm-up, medians, NFE extrapolation, batching and the speed table."""

from __future__ import annotations

import time

import pytest
import torch
from conftest import tiny_config
from torch import nn

from ressrdiff.config import load_config
from ressrdiff.methods import build_method
from ressrdiff.methods.base import Method
from ressrdiff.timing import SpeedCase, speed_table, time_method


class Sleeper(Method):
    """A fake sampler whose call costs ``per_nfe`` seconds per network evaluation."""

    name = "sleeper"
    nfe_default = 100

    def __init__(self, per_nfe: float) -> None:
        super().__init__(tiny_config())
        self.net = nn.Conv2d(1, 1, 1)
        self.per_nfe = per_nfe
        self.calls: list[int] = []

    def networks(self) -> dict[str, nn.Module]:
        return {"net": self.net}

    def super_resolve(self, x_lr, steps=None, generator=None):
        k = int(steps or self.nfe_default)
        self.calls.append(k)
        time.sleep(self.per_nfe * k)
        return x_lr


def test_extrapolation_scales_the_measured_evaluations_to_the_full_nfe():
    m = Sleeper(per_nfe=0.002)
    t = time_method(m, 8, 8, repeats=3, measure_nfe=10)
    assert m.calls == [10] * 4  # one warm-up + 3 timed, each with 10 evaluations
    assert t.extrapolated and t.nfe == 100 and t.measured_nfe == 10
    assert 0.2 <= t.s_per_slice < 0.4  # 100 x 2 ms, plus overhead
    assert t.s_per_slice_min <= t.s_per_slice <= t.s_per_slice_max


def test_no_extrapolation_when_the_full_nfe_is_measured():
    m = Sleeper(per_nfe=0.001)
    t = time_method(m, 8, 8, steps=5, repeats=1, measure_nfe=10)
    assert m.calls == [5, 5] and not t.extrapolated and t.nfe == t.measured_nfe == 5


def test_batch_divides_the_time_per_call():
    m = Sleeper(per_nfe=0.002)
    t = time_method(m, 8, 8, steps=20, batch=4, repeats=2)
    assert t.s_per_slice == pytest.approx(t.s_per_call / 4)
    assert 0.04 / 4 <= t.s_per_slice < 0.08 / 4


def test_speed_table_ratios_are_relative_to_the_reference_row():
    fast, slow = Sleeper(0.001), Sleeper(0.004)
    df = speed_table(
        [SpeedCase("fast", fast, steps=10), SpeedCase("slow", slow, steps=10)],
        (8, 8),
        volume=(3, 8, 8),
        reference="fast",
        repeats=2,
    )
    row = df.set_index("label")
    assert row.loc["fast", "ratio_slice"] == 1.0
    assert 2.5 < row.loc["slow", "ratio_slice"] < 4.5
    assert row.loc["slow", "s_per_volume"] == pytest.approx(3 * row.loc["slow", "s_per_slice_8x8"])
    with pytest.raises(ValueError, match="reference 'x'"):
        speed_table([SpeedCase("fast", fast, steps=1)], (8, 8), reference="x", repeats=1)


def test_bf16_needs_cuda():
    with pytest.raises(ValueError, match="CUDA"):
        time_method(Sleeper(0.0), 8, 8, bf16=True)


@pytest.mark.parametrize(
    ("config", "steps", "nfe"),
    [
        ("smoke", None, 4),  # the paper preset samples with 4 respaced steps
        ("smoke", 15, 15),
        ("bicubic-smoke", None, 0),
        ("pix2pix-smoke", None, 1),  # one forward pass
        ("tm-ddpm-cpu", None, 1000),
        ("i2sb-cpu", None, 100),
        ("i2sb-cpu", 3, 3),
    ],
)
def test_nfe_of_every_method(config, steps, nfe):
    cfg = load_config(config).replace(**{"loss.lpips": "off"})
    m = build_method(cfg)
    assert m.nfe_for(steps) == nfe
    if nfe:
        t = time_method(m, 16, 16, steps=steps, repeats=1, measure_nfe=2)
        assert t.nfe == nfe and t.measured_nfe == min(nfe, 2)


def test_cpu_timing_is_reported_in_fp32():
    m = build_method(load_config("smoke").replace(**{"loss.lpips": "off"}))
    t = time_method(m, 16, 16, repeats=1)
    assert t.device == "cpu" and t.precision == "fp32" and t.s_per_slice > 0
    assert torch.get_num_threads() >= 1


def test_unsynchronised_timing_still_times_cpu_work():
    t = time_method(Sleeper(0.002), 8, 8, steps=5, repeats=2, synchronize=False)
    assert t.s_per_slice >= 0.01  # on a CPU the work is synchronous: nothing is missed
