"""The non-diffusion comparison methods: Bicubic, Pix2pix, CycleGAN and SPSR (issue 5)."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import torch
from conftest import SyntheticPairs, tiny_config, write_npz_run

from ressrdiff.checkpoint import load_checkpoint
from ressrdiff.config import load_config
from ressrdiff.data.degrade import downsample, regrid, upsample_slice
from ressrdiff.methods import METHODS, build_method, load_method
from ressrdiff.methods.adversarial import (
    discriminator_loss,
    gan_target_loss,
    generator_adversarial_loss,
)
from ressrdiff.methods.bicubic import (
    bicubic_volume,
    bspline_upsample_matrix,
    slice_factors,
    write_checkpoint,
)
from ressrdiff.methods.cyclegan import cycle_consistency_loss, identity_loss, unpair_indices
from ressrdiff.methods.feedforward import method_options
from ressrdiff.methods.pix2pix import pix2pix_generator_loss
from ressrdiff.methods.spsr import gradient_map
from ressrdiff.nn.patchgan import PatchGAN, PatchGANConfig, patchgan_receptive_field
from ressrdiff.training import Trainer

GANS = ("pix2pix", "cyclegan", "spsr")

# generator losses with only the adversarial term left (for the toy tug-of-war)
ADVERSARIAL_ONLY = {
    "pix2pix": {"lambda_l1": 0.0},
    "cyclegan": {"lambda_cycle": 0.0},
    "spsr": {"lambda_pixel": 0.0, "lambda_gradient": 0.0, "lambda_branch": 0.0, "lambda_adv": 1.0},
}


@pytest.fixture(autouse=True)
def _one_thread():
    """These networks are tiny: one thread avoids oversubscribing the shared cores."""
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(2)


def gan_config(method: str, residual: bool = False, **options):
    """A tiny config for ``method``: 16-px PatchGAN (2 layers, 8 wide), U-Net without Swin."""
    opts = {"disc_channels": 8, "disc_layers": 2}
    if method == "spsr":
        opts.update(grad_channels=8, grad_blocks=1)
    return tiny_config(
        **{
            "method": method,
            "options": {**opts, **options},
            "model.use_swin": False,
            "model.residual_output": residual,
        }
    )


def toy_batch(n: int = 2) -> dict[str, torch.Tensor]:
    p = SyntheticPairs(n=n)
    return {"hr": p.hr, "lr": p.lr, "seed": torch.arange(3, 3 + n)}


# -- adversarial losses and the PatchGAN --------------------------------------------------------


def test_gan_losses_closed_form():
    zero = torch.zeros(2, 1, 3, 3)
    assert gan_target_loss(zero, True, "bce").item() == pytest.approx(math.log(2))
    assert gan_target_loss(zero, False, "bce").item() == pytest.approx(math.log(2))
    assert gan_target_loss(zero, True, "lsgan").item() == pytest.approx(1.0)
    assert gan_target_loss(zero, False, "lsgan").item() == 0.0
    # a perfect least-squares discriminator has loss 0 and its generator loss 1
    assert discriminator_loss(zero + 1, zero, "lsgan").item() == 0.0
    assert generator_adversarial_loss(zero, "lsgan").item() == 1.0
    # BCE on logit l for "real" is softplus(-l)
    logit = torch.tensor([[[[2.0]]]])
    assert gan_target_loss(logit, True, "bce").item() == pytest.approx(math.log1p(math.exp(-2)))
    with pytest.raises(ValueError, match="gan_loss must be one of"):
        gan_target_loss(zero, True, "wgan")


def test_patchgan_has_a_70_pixel_receptive_field():
    assert [patchgan_receptive_field(n) for n in (1, 2, 3)] == [16, 34, 70]
    torch.manual_seed(0)
    d = PatchGAN(PatchGANConfig(in_channels=1, base_channels=4, n_layers=3))
    with pytest.raises(ValueError, match="smaller than 24 px"):
        d(torch.zeros(1, 1, 16, 16))
    # the convolutions' footprint (instance norm adds image-wide statistics, so it is removed)
    d.net = torch.nn.Sequential(
        *[torch.nn.Identity() if isinstance(m, torch.nn.InstanceNorm2d) else m for m in d.net]
    )
    x = torch.randn(1, 1, 160, 160, requires_grad=True)
    logits = d(x)
    i, j = logits.shape[-2] // 2, logits.shape[-1] // 2
    logits[0, 0, i, j].backward()
    rows = torch.nonzero(x.grad[0, 0].abs().sum(1)).flatten()
    cols = torch.nonzero(x.grad[0, 0].abs().sum(0)).flatten()
    assert rows.max() - rows.min() + 1 == 70 and cols.max() - cols.min() + 1 == 70


# -- Pix2pix, CycleGAN, SPSR -------------------------------------------------------------------


def test_pix2pix_objective_is_l1_times_lambda_plus_cgan():
    fake, hr = torch.zeros(2, 1, 4, 4), torch.full((2, 1, 4, 4), 0.5)
    out = pix2pix_generator_loss(fake, hr, torch.zeros(2, 1, 2, 2), 100.0, "bce")
    assert out["l1"].item() == pytest.approx(0.5)
    assert out["loss_g"].item() == pytest.approx(50 + math.log(2))


def test_cycle_and_identity_losses_are_zero_for_identity_generators():
    x, y = toy_batch()["lr"], toy_batch()["hr"]
    assert cycle_consistency_loss(lambda a: a, lambda a: a, x, y).item() == 0.0
    # G(x) = x + 1 and F = identity: each cycle is off by exactly 1
    assert cycle_consistency_loss(lambda a: a + 1, lambda a: a, x, y).item() == pytest.approx(2.0)
    assert identity_loss(lambda a: a, lambda a: a, x, y).item() == 0.0
    assert identity_loss(lambda a: a + 0.5, lambda a: a, x, y).item() == pytest.approx(0.5)
    # residual generators start as the exact identity: cycle and identity terms are 0
    m = build_method(gan_config("cyclegan", residual=True))
    out = m(toy_batch(4))
    assert out["cycle"].item() == 0.0 and out["identity"].item() == 0.0
    assert list(m.inference_networks()) == ["g_lr2hr"]  # super_resolve is LR -> HR


def test_cyclegan_pairs_no_slice_with_its_own_partner():
    seeds = torch.tensor([11, 12, 13, 14, 15])
    hr_idx, lr_idx = unpair_indices(seeds)
    assert sorted(hr_idx.tolist()) == sorted(lr_idx.tolist()) == list(range(5))
    assert (hr_idx != lr_idx).all()
    again = unpair_indices(seeds)
    assert torch.equal(again[0], hr_idx) and torch.equal(again[1], lr_idx)
    assert not torch.equal(unpair_indices(seeds + 1)[0], hr_idx)
    assert torch.equal(*unpair_indices(seeds, unpaired=False))


def test_gradient_map_of_a_ramp_and_a_constant():
    yy, xx = torch.meshgrid(torch.arange(12.0), torch.arange(12.0), indexing="ij")
    a, b = 0.03, -0.04
    m = gradient_map((a * xx + b * yy)[None, None])
    # central differences, not halved: |M| = 2 * sqrt(a^2 + b^2) away from the edges
    assert torch.allclose(m[..., 1:-1, 1:-1], torch.full((10, 10), 0.1), atol=1e-6)
    # on the edges one difference is one-sided (replicated border): half of it
    assert m[0, 0, 5, 0].item() == pytest.approx(math.hypot(a, 2 * b), abs=1e-6)
    flat = torch.full((1, 1, 5, 5), 0.3, requires_grad=True)
    mf = gradient_map(flat)
    assert torch.all(mf == 1e-6)
    mf.sum().backward()
    assert torch.isfinite(flat.grad).all()


def test_spsr_loss_is_the_weighted_sum_and_branch_starts_at_lr_gradients():
    m = build_method(
        gan_config("spsr", lambda_pixel=2.0, lambda_gradient=3.0, lambda_branch=0.5, lambda_adv=0.1)
    )
    batch = toy_batch()
    out = m(batch)
    expect = 2 * out["pixel"] + 3 * out["gradient"] + 0.5 * out["branch"] + 0.1 * out["adv_g"]
    assert out["loss_g"].item() == pytest.approx(expect.item(), rel=1e-6)
    assert "perceptual" not in out and "switched off" in m.loss_description
    assert torch.equal(m.grad_branch(batch["lr"]), gradient_map(batch["lr"]))


def test_spsr_perceptual_term_is_dropped_without_weights_and_used_when_given(tmp_path, monkeypatch):
    pytest.importorskip("lpips")
    import ressrdiff.perceptual as P

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "nohub"))
    monkeypatch.setattr(P, "_warned", set())
    with pytest.warns(UserWarning, match="LPIPS unavailable.*without its perceptual term"):
        m = build_method(gan_config("spsr").replace(**{"loss.lpips": "auto"}))
    assert "perceptual term dropped: LPIPS unavailable" in m.loss_description
    with pytest.raises(RuntimeError, match="AlexNet weights not found"):
        build_method(gan_config("spsr").replace(**{"loss.lpips": "required"}))
    # plumbing only: a random-backbone LPIPS is no metric, but it must enter the loss
    from ressrdiff.methods.spsr import SPSR

    net, _ = P.load_lpips(random_backbone=True)
    m = SPSR(gan_config("spsr", lambda_perceptual=2.0), lpips_net=net)
    big = SyntheticPairs(n=2, size=32)
    out = m({"hr": big.hr, "lr": big.lr, "seed": torch.tensor([1, 2])})
    expect = (
        out["pixel"] + out["gradient"] + 0.5 * out["branch"] + 0.01 * out["adv_g"]
    ) + 2.0 * out["perceptual"]
    assert out["perceptual"].item() > 0
    assert out["loss_g"].item() == pytest.approx(expect.item(), rel=1e-5)


@pytest.mark.parametrize("method", GANS)
def test_discriminator_and_generator_pull_opposite_ways(method):
    """Train one side alone on a toy pair: its loss falls and the other side's rises."""
    batch = toy_batch()
    for side, other in (("loss_d", "loss_g"), ("loss_g", "loss_d")):
        torch.manual_seed(0)
        m = build_method(gan_config(method, **ADVERSARIAL_ONLY[method]))
        opt = torch.optim.Adam(m.optim_groups()[side], lr=1e-3, betas=(0.5, 0.999))
        start = m(batch)
        for _ in range(6):
            out = m(batch)
            for p in m.parameters():
                p.grad = None
            out[side].backward()
            opt.step()
        end = m(batch)
        assert end[side].item() < start[side].item() - 0.05, (side, start[side], end[side])
        assert end[other].item() > start[other].item() + 0.05, (side, start[other], end[other])


