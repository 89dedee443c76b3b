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
