"""The one-call regression control: Res-SRDiff's U-Net and eq (13) loss, no diffusion."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from conftest import SyntheticPairs, tiny_config, write_npz_run

from ressrdiff.checkpoint import load_checkpoint
from ressrdiff.config import load_config
from ressrdiff.methods import METHODS, build_method, load_method
from ressrdiff.methods.regression import Regression
from ressrdiff.methods.res_srdiff import loss_eq13
from ressrdiff.timing import time_method


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(2)


def regression_config(**overrides):
    return tiny_config(**{"method": "regression", "model.residual_output": True, **overrides})


def batch(n: int = 4) -> dict[str, torch.Tensor]:
    p = SyntheticPairs(n=n)
    return {"hr": p.hr, "lr": p.lr, "seed": torch.arange(n)}


def test_smoke_config_builds_the_shared_unet_as_an_identity():
    cfg = load_config("regression-smoke").replace(**{"loss.lpips": "off"})
    m = build_method(cfg)
    assert isinstance(m, Regression) and METHODS["regression"] is Regression
    assert m.nfe == 1 and m.tileable and m.nfe_for() == 1
    assert m.model_cfg.use_swin and m.model_cfg.residual_output
    assert list(m.networks()) == ["generator"] and m.lpips_net is None
    x = torch.rand(2, 1, 64, 64) * 2 - 1
    assert torch.equal(m.super_resolve(x), x)
    assert m.loss_description == "10*MSE (LPIPS switched off)"
    t = time_method(m, 16, 16, repeats=1, measure_nfe=2)
    assert t.nfe == 1 and t.measured_nfe == 1
    # the same U-Net as smoke.yaml's Res-SRDiff: the same parameter shapes
    ref = build_method(load_config("smoke").replace(**{"loss.lpips": "off"}))
    mine = {k: v.shape for k, v in m.generator.unet.state_dict().items()}
    assert mine == {k: v.shape for k, v in ref.net.state_dict().items()}


@pytest.mark.parametrize("lambda_mse", [None, 2.5])
def test_loss_is_eq13_of_the_one_call_prediction(lambda_mse):
    cfg = regression_config(**{"loss.lambda_mse": lambda_mse})
    m = build_method(cfg)
    b = batch()
    out = m(b)
    lam = 10.0 if lambda_mse is None else lambda_mse  # the paper preset's lambda by default
    mse = torch.mean((b["lr"] - b["hr"]) ** 2)  # the untrained generator is the identity
    assert mse > 0.01
    assert out["mse"].item() == pytest.approx(mse.item(), rel=1e-6)
    assert out["loss"].item() == pytest.approx(lam * mse.item(), rel=1e-6)
    assert "lpips" not in out and out["loss"].requires_grad


def test_lpips_term_is_added_when_a_network_is_given():
    class Half(torch.nn.Module):  # a stand-in "LPIPS": half the mean absolute difference
        def forward(self, a, b):
            return 0.5 * (a - b).abs().mean(dim=(1, 2, 3))

    m = Regression(regression_config(**{"loss.lpips": "auto"}), lpips_net=Half())
    b = batch()
    out = m(b)
    want = loss_eq13(b["lr"], b["hr"], 10.0, Half())
    assert out["lpips"].item() == pytest.approx(want["lpips"].item(), rel=1e-6)
    lp = 0.5 * (b["lr"].clamp(-1, 1) - b["hr"].clamp(-1, 1)).abs().mean()
    assert out["lpips"].item() == pytest.approx(lp.item(), rel=1e-6) and lp > 0
    mse = torch.mean((b["lr"] - b["hr"]) ** 2)
    assert out["loss"].item() == pytest.approx(10 * mse.item() + lp.item(), rel=1e-6)
    assert want["loss"].item() == pytest.approx(out["loss"].item(), rel=1e-6)
    assert all(k.startswith("generator.") for k in m.state_dict())  # LPIPS is not saved


def test_training_lowers_the_loss_and_the_checkpoint_loads_back(tmp_path):
    from ressrdiff.cli import main

    cfg, pairs = write_npz_run(tmp_path, steps=20, batch=4)
    out = tmp_path / "run"
    args = ["train", "--config", str(cfg), "--out", str(out), "--method", "regression", "--quiet"]
    sets = ["--set", "model.residual_output=true", "--set", "train.lr=5e-3"]
    assert main([*args, *sets]) == 0
    ck = load_checkpoint(out / "last.pt")
    assert ck["method"] == "regression" and ck["step"] == 20
    assert set(ck["networks"]) == {"generator"} and ck["loss"] == "10*MSE (LPIPS switched off)"
    hist = ck["history"]
    assert len(hist) == 20 and all(h["loss"] == pytest.approx(10 * h["mse"]) for h in hist)
    b = {"hr": pairs.hr, "lr": pairs.lr, "seed": torch.arange(len(pairs))}
    m = load_method(out / "last.pt")
    with torch.no_grad():
        trained = m(b)["loss"].item()
    identity = 10 * torch.mean((pairs.lr - pairs.hr) ** 2).item()  # the loss at step 0
    assert trained < 0.97 * identity, (identity, trained)
    again = load_method(out / "last.pt")
    x = pairs.lr[:3]
    sr = m.super_resolve(x)
    assert sr.shape == x.shape and not torch.equal(sr, x)
    assert torch.equal(again.super_resolve(x), sr)


def test_one_pass_and_option_errors():
    m = build_method(regression_config())
    x = torch.zeros(1, 1, 16, 16)
    with pytest.raises(ValueError, match="one pass; steps must be 1 or None, got 2"):
        m.super_resolve(x, steps=2)
    with pytest.raises(ValueError, match="deterministic"):
        m.super_resolve_ensemble(x, 2)
    with pytest.raises(ValueError, match=r"options \['exposure'\] unknown for method 'regression'"):
        build_method(regression_config(options={"exposure": 0.5}))


def test_acquisition_config_matches_the_res_srdiff_run_of_its_budget():
    cfg, ref = load_config("regression-acquisition-cpu"), load_config("acquisition-cpu")
    assert cfg.method == "regression" and cfg.data.degradation == "acquisition"
    assert cfg.model == ref.model and cfg.data == ref.data
    assert cfg.lambda_mse == ref.lambda_mse and cfg.loss.lpips == ref.loss.lpips
    assert cfg.train == ref.train
    m, r = (build_method(c.replace(**{"loss.lpips": "off"})) for c in (cfg, ref))
    assert m.model_cfg.use_swin and m.model_cfg.residual_output
    assert sum(p.numel() for p in m.parameters()) == sum(p.numel() for p in r.parameters())


@pytest.mark.parametrize("name", ["pix2pix-acquisition-cpu", "spsr-acquisition-cpu"])
def test_acquisition_peers_share_the_budget_and_data(name):
    cfg, ref = load_config(name), load_config("acquisition-cpu")
    assert cfg.data == ref.data and cfg.train == ref.train


def test_the_paper_degradation_model_is_the_acquisition_recipe_on_resample():
    """``resample-cpu-exposure`` changes only the degradation against ``acquisition-cpu`` (and
    adds exposure-aware training, as the shipped acquisition default has): the same network,
    patches, data split and optimiser schedule."""
    cfg, ref = load_config("resample-cpu-exposure"), load_config("acquisition-cpu")
    assert cfg.method == ref.method == "res-srdiff" and cfg.model == ref.model
    assert cfg.data.degradation == "resample" and ref.data.degradation == "acquisition"
    assert dataclasses.replace(cfg.data, degradation="acquisition") == ref.data
    assert cfg.train == ref.train and cfg.options == {"exposure": 0.5}
    assert cfg.options == load_config("acquisition-cpu-exposure").options