@pytest.mark.parametrize("method", GANS)
def test_training_lowers_the_pixel_loss_and_checkpoints_round_trip(method, tmp_path):
    one = SyntheticPairs(n=1)
    one.hr, one.lr = one.hr.repeat(4, 1, 1, 1), one.lr.repeat(4, 1, 1, 1)
    cfg = gan_config(method).replace(
        **{
            "train.steps": 10,
            "train.ckpt_every": 10,
            "train.warmup_steps": 1,
            "train.lr": 5e-3,
            "train.batch_size": 4,
        }
    )
    tr = Trainer(cfg, tmp_path, dataset=one, progress=False)
    batch = {"hr": one.hr[:4], "lr": one.lr[:4], "seed": torch.arange(4)}

    def pixel_loss() -> float:
        with torch.no_grad():
            out = tr.method(batch)
        if method == "cyclegan":
            return (out["cycle"] + out["identity"]).item()
        return out["l1" if method == "pix2pix" else "pixel"].item()

    before = pixel_loss()
    tr.train()
    after = pixel_loss()
    assert after < 0.9 * before, f"{method}: pixel loss {before:.4f} -> {after:.4f}"

    m = tr.method.eval()
    sr = m.super_resolve(one.lr[:2])
    assert sr.shape == (2, 1, 16, 16) and sr.dtype == torch.float32
    assert torch.isfinite(sr).all() and sr.abs().max() < 10
    ck = load_checkpoint(tmp_path / "last.pt")
    assert set(ck["optimizer"]) == {"loss_g", "loss_d"}
    assert ck["optimizer"]["loss_d"]["param_groups"][0]["betas"] == (0.5, 0.999)
    raw = load_method(tmp_path / "last.pt", use_ema=False)
    assert torch.equal(raw.super_resolve(one.lr[:2]), sr)
    ema = load_method(tmp_path / "last.pt")
    assert ema.weights == "ema"
    for k, net in ema.networks().items():
        for name, v in net.state_dict().items():
            assert torch.equal(v, tr.ema[k].shadow.state_dict()[name]), (k, name)
    with pytest.raises(ValueError, match="one pass; steps must be 1"):
        m.super_resolve(one.lr[:2], steps=4)
    with pytest.raises(ValueError, match="deterministic"):
        m.super_resolve_ensemble(one.lr[:2], 4)


