"""TM-DDPM and I2SB: their maths checked numerically, and both methods end to end on tiny data."""

from __future__ import annotations

import importlib
import math

import numpy as np
import pytest
import torch
from conftest import TINY_MODEL, SyntheticPairs, tiny_config

from ressrdiff.bridge import EQUATIONS as BRIDGE_EQUATIONS
from ressrdiff.bridge import (
    BridgeSchedule,
    bridge_marginal,
    bridge_posterior,
    nfe_grid,
    predict_x0,
    symmetric_betas,
    training_target,
)
from ressrdiff.bridge import sample as bridge_sample
from ressrdiff.config import load_config
from ressrdiff.ddpm_process import EQUATIONS as DDPM_EQUATIONS
from ressrdiff.ddpm_process import (
    DDPMSchedule,
    forward_step,
    linear_betas,
    mean_from_eps,
    p_mean_variance,
    posterior,
    q_sample,
)
from ressrdiff.ddpm_process import predict_x0 as ddpm_predict_x0
from ressrdiff.ddpm_process import sample as ddpm_sample
from ressrdiff.methods import build_method, load_method
from ressrdiff.nn.vit import ViT, ViTConfig, sincos_position_embedding_2d
from ressrdiff.training import Trainer

M = 10_000  # Monte-Carlo samples (pixels of one image)


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """One intra-op thread in this module (also while the module-scoped ``trained`` fixture
    trains). The models are tiny, and on the shared, loaded CPU two OpenMP threads made a
    training step of the tiny U-Net ~50x slower in CPU time (5 s instead of 0.1 s)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def _one_thread_each(_threads):
    """Runs after conftest's ``_threads`` (which sets two threads before every test)."""
    torch.set_num_threads(1)


def _const(value: float, n: int = M) -> torch.Tensor:
    """One "image" of n pixels (batch 1, so that schedule look-ups stay cheap)."""
    return torch.full((1, 1, n, 1), value, dtype=torch.float64)


def _assert_moments(x: torch.Tensor, mean: float, var: float, rel_var: float = 0.06) -> None:
    se = math.sqrt(max(var, 1e-12) / x.numel())
    assert abs(x.mean().item() - mean) < 5 * se + 1e-9, (x.mean().item(), mean)
    assert x.var().item() == pytest.approx(var, rel=rel_var, abs=1e-12)


@pytest.mark.parametrize("table", [DDPM_EQUATIONS, BRIDGE_EQUATIONS])
def test_each_equation_maps_to_one_function_that_cites_it(table):
    assert len(set(table.values())) == len(table)
    for eq, dotted in table.items():
        module, _, attr = dotted.rpartition(".")
        if module.endswith(("TMDDPM", "I2SB")):  # a method of a class
            module, _, cls = module.rpartition(".")
            obj = getattr(getattr(importlib.import_module(module), cls), attr)
        else:
            obj = getattr(importlib.import_module(module), attr)
        assert eq.lower() in (obj.__doc__ or "").lower(), f"{dotted} does not cite {eq}"


# -- DDPM (Ho et al. 2020) ------------------------------------------------------------------------
def test_linear_betas_are_ho_et_al_schedule():
    b = linear_betas(1000)
    assert b[0] == 1e-4 and b[-1] == pytest.approx(0.02)
    assert np.allclose(np.diff(b), (0.02 - 1e-4) / 999)
    s = DDPMSchedule.linear()
    # alpha_bar_T = prod(1 - beta_t): x_T is almost pure noise, so N(0, I) is the right prior
    assert s.alpha_bar[-1] == pytest.approx(np.prod(1 - b), rel=1e-12)
    assert s.alpha_bar[-1] < 1e-4
    with pytest.raises(ValueError, match="beta_1"):
        linear_betas(10, 0.1, 0.01)


