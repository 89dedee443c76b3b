"""Algorithm 1 training: loss falls, resume is exact, checkpoints are atomic and checked."""

from __future__ import annotations

import math
import warnings

import pytest
import torch
from conftest import SyntheticPairs, tiny_config

from ressrdiff.checkpoint import CheckpointError, load_checkpoint
from ressrdiff.config import ConfigError, RunConfig
from ressrdiff.methods import build_method, load_method
from ressrdiff.training import Trainer, batch_positions, lr_factor


def test_lr_schedule_warmup_then_cosine():
    assert lr_factor(0, 10, 100, 0.0) == pytest.approx(0.1)
    assert lr_factor(9, 10, 100, 0.0) == pytest.approx(1.0)
    assert lr_factor(10, 10, 100, 0.0) == pytest.approx(1.0)
    assert lr_factor(55, 10, 100, 0.0) == pytest.approx(0.5)
    assert lr_factor(100, 10, 100, 0.1) == pytest.approx(0.1)


def test_batches_cover_each_epoch_once():
    seen = [batch_positions(12, 4, 0, s)[1] for s in range(3)]
    assert sorted(int(i) for b in seen for i in b) == list(range(12))
    assert batch_positions(12, 4, 0, 3)[0] == 1


def test_tiny_model_overfits_one_slice_pair(tmp_path):
    """Train on a single synthetic HR/LR pair: the eq (13) MSE term must fall below 0.01
    (it starts near the HR variance, ~0.3) and the 4-step SR must beat the LR input."""
    one = SyntheticPairs(n=1, size=16)
    one.hr, one.lr = one.hr.repeat(8, 1, 1, 1), one.lr.repeat(8, 1, 1, 1)
    cfg = tiny_config(
        **{
            "train.steps": 150,
            "train.lr": 3e-3,
            "train.warmup_steps": 10,
            "train.ckpt_every": 1000,
            "train.ema_decay": None,
        }
    )
    tr = Trainer(cfg, tmp_path, dataset=one, progress=False)
    hist = tr.train()
    first = sum(h["mse"] for h in hist[:5]) / 5
    last = sum(h["mse"] for h in hist[-10:]) / 10
    assert first > 0.05
    assert last < 0.01, f"MSE fell only from {first:.4f} to {last:.4f}"
    m = tr.method.eval()
    sr = m.super_resolve(one.lr[:1], steps=4, generator=torch.Generator().manual_seed(0))
    err_sr = torch.mean((sr - one.hr[:1]) ** 2).item()
    err_lr = torch.mean((one.lr[:1] - one.hr[:1]) ** 2).item()
    assert err_sr < 0.5 * err_lr


def test_resume_is_exact(tmp_path, pairs):
    cfg = tiny_config()
    full = Trainer(cfg, tmp_path / "full", dataset=pairs, progress=False).train()
    first = Trainer(cfg, tmp_path / "cut", dataset=SyntheticPairs(), progress=False)
    first.train(stop_at=3)  # interrupted after the step-3 checkpoint
    resumed = Trainer(cfg, tmp_path / "cut", dataset=SyntheticPairs(), resume=True, progress=False)
    assert resumed.step == 3
    hist = resumed.train()
    assert [h["loss"] for h in hist] == [h["loss"] for h in full]  # bit-identical on CPU
    a = load_checkpoint(tmp_path / "full" / "last.pt")
    b = load_checkpoint(tmp_path / "cut" / "last.pt")
    for k, v in a["networks"]["net"].items():
        assert torch.equal(v, b["networks"]["net"][k]), k
    for k, v in a["ema"]["net"].items():
        assert torch.equal(v, b["ema"]["net"][k]), k