def test_pix2pix_resume_is_exact(tmp_path):
    cfg = gan_config("pix2pix").replace(**{"train.steps": 4, "train.ckpt_every": 2})
    full = Trainer(cfg, tmp_path / "full", dataset=SyntheticPairs(), progress=False).train()
    Trainer(cfg, tmp_path / "cut", dataset=SyntheticPairs(), progress=False).train(stop_at=2)
    resumed = Trainer(cfg, tmp_path / "cut", dataset=SyntheticPairs(), resume=True, progress=False)
    hist = resumed.train()
    assert [h["loss_d"] for h in hist] == [h["loss_d"] for h in full]
    assert [h["loss_g"] for h in hist] == [h["loss_g"] for h in full]


def test_options_are_checked():
    with pytest.raises(ValueError, match=r"options \['lambda_l2'\] unknown for method 'pix2pix'"):
        build_method(gan_config("pix2pix", lambda_l2=1.0))
    with pytest.raises(ValueError, match="options.gan_loss must be one of"):
        build_method(gan_config("cyclegan", gan_loss="hinge"))
    with pytest.raises(ValueError, match="options.unpaired .* must be like True"):
        build_method(gan_config("cyclegan", unpaired="yes"))
    with pytest.raises(ValueError, match="has no perceptual term"):
        build_method(gan_config("pix2pix").replace(**{"loss.lpips": "required"}))
    opts = method_options(tiny_config(options={"lambda_adv": "1e-2"}), {"lambda_adv": 0.5}, "x")
    assert opts == {"lambda_adv": 0.01}


