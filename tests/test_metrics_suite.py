"""MetricSuite (LPIPS honesty, per-image values), score_table and summarise."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import piq
import pytest
import torch
from torch import nn

import ressrdiff.metrics as metrics
from ressrdiff.metrics import MetricSuite, lpips_metric, score_table, summarise, to_unit


def make_batch(n: int = 3, size: int = 64, seed: int = 0):
    """HR slices in [-1, 1] (smooth) and noisy SR versions, float32."""
    g = torch.Generator().manual_seed(seed)
    hr = torch.nn.functional.avg_pool2d(torch.rand(n, 1, size + 4, size + 4, generator=g), 5, 1)
    hr = (
        2
        * (hr - hr.amin((2, 3), keepdim=True))
        / (hr.amax((2, 3), keepdim=True) - hr.amin((2, 3), keepdim=True))
        - 1
    )
    sr = (hr + 0.1 * torch.randn(hr.shape, generator=g)).clamp(-1, 1)
    return sr, hr


@pytest.fixture(scope="module")
def random_suite() -> MetricSuite:
    return MetricSuite(lpips="random-for-tests")


@pytest.fixture
def empty_torch_home(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    return tmp_path


def test_missing_weights_give_nan_lpips_and_a_reason(empty_torch_home):
    suite = MetricSuite()
    assert suite.lpips_net is None
    assert "not found" in suite.lpips_reason and "alexnet" in suite.lpips_reason.lower()
    assert str(empty_torch_home) in suite.lpips_reason
    sr, hr = make_batch(2)
    s = suite.score(sr, hr)
    assert set(s) == {"psnr", "ssim", "gmsd", "lpips"}
    assert np.isnan(s["lpips"]).all() and s["lpips"].shape == (2,)
    assert np.isfinite(s["psnr"]).all() and np.isfinite(s["ssim"]).all()


def test_lpips_off():
    suite = MetricSuite(lpips="off")
    assert suite.lpips_net is None and "off" in suite.lpips_reason
    assert np.isnan(suite.score(*make_batch(1))["lpips"]).all()
    with pytest.raises(ValueError):
        MetricSuite(lpips="random")


def test_auto_with_weights_names_the_column_lpips(monkeypatch):
    class FakeLpips(nn.Module):  # stands in for a loaded LPIPS: per-image (B, 1, 1, 1)
        def forward(self, x, y):
            return ((x - y) ** 2).mean(dim=(1, 2, 3), keepdim=True)

    monkeypatch.setattr(metrics, "load_lpips", lambda device, random_backbone: (FakeLpips(), "ok"))
    suite = MetricSuite()
    assert suite.lpips_reason is None and suite.lpips_status == "ok"
    sr, hr = make_batch(2)
    s = suite.score(sr, hr)
    assert "lpips_random_backbone" not in s
    np.testing.assert_allclose(s["lpips"], ((sr - hr) ** 2).mean(dim=(1, 2, 3)).numpy(), rtol=1e-6)


def test_random_backbone_column_is_renamed_and_per_image(random_suite):
    assert random_suite.lpips_reason is not None and "RANDOM" in random_suite.lpips_reason
    sr, hr = make_batch(2)
    both = random_suite.score(sr, hr)
    assert "lpips" not in both
    vals = both["lpips_random_backbone"]
    assert vals.shape == (2,) and np.isfinite(vals).all() and (vals > 0).all()
    alone = random_suite.score(sr[:1], hr[:1])["lpips_random_backbone"]
    np.testing.assert_allclose(alone[0], vals[0], rtol=1e-5)  # no batch summing or pooling
    assert not math.isclose(alone[0], vals.sum(), rel_tol=1e-3)


def test_lpips_metric_is_per_image_mean(random_suite):
    sr, hr = make_batch(2, seed=3)
    full = lpips_metric(sr, hr, random_suite.lpips_net)
    assert full.shape == (2,)
    torch.testing.assert_close(full[1:], lpips_metric(sr[1:], hr[1:], random_suite.lpips_net))


def test_score_uses_unit_range_and_masks():
    suite = MetricSuite(lpips="off")
    sr, hr = make_batch(3, seed=1)
    mask = torch.zeros_like(hr, dtype=torch.bool)
    mask[..., 12:52, 12:52] = True
    mask[2] = False  # an image with an empty mask
    s = suite.score(sr, hr, mask=mask)
    assert set(s) == {
        "psnr",
        "ssim",
        "gmsd",
        "lpips",
        "psnr_masked",
        "ssim_masked",
        "gmsd_masked",
    }
    x, y = to_unit(sr).double(), to_unit(hr).double()
    np.testing.assert_allclose(
        s["ssim"], piq.ssim(x, y, data_range=1.0, downsample=False, reduction="none"), atol=1e-5
    )
    np.testing.assert_allclose(
        s["gmsd"], piq.gmsd(x, y, data_range=1.0, reduction="none"), atol=1e-5
    )
    # piq adds 1e-8 to the MSE before the log: ~2e-5 dB at these errors
    np.testing.assert_allclose(
        s["psnr"], piq.psnr(x, y, data_range=1.0, reduction="none"), atol=1e-4
    )
    for k in ("psnr_masked", "ssim_masked", "gmsd_masked"):
        assert np.isfinite(s[k][:2]).all() and np.isnan(s[k][2])


def test_score_table_and_summarise(random_suite):
    sr, hr = make_batch(3, seed=2)
    mask = torch.zeros_like(hr, dtype=torch.bool)
    mask[..., 8:56, 8:56] = True
    a = score_table(
        sr,
        hr,
        subject="sub-01",
        slice_index=[40, 41, 42],
        method="ours",
        mask=mask,
        suite=random_suite,
    )
    b = score_table(
        hr.clone(), hr, subject=["s1", "s1", "s2"], slice_index=torch.tensor([1, 2, 3]),
        method="identity", suite=random_suite,
    )  # fmt: skip
    assert list(a.columns) == ["subject", "slice", "method", "metric", "value", "region"]
    assert len(a) == 3 * (4 + 3) and len(b) == 3 * 4
    assert a.attrs["lpips_status"] == random_suite.lpips_status
    assert set(a.metric) == {"psnr", "ssim", "gmsd", "lpips_random_backbone"}
    assert set(a.region) == {"whole", "mask"}
    assert set(a[a.region == "mask"].metric) == {"psnr", "ssim", "gmsd"}
    assert a.groupby(["metric", "region"]).size().eq(3).all()  # one row per slice x metric
    assert list(a[a.metric == "ssim"].slice[:3]) == [40, 41, 42]
    assert (a.subject == "sub-01").all() and list(b.subject[:3]) == ["s1", "s1", "s2"]

    df = pd.concat([a, b], ignore_index=True)
    summary = summarise(df)
    assert list(summary.columns) == ["method", "metric", "region", "mean", "sd", "n"]
    assert len(summary) == 7 + 4
    x, y = to_unit(sr), to_unit(hr)
    np.testing.assert_allclose(  # region 'mask' rows are the masked variants, in slice order
        a[(a.metric == "gmsd") & (a.region == "mask")].value, metrics.gmsd(x, y, mask=mask)
    )
    for metric, region in [("psnr", "whole"), ("gmsd", "mask"), ("lpips_random_backbone", "whole")]:
        sel = (summary.method == "ours") & (summary.metric == metric) & (summary.region == region)
        row = summary[sel]
        assert len(row) == 1
        v = a[(a.metric == metric) & (a.region == region)].value.to_numpy()
        assert row["mean"].item() == pytest.approx(np.mean(v), rel=1e-9)
        assert row["sd"].item() == pytest.approx(np.std(v, ddof=1), rel=1e-9)
        assert row["n"].item() == 3
    ident = summary.query("method == 'identity' and metric == 'ssim'")
    assert ident["mean"].item() == pytest.approx(1.0) and ident["sd"].item() == pytest.approx(0.0)


def test_summarise_skips_nan(empty_torch_home):
    suite = MetricSuite()
    sr, hr = make_batch(2)
    df = score_table(sr, hr, subject="s", slice_index=[0, 1], method="m", suite=suite)
    assert "LPIPS unavailable" in df.attrs["lpips_status"]
    summary = summarise(df).set_index("metric")
    assert summary.loc["lpips", "n"] == 0 and np.isnan(summary.loc["lpips", "mean"])
    assert summary.loc["psnr", "n"] == 2


def test_score_table_rejects_bad_slice_indices(random_suite):
    sr, hr = make_batch(2)
    with pytest.raises(ValueError):
        score_table(sr, hr, subject="s", slice_index=3, method="m", suite=random_suite)
    with pytest.raises(ValueError):
        score_table(sr, hr, subject="s", slice_index=[1, 2, 3], method="m", suite=random_suite)