def test_checkpoint_contents_and_atomicity(tmp_path, pairs):
    cfg = tiny_config(**{"train.steps": 3})
    Trainer(cfg, tmp_path, dataset=pairs, progress=False).train()
    ck = load_checkpoint(tmp_path / "last.pt")
    for key in (
        "networks",
        "ema",
        "optimizer",
        "lr_scheduler",
        "schedule",
        "rng",
        "config",
        "ressrdiff_version",
        "step",
        "loss",
        "signature",
    ):
        assert key in ck, key
    assert ck["step"] == 3
    assert ck["loss"].startswith("10*MSE") and "LPIPS switched off" in ck["loss"]
    assert RunConfig.from_dict(ck["config"]) == cfg
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt", "log.jsonl", "run.json"]


def test_load_method_roundtrip_and_mismatch_errors(tmp_path, pairs):
    cfg = tiny_config(**{"train.steps": 2})
    tr = Trainer(cfg, tmp_path, dataset=pairs, progress=False)
    tr.train()
    m = load_method(tmp_path / "last.pt", use_ema=False)
    for k, v in tr.method.net.state_dict().items():
        assert torch.equal(v, m.net.state_dict()[k])
    assert m.weights == "raw"
    # another network width
    other = tiny_config(**{"model.base_channels": 16})
    with pytest.raises(
        CheckpointError, match=r"last\.pt: checkpoint does not match.*base_channels"
    ):
        load_method(tmp_path / "last.pt", expect=other)
    # another schedule preset
    with pytest.raises(CheckpointError, match="schedule"):
        load_method(tmp_path / "last.pt", expect=tiny_config(**{"schedule.preset": "authors-code"}))
    # resuming with a mismatching config
    with pytest.raises(CheckpointError, match="does not match"):
        Trainer(other, tmp_path, dataset=pairs, resume=True, progress=False)
    # not a checkpoint at all
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match=r"bad\.pt: not a readable"):
        load_method(bad)
    torch.save({"state_dict": {}}, tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match=r"foreign\.pt: not a ressrdiff checkpoint"):
        load_method(tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="nothing to resume"):
        Trainer(cfg, tmp_path / "empty", dataset=pairs, resume=True, progress=False)


def test_bad_config_errors(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("train:\n  stepz: 3\n")
    from ressrdiff.config import load_config

    with pytest.raises(ConfigError, match=r"c\.yaml: train: unknown key\(s\) \['stepz'\]"):
        load_config(p)
    p.write_text("schedule: {preset: papr}\n")
    with pytest.raises(ConfigError, match="c.yaml.*papr"):
        load_config(p)
    p.write_text("train: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(p)
    with pytest.raises(ConfigError, match="no such config"):
        load_config(tmp_path / "missing.yaml")
    with pytest.raises(ValueError, match="model.preset"):
        build_method(tiny_config(**{"model.preset": "huge"}))


def test_lpips_fallback_is_recorded(tmp_path, pairs, monkeypatch):
    pytest.importorskip("lpips")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "nohub"))
    import ressrdiff.perceptual as P

    monkeypatch.setattr(P, "_warned", set())
    cfg = tiny_config(**{"loss.lpips": "auto"})
    with pytest.warns(UserWarning, match="LPIPS unavailable.*MSE alone"):
        m = build_method(cfg)
    assert "alone (LPIPS unavailable" in m.loss_description
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the second build must stay silent: warned once
        build_method(cfg)
    run = cfg.replace(**{"train.steps": 2})
    Trainer(run, tmp_path / "run", dataset=pairs, progress=False).train()
    ck = load_checkpoint(tmp_path / "run" / "last.pt")
    assert ck["loss"].startswith("10*MSE alone (LPIPS unavailable")
    with pytest.raises(RuntimeError, match="AlexNet weights not found"):
        build_method(tiny_config(**{"loss.lpips": "required"}))


