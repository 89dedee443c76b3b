"""Tests for the conditional Swin U-Net (ressrdiff.nn)."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from timm.models.swin_transformer import SwinTransformerBlock

from ressrdiff.nn import (
    PAPER_GPU,
    TINY_CPU,
    SwinPair,
    UNet,
    UNetConfig,
    build_unet,
    count_parameters,
)

# Small but complete: 3 levels (pad multiple 4), Swin at the two coarse levels + middle.
SMALL = UNetConfig(
    base_channels=8,
    channel_mult=(1, 2, 4),
    num_res_blocks=1,
    swin_levels=(1, 2),
    swin_head_dim=8,
    window_size=4,
    mlp_ratio=2.0,
    max_timestep=4,
)


def _model(cfg: UNetConfig = SMALL, seed: int = 0) -> UNet:
    torch.manual_seed(seed)
    return UNet(cfg).eval()


def _inputs(b: int, h: int, w: int, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, 1, h, w, generator=g), torch.randn(b, 1, h, w, generator=g)


def _n_swin_blocks(model: torch.nn.Module) -> int:
    return sum(isinstance(m, SwinTransformerBlock) for m in model.modules())


@pytest.fixture(scope="module")
def small() -> UNet:
    return _model()


@pytest.mark.parametrize("hw", [(64, 64), (197, 233), (33, 41)])
def test_output_shape_dtype_finite(small: UNet, hw: tuple[int, int]) -> None:
    x_t, x_lr = _inputs(2, *hw)
    with torch.no_grad():
        y = small(x_t, x_lr, torch.tensor([1, 3]))
    assert y.shape == (2, 1, *hw)
    assert y.dtype == torch.float32
    assert torch.isfinite(y).all()


def test_swin_block_count_and_ablation() -> None:
    with_swin = _model(SMALL)
    without = _model(dataclasses.replace(SMALL, use_swin=False))
    # Encoder: num_res_blocks per Swin level, decoder: num_res_blocks + 1, plus the middle pair.
    n_pairs = len(SMALL.swin_levels) * (2 * SMALL.num_res_blocks + 1) + 1
    assert _n_swin_blocks(with_swin) == 2 * n_pairs == 2 * SMALL.num_swin_pairs
    assert sum(isinstance(m, SwinPair) for m in with_swin.modules()) == n_pairs
    assert _n_swin_blocks(without) == 0
    assert count_parameters(without) < count_parameters(with_swin)
    # The preset as well (2 levels x 5 + middle = 11 pairs).
    assert TINY_CPU.num_swin_pairs == 11
    no_mid = dataclasses.replace(SMALL, swin_mid=False)
    assert _n_swin_blocks(_model(no_mid)) == 2 * (n_pairs - 1)


def test_timestep_and_condition_matter(small: UNet) -> None:
    x_t, x_lr = _inputs(1, 32, 32)
    with torch.no_grad():
        y1 = small(x_t, x_lr, torch.tensor([1]))
        y3 = small(x_t, x_lr, torch.tensor([3]))
        y1_float = small(x_t, x_lr, torch.tensor([1.0]))
        y1_scalar = small(x_t, x_lr, torch.tensor(1))
        y_lr = small(x_t, x_lr + 0.5 * torch.randn_like(x_lr), torch.tensor([1]))
    assert (y1 - y3).abs().max() > 1e-4
    assert (y1 - y_lr).abs().max() > 1e-4
    torch.testing.assert_close(y1, y1_float)
    torch.testing.assert_close(y1, y1_scalar)


def test_padding_crop_and_all_parameters_get_gradients() -> None:
    model = _model().train()
    x_t, x_lr = _inputs(2, 30, 37)  # not a multiple of 4: exercises pad + crop
    assert model(x_t, x_lr, torch.tensor([0, 4])).shape == (2, 1, 30, 37)

    x_t, x_lr = _inputs(2, 64, 64)
    model(x_t, x_lr, torch.tensor([2, 4])).square().mean().backward()
    dead = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not dead, f"parameters without gradient: {dead}"


def test_state_dict_roundtrip_and_resolution_independence() -> None:
    a = _model(seed=0)
    x_big, lr_big = _inputs(1, 48, 72)
    x_small, lr_small = _inputs(1, 20, 28)
    t = torch.tensor([2])
    with torch.no_grad():
        a(x_big, lr_big, t)  # run at another size first: must not leak into the checkpoint
        sd = a.state_dict()
    assert not [k for k in sd if "attn_mask" in k or "relative_position_index" in k]

    b = _model(seed=123)
    with torch.no_grad():
        assert not torch.allclose(a(x_small, lr_small, t), b(x_small, lr_small, t))
        b.load_state_dict(sd, strict=True)
        for x, lr in ((x_big, lr_big), (x_small, lr_small)):
            torch.testing.assert_close(a(x, lr, t), b(x, lr, t), rtol=0, atol=0)


@pytest.mark.parametrize("hw", [(8, 8), (12, 20), (3, 5)])
def test_swin_pair_matches_static_mask_block(hw: tuple[int, int]) -> None:
    """At a window-multiple size the dynamic mask equals timm's static one; tiny maps run."""
    torch.manual_seed(0)
    pair = SwinPair(16, 2, window_size=4).eval()
    x = torch.randn(2, 16, *hw)
    with torch.no_grad():
        y = pair(x)
    assert y.shape == x.shape and torch.isfinite(y).all()
    if hw[0] % 4 or hw[1] % 4:
        return
    static = [
        SwinTransformerBlock(
            16, hw, num_heads=2, window_size=4, shift_size=s, always_partition=True
        )
        for s in (0, 2)
    ]
    h = x.permute(0, 2, 3, 1)
    with torch.no_grad():
        for blk, ref in zip(pair.blocks, static, strict=True):
            ref.load_state_dict(blk.state_dict(), strict=True)
            h = ref.eval()(h)
    torch.testing.assert_close(y, h.permute(0, 3, 1, 2))


