"""Eq (14) schedule, presets and respacing."""

import math

import numpy as np
import pytest
import torch

from ressrdiff.schedule import PRESETS, Schedule, preset, respace_indices, sqrt_beta_eq14


def test_eq14_boundary_conditions_and_monotonicity():
    sb = sqrt_beta_eq14(15, 0.02, math.sqrt(0.9999), 0.3)
    assert sb[0] == pytest.approx(0.02, abs=1e-12)
    assert sb[-1] == pytest.approx(math.sqrt(0.9999), abs=1e-12)
    assert np.all(np.diff(sb) > 0)


def test_eq14_closed_form_interior_point():
    # t = 8 of T = 15 is half-way: (7/14)**p with p = 0.5 -> sqrt(0.5)
    sb = sqrt_beta_eq14(15, 0.1, 0.9, 0.5)
    expected = 0.1 * math.exp(math.sqrt(0.5) * math.log(9.0))
    assert sb[7] == pytest.approx(expected, rel=1e-12)


def test_paper_preset():
    s = preset("paper")
    assert s.T == 15 and s.gamma == 2.0
    assert s.gamma * s.sqrt_beta[0] == pytest.approx(0.04, rel=1e-12)
    assert s.betas[-1] == pytest.approx(0.9999, rel=1e-12)
    assert PRESETS["paper"]["lambda_mse"] == 10.0 and PRESETS["paper"]["sample_steps"] == 4


def test_authors_code_preset_reproduces_their_sqrt_betas():
    s = preset("authors-code")
    np.testing.assert_allclose(s.sqrt_beta, [0.1, 0.520, 0.761, 0.99], atol=5e-4)


def test_alpha_definition():
    s = preset("paper")
    assert s.alpha[1] == s.beta[1]
    np.testing.assert_allclose(np.cumsum(s.alpha), s.beta, rtol=1e-12, atol=1e-15)
    assert s.beta[0] == 0.0


def test_respacing_keeps_step_T_and_prior_variance():
    s = preset("paper")
    for K in (1, 2, 4, 8, 15):
        r = s.respace(K)
        assert r.T == K
        assert r.timesteps[-1] == 15
        assert r.prior_std == pytest.approx(s.gamma * math.sqrt(0.9999))
        # alphas are recomputed from the sub-sequence's betas
        np.testing.assert_allclose(np.cumsum(r.alpha), r.beta, rtol=1e-12, atol=1e-15)
    # e.g. K=4 keeps steps [1, 6, 10, 15]: its second alpha spans the dropped steps 2..6
    r = s.respace(4)
    assert r.alpha[2] == pytest.approx(s.beta[6] - s.beta[1], rel=1e-12)
    assert r.alpha[2] > 2 * s.alpha[6]


def test_naive_every_kth_respacing_is_rejected():
    """ResShift-style "every k-th of 15" keeps {0,3,7,11} (0-based) and drops step T: its prior
    std would be gamma*sqrt(beta_12) instead of gamma*sqrt(beta_15)."""
    s = preset("paper")
    naive = [1, 4, 8, 12]
    assert s.sqrt_beta[naive[-1] - 1] < 0.8  # what a naive sampler would start from
    with pytest.raises(ValueError, match="drop the last step"):
        s.subsequence(naive)


def test_respace_indices_spread():
    assert respace_indices(15, 4) == [1, 6, 10, 15]
    assert respace_indices(15, 1) == [15]
    assert respace_indices(4, 4) == [1, 2, 3, 4]
    with pytest.raises(ValueError):
        respace_indices(4, 5)


def test_model_timesteps_map_to_original_steps():
    r = preset("paper").respace(4)
    t = torch.tensor([1, 2, 3, 4])
    assert r.model_timesteps(t).tolist() == [1, 6, 10, 15]


def test_schedule_validation_and_roundtrip():
    with pytest.raises(ValueError):
        Schedule(betas=(0.5, 0.4), gamma=2.0)
    with pytest.raises(ValueError):
        Schedule(betas=(0.1, 0.5), gamma=0.0)
    with pytest.raises(ValueError, match="unknown preset"):
        preset("nope")
    s = preset("paper").respace(4)
    assert Schedule.from_dict(s.to_dict()) == s