class _StubLPIPS(torch.nn.Module):
    """Checks what eq (13) hands to LPIPS (3 channels, values in [-1, 1]) and returns a known
    per-image distance: the mean absolute difference."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[int, float, float]] = []

    def forward(self, x, y):
        lo, hi = torch.minimum(x.min(), y.min()), torch.maximum(x.max(), y.max())
        self.seen.append((x.shape[1], float(lo), float(hi)))
        return (x - y).abs().mean(dim=(1, 2, 3), keepdim=True)


def test_loss_eq13_closed_form():
    """Eq (13) on known tensors: lambda * pixel-mean squared error + per-image-mean LPIPS.
    The prediction strays outside [-1, 1]; LPIPS must see it clamped and repeated to 3 channels."""
    from ressrdiff.methods.res_srdiff import loss_eq13

    g = torch.Generator().manual_seed(3)
    x_hr = torch.rand(4, 1, 8, 8, generator=g) * 2 - 1
    x_hat = x_hr + 0.5 * torch.randn(4, 1, 8, 8, generator=g)
    a, b = x_hat.double().numpy(), x_hr.double().numpy()
    mse = float(((a - b) ** 2).mean())
    out = loss_eq13(x_hat, x_hr, 10.0, None)
    assert out["loss"].item() == pytest.approx(10 * mse, rel=1e-5)
    stub = _StubLPIPS()
    out = loss_eq13(x_hat, x_hr, 4.0, stub)
    per_image = [float(abs(a[i].clip(-1, 1) - b[i]).mean()) for i in range(4)]
    assert stub.seen == [(3, pytest.approx(-1.0), pytest.approx(1.0))]
    assert out["lpips"].item() == pytest.approx(sum(per_image) / 4, rel=1e-5)
    assert out["loss"].item() == pytest.approx(4 * mse + sum(per_image) / 4, rel=1e-5)


class _SpyNet(torch.nn.Module):
    """Records what Algorithm 1 feeds g_phi; predicts zeros so that the loss is known."""

    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(()))
        self.calls: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []

    def forward(self, x_t, x_lr, t):
        self.calls.append((x_t.detach().clone(), x_lr.detach().clone(), t.clone()))
        return torch.zeros_like(x_t) * self.w


def test_algorithm1_feeds_eq4_states_and_uniform_steps(pairs):
    """Algorithm 1, checked against independent draws: t ~ U{1..T}; g_phi sees
    x_t = x_HR + beta_t e0 + gamma sqrt(beta_t) eps (eq 4), divided by sqrt(gamma^2 beta_t + 1);
    and the loss is lambda * MSE of the prediction."""
    from ressrdiff.methods.base import per_sample_draws
    from ressrdiff.methods.res_srdiff import ResSRDiff

    m = ResSRDiff(tiny_config(**{"loss.lpips": "off"}))
    m.net = _SpyNet()
    s = m.schedule
    seeds = torch.tensor([11, 12, 13, 14])
    out = m({"hr": pairs.hr[:4], "lr": pairs.lr[:4], "seed": seeds})
    x_t, x_lr, t = m.net.calls[0]
    # independent re-draw of the same per-sample streams
    ts, eps = [], []
    for sd in seeds.tolist():
        gen = torch.Generator().manual_seed(sd)
        ts.append(int(torch.randint(1, s.T + 1, (1,), generator=gen)))
        eps.append(torch.randn(pairs.hr.shape[1:], generator=gen))
    assert t.tolist() == ts
    beta = torch.tensor([s.beta[k] for k in ts], dtype=torch.float64).view(-1, 1, 1, 1)
    hr, lr = pairs.hr[:4].double(), pairs.lr[:4].double()
    want = hr + beta * (lr - hr) + s.gamma * beta.sqrt() * torch.stack(eps).double()
    want = want / torch.sqrt(s.gamma**2 * beta + 1)
    torch.testing.assert_close(x_t.double(), want, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(x_lr, pairs.lr[:4])
    assert out["loss"].item() == pytest.approx(10 * float((hr**2).mean()), rel=1e-5)
    # t is uniform on 1..T: every step appears, none outside, counts within 5 SD of N/T
    n = 3000
    draws, _ = per_sample_draws(torch.arange(n), s.T, (1,), torch.device("cpu"), torch.float32)
    counts = torch.bincount(draws, minlength=s.T + 1)
    assert counts[0] == 0 and draws.max() == s.T
    p = 1 / s.T
    sd = math.sqrt(n * p * (1 - p))
    assert all(abs(c - n * p) < 5 * sd for c in counts[1:].tolist()), counts.tolist()


def test_lpips_term_enters_the_loss_with_a_supplied_network(pairs):
    """Plumbing only: a random-backbone LPIPS is not a metric, but it must add to the loss."""
    pytest.importorskip("lpips")
    from ressrdiff.methods.res_srdiff import ResSRDiff
    from ressrdiff.perceptual import load_lpips

    net, desc = load_lpips(random_backbone=True)
    assert "RANDOM" in desc
    m = ResSRDiff(tiny_config(), lpips_net=net)
    big = SyntheticPairs(n=2, size=64)  # AlexNet needs at least ~32 pixels per side
    batch = {"hr": big.hr, "lr": big.lr, "seed": torch.tensor([1, 2])}
    out = m(batch)
    assert math.isclose(
        out["loss"].item(), 10 * out["mse"].item() + out["lpips"].item(), rel_tol=1e-5
    )
    assert out["lpips"].item() > 0


def test_keep_every_keeps_the_budget_curve_checkpoints(tmp_path, pairs):
    """train.keep_every keeps step_NNNNNN.pt beside last.pt; each is that step's exact state."""
    cfg = tiny_config(**{"train.keep_every": 3})
    Trainer(cfg, tmp_path / "kept", dataset=pairs, progress=False).train()
    kept = sorted(p.name for p in (tmp_path / "kept").glob("step_*.pt"))
    assert kept == ["step_000003.pt", "step_000006.pt"]
    mid = load_checkpoint(tmp_path / "kept" / "step_000003.pt")
    assert mid["step"] == 3
    Trainer(cfg, tmp_path / "cut", dataset=SyntheticPairs(), progress=False).train(stop_at=3)
    ref = load_checkpoint(tmp_path / "cut" / "last.pt")
    for k, v in ref["networks"]["net"].items():
        assert torch.equal(v, mid["networks"]["net"][k]), k
    end = load_checkpoint(tmp_path / "kept" / "step_000006.pt")["networks"]["net"]
    last = load_checkpoint(tmp_path / "kept" / "last.pt")["networks"]["net"]
    assert all(torch.equal(v, last[k]) for k, v in end.items())
    with pytest.raises(ConfigError, match="keep_every"):
        tiny_config(**{"train.keep_every": 4})


