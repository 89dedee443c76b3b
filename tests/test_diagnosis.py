"""The fit diagnosis (issue 7's "find out why"): gains over the input, per-t single calls."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import TINY_MODEL, SyntheticPairs, tiny_config

from ressrdiff.data.slices import MaskedPairedSlices
from ressrdiff.diagnosis import (
    chain_gain,
    crop_vs_full,
    crop_windows,
    gain_over_input,
    one_call_gain,
    spread_rows,
    summarise_gain,
)
from ressrdiff.methods import build_method


@pytest.fixture(scope="module")
def slices() -> MaskedPairedSlices:
    p = SyntheticPairs(n=4, size=16, seed=3)
    mask = np.zeros((4, 16, 16), dtype=bool)
    mask[:, 2:14, 3:13] = True
    return MaskedPairedSlices(
        hr=p.hr[:, 0].numpy(), lr=p.lr[:, 0].numpy(), subject="s", index=np.arange(4), mask=mask
    )


def _identity_method():
    """An untrained residual-output U-Net: its head starts at zero, so g(x_t, x_LR, t) = x_LR."""
    return build_method(tiny_config(model={**TINY_MODEL, "residual_output": True})).eval()


def test_spread_rows():
    assert spread_rows(10, 3).tolist() == [0, 4, 9]  # numpy rounds 4.5 to even
    assert spread_rows(11, 3).tolist() == [0, 5, 10]
    assert spread_rows(3, 10).tolist() == [0, 1, 2]
    with pytest.raises(ValueError, match="no slices"):
        spread_rows(0, 2)


def test_a_model_that_returns_its_input_gains_exactly_nothing(slices):
    """Algorithm 2 ends with x_0 = g(x_1, x_LR, 1) (eq 9 at t = 1 has beta_0 = 0), so a network
    that returns x_LR yields the input itself: every gain is 0 and the input PSNR is the LR's."""
    m = _identity_method()
    df = gain_over_input(m, slices, steps=4, label="id", split="train")
    assert len(df) == 4
    np.testing.assert_allclose(df["psnr_gain"], 0.0, atol=1e-9)
    np.testing.assert_allclose(df["ssim_gain"], 0.0, atol=1e-9)
    np.testing.assert_allclose(df["hf_model"], df["hf_input"], rtol=1e-9)  # same image
    hr, lr, msk = slices.hr, slices.lr, slices.mask
    ref = [
        10 * np.log10(1.0 / np.mean(((lr[i] - hr[i]) / 2)[msk[i]] ** 2)) for i in range(4)
    ]  # [0, 1] scale: differences halve
    np.testing.assert_allclose(df["psnr_input"], ref, rtol=1e-6)
    s = summarise_gain(df)
    assert s.loc[0, "n"] == 4 and s.loc[0, "psnr_input"] == pytest.approx(np.mean(ref))


def test_one_call_gain_separates_ignoring_and_copying_x_t(slices):
    m = _identity_method()
    ignore = one_call_gain(m, slices)
    assert ignore["t"].tolist() == list(range(1, m.schedule.T + 1))
    np.testing.assert_allclose(ignore["psnr_gain_call"], 0.0, atol=1e-9)
    # copying x_t gains at t = 1 (x_1 = x_HR + beta_1 e0 + small noise) and loses at t = T
    assert ignore["psnr_gain_copy_xt"].iloc[0] > 3.0 > ignore["psnr_gain_copy_xt"].iloc[-1]
    np.testing.assert_allclose(
        ignore["noise_std"], m.schedule.gamma * np.sqrt(m.schedule.beta[1:]), rtol=1e-12
    )

    class Copy(type(m)):
        def predictor(self, net=None):
            return lambda x_t, x_lr, t: x_t

    c = Copy(m.cfg).eval()
    copy = one_call_gain(c, slices)
    np.testing.assert_allclose(copy["psnr_gain_call"], copy["psnr_gain_copy_xt"], atol=1e-9)
    np.testing.assert_allclose(copy["psnr_gain_copy_xt"], ignore["psnr_gain_copy_xt"], atol=1e-9)


def test_one_call_gain_around_the_prediction(slices):
    """Around the identity network's own prediction (x_LR itself) x_t carries no x_HR: copying
    it gains nothing at t = 1 beyond the noise it adds, the call still returns x_LR (gain 0),
    and the prediction's own gain is reported (0)."""
    m = _identity_method()
    pred = one_call_gain(m, slices, steps=[1, 15], around="prediction")
    np.testing.assert_allclose(pred["psnr_gain_prediction"], 0.0, atol=1e-9)
    np.testing.assert_allclose(pred["psnr_gain_call"], 0.0, atol=1e-9)
    true = one_call_gain(m, slices, steps=[1, 15])
    assert pred["psnr_gain_copy_xt"].iloc[0] < 0.0 < true["psnr_gain_copy_xt"].iloc[0]
    with pytest.raises(ValueError, match="around must be"):
        one_call_gain(m, slices, around="x_lr")


def test_chain_gain_follows_the_sampler(slices):
    """The identity network predicts x_LR at every step (gain 0); the states are the sampler's:
    the first is the prior x_T ~ N(x_LR, gamma^2 beta_T), whose gain matches eq (4)'s noise."""
    m = _identity_method()
    ch = chain_gain(m, slices, steps=4, seed=0)
    assert ch["step"].tolist() == [1, 2, 3, 4]
    assert ch["t (trained schedule)"].tolist() == [15, 10, 6, 1]  # respacing keeps step T
    np.testing.assert_allclose(ch["psnr_gain_prediction"], 0.0, atol=1e-9)
    assert ch["psnr_gain_x_t"].iloc[0] < -10  # x_T carries noise of std ~2 on [-1, 1] images
    np.testing.assert_allclose(ch["noise_std"].iloc[0], m.schedule.prior_std, rtol=1e-12)
    # the sampler's own output for the same seed is the last prediction, here x_LR
    out = m.super_resolve(
        torch.from_numpy(slices.lr)[:, None], steps=4, generator=torch.Generator().manual_seed(0)
    )
    np.testing.assert_array_equal(out[:, 0].numpy(), slices.lr)


