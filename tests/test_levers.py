"""The CPU inference lever table (issue 19): its accuracy column and its reference row."""

from __future__ import annotations

import math

import torch

from ressrdiff import devices
from ressrdiff.config import load_config
from ressrdiff.levers import LEVERS, lever_table, masked_psnr
from ressrdiff.methods import build_method


def test_masked_psnr_closed_form_and_mask():
    b = torch.zeros(1, 1, 4, 4)
    a = b + 0.02
    mask = torch.zeros_like(b, dtype=torch.bool)
    mask[..., :2, :] = True
    a[..., 3, :] = 5.0  # outside the mask: ignored
    assert math.isclose(masked_psnr(a, b, mask), 10 * math.log10(4 / 0.02**2), rel_tol=1e-5)
    assert masked_psnr(b, b, mask) == math.inf


def test_lever_table_reference_row_and_accuracy(monkeypatch):
    monkeypatch.setattr(devices, "cpu_has_native_bf16", lambda: True)
    torch.manual_seed(0)
    m = build_method(load_config("smoke").replace(**{"loss.lpips": "off"})).eval()
    with torch.no_grad():  # the zero-initialised head would make every output x_LR
        for p in m.net.parameters():
            p.add_(0.05 * torch.randn_like(p))
    x = torch.rand(2, 1, 40, 40) * 2 - 1
    mask = torch.zeros_like(x, dtype=torch.bool)
    mask[..., 10:30, 10:30] = True
    names = ["8 slices/call, channels-last, bf16", "whole slices, bf16"]
    levers = {k: LEVERS[k] for k in list(LEVERS)[:1] + names}
    df = lever_table(m, x, mask, steps=1, repeats=1, levers=levers).set_index("lever")
    ref = df.iloc[0]
    assert ref["masked_psnr_vs_reference_db"] == math.inf and ref["ratio"] == 1.0
    assert (df["s_per_slice"] > 0).all()
    assert (df["s_per_256_slices"] == 256 * df["s_per_slice"]).all()
    bf16 = df.loc["8 slices/call, channels-last, bf16", "masked_psnr_vs_reference_db"]
    assert 20 < bf16 < math.inf  # bf16 changes the output, a little


def test_thread_and_layout_levers_keep_the_output_and_restore_the_thread_count():
    torch.manual_seed(0)
    m = build_method(load_config("smoke").replace(**{"loss.lpips": "off"})).eval()
    with torch.no_grad():
        for p in m.net.parameters():
            p.add_(0.05 * torch.randn_like(p))
    x = torch.rand(2, 1, 32, 32) * 2 - 1
    mask = torch.ones_like(x, dtype=torch.bool)
    fp32 = {"batch": 8, "inference_mode": True, "window": None}
    levers = {
        "whole, fp32": fp32,
        "1 thread": {**fp32, "threads": 1},
        "channels-last": {**fp32, "channels_last": True},
    }
    before = torch.get_num_threads()
    df = lever_table(m, x, mask, steps=2, repeats=1, levers=levers).set_index("lever")
    assert torch.get_num_threads() == before
    assert df.loc["1 thread", "masked_psnr_vs_reference_db"] > 90  # fp32 rounding only
    assert df.loc["channels-last", "masked_psnr_vs_reference_db"] > 90
    assert all(p.is_contiguous() for p in m.net.parameters())  # the layout is put back
    assert {"whole slices, bf16, channels-last, 1 thread", "whole slices, bf16"} <= set(LEVERS)


def test_channels_last_networks_restores_the_layout_even_on_error_and_default_lever():
    from ressrdiff.devices import channels_last_networks
    from ressrdiff.levers import default_lever

    m = build_method(load_config("smoke").replace(**{"loss.lpips": "off"})).eval()
    conv = next(p for p in m.net.parameters() if p.ndim == 4)
    with channels_last_networks(m.networks().values()):
        assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()
    assert conv.is_contiguous()
    try:
        with channels_last_networks(m.networks().values()):
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert all(p.is_contiguous() for p in m.net.parameters())
    with channels_last_networks(m.networks().values(), wanted=False):
        assert conv.is_contiguous()
    assert default_lever(m) in LEVERS and LEVERS[default_lever(m)].get("channels_last")
    windowed = build_method(
        load_config("smoke").replace(**{"loss.lpips": "off", "infer.window": "auto"})
    )
    assert LEVERS[default_lever(windowed)] == {
        "batch": 8,
        "inference_mode": True,
        "channels_last": True,
        "bf16": True,
    }
