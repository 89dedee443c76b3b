"""Res-SRDiff's chain levers of issue 15: the skip parametrisation (options.sigma_data) and the
reverse-step stochasticity (infer.stochasticity), as configs, predictor and signature see them."""

from __future__ import annotations

import pytest
import torch

from ressrdiff.config import ConfigError, RunConfig, load_config
from ressrdiff.diffusion import skip_scalings
from ressrdiff.methods import build_method


def _cfg(name: str = "acquisition-cpu-skip", **over) -> RunConfig:
    return load_config(name).replace(**{"loss.lpips": "off", **over})


def test_ablation_configs_differ_from_acquisition_cpu_in_one_lever():
    base = load_config("acquisition-cpu").to_dict()
    skip = load_config("acquisition-cpu-skip").to_dict()
    long = load_config("acquisition-cpu-long").to_dict()
    for d in (base, skip, long):
        d.pop("name")
    assert skip.pop("options") == {"sigma_data": 0.1} and base.pop("options") == {}
    assert skip == base
    assert long.pop("options") == {}
    assert long["train"].pop("steps") == 8000 and base["train"].pop("steps") == 3000
    assert long == base


def test_untrained_skip_predictor_is_the_linear_estimate():
    """The head starts at zero, so g = x_LR + c_skip (x_t - x_LR) exactly, at every t."""
    m = build_method(_cfg())
    g = torch.Generator().manual_seed(0)
    x_t, x_lr = torch.randn(3, 1, 16, 16, generator=g), torch.randn(3, 1, 16, 16, generator=g)
    t = torch.tensor([1, 7, 15])
    out = m.predictor()(x_t, x_lr, t)
    b = m.schedule.table("beta", t, x_t)
    c_skip, _ = skip_scalings(b, m.schedule.gamma, 0.1)
    torch.testing.assert_close(out, x_lr + c_skip * (x_t - x_lr), rtol=0, atol=1e-6)
    # the paper's parametrisation starts at x_LR instead
    plain = build_method(_cfg("acquisition-cpu"))
    torch.testing.assert_close(plain.predictor()(x_t, x_lr, t), x_lr, rtol=0, atol=0)


def test_skip_option_is_checked_and_signed():
    with pytest.raises(ValueError, match="residual_output"):
        build_method(_cfg(**{"model.residual_output": False}))
    with pytest.raises(ValueError, match="unknown for method"):
        build_method(_cfg(**{"options.sigma": 0.1}))
    with pytest.raises(ValueError, match="must be >= 0"):
        build_method(_cfg(**{"options.sigma_data": -1.0}))
    skip, plain = build_method(_cfg()), build_method(_cfg("acquisition-cpu"))
    assert skip.signature()["options"] == {"sigma_data": 0.1}
    assert "options" not in plain.signature()  # older checkpoints still load


def test_stochasticity_is_an_inference_setting():
    cfg = _cfg("acquisition-cpu")
    assert cfg.infer.stochasticity == 1.0 and "infer" not in cfg.to_dict()
    det = cfg.replace(**{"infer.stochasticity": 0})
    assert det.to_dict()["infer"]["stochasticity"] == 0.0
    assert RunConfig.from_dict(det.to_dict()).infer.stochasticity == 0.0
    with pytest.raises(ConfigError, match="infer.stochasticity must be in"):
        cfg.replace(**{"infer.stochasticity": 2})
    cold = cfg.replace(**{"infer.temperature": 0})
    assert cold.to_dict()["infer"]["temperature"] == 0.0
    assert "stochasticity" not in cold.to_dict()["infer"]  # left out while 1
    with pytest.raises(ConfigError, match="infer.temperature must be in"):
        cfg.replace(**{"infer.temperature": 1.5})
    m = build_method(det)
    torch.manual_seed(0)
    torch.nn.init.normal_(m.net.out[-1].weight, std=0.1)  # a head that is not zero
    x = torch.randn(1, 1, 16, 16)
    a = m.super_resolve(x, steps=4, generator=torch.Generator().manual_seed(1), window=None)
    b = m.super_resolve(
        x, steps=4, generator=torch.Generator().manual_seed(1), window=None, stochasticity=1.0
    )
    c = m.super_resolve(x, steps=4, generator=torch.Generator().manual_seed(1), window=None)
    torch.testing.assert_close(a, c, rtol=0, atol=0)  # the model's setting, deterministic
    assert (a - b).abs().max() > 1e-4  # the argument overrides it
    # temperature 0 (with the model's deterministic steps): the same output for any seed
    t0 = [
        m.super_resolve(
            x, steps=4, generator=torch.Generator().manual_seed(k), window=None, temperature=0.0
        )
        for k in (1, 2)
    ]
    torch.testing.assert_close(t0[0], t0[1], rtol=0, atol=0)


