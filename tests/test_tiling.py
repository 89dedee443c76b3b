"""Sliding-window network calls inside Algorithm 2 (issue 15, "inference sees what training
saw"): checked numerically against whole-slice calls."""

from __future__ import annotations

import pytest
import torch
from conftest import TINY_MODEL, tiny_config
from torch import Tensor, nn

from ressrdiff.diffusion import sample
from ressrdiff.methods import build_method
from ressrdiff.tiling import WindowSpec, resolve_window, tiled_map, tiled_predictor, window_roi


@pytest.fixture(autouse=True)
def _one_thread_each(_threads):
    torch.set_num_threads(1)


class Pointwise(nn.Module):
    """A 1x1-conv network whose output at a pixel depends on that pixel and on t only."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(2, 1, 1)

    def forward(self, x_t: Tensor, x_lr: Tensor, t: Tensor) -> Tensor:
        scale = 1.0 + 0.1 * t.float().view(-1, 1, 1, 1)
        return torch.tanh(self.conv(torch.cat([x_t, x_lr], dim=1))) * scale


class Local(nn.Module):
    """A 3x3 conv network (not pointwise: windows change its output near their borders)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(1)
        self.conv = nn.Conv2d(2, 1, 3, padding=1)

    def forward(self, x_t: Tensor, x_lr: Tensor, t: Tensor) -> Tensor:
        return self.conv(torch.cat([x_t, x_lr], dim=1)) + 0.05 * t.float().view(-1, 1, 1, 1)


def _inputs(b: int, h: int, w: int, seed: int = 0) -> tuple[Tensor, Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, 1, h, w, generator=g), torch.rand(b, 1, h, w, generator=g) * 2 - 1


def _method(**model):
    return build_method(tiny_config(model={**TINY_MODEL, **model})).eval()


def test_resolve_window():
    assert resolve_window(None, 16, (1, 1, 64, 64)) is None
    assert resolve_window("auto", 16, (1, 1, 64, 64)) == 16
    assert resolve_window("auto", 16, (1, 1, 16, 16)) is None  # not larger than the patch
    assert resolve_window("auto", 16, (1, 1, 12, 40)) == 16  # larger along one axis
    assert window_roi(16, (1, 1, 12, 40)) == (12, 16)  # clipped, never zero-padded
    assert resolve_window("auto", None, (1, 1, 64, 64)) is None
    assert resolve_window(24, 16, (1, 1, 64, 64)) == 24
    assert resolve_window(64, 16, (1, 1, 64, 64)) is None  # a window covering the slice
    for bad in ("whole", 0, -3, 2.5, True):
        with pytest.raises(ValueError, match="window must be"):
            resolve_window(bad, 16, (1, 1, 64, 64))
    with pytest.raises(ValueError, match="overlap"):
        WindowSpec(16, overlap=1.0)
    with pytest.raises(ValueError, match="sw_batch_size"):
        WindowSpec(16, sw_batch_size=0)


@pytest.mark.parametrize("overlap", [0.0, 0.25, 0.5])
def test_a_pointwise_network_gives_the_whole_slice_result_tiled(overlap):
    net = Pointwise()
    x_t, x_lr = _inputs(3, 40, 56)  # not multiples of the window
    t = torch.tensor([4, 4, 4])
    with torch.no_grad():
        whole = net(x_t, x_lr, t)
        tiled = tiled_predictor(net, WindowSpec(16, overlap=overlap, sw_batch_size=5))(x_t, x_lr, t)
    assert tiled.shape == whole.shape and tiled.dtype == whole.dtype
    torch.testing.assert_close(tiled, whole, atol=1e-5, rtol=0)


def test_a_window_the_size_of_the_slice_is_the_whole_slice():
    net = Local()
    x_t, x_lr = _inputs(2, 32, 32)
    t = torch.tensor([2, 2])
    with torch.no_grad():
        whole = net(x_t, x_lr, t)
        tiled = tiled_predictor(net, WindowSpec(32))(x_t, x_lr, t)
        # a non-pointwise network differs near window borders when tiled
        smaller = tiled_predictor(net, WindowSpec(16))(x_t, x_lr, t)
    torch.testing.assert_close(tiled, whole, atol=1e-6, rtol=0)
    assert (smaller - whole).abs().max() > 1e-3


def test_each_sample_of_a_batch_gets_its_own_step():
    """t = [3, 7, 3]: the tiled batch equals each sample tiled alone with its own t, for windows
    batched across samples (sw_batch_size 7 does not divide the 9 windows per slice)."""
    spec = WindowSpec(16, overlap=0.5, sw_batch_size=7)
    x_t, x_lr = _inputs(3, 32, 32, seed=2)
    t = torch.tensor([3, 7, 3])
    with torch.no_grad():
        for net in (Pointwise(), Local()):
            g = tiled_predictor(net, spec)
            both = g(x_t, x_lr, t)
            alone = torch.cat([g(x_t[i : i + 1], x_lr[i : i + 1], t[i : i + 1]) for i in range(3)])
            torch.testing.assert_close(both, alone, atol=1e-6, rtol=0)
        pw = Pointwise()
        torch.testing.assert_close(
            tiled_predictor(pw, spec)(x_t, x_lr, t), pw(x_t, x_lr, t), atol=1e-5, rtol=0
        )
        # a scalar t applies to every sample
        torch.testing.assert_close(
            tiled_predictor(pw, spec)(x_t, x_lr, torch.tensor(5)),
            pw(x_t, x_lr, torch.full((3,), 5)),
            atol=1e-5,
            rtol=0,
        )