# -- Bicubic -----------------------------------------------------------------------------------


def bicubic(factors=(4, 4)):
    return build_method(tiny_config(**{"method": "bicubic", "options": {"factors": list(factors)}}))


@pytest.mark.parametrize(("h", "w", "f"), [(8, 7, 4), (5, 6, 3), (6, 9, 2)])
def test_bicubic_matches_simpleitk_bspline(h, w, f):
    lr = np.random.default_rng(h * w).normal(size=(h, w)).astype(np.float32)
    near = torch.from_numpy(upsample_slice(lr, f, "nearest"))[None, None]
    out = bicubic((f, f)).super_resolve(near)[0, 0].numpy()
    np.testing.assert_allclose(out, upsample_slice(lr, f, "bspline"), atol=1e-5)


def test_bicubic_on_a_degraded_slice_whose_size_is_not_a_multiple_of_the_factor():
    """HR 30 x 27, f = 4: the trailing pixels are edge copies; the result equals the LR image
    B-spline re-gridded by SimpleITK (nearest extrapolation outside the LR field of view)."""
    rng = np.random.default_rng(1)
    hr = sitk.GetImageFromArray(rng.normal(size=(30, 27)).astype(np.float32))
    hr.SetSpacing((0.8, 0.8))
    lr = downsample(hr, 4)
    near = sitk.GetArrayFromImage(regrid(lr, hr, "nearest"))
    out = bicubic().super_resolve(torch.from_numpy(near)[None, None])[0, 0].numpy()
    np.testing.assert_allclose(out, sitk.GetArrayFromImage(bicubic_volume(lr, hr)), atol=1e-5)