def test_exposure_config_continues_acquisition_cpu_long_with_one_lever():
    long = load_config("acquisition-cpu-long").to_dict()
    exp = load_config("acquisition-cpu-exposure").to_dict()
    for d in (long, exp):
        d.pop("name")
        d["train"].pop("steps")
        d["train"].pop("keep_every")
    assert exp.pop("options") == {"exposure": 0.5} and long.pop("options") == {}
    assert exp == long
    # training-only: the signature is acquisition-cpu-long's, so its checkpoint resumes
    a = build_method(_cfg("acquisition-cpu-exposure")).signature()
    assert a == build_method(_cfg("acquisition-cpu-long")).signature()


def test_exposed_inputs_are_eq4_around_the_networks_own_prediction():
    """exposure=1: every sample with t < T gets x_t = eq (4) around g(x_T, T) (its x_T drawn
    from the sample's seed), with the sample's own eq-(4) noise; t = T keeps the x_HR input."""
    from ressrdiff.diffusion import q_sample
    from ressrdiff.methods.res_srdiff import exposure_draws

    m = build_method(_cfg("acquisition-cpu-exposure", **{"options.exposure": 1.0}))
    g = torch.Generator().manual_seed(1)
    x_hr, x_lr = torch.rand(3, 1, 16, 16, generator=g), torch.rand(3, 1, 16, 16, generator=g)
    noise = torch.randn(3, 1, 16, 16, generator=g)
    T = m.schedule.T
    t = torch.tensor([1, 9, T])
    seeds = torch.tensor([11, 12, 13])
    x_t = q_sample(x_hr, x_lr, t, m.schedule, noise)
    got = m.exposed_inputs(x_t, x_hr, x_lr, t, noise, seeds)
    _, noise_T = exposure_draws(seeds, (1, 16, 16), x_hr.device, x_hr.dtype)
    t_T = torch.full_like(t, T)
    with torch.no_grad():
        x0 = m.predictor()(q_sample(x_hr, x_lr, t_T, m.schedule, noise_T), x_lr, t_T)
    want = q_sample(x0, x_lr, t, m.schedule, noise)
    torch.testing.assert_close(got[:2], want[:2], rtol=0, atol=1e-6)
    torch.testing.assert_close(got[2], x_t[2], rtol=0, atol=0)
    assert not torch.allclose(got[0], x_t[0])  # the (untrained: x_LR) prediction is not x_HR
    # the draws are a function of the seeds alone, independent of per_sample_draws' stream
    c1, n1 = exposure_draws(seeds, (1, 4, 4), x_hr.device, x_hr.dtype)
    c2, n2 = exposure_draws(seeds.flip(0), (1, 4, 4), x_hr.device, x_hr.dtype)
    torch.testing.assert_close(c1, c2.flip(0))
    torch.testing.assert_close(n1, n2.flip(0))
    assert ((c1 >= 0) & (c1 < 1)).all()


def test_exposure_fraction_is_honoured_and_checked():
    from ressrdiff.methods.res_srdiff import exposure_draws

    coin, _ = exposure_draws(torch.arange(2000), (1, 1, 1), torch.device("cpu"), torch.float32)
    assert abs(float((coin < 0.5).float().mean()) - 0.5) < 0.05  # 4.5 binomial sigmas
    with pytest.raises(ValueError, match="exposure must be in"):
        build_method(_cfg("acquisition-cpu-exposure", **{"options.exposure": 1.5}))
    m = build_method(_cfg("acquisition-cpu-exposure", **{"options.exposure": 0.0}))
    x = torch.rand(2, 1, 8, 8)
    assert m.exposed_inputs(x, x, x, torch.tensor([1, 2]), x, torch.tensor([1, 2])) is x


def test_augmentation_config_differs_from_exposure_in_the_augmentation_alone():
    exp = load_config("acquisition-cpu-exposure").to_dict()
    aug = load_config("acquisition-cpu-exposure-aug").to_dict()
    for d in (exp, aug):
        d.pop("name")
    assert aug["data"].pop("intensity") == {
        "prob": 0.5,
        "bias_coeff": 0.3,
        "gamma": [0.7, 1.5],
        "noise_sd": 0.03,
    }
    assert "intensity" not in exp["data"] and aug == exp