def test_swin_pair_no_wraparound_at_non_window_multiple() -> None:
    """Shifted windows must not mix opposite borders when H is not a multiple of the window.

    (timm's own internal padding, applied after the cyclic shift, gets this wrong at H = 13.)
    """
    torch.manual_seed(0)
    pair = SwinPair(16, 2, window_size=8).eval()
    x = torch.randn(1, 16, 13, 8)
    x2 = x.clone()
    x2[:, :, 12] += 3.0 * torch.randn(1, 16, 8)  # perturb the bottom row only
    with torch.no_grad():
        y, y2 = pair(x), pair(x2)
    assert (y[:, :, 12] - y2[:, :, 12]).abs().max() > 1e-3
    torch.testing.assert_close(y[:, :, :4], y2[:, :, :4], rtol=0, atol=1e-6)


def test_channels_last_and_autocast(small: UNet) -> None:
    x_t, x_lr = _inputs(1, 40, 24)
    t = torch.tensor([1])
    with torch.no_grad():
        ref = small(x_t, x_lr, t)
        small_cl = _model().to(memory_format=torch.channels_last)
        cl = [a.to(memory_format=torch.channels_last) for a in (x_t, x_lr)]
        torch.testing.assert_close(small_cl(*cl, t), ref, rtol=1e-4, atol=1e-4)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y = small(x_t, x_lr, t)
    assert y.shape == ref.shape and torch.isfinite(y).all()
    assert (y.float() - ref).abs().mean() < 0.1 * ref.abs().mean()


def test_preset_parameter_counts() -> None:
    n_tiny = count_parameters(build_unet(TINY_CPU))
    assert 3_000_000 <= n_tiny <= 10_000_000
    with torch.device("meta"):
        n_paper = count_parameters(build_unet(PAPER_GPU.to_dict()))
    assert 30_000_000 <= n_paper <= 120_000_000
    assert PAPER_GPU.widths == (64, 128, 256, 512)
    assert TINY_CPU.widths == (32, 64, 64, 128)


def test_config_dict_roundtrip_and_unknown_key() -> None:
    d = SMALL.to_dict()
    assert isinstance(d["channel_mult"], list)
    assert UNetConfig.from_dict(d) == SMALL
    cfg = UNetConfig.from_dict({"channel_mult": [1, 2], "swin_levels": [1]})
    assert cfg.channel_mult == (1, 2) and cfg.swin_levels == (1,)
    with pytest.raises(ValueError, match="window_sz"):
        UNetConfig.from_dict({"window_sz": 8})
    with pytest.raises(ValueError, match="swin_levels"):
        UNetConfig(channel_mult=(1, 2), swin_levels=(2,))


def test_residual_output_starts_at_x_lr_and_learns() -> None:
    """residual_output: an untrained network returns x_lr exactly (zero-initialised head); one
    optimiser step on a target away from x_lr moves the output towards it."""
    cfg = dataclasses.replace(SMALL, residual_output=True)
    model = _model(cfg).train()
    x_t, x_lr = _inputs(2, 30, 37)
    t = torch.tensor([1, 4])
    assert torch.equal(model(x_t, x_lr, t), x_lr)
    target = x_lr + 0.5
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    before = (model(x_t, x_lr, t) - target).square().mean()
    before.backward()
    opt.step()
    after = (model(x_t, x_lr, t) - target).square().mean()
    assert after < before - 1e-3
    with pytest.raises(ValueError, match="out_channels"):
        UNet(dataclasses.replace(cfg, out_channels=2))