def test_ckpt_every_must_be_a_multiple_of_log_every():
    with pytest.raises(ConfigError, match="multiple of train.log_every"):
        tiny_config(**{"train.log_every": 4, "train.ckpt_every": 6})


def test_training_from_a_bring_your_own_folder(tmp_path):
    """data.source 'manifest': a folder of volumes, LR simulated with the preset, robust
    normalisation recorded in the checkpoint for inference."""
    import numpy as np
    import SimpleITK as sitk

    rng = np.random.default_rng(0)
    z, y, x = np.mgrid[:24, :40, :40]
    for i in range(5):
        blob = ((x - 20) ** 2 + (y - 20) ** 2 + 4 * (z - 12) ** 2 < 240 + 20 * i).astype(float)
        img = sitk.GetImageFromArray((blob * 100 + rng.normal(0, 3, blob.shape)).astype("f4"))
        img.SetSpacing((1.0, 1.0, 1.0))
        sitk.WriteImage(img, str(tmp_path / f"sub{i}.nii.gz"))
    cfg = tiny_config(
        **{
            "data.source": "manifest",
            "data.path": str(tmp_path),
            "data.patch": 16,
            "train.steps": 2,
            "train.ckpt_every": 2,
        }
    )
    assert cfg.data.resolved_normalisation == "robust-volume"
    tr = Trainer(cfg, tmp_path / "run", progress=False)
    hist = tr.train()
    assert len(hist) == 2 and all(math.isfinite(h["loss"]) for h in hist)
    ck = load_checkpoint(tmp_path / "run" / "last.pt")
    assert ck["config"]["data"]["source"] == "manifest"
    with pytest.raises(ConfigError, match="data.source 'nope' unknown"):
        tiny_config(**{"data.source": "nope"})