def test_bicubic_reproduces_a_ramp_and_beats_nearest_on_a_smooth_image():
    m = bicubic()
    n_lr, f = 16, 4
    u = (torch.arange(n_lr * f) - (f - 1) / 2) / f  # HR pixel centres in LR index units
    ramp_lr = 0.1 * torch.arange(n_lr, dtype=torch.float32) - 0.7
    near = ramp_lr.repeat_interleave(f)[None, None, None].expand(1, 1, 8, -1).contiguous()
    out = m.super_resolve(near)[0, 0, 0]
    inner = slice(3 * f, (n_lr - 3) * f)
    assert torch.allclose(out[inner], (0.1 * u - 0.7)[inner], atol=2e-3)
    # a smooth image, block-averaged then nearest-upsampled: bicubic is much closer than nearest
    yy, xx = torch.meshgrid(torch.arange(64.0), torch.arange(64.0), indexing="ij")
    smooth = torch.sin(xx / 9.0) * torch.cos(yy / 11.0)
    lr = torch.nn.functional.avg_pool2d(smooth[None, None], 4)
    lr_near = torch.nn.functional.interpolate(lr, scale_factor=4, mode="nearest")
    err_near = (lr_near - smooth).pow(2).mean()
    err_bic = (m.super_resolve(lr_near)[0, 0] - smooth).pow(2).mean()
    assert err_bic < 0.25 * err_near


def test_bicubic_is_not_trained_and_round_trips_through_a_checkpoint(tmp_path):
    cfg = tiny_config(**{"method": "bicubic"})
    m = build_method(cfg)
    assert m.factors == (4, 4) and m.networks() == {} and m.nfe == 0
    with pytest.raises(ValueError, match="'bicubic' has nothing to train"):
        Trainer(cfg, tmp_path / "run", dataset=SyntheticPairs(), progress=False)
    write_checkpoint(cfg, tmp_path / "bicubic.pt")
    back = load_method(tmp_path / "bicubic.pt")
    x = SyntheticPairs().lr[:2]
    sr = back.super_resolve(x)
    assert sr.shape == x.shape and sr.dtype == torch.float32 and torch.isfinite(sr).all()
    assert torch.equal(sr, m.super_resolve(x))
    assert slice_factors("prostate", 2) == (3, 3) and slice_factors("prostate", 0) == (2, 3)
    # B-spline re-gridded input already is the Bicubic result
    bs = build_method(cfg.replace(**{"data.regrid": "bspline"}))
    assert torch.equal(bs.super_resolve(x), x)
    with pytest.raises(ValueError, match="data.regrid is 'linear'"):
        build_method(cfg.replace(**{"data.regrid": "linear"}))
    with pytest.raises(ValueError, match="smaller than one 4x4 LR block"):
        m.super_resolve(torch.zeros(1, 1, 3, 8))
    assert np.allclose(bspline_upsample_matrix(6, 24, 4).sum(1), 1.0)  # constants are kept


def test_bicubic_checkpoint_super_resolves_a_volume(tmp_path):
    """Through ``super_resolve_volume`` (per-slice min-max, then back to units) the result is the
    slice-wise B-spline of the nearest-regridded volume: interpolation commutes with the affine
    intensity map."""
    from ressrdiff.data.degrade import degrade
    from ressrdiff.inference import super_resolve_volume

    rng = np.random.default_rng(2)
    hr = sitk.GetImageFromArray((100 + 20 * rng.normal(size=(8, 20, 24))).astype(np.float32))
    near = degrade(hr, "brain-4x")
    write_checkpoint(tiny_config(**{"method": "bicubic"}), tmp_path / "b.pt")
    m = load_method(tmp_path / "b.pt")
    sr, sd = super_resolve_volume(m, near, progress=False)
    assert sd is None
    arr = sitk.GetArrayFromImage(near)
    per_slice = m.super_resolve(torch.from_numpy(arr)[:, None])[:, 0].numpy()
    np.testing.assert_allclose(sitk.GetArrayFromImage(sr), per_slice, rtol=1e-5, atol=1e-3)


# -- configs and CLI ---------------------------------------------------------------------------


def test_shipped_configs_share_the_cpu_budget():
    ref = load_config("default-cpu")
    for method in ("bicubic", *GANS):
        assert method in METHODS
        for profile in ("smoke", "cpu", "gpu"):
            cfg = load_config(f"{method}-{profile}")
            assert cfg.method == method
            if profile == "cpu":
                assert cfg.train == ref.train, method
                assert cfg.data == ref.data, method
                if method != "bicubic":  # the same U-Net, Swin blocks off
                    assert cfg.model == {**ref.model, "use_swin": False}, method
            if profile == "smoke":
                assert cfg.data.source == "demo" and cfg.train.steps <= 50
        if method != "bicubic":  # build the smoke model (the GPU ones are large)
            m = build_method(load_config(f"{method}-smoke").replace(**{"loss.lpips": "off"}))
            assert not m.model_cfg.use_swin
            assert m.model_cfg.widths == (16, 32, 32)


