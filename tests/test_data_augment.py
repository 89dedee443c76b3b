"""Intensity augmentation of training pairs (ressrdiff.data.augment), checked in closed form."""

from __future__ import annotations

import numpy as np
import pytest

from ressrdiff.config import ConfigError, load_config
from ressrdiff.data.augment import IntensityAugment, augment_pair
from ressrdiff.data.slices import PatchDataset


def _pair(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    g = np.random.default_rng(seed)
    hr = np.clip(g.normal(0.0, 0.4, (32, 32)), -1, 1).astype(np.float32)
    lr = np.clip(hr + g.normal(0.0, 0.05, hr.shape), -1, 1).astype(np.float32)
    return hr, lr


def test_same_generator_state_gives_the_same_pair():
    hr, lr = _pair()
    aug = IntensityAugment(prob=1.0)
    a = augment_pair(hr, lr, np.random.default_rng(5), aug)
    b = augment_pair(hr, lr, np.random.default_rng(5), aug)
    c = augment_pair(hr, lr, np.random.default_rng(6), aug)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not np.array_equal(a[1], c[1])


def test_noise_goes_to_the_lr_only():
    hr, lr = _pair()
    aug = IntensityAugment(prob=1.0, bias_coeff=0.0, gamma=(1.0, 1.0), noise_sd=0.05)
    h, low = augment_pair(hr, lr, np.random.default_rng(1), aug)
    np.testing.assert_allclose(h, hr, atol=1e-6)  # gamma 1: the identity on [0, 1]
    resid = (low - lr)[(lr > -0.9) & (lr < 0.9)] / 2.0  # in [0, 1] units, away from the clip
    assert 0.0 < resid.std() <= 0.05 * 1.1


def test_bias_field_is_the_same_multiplicative_field_on_both():
    hr, lr = _pair()
    aug = IntensityAugment(prob=1.0, bias_coeff=0.5, gamma=(1.0, 1.0), noise_sd=0.0)
    h, low = augment_pair(hr, lr, np.random.default_rng(2), aug)
    u_h, u_l = (hr + 1) / 2, (lr + 1) / 2
    ok = (u_h > 0.2) & (u_l > 0.2) & (h < 0.99) & (low < 0.99)
    f_h, f_l = ((h + 1) / 2)[ok] / u_h[ok], ((low + 1) / 2)[ok] / u_l[ok]
    np.testing.assert_allclose(f_h, f_l, rtol=1e-4)
    assert f_h.std() > 1e-3  # a field that varies, not a constant


def test_gamma_is_one_power_law_over_both():
    hr, lr = _pair()
    aug = IntensityAugment(prob=1.0, bias_coeff=0.0, gamma=(2.0, 2.0), noise_sd=0.0)
    h, low = augment_pair(hr, lr, np.random.default_rng(3), aug)
    u = (np.stack([hr, lr]) + 1) / 2
    mn, rg = u.min(), u.max() - u.min()
    want = ((u - mn) / (rg + 1e-7)) ** 2 * rg + mn
    np.testing.assert_allclose(np.stack([h, low]), want * 2 - 1, atol=1e-5)


def test_prob_zero_leaves_dataset_items_unchanged():
    """The augmentation draws after the crop and flips: a dataset with prob 0 returns exactly the
    items of one without augmentation, and with prob 1 the same crops, changed."""
    hr = np.stack([_pair(s)[0] for s in range(3)])
    lr = np.stack([_pair(s)[1] for s in range(3)])
    plain = PatchDataset((hr, lr), 16, seed=4, augment=True)
    off = PatchDataset((hr, lr), 16, seed=4, augment=True, intensity=IntensityAugment(prob=0.0))
    on = PatchDataset((hr, lr), 16, seed=4, augment=True, intensity=IntensityAugment(prob=1.0))
    for i in range(5):
        a, b, c = plain[i], off[i], on[i]
        assert np.array_equal(a["hr"], b["hr"]) and np.array_equal(a["lr"], b["lr"])
        assert not np.array_equal(a["lr"], c["lr"])
        # the same crop: the augmented HR is a monotone map of the plain one
        assert np.corrcoef(a["hr"].ravel(), c["hr"].ravel())[0, 1] > 0.8


def test_config_field():
    cfg = load_config("acquisition-cpu")
    assert "intensity" not in cfg.to_dict()["data"]
    on = cfg.replace(**{"data.intensity": {"prob": 0.3}})
    assert on.to_dict()["data"]["intensity"]["prob"] == 0.3
    with pytest.raises(ConfigError, match="data.intensity must be"):
        cfg.replace(**{"data.intensity": "yes"})
    with pytest.raises(ConfigError, match="prob must be in"):
        cfg.replace(**{"data.intensity": {"prob": 2}})