def test_one_call_gain_refuses_a_method_without_a_schedule(slices):
    m = build_method(tiny_config(method="bicubic", model={}))
    with pytest.raises(ValueError, match="not a residual-shifting diffusion"):
        one_call_gain(m, slices)


def test_crop_windows_are_drawn_like_training_patches():
    mask = np.zeros((3, 16, 20), dtype=bool)
    mask[0, 1:3, 17:19] = True  # foreground in a corner: windows are shifted inside
    mask[1, 6:10, 6:10] = True  # slice 2 has none: uniform windows
    w = crop_windows(mask, 8, 5, seed=1)
    assert w.shape == (15, 3) and w[:, 0].tolist() == [0] * 5 + [1] * 5 + [2] * 5
    assert (w[:, 1] >= 0).all() and (w[:, 1] <= 8).all() and (w[:, 2] >= 0).all()
    assert (w[:, 2] <= 12).all()
    for k, y0, x0 in w[:10]:  # each window holds foreground (its centre pixel)
        assert mask[k, y0 : y0 + 8, x0 : x0 + 8].any()
    assert (w[:5, 1] == 0).all() and (w[:5, 2] == 12).all()  # clipped at the corner
    np.testing.assert_array_equal(w, crop_windows(mask, 8, 5, seed=1))
    with pytest.raises(ValueError, match="do not fit"):
        crop_windows(mask, 17, 1)


def test_crop_vs_full_is_zero_for_the_identity_and_equal_for_a_pointwise_network(slices):
    m = _identity_method()
    df = crop_vs_full(m, slices, size=8, crops=2, t=1, steps=4, seed=0)
    assert len(df) == 8 and df["slice"].tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    cols = ["gain_call_full", "gain_call_crop", "gain_sample_full", "gain_sample_crop"]
    np.testing.assert_allclose(df[cols].to_numpy(), 0.0, atol=1e-9)
    r = df.iloc[3]
    k, y0, x0 = int(r["slice"]), int(r["y0"]), int(r["x0"])
    hr, lr = slices.hr[k, y0 : y0 + 8, x0 : x0 + 8], slices.lr[k, y0 : y0 + 8, x0 : x0 + 8]
    msk = slices.mask[k, y0 : y0 + 8, x0 : x0 + 8]
    ref = 10 * np.log10(1.0 / np.mean(((lr - hr) / 2)[msk] ** 2))
    assert r["psnr_input"] == pytest.approx(ref, rel=1e-6)
    assert (df["gain_copy_xt"] > 3.0).all()  # x_1 is x_HR plus little noise

    class Copy(type(m)):  # output at a pixel depends on that pixel only
        def predictor(self, net=None):
            return lambda x_t, x_lr, t: x_t

    c = crop_vs_full(Copy(m.cfg).eval(), slices, size=8, crops=2, t=1, seed=0)
    np.testing.assert_allclose(c["gain_call_full"], c["gain_call_crop"], atol=1e-12)
    np.testing.assert_allclose(c["gain_call_full"], c["gain_copy_xt"], atol=1e-12)

    class Global(type(m)):  # output depends on the mean of the whole input
        def predictor(self, net=None):
            return lambda x_t, x_lr, t: x_lr + 0.5 * x_t.mean(dim=(2, 3), keepdim=True)

    gl = crop_vs_full(Global(m.cfg).eval(), slices, size=8, crops=2, t=1, seed=0)
    assert (gl["gain_call_full"] - gl["gain_call_crop"]).abs().max() > 0.01


def test_percentile_unit_maps_the_masked_percentiles_to_minus_one_and_one():
    from ressrdiff.diagnosis import percentile_unit

    ref = np.arange(1000, dtype=float).reshape(10, 10, 10)
    mask = np.zeros_like(ref, dtype=bool)
    mask[:5] = True  # values 0..499
    unit = percentile_unit(ref, mask)
    lo, hi = np.percentile(np.arange(500.0), [0.5, 99.5])
    assert np.isclose(unit(np.array(lo)), -1.0) and np.isclose(unit(np.array(hi)), 1.0)
    assert unit(np.array(-1e6)) == -1.0 and unit(np.array(1e6)) == 1.0  # clipped
    assert np.isclose(unit(np.array((lo + hi) / 2)), 0.0)


def test_degrade_like_follows_the_method_config():
    import SimpleITK as sitk

    from ressrdiff.config import load_config
    from ressrdiff.data.degrade import degrade
    from ressrdiff.diagnosis import degrade_like
    from ressrdiff.methods import build_method

    m = build_method(load_config("acquisition-cpu").replace(**{"loss.lpips": "off"}))
    rng = np.random.default_rng(0)
    hr = sitk.GetImageFromArray(rng.random((16, 16, 16)).astype(np.float32))
    got = sitk.GetArrayFromImage(degrade_like(m, hr))
    want = degrade(hr, "brain-4x", regrid_method="bspline", degradation="acquisition")
    assert np.array_equal(got, sitk.GetArrayFromImage(want))
    other = degrade(hr, "brain-4x", regrid_method="bspline", degradation="resample")
    assert not np.array_equal(got, sitk.GetArrayFromImage(other))