def test_gpu_profile_configs_train_on_the_same_data():
    """Every method's gpu config reads the same data set with the same degradation and patch
    size (the authors-code preset re-grids with B-spline, as the authors' code does)."""
    from ressrdiff.config import named_configs

    gpu = [n for n in named_configs() if n.endswith("-gpu") or n.endswith("-gpu-noswin")]
    assert {"paper-gpu", "paper-gpu-noswin", "tm-ddpm-gpu", "i2sb-gpu"} <= set(gpu)
    ref = load_config("paper-gpu").data
    for name in gpu:
        data = load_config(name).data
        if name == "authors-code-gpu":
            assert data.regrid == "bspline"
            data = dataclasses.replace(data, regrid=ref.regrid)
        assert data == ref, name


def test_cli_train_method_override(tmp_path, capsys):
    from ressrdiff.cli import main

    cfg, _ = write_npz_run(tmp_path, steps=2)
    out = tmp_path / "run"
    rc = main(
        ["train", "--config", str(cfg), "--out", str(out), "--method", "pix2pix", "--quiet"]
        + ["--set", "options.disc_layers=2", "--set", "options.disc_channels=8"]
    )
    assert rc == 0
    assert load_checkpoint(out / "last.pt")["method"] == "pix2pix"
    # and ``ressrdiff sr`` runs the trained generator on a volume (slices are 16 x 16 here)
    vol = sitk.GetImageFromArray(np.random.default_rng(0).normal(size=(3, 16, 16)).astype("f4"))
    sitk.WriteImage(vol, str(tmp_path / "lr.nii.gz"))
    args = ["sr", str(tmp_path / "lr.nii.gz"), "-o", str(tmp_path / "sr.nii.gz"), "--quiet"]
    assert main([*args, "--checkpoint", str(out / "last.pt"), "--device", "cpu"]) == 0
    sr = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "sr.nii.gz")))
    assert sr.shape == (3, 16, 16) and np.isfinite(sr).all()
    args = [
        *args[:3],
        str(tmp_path / "sr2.nii.gz"),
        "--quiet",
        "--checkpoint",
        str(out / "last.pt"),
    ]
    args += ["--samples", "2"]
    capsys.readouterr()
    assert main(args) == 2  # a deterministic method has no N-sample uncertainty
    assert "'pix2pix' is deterministic" in capsys.readouterr().err
    # bicubic has nothing to train: `train` writes its checkpoint, which `sr` then reads
    rc = main(["train", "--config", str(cfg), "--out", str(out / "b"), "--method", "bicubic"])
    assert rc == 0
    ck = load_checkpoint(out / "b" / "last.pt")
    assert ck["method"] == "bicubic" and ck["step"] == 0 and ck["networks"] == {}
    args[3] = str(tmp_path / "sr3.nii.gz")
    assert main([*args[:5], "--checkpoint", str(out / "b" / "last.pt")]) == 0
    # a run folder that already holds a checkpoint is not overwritten without --resume
    before = (out / "last.pt").read_bytes()
    capsys.readouterr()
    assert main(["train", "--config", str(cfg), "--out", str(out), "--method", "cyclegan"]) == 2
    err = capsys.readouterr().err.strip()
    assert "a run already exists there; pass --resume" in err and len(err.splitlines()) == 1
    assert (out / "last.pt").read_bytes() == before


def test_cli_method_override_names_its_own_run(monkeypatch):
    """`train --config default-cpu --method pix2pix` trains pix2pix on that config's data and
    budget under its own name, so the default run folder is not default-cpu's."""
    import ressrdiff.training
    from ressrdiff.cli import main

    seen = {}

    class Stop(Exception):
        pass

    def fake_trainer(cfg, out, **kw):
        seen.update(name=cfg.name, method=cfg.method, out=Path(out))
        raise Stop

    monkeypatch.setattr(ressrdiff.training, "Trainer", fake_trainer)
    with pytest.raises(Stop):
        main(["train", "--config", "default-cpu", "--method", "pix2pix"])
    assert seen == {
        "name": "default-cpu-pix2pix",
        "method": "pix2pix",
        "out": Path("runs") / "default-cpu-pix2pix",
    }