@pytest.mark.parametrize("t", [1, 40, 200])
def test_ddpm_forward_chain_matches_eq4_marginal(t):
    """Chaining eq (2) t times gives eq (4): N(sqrt(abar_t) x0, (1 - abar_t))."""
    s = DDPMSchedule.linear()
    g = torch.Generator().manual_seed(t)
    x0 = _const(0.6)
    x = x0.clone()
    for k in range(1, t + 1):
        x = forward_step(x, k, s, torch.randn(x.shape, generator=g, dtype=x.dtype))
    ab = s.alpha_bar[t]
    _assert_moments(x, math.sqrt(ab) * 0.6, 1 - ab)
    y = q_sample(x0, t, s, torch.randn(x.shape, generator=g, dtype=x.dtype))
    _assert_moments(y, math.sqrt(ab) * 0.6, 1 - ab)


@pytest.mark.parametrize("t", [2, 10, 500, 1000])
def test_ddpm_posterior_eqs6_7_is_bayes_rule(t):
    """q(x_{t-1} | x_t, x_0) is proportional to q(x_t | x_{t-1}) q(x_{t-1} | x_0): integrate
    the product on a grid and compare its moments with eqs (6)-(7)."""
    s = DDPMSchedule.linear()
    x0 = 0.4
    xt = math.sqrt(s.alpha_bar[t]) * x0 - 0.7 * math.sqrt(1 - s.alpha_bar[t])  # a typical x_t
    b, ab_prev = s.beta[t], s.alpha_bar[t - 1]
    centre = math.sqrt(ab_prev) * x0
    grid = centre + math.sqrt(1 - ab_prev) * np.linspace(-8, 8, 400_001)
    log_lik = -((xt - math.sqrt(1 - b) * grid) ** 2) / (2 * b)  # eq (2)
    log_prior = -((grid - centre) ** 2) / (2 * (1 - ab_prev))  # eq (4)
    w = np.exp(log_lik + log_prior - (log_lik + log_prior).max())
    w /= np.trapezoid(w, grid)
    m_num = np.trapezoid(grid * w, grid)
    v_num = np.trapezoid((grid - m_num) ** 2 * w, grid)
    mean, var = posterior(
        torch.tensor([[[[xt]]]], dtype=torch.float64),
        torch.tensor([[[[x0]]]], dtype=torch.float64),
        t,
        s,
    )
    assert mean.item() == pytest.approx(m_num, abs=1e-7)
    assert var.item() == pytest.approx(v_num, rel=1e-4)


def test_posterior_at_t1_returns_x0_and_eq11_equals_eq7_at_eq15():
    s = DDPMSchedule.linear()
    g = torch.Generator().manual_seed(0)
    x0 = torch.rand(6, 1, 4, 4, generator=g, dtype=torch.float64) * 2 - 1
    eps = torch.randn(x0.shape, generator=g, dtype=torch.float64)
    t = torch.tensor([1, 2, 10, 333, 999, 1000])
    x_t = q_sample(x0, t, s, eps)
    # eq (15) inverts eq (4)
    torch.testing.assert_close(ddpm_predict_x0(x_t, eps, t, s), x0, rtol=0, atol=1e-9)
    # eq (11) is the posterior mean (eq 7) at the eq-(15) estimate of x0
    mean7, _ = posterior(x_t, ddpm_predict_x0(x_t, eps, t, s), t, s)
    torch.testing.assert_close(mean_from_eps(x_t, eps, t, s), mean7, rtol=0, atol=1e-9)
    mean, var = posterior(x_t[:1], x0[:1], 1, s)
    torch.testing.assert_close(mean, x0[:1], rtol=0, atol=1e-12)
    assert var.item() == 0.0


def _oracle_eps(x0: torch.Tensor, full: DDPMSchedule):
    def model(x_t, x_lr, t_model):
        ab = full.table("alpha_bar", t_model, x_t)
        return (x_t - ab.sqrt() * x0) / torch.sqrt(1 - ab)

    return model


