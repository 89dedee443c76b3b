"""Forward process (eqs 1-4), posterior (eqs 8-9), eq (11) and Algorithm 2, checked numerically."""

import math

import numpy as np
import pytest
import torch

from ressrdiff.diffusion import (
    forward_step,
    p_mean_variance,
    posterior,
    q_sample,
    reverse_step,
    sample,
    sample_ensemble,
    skip_scalings,
)
from ressrdiff.schedule import preset

N = 200_000


def _pair(n=N, seed=0):
    g = torch.Generator().manual_seed(seed)
    x_hr = torch.full((n, 1, 1, 1), 0.3, dtype=torch.float64)
    x_lr = torch.full((n, 1, 1, 1), -0.5, dtype=torch.float64)
    return x_hr, x_lr, g


@pytest.mark.parametrize("t", [1, 2, 5, 15])
def test_iterating_eq2_gives_eq4_marginal(t):
    s = preset("paper")
    x_hr, x_lr, g = _pair()
    e0 = x_lr - x_hr
    x = x_hr.clone()
    for k in range(1, t + 1):
        x = forward_step(x, e0, k, s, torch.randn(x.shape, generator=g, dtype=x.dtype))
    mean_eq4 = 0.3 + s.beta[t] * (-0.8)
    var_eq4 = s.gamma**2 * s.beta[t]
    se = math.sqrt(var_eq4 / N)
    assert abs(x.mean().item() - mean_eq4) < 5 * se
    assert x.var().item() == pytest.approx(var_eq4, rel=0.02)
    # eq (4) sampled directly has the same moments
    y = q_sample(x_hr, x_lr, t, s, torch.randn(x.shape, generator=g, dtype=x.dtype))
    assert y.var().item() == pytest.approx(var_eq4, rel=0.02)
    assert abs(y.mean().item() - mean_eq4) < 5 * se


def test_printed_eq3_std_does_not_match():
    """The paper's (3c)/(3d) write the std after two steps as gamma(sqrt(a1)+sqrt(a2)); the
    variances add, so the std is gamma*sqrt(a1+a2)."""
    s = preset("paper")
    x_hr, x_lr, g = _pair()
    e0 = x_lr - x_hr
    x = x_hr.clone()
    for k in (1, 2):
        x = forward_step(x, e0, k, s, torch.randn(x.shape, generator=g, dtype=x.dtype))
    std_mc = x.std().item()
    printed = s.gamma * (math.sqrt(s.alpha[1]) + math.sqrt(s.alpha[2]))
    correct = s.gamma * math.sqrt(s.alpha[1] + s.alpha[2])
    assert std_mc == pytest.approx(correct, rel=0.01)
    assert abs(std_mc - printed) / printed > 0.1


@pytest.mark.parametrize("t", [2, 4, 10, 15])
def test_posterior_eq9_is_normalised_product_of_eq8_gaussians(t):
    """Eq (8): q(x_{t-1}|x_t, x_HR) is proportional to q(x_t|x_{t-1}) q(x_{t-1}|x_HR); integrate
    the product numerically on a grid and compare its moments with eq (9)."""
    s = preset("paper")
    x_hr, x_lr, x_t = 0.3, -0.5, 0.1
    e0 = x_lr - x_hr
    grid = np.linspace(-8, 8, 400_001)
    a, b_prev = s.alpha[t], s.beta[t - 1]
    lik = np.exp(-((x_t - grid - a * e0) ** 2) / (2 * s.gamma**2 * a))  # eq (1)
    prior = np.exp(-((grid - x_hr - b_prev * e0) ** 2) / (2 * s.gamma**2 * b_prev))  # eq (4)
    w = lik * prior
    w /= np.trapezoid(w, grid)
    m_num = np.trapezoid(grid * w, grid)
    v_num = np.trapezoid((grid - m_num) ** 2 * w, grid)
    mean, var = posterior(
        torch.tensor([[[[x_t]]]], dtype=torch.float64),
        torch.tensor([[[[x_hr]]]], dtype=torch.float64),
        t,
        s,
    )
    assert mean.item() == pytest.approx(m_num, abs=1e-6)
    assert var.item() == pytest.approx(v_num, rel=1e-4)


def test_posterior_at_t1_is_x_hr_without_noise():
    s = preset("paper")
    x_t, x_hr = torch.randn(3, 1, 4, 4), torch.randn(3, 1, 4, 4)
    mean, var = posterior(x_t, x_hr, 1, s)
    torch.testing.assert_close(mean, x_hr)
    assert torch.all(var == 0)


