"""Failed-method rules and quality bars on synthetic per-slice tables."""

import numpy as np
import pandas as pd
import pytest

from ressrdiff.verdicts import QUALITY_BARS, Bar, failed_methods, quality_bar


def _table(per_method: dict[str, dict[str, np.ndarray]], subjects: int = 1) -> pd.DataFrame:
    rows = []
    for method, metrics in per_method.items():
        for metric, values in metrics.items():
            for i, v in enumerate(values):
                rows.append(
                    {
                        "method": method,
                        "subject": f"s{i % subjects}",
                        "slice": i,
                        "region": "mask",
                        "metric": metric,
                        "value": float(v),
                    }
                )
    return pd.DataFrame(rows)


RNG = np.random.default_rng(0)
N = 40
NEAREST = {"psnr": 20 + RNG.normal(0, 1, N), "ssim": 0.6 + RNG.normal(0, 0.02, N)}
BSPLINE = {"psnr": NEAREST["psnr"] + 1.5, "ssim": NEAREST["ssim"] + 0.05}


def test_failed_methods_names_identity_and_noise_and_keeps_working_methods():
    df = _table(
        {
            "nearest": NEAREST,
            "bspline": BSPLINE,
            "identity": {k: v.copy() for k, v in BSPLINE.items()},
            "noise": {"psnr": NEAREST["psnr"] - 12, "ssim": NEAREST["ssim"] - 0.5},
            "good": {"psnr": BSPLINE["psnr"] + 1.2, "ssim": BSPLINE["ssim"] + 0.03},
            "slightly-worse": {"psnr": BSPLINE["psnr"] - 0.5, "ssim": BSPLINE["ssim"]},
        }
    )
    failed = failed_methods(df)
    assert set(failed) == {"identity", "noise"}
    assert "returns its input unchanged" in failed["identity"] and "bspline" in failed["identity"]
    assert "worse than copying its input" in failed["noise"]
    assert "12.00 dB below" in failed["noise"]
    assert set(failed_methods(df, exempt=["identity"])) == {"noise"}
    as_bicubic = df.assign(method=df["method"].replace({"identity": "bicubic"}))
    assert set(failed_methods(as_bicubic)) == {"noise"}  # an interpolation is never failed


def test_failed_methods_one_differing_slice_is_not_identity():
    psnr = BSPLINE["psnr"].copy()
    psnr[3] += 0.5
    df = _table(
        {"nearest": NEAREST, "bspline": BSPLINE, "m": {"psnr": psnr, "ssim": BSPLINE["ssim"]}}
    )
    assert failed_methods(df) == {}


def test_bar_requirements_closed_form():
    bar = Bar("psnr", min_gain=1.0, min_ci_low=0.5)
    assert bar.met(1.2, 0.6, 1.8) and not bar.met(1.2, 0.4, 1.8) and not bar.met(0.9, 0.6, 1.2)
    assert Bar("psnr", min_ci_high=0.0).met(-0.3, -0.6, 0.0)
    assert not Bar("psnr", min_ci_high=0.0).met(-0.3, -0.6, -0.01)
    assert (
        Bar("ssim").met(-1.0, -2.0, -0.5)
        and Bar("ssim").requirement() == "reported, no requirement"
    )


def test_quality_bar_constant_gain_has_a_degenerate_interval():
    df = _table(
        {
            "bspline": BSPLINE,
            "model": {"psnr": BSPLINE["psnr"] + 1.25, "ssim": BSPLINE["ssim"] + 0.01},
        }
    )
    bar = quality_bar(df, "model", "acquisition", n_resamples=500)
    assert list(bar.index) == ["PSNR", "SSIM"]
    assert bar.loc["PSNR", "difference"] == pytest.approx(1.25)
    assert bar.loc["PSNR", "95 % CI low"] == pytest.approx(1.25)
    assert bar.loc["PSNR", "met"] and not bar.loc["SSIM", "met"]  # SSIM gain 0.01 < 0.02
    assert bar.loc["PSNR", "clusters"] == "slices"


def test_quality_bar_resample_is_not_significantly_worse_and_clusters_by_subject():
    gain = RNG.normal(0.0, 0.5, N)
    df = _table(
        {"bspline": BSPLINE, "m": {"psnr": BSPLINE["psnr"] + gain, "ssim": BSPLINE["ssim"]}},
        subjects=4,
    )
    bar = quality_bar(df, "m", "resample", n_resamples=2000)
    row = bar.loc["PSNR"]
    assert row["clusters"] == "subjects"
    assert row["95 % CI low"] < row["difference"] < row["95 % CI high"]
    assert row["met"] == (row["95 % CI high"] >= 0)
    assert set(QUALITY_BARS) == {"acquisition", "resample"}
    with pytest.raises(ValueError, match="no quality bar"):
        quality_bar(df, "m", "other")