def test_the_sampler_with_a_tiled_predictor_is_deterministic_and_keeps_whole_slice_state():
    m = _method(residual_output=False)
    sch = m.sampling_schedule(4)
    _, x_lr = _inputs(2, 32, 32, seed=3)
    g = tiled_predictor(m.predictor(), WindowSpec(16, overlap=0.5, sw_batch_size=4))
    a = sample(g, x_lr, sch, generator=torch.Generator().manual_seed(7))
    b = sample(g, x_lr, sch, generator=torch.Generator().manual_seed(7))
    assert torch.equal(a, b)
    # with a pointwise network the tiled sampler is the whole-slice sampler, same noise
    pw = Pointwise()
    whole = sample(pw, x_lr, sch, generator=torch.Generator().manual_seed(7))
    tiled = sample(
        tiled_predictor(pw, WindowSpec(16)), x_lr, sch, generator=torch.Generator().manual_seed(7)
    )
    torch.testing.assert_close(tiled, whole, atol=1e-5, rtol=0)


def test_window_none_is_bitwise_the_whole_slice_sampler_and_auto_tiles():
    m = _method(residual_output=False)
    _, x_lr = _inputs(2, 32, 32, seed=4)

    def gen() -> torch.Generator:
        return torch.Generator().manual_seed(11)

    today = sample(m.predictor(), x_lr, m.sampling_schedule(4), generator=gen())
    assert torch.equal(m.super_resolve(x_lr, steps=4, generator=gen(), window=None), today)
    # the default is the model's infer.window: whole slices unless its config says otherwise
    assert m.cfg.infer.window is None and m.window_for(x_lr) is None
    assert torch.equal(m.super_resolve(x_lr, steps=4, generator=gen()), today)
    m.cfg.infer.window = "auto"
    auto = m.super_resolve(x_lr, steps=4, generator=gen())  # "auto": data.patch = 16
    assert m.window_for(x_lr) == 16
    assert torch.equal(auto, m.super_resolve(x_lr, steps=4, generator=gen(), window=16))
    assert (auto - today).abs().max() > 1e-4  # the U-Net is not pointwise
    # a slice no larger than the training patch is sampled whole, exactly as before
    small = x_lr[..., :16, :16]
    assert torch.equal(
        m.super_resolve(small, steps=4, generator=gen()),
        m.super_resolve(small, steps=4, generator=gen(), window=None),
    )
    # the ensemble takes the same keywords
    ens_none = m.super_resolve_ensemble(x_lr, 2, steps=2, generator=gen(), window=None)
    ens_auto = m.super_resolve_ensemble(x_lr, 2, steps=2, generator=gen())
    assert ens_auto.samples.shape == (2, 2, 1, 32, 32)
    assert not torch.equal(ens_none.mean, ens_auto.mean)


def test_an_identity_network_is_unchanged_by_tiling():
    """An untrained residual-output U-Net returns x_LR (a pointwise map): tiled = whole."""
    m = _method(residual_output=True)
    _, x_lr = _inputs(1, 48, 40, seed=5)
    out = m.super_resolve(x_lr, steps=4, generator=torch.Generator().manual_seed(0), overlap=0.25)
    torch.testing.assert_close(out, x_lr, atol=1e-5, rtol=0)


def test_feed_forward_methods_tile_on_request():
    m = build_method(tiny_config(method="pix2pix")).eval()
    _, x_lr = _inputs(2, 32, 32, seed=6)
    whole = m.super_resolve(x_lr)  # default: whole slices, as before
    assert torch.equal(whole, m.generate(x_lr).to(x_lr.dtype))
    tiled = m.super_resolve(x_lr, window="auto", sw_batch_size=3)
    assert tiled.shape == whole.shape
    ref = tiled_map(m.generate, WindowSpec(16, sw_batch_size=3))(x_lr)
    torch.testing.assert_close(tiled, ref, atol=0, rtol=0)
    bic = build_method(tiny_config(method="bicubic", model={}))
    assert torch.equal(bic.super_resolve(x_lr, window="auto"), bic.super_resolve(x_lr))
    with pytest.raises(ValueError, match="whole slices"):
        bic.super_resolve(x_lr, window=8)


def test_infer_config_records_the_window_and_old_configs_compare_equal():
    from ressrdiff.config import ConfigError, RunConfig

    base = RunConfig()
    assert "infer" not in base.to_dict()  # a config made before the field: unchanged
    tiled = base.replace(**{"infer.window": "auto", "infer.overlap": 0.25})
    assert tiled.to_dict()["infer"] == {"window": "auto", "overlap": 0.25, "sw_batch_size": 8}
    assert RunConfig.from_dict(tiled.to_dict()).infer.window == "auto"
    for bad in ("big", 4, True, 1.5):
        with pytest.raises(ConfigError, match="infer.window"):
            base.replace(**{"infer.window": bad})
    with pytest.raises(ConfigError, match="infer.overlap"):
        base.replace(**{"infer.overlap": 1.0})