def test_eq11_uses_the_network_prediction_as_x_hr():
    s = preset("paper").respace(4)
    x_t, x_lr, x_hr = (torch.randn(2, 1, 5, 5) for _ in range(3))
    seen = {}

    def net(xt, xl, tm):
        seen["t"] = tm.tolist()
        return x_hr

    mean, var, x0 = p_mean_variance(net, x_t, x_lr, torch.tensor([3, 3]), s)
    m_ref, v_ref = posterior(x_t, x_hr, 3, s)
    torch.testing.assert_close(mean, m_ref)
    torch.testing.assert_close(var, v_ref)
    assert seen["t"] == [10, 10]  # respaced step 3 is original step 10


@pytest.mark.parametrize("K", [1, 2, 4, 15])
def test_oracle_network_recovers_x_hr_exactly(K):
    s = preset("paper")
    g = torch.Generator().manual_seed(1)
    x_hr = torch.randn(4, 1, 16, 12, generator=g)
    x_lr = x_hr + 0.3 * torch.randn(4, 1, 16, 12, generator=g)
    sched = s.respace(K)
    out, traj = sample(lambda xt, xl, t: x_hr, x_lr, sched, generator=g, return_trajectory=True)
    assert len(traj) == K + 1
    torch.testing.assert_close(out, x_hr, rtol=0, atol=1e-6)


def test_first_sampling_state_is_lr_plus_prior_noise():
    s = preset("paper").respace(4)
    x_lr = torch.full((64, 1, 32, 32), -0.2)
    _, traj = sample(
        lambda xt, xl, t: torch.zeros_like(xt),
        x_lr,
        s,
        generator=torch.Generator().manual_seed(0),
        return_trajectory=True,
    )
    x_T = traj[0]
    assert x_T.mean().item() == pytest.approx(-0.2, abs=0.01)
    assert x_T.var().item() == pytest.approx(s.gamma**2 * 0.9999, rel=0.02)