@pytest.mark.parametrize("K", [1000, 10])
def test_oracle_eps_ddpm_sampler_recovers_x0_through_eq4_marginals(K):
    """With eps computed from the known x_0, ancestral sampling (all steps or respaced) ends at
    x_0, and its intermediate states follow the forward marginals of eq (4)."""
    full = DDPMSchedule.linear()
    s = full if K == 1000 else full.respace(K)
    x0 = _const(0.5)
    g = torch.Generator().manual_seed(1)
    out, traj = ddpm_sample(
        _oracle_eps(x0, full), torch.zeros_like(x0), s, generator=g, return_trajectory=True
    )
    torch.testing.assert_close(out, x0, rtol=0, atol=1e-6)
    assert len(traj) == s.T + 1
    for k in (s.T // 2, max(1, s.T // 10)):
        ab = s.alpha_bar[k]
        _assert_moments(traj[s.T - k], math.sqrt(ab) * 0.5, 1 - ab)
    # the 'beta' variance choice of Ho et al. Sec. 3.2
    x = x0[..., :2, :]
    _, var, _ = p_mean_variance(_oracle_eps(x, full), x, x, 5, s, variance="beta")
    assert var.flatten()[0].item() == pytest.approx(s.beta[5])


@pytest.mark.parametrize("K", [1, 4, 50, 999, 1000])
def test_respaced_ddpm_keeps_alpha_bar_of_kept_steps(K):
    full = DDPMSchedule.linear()
    s = full.respace(K)
    kept = list(s.timesteps)
    assert s.T == K and kept[-1] == 1000
    assert s.alpha_bar[-1] == pytest.approx(full.alpha_bar[-1], rel=1e-10)
    np.testing.assert_allclose(s.alpha_bar[1:], full.alpha_bar[kept], rtol=1e-10)
    if K == 1000:
        np.testing.assert_allclose(s.betas, full.betas, rtol=1e-10)
    with pytest.raises(ValueError, match="end at T"):
        full.subsequence([1, 500])
    with pytest.raises(ValueError, match="K=1001"):
        full.respace(1001)


# -- I2SB (Liu et al. 2023) -----------------------------------------------------------------------
def test_symmetric_betas():
    b = symmetric_betas(1000, 1e-4, 0.3)
    ramp = np.linspace(1e-2, math.sqrt(0.3 / 1000), 1000) ** 2
    np.testing.assert_allclose(b, b[::-1])
    np.testing.assert_allclose(b[:500], ramp[:500])
    assert b[0] == pytest.approx(1e-4) and b.argmax() in (499, 500)
    with pytest.raises(ValueError, match="even"):
        symmetric_betas(7)


def test_bridge_marginal_endpoints_and_closed_form():
    s = BridgeSchedule.symmetric()
    g = torch.Generator().manual_seed(0)
    x0 = torch.rand(3, 1, 5, 5, generator=g, dtype=torch.float64)
    x1 = torch.rand(3, 1, 5, 5, generator=g, dtype=torch.float64)
    m0, v0 = bridge_marginal(x0, x1, 0, s)
    m1, v1 = bridge_marginal(x0, x1, s.N, s)
    torch.testing.assert_close(m0, x0, rtol=0, atol=1e-12)
    torch.testing.assert_close(m1, x1, rtol=0, atol=1e-12)
    assert v0.abs().max().item() == 0.0 and v1.abs().max().item() == 0.0
    # in between: the normalised product N(x; x0, sigma^2) N(x; x1, sigma_bar^2), on a grid
    n = 300
    s2, sb2 = s.sigma2[n], s.sigma2_bar[n]
    grid = np.linspace(-3, 3, 600_001)
    w = np.exp(-((grid - 0.2) ** 2) / (2 * s2) - (grid + 0.7) ** 2 / (2 * sb2))
    w /= np.trapezoid(w, grid)
    m_num = np.trapezoid(grid * w, grid)
    v_num = np.trapezoid((grid - m_num) ** 2 * w, grid)
    mean, var = bridge_marginal(_const(0.2, 1), _const(-0.7, 1), n, s)
    assert mean.item() == pytest.approx(m_num, abs=1e-6)
    assert var.item() == pytest.approx(v_num, rel=1e-4)


@pytest.mark.parametrize("n", [1, 50, 100, 170, 199])
def test_bridge_marginal_matches_simulated_brownian_bridge(n):
    """Simulate dX = sqrt(beta) dW from x_0 (independent increments of variance beta_i), pin it
    at x_1 (X_n + sigma_n^2/sigma_N^2 (x_1 - X_N)) and compare with eq (11)."""
    s = BridgeSchedule.symmetric(N=200)
    g = torch.Generator().manual_seed(n)
    inc = torch.randn(M, s.N, generator=g, dtype=torch.float64) * torch.tensor(s.betas).sqrt()
    walk = 0.3 + torch.cat([torch.zeros(M, 1, dtype=torch.float64), inc.cumsum(1)], dim=1)
    pinned = walk[:, n] + s.sigma2[n] / s.sigma2[-1] * (-0.5 - walk[:, -1])
    mean, var = bridge_marginal(_const(0.3, 1), _const(-0.5, 1), n, s)
    _assert_moments(pinned, mean.item(), var.item())


def test_training_target_is_inverted_by_predict_x0():
    s = BridgeSchedule.symmetric(N=100)
    g = torch.Generator().manual_seed(0)
    x0, x_n = (torch.randn(4, 1, 3, 3, generator=g, dtype=torch.float64) for _ in range(2))
    n = torch.tensor([1, 7, 50, 100])
    eps = training_target(x_n, x0, n, s)
    torch.testing.assert_close(eps * torch.tensor(s.sigma2)[n].sqrt().view(-1, 1, 1, 1), x_n - x0)
    torch.testing.assert_close(predict_x0(x_n, eps, n, s), x0, rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="n = 0"):
        training_target(x_n, x0, torch.tensor([0, 1, 2, 3]), s)
    with pytest.raises(ValueError, match="n_prev < n"):
        bridge_posterior(x_n, x0, 5, 5, s)


@pytest.mark.parametrize("nfe", [1, 10, 250])
def test_oracle_i2sb_sampler_recovers_x0_through_bridge_marginals(nfe):
    """With eps = (x_n - x_0)/sigma_n from the known x_0, the sampler started at x_1 ends at x_0
    and each intermediate state follows the bridge marginal of eq (11) (posterior chaining)."""
    s = BridgeSchedule.symmetric()
    x0, x1 = _const(0.3), _const(-0.5)

    def oracle(x_n, x_lr, n):
        return (x_n - x0) / torch.tensor(s.sigma2, dtype=x_n.dtype)[n].sqrt().view(-1, 1, 1, 1)

    g = torch.Generator().manual_seed(nfe)
    out, traj = bridge_sample(oracle, x1, x1, s, nfe, generator=g, return_trajectory=True)
    torch.testing.assert_close(out, x0, rtol=0, atol=1e-9)
    grid = nfe_grid(s.N, nfe)
    assert len(traj) == nfe + 1 and grid[0] == 0 and grid[-1] == s.N
    for k in {nfe // 2, nfe // 10} - {0}:
        mean, var = bridge_marginal(_const(0.3, 1), _const(-0.5, 1), grid[k], s)
        _assert_moments(traj[nfe - k], mean.item(), var.item())


# -- the methods end to end ---------------------------------------------------------------------
TINY_VIT = {"backbone": "vit", "patch_size": 4, "embed_dim": 32, "depth": 3, "num_heads": 2}
METHOD_CASES = {
    "tm-ddpm-vit": ("tm-ddpm", TINY_VIT, {"T": 100}),
    "tm-ddpm-unet": ("tm-ddpm", {"backbone": "unet", **TINY_MODEL}, {"T": 100}),
    "i2sb": ("i2sb", dict(TINY_MODEL), {"N": 100, "nfe": 4, "x1_noise": 0.05}),
}


def _cfg(case: str, **over):
    method, model, options = METHOD_CASES[case]
    return tiny_config(method=method, model=dict(model), options=dict(options), **over)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Each method trained for 3 steps by the Trainer (EMA on, checkpoint at step 3)."""
    out = {}
    for case in METHOD_CASES:
        d = tmp_path_factory.mktemp(case)
        tr = Trainer(_cfg(case, **{"train.steps": 3}), d, dataset=SyntheticPairs(), progress=False)
        tr.train()
        out[case] = (tr, d)
    return out


@pytest.mark.parametrize("case", list(METHOD_CASES))
def test_a_few_training_steps_lower_the_loss(case):
    """A few optimiser steps on one batch (same seeds, hence the same t and noise each time)
    lower the training loss on that batch."""
    torch.manual_seed(0)
    m = build_method(_cfg(case))
    pairs = SyntheticPairs(n=4)
    batch = {"hr": pairs.hr, "lr": pairs.lr, "seed": torch.arange(4)}
    opt = torch.optim.Adam(m.parameters(), lr=1e-2)
    losses = []
    for _ in range(10 if "vit" in case else 5):
        loss = m(batch)["loss"]
        losses.append(loss.item())
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        final = m(batch)["loss"].item()
    assert final < 0.9 * losses[0], losses


@pytest.mark.parametrize("case", list(METHOD_CASES))
def test_super_resolve_shape_dtype_range_and_seed(trained, case):
    tr, _ = trained[case]
    m = tr.method.eval()
    x_lr = SyntheticPairs(n=2, size=24).lr[..., :20]  # 24 x 20: not square
    y = m.super_resolve(x_lr, steps=3, generator=torch.Generator().manual_seed(5))
    assert y.shape == x_lr.shape and y.dtype == torch.float32
    assert torch.isfinite(y).all() and y.abs().max() <= 1.0  # the last step returns clipped x0
    y2 = m.super_resolve(x_lr, steps=3, generator=torch.Generator().manual_seed(5))
    assert torch.equal(y, y2)
    with pytest.raises(ValueError):
        m.super_resolve(x_lr, steps=10_000)
    # N samples per input (ressrdiff sr --samples): the draws differ, mean and std are theirs
    ens = m.super_resolve_ensemble(x_lr, 3, steps=2, generator=torch.Generator().manual_seed(1))
    assert ens.samples.shape == (2, 3, *x_lr.shape[1:])
    assert ens.std.amax() > 0
    torch.testing.assert_close(ens.mean, ens.samples.mean(1))
    torch.testing.assert_close(ens.std, ens.samples.std(1))


@pytest.mark.parametrize("case", list(METHOD_CASES))
def test_checkpoint_round_trip_is_exact(trained, case):
    tr, d = trained[case]
    for use_ema, source in ((False, tr.method.net), (True, tr.ema["net"].shadow)):
        m = load_method(d / "last.pt", use_ema=use_ema, expect=_cfg(case))
        assert m.trained_step == 3 and type(m) is type(tr.method)
        ref = source.state_dict()
        for k, v in m.net.state_dict().items():
            assert torch.equal(v, ref[k]), k
    m = load_method(d / "last.pt", use_ema=False)
    x_lr = SyntheticPairs(n=1, size=16).lr
    a = m.super_resolve(x_lr, steps=2, generator=torch.Generator().manual_seed(3))
    b = tr.method.eval().super_resolve(x_lr, steps=2, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


def test_checkpoint_of_other_process_is_refused(trained):
    from ressrdiff.checkpoint import CheckpointError

    _, d = trained["tm-ddpm-unet"]
    with pytest.raises(CheckpointError, match="process.T"):
        load_method(d / "last.pt", expect=_cfg("tm-ddpm-unet").replace(**{"options.T": 50}))


def test_ddpm_default_steps_are_all_T_and_respacing_is_used():
    m = build_method(_cfg("tm-ddpm-vit"))
    assert m.sampling_schedule(None).T == 100 and m.nfe_default == 100
    s = m.sampling_schedule(7)
    assert s.T == 7 and s.timesteps[-1] == 100
    m2 = build_method(_cfg("tm-ddpm-vit", **{"options.sample_steps": 5}))
    assert m2.sampling_schedule(None).T == 5 and m2.nfe_default == 5
    assert build_method(_cfg("i2sb")).nfe_default == 4


def test_vit_on_non_square_inputs():
    torch.manual_seed(0)
    net = ViT(ViTConfig(patch_size=8, embed_dim=32, depth=2, num_heads=2, max_timestep=100))
    x = torch.randn(2, 1, 20, 28, requires_grad=True)
    y = net(x, torch.randn(2, 1, 20, 28), torch.tensor([3, 90]))
    assert y.shape == (2, 1, 20, 28) and torch.isfinite(y).all()
    y[:, :, -1, -1].sum().backward()  # the bottom-right pixel (in the padded patch) is wired
    assert x.grad[:, :, -1, -1].abs().sum() > 0
    # the time token conditions the output
    assert not torch.allclose(y, net(x, torch.zeros(2, 1, 20, 28), torch.tensor([3, 90])))
    assert not torch.allclose(y, net(x, x.detach() * 0, torch.tensor([50, 50])))
    # position code: rows in the first half of channels, columns in the second half
    pe = sincos_position_embedding_2d(3, 5, 16, torch.device("cpu")).view(3, 5, 16)
    assert torch.equal(pe[1, 0, :8], pe[1, 4, :8]) and torch.equal(pe[0, 2, 8:], pe[2, 2, 8:])
    assert not torch.equal(pe[0, 0], pe[1, 0])


def test_bad_options_are_one_line_errors():
    with pytest.raises(ValueError, match="unknown option"):
        build_method(_cfg("tm-ddpm-vit", **{"options.steps": 3}))
    with pytest.raises(ValueError, match="backbone"):
        build_method(_cfg("tm-ddpm-vit", **{"model.backbone": "mlp"}))
    with pytest.raises(ValueError, match="residual_output"):
        build_method(_cfg("tm-ddpm-unet", **{"model.residual_output": True}))
    with pytest.raises(ValueError, match="nfe"):
        build_method(_cfg("i2sb", **{"options.nfe": 0}))
    with pytest.raises(ValueError, match="ViTConfig"):
        build_method(_cfg("tm-ddpm-vit", **{"model.embed_dim": 30}))


# -- shipped configs ----------------------------------------------------------------------------
@pytest.mark.parametrize("base", ["tm-ddpm", "tm-ddpm-unet", "i2sb"])
def test_shipped_configs_build(base):
    cfgs = {p: load_config(f"{base}-{p}") for p in ("smoke", "cpu", "gpu")}
    cpu = cfgs["cpu"]
    ref = load_config("default-cpu")
    assert (cpu.train.steps, cpu.train.batch_size, cpu.data.patch) == (400, 8, 64)
    assert cpu.data == ref.data  # same source, preset, re-gridding and patch size
    assert cfgs["smoke"].data.source == "demo"
    for p in ("smoke", "cpu"):
        m = build_method(cfgs[p].replace(**{"loss.lpips": "off"}))
        assert m.name == cfgs[p].method
    if base != "tm-ddpm":  # the same network as Res-SRDiff's, time range 1000 steps
        assert m.model_cfg["max_timestep"] == 1000
        unet = build_method(ref.replace(**{"loss.lpips": "off"})).model_cfg.to_dict()
        skip = ("backbone", "max_timestep", "residual_output")  # eps cannot be residual to x_LR
        same = {k: v for k, v in m.model_cfg.items() if k not in skip}
        assert same == {k: v for k, v in unet.items() if k not in skip}


@pytest.mark.parametrize("name", ["smoke", "default-cpu", "paper-gpu"])
def test_noswin_ablation_configs_differ_only_in_swin(name):
    a, b = load_config(name).to_dict(), load_config(f"{name}-noswin").to_dict()
    assert b["model"].pop("use_swin") is False and "use_swin" not in a["model"]
    a.pop("name"), b.pop("name")
    assert a == b