def test_sampler_is_reproducible_and_ensemble_has_spread():
    s = preset("paper").respace(4)
    x_lr = torch.randn(2, 1, 8, 8)

    def net(xt, xl, t):  # a predictor that passes some noise through
        return 0.5 * xt + 0.5 * xl

    a = sample(net, x_lr, s, generator=torch.Generator().manual_seed(3))
    b = sample(net, x_lr, s, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    ens = sample_ensemble(net, x_lr, s, 6, generator=torch.Generator().manual_seed(3), chunk=5)
    assert ens.samples.shape == (2, 6, 1, 8, 8)
    torch.testing.assert_close(ens.mean, ens.samples.mean(1))
    assert torch.all(ens.std > 0)
    oracle = sample_ensemble(lambda xt, xl, t: xl, x_lr, s, 3)
    assert torch.all(oracle.std == 0)


@pytest.mark.parametrize("t", [1, 2, 4, 15])
def test_reverse_step_at_full_stochasticity_is_eq9(t):
    """reverse_step(stochasticity=1) reduces to eq (9)'s posterior mean and variance, for any
    x_t (not only one drawn from eq (4)), on the full and a respaced schedule."""
    g = torch.Generator().manual_seed(3)
    for s in (preset("paper"), preset("paper").respace(4)):
        tt = min(t, s.T)
        x_t, x_hr, x_lr = (torch.randn(3, 1, 6, 5, generator=g, dtype=torch.float64) for _ in "abc")
        mean, var = reverse_step(x_t, x_hr, x_lr, tt, s, 1.0)
        m_ref, v_ref = posterior(x_t, x_hr, tt, s)
        torch.testing.assert_close(mean, m_ref, rtol=0, atol=1e-12)
        torch.testing.assert_close(var.expand_as(mean), v_ref.expand_as(mean), rtol=0, atol=1e-12)


@pytest.mark.parametrize("eta", [0.0, 0.5])
@pytest.mark.parametrize("t", [2, 4])
def test_reverse_step_keeps_eq4_marginal_at_any_stochasticity(eta, t):
    """Monte-Carlo: x_t ~ eq (4) at t, one reverse step with the exact x_HR, and x_{t-1} has
    eq (4)'s marginal at t-1 (mean x_HR + beta_{t-1} e0, variance gamma^2 beta_{t-1})."""
    s = preset("paper").respace(4)
    x_hr, x_lr, g = _pair()
    x_t = q_sample(x_hr, x_lr, t, s, torch.randn(x_hr.shape, generator=g, dtype=x_hr.dtype))
    mean, var = reverse_step(x_t, x_hr, x_lr, t, s, eta)
    x_prev = mean + var.sqrt() * torch.randn(x_hr.shape, generator=g, dtype=x_hr.dtype)
    b_prev = s.beta[t - 1]
    want_mean, want_var = 0.3 + b_prev * (-0.8), s.gamma**2 * b_prev
    assert abs(x_prev.mean().item() - want_mean) < 5 * math.sqrt(want_var / N)
    assert x_prev.var().item() == pytest.approx(want_var, rel=0.02)
    if eta == 0.0:
        assert torch.all(var == 0)


def test_deterministic_sampler_is_a_function_of_x_T_and_recovers_an_oracle():
    s = preset("paper").respace(4)
    g = torch.Generator().manual_seed(2)
    x_hr = torch.randn(2, 1, 8, 8, generator=g)
    x_lr = x_hr + 0.3 * torch.randn(2, 1, 8, 8, generator=g)
    out = sample(lambda xt, xl, t: x_hr, x_lr, s, generator=g, stochasticity=0.0)
    torch.testing.assert_close(out, x_hr, rtol=0, atol=1e-6)

    def net(xt, xl, t):  # an imperfect network: the output depends on the path
        return 0.5 * xt + 0.5 * xl

    a = sample(net, x_lr, s, generator=torch.Generator().manual_seed(5), stochasticity=0.0)
    b = sample(net, x_lr, s, generator=torch.Generator().manual_seed(5), stochasticity=0.0)
    c = sample(net, x_lr, s, generator=torch.Generator().manual_seed(5), stochasticity=1.0)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert not torch.allclose(a, c)
    with pytest.raises(ValueError, match="stochasticity must be in"):
        reverse_step(x_lr, x_hr, x_lr, 2, s, 1.5)


@pytest.mark.parametrize("t", [1, 3, 8, 15])
def test_skip_scalings_are_the_least_squares_fit_of_d_on_x_t(t):
    """Monte-Carlo: d = x_HR - x_LR with sd sigma_data, x_t drawn by eq (4); regressing d on
    x_t - x_LR gives c_skip, and the residual's sd is c_out (closed form of skip_scalings)."""
    s = preset("paper")
    g = torch.Generator().manual_seed(7)
    sigma = 0.1
    x_lr = torch.randn(N, generator=g, dtype=torch.float64)
    d = sigma * torch.randn(N, generator=g, dtype=torch.float64)
    x_t = q_sample(x_lr + d, x_lr, t, s, torch.randn(N, generator=g, dtype=torch.float64))
    u = x_t - x_lr
    coef = (u * d).sum() / (u * u).sum()
    c_skip, c_out = skip_scalings(torch.tensor(s.beta[t], dtype=torch.float64), s.gamma, sigma)
    assert coef.item() == pytest.approx(c_skip.item(), abs=0.01)
    assert (d - coef * u).std().item() == pytest.approx(c_out.item(), rel=0.01)
    with pytest.raises(ValueError, match="sigma_data must be > 0"):
        skip_scalings(torch.tensor(0.5), 2.0, 0.0)


def test_skip_scalings_keep_x_t_near_t1_and_x_lr_near_T():
    s = preset("paper")
    c1, o1 = skip_scalings(torch.tensor(s.beta[1]), s.gamma, 0.1)
    cT, oT = skip_scalings(torch.tensor(s.beta[s.T]), s.gamma, 0.1)
    assert c1.item() > 0.8 and cT.item() < 1e-4
    assert o1.item() < 0.05 and oT.item() == pytest.approx(0.1, rel=0.01)


@pytest.mark.parametrize("tau", [0.0, 0.5])
def test_temperature_scales_every_noise_draw(tau):
    """x_T's spread around x_LR is tau * gamma sqrt(beta_T); at tau = 0 the whole chain is a
    function of x_LR alone (any generator seed gives the same output)."""
    s = preset("paper").respace(4)
    x_lr = torch.full((64, 1, 32, 32), -0.2, dtype=torch.float64)
    _, traj = sample(
        lambda xt, xl, t: torch.zeros_like(xt),
        x_lr,
        s,
        generator=torch.Generator().manual_seed(0),
        return_trajectory=True,
        temperature=tau,
    )
    assert (traj[0] - x_lr).std().item() == pytest.approx(tau * s.prior_std, rel=0.02, abs=1e-12)

    def net(xt, xl, t):
        return 0.5 * xt + 0.5 * xl

    outs = [
        sample(net, x_lr[:2], s, generator=torch.Generator().manual_seed(k), temperature=tau)
        for k in (1, 2)
    ]
    assert torch.equal(outs[0], outs[1]) == (tau == 0.0)
    with pytest.raises(ValueError, match="temperature must be in"):
        sample(net, x_lr[:1], s, temperature=-0.1)
