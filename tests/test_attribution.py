"""LAM (ressrdiff.attribution): closed forms, completeness, the fixed-noise sampler, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from conftest import tiny_config
from torch import Tensor, nn

from ressrdiff.attribution import (
    blur_path,
    context_crop,
    diffusion_index,
    draw_noise,
    gaussian_blur,
    gini_index,
    lam,
    lam_function,
    mass_radius,
    method_function,
    sample_with_noise,
    textured_windows,
)
from ressrdiff.config import load_config
from ressrdiff.diffusion import sample
from ressrdiff.methods import build_method
from ressrdiff.methods.feedforward import FeedForwardMethod

KERNEL = torch.tensor([[1.0, 2.0, -1.0], [0.5, 3.0, 1.5], [-2.0, 1.0, 0.25]])


@pytest.fixture(autouse=True)
def _threads():  # overrides conftest's: one thread, the machine is shared
    torch.set_num_threads(1)


class ConvMethod(FeedForwardMethod):
    """A one-pass method whose generator is a fixed network (the test's stand-in)."""

    name = "conv-test"

    def __init__(self, net: nn.Module) -> None:
        super().__init__(tiny_config())
        self.net = net

    def generate(self, x_lr: Tensor) -> Tensor:
        return self.net(x_lr)


def _linear_method() -> ConvMethod:
    conv = nn.Conv2d(1, 1, 3, padding=1, bias=False)
    with torch.no_grad():
        conv.weight.copy_(KERNEL[None, None])
    return ConvMethod(conv).eval()


def _image(size: int = 24, seed: int = 0) -> Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(1, 1, size, size, generator=g) * 2 - 1


def _footprint_gradient(h: int, w: int, row: int, col: int, size: int) -> np.ndarray:
    """d/dx[q] of sum_{p in window} conv(x)[p] for a zero-padded 3x3 correlation with KERNEL:
    sum over window pixels p of KERNEL[q - p + 1], written out by hand."""
    k = KERNEL.double().numpy()
    g = np.zeros((h, w))
    for pr in range(row, row + size):
        for pc in range(col, col + size):
            for u in range(3):
                for v in range(3):
                    qr, qc = pr + u - 1, pc + v - 1
                    if 0 <= qr < h and 0 <= qc < w:
                        g[qr, qc] += k[u, v]
    return g


# -- Gini and diffusion index ----------------------------------------------------------------------
def test_gini_closed_forms():
    assert gini_index(np.full((8, 8), 3.0)) == pytest.approx(0.0, abs=1e-12)
    assert diffusion_index(np.full(10, 0.2)) == pytest.approx(100.0)
    one_hot = np.zeros(50)
    one_hot[17] = -4.0  # the index is of |values|
    assert gini_index(one_hot) == pytest.approx(49 / 50)
    assert diffusion_index(one_hot) == pytest.approx(2.0)
    # half zeros, half equal: sum_ij |g_i - g_j| / (2 n^2 mean) = 8 / (2 * 16 * 0.5) = 0.5
    assert gini_index([0.0, 1.0, 0.0, 1.0]) == pytest.approx(0.5)
    assert gini_index([1.0, 2.0, 3.0]) == pytest.approx(2 * 4 / (2 * 9 * 2))  # pair formula
    assert math.isnan(gini_index(np.zeros(4)))
    with pytest.raises(ValueError, match="empty"):
        gini_index(np.zeros(0))


def test_mass_radius_of_a_point_and_a_ring():
    a = np.zeros((21, 21))
    a[10, 10] = 1.0
    assert mass_radius(a, (10, 10, 1)) == 0.0
    a[10, 15] = 1.0  # half the mass 5 pixels away
    assert mass_radius(a, (10, 10, 1), frac=0.5) == 0.0
    assert mass_radius(a, (10, 10, 1), frac=0.9) == pytest.approx(5.0)


# -- blur ----------------------------------------------------------------------------------------
def test_gaussian_blur_is_a_normalised_gaussian_and_the_path_ends_at_the_input():
    x = torch.zeros(1, 1, 21, 21)
    x[..., 10, 10] = 1.0
    y = gaussian_blur(x, 1.5)[0, 0].double()
    ax = torch.arange(-5, 6, dtype=torch.float64)
    k = torch.exp(-(ax**2) / (2 * 1.5**2))
    k2 = torch.outer(k, k) / torch.outer(k, k).sum()
    assert torch.allclose(y[5:16, 5:16], k2, atol=1e-7)
    assert float(y.sum()) == pytest.approx(1.0, abs=1e-6)
    c = torch.full((1, 1, 16, 16), 0.3)
    assert torch.allclose(gaussian_blur(c, 2.0), c, atol=1e-6)
    img = _image(16)
    p = blur_path(img, 2.0, 5)
    assert p.shape == (6, 1, 16, 16)
    assert torch.equal(p[-1:], img) and torch.allclose(p[:1], gaussian_blur(img, 2.0))
    # each point is blurred less than the one before it (less smoothing, more variance)
    var = p.flatten(1).var(dim=1)
    assert bool((var[1:] > var[:-1]).all())


# -- closed forms --------------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["blur", "line"])
def test_linear_network_attribution_is_input_minus_baseline_times_the_kernel_footprint(path):
    m, x = _linear_method(), _image(24)
    row, col, size, sigma = 9, 6, 5, 1.5
    res = lam(m, x, row, col, size, summary="sum", path=path, sigma=sigma, segments=3, n_steps=1)
    grad = _footprint_gradient(24, 24, row, col, size)
    want = (x - gaussian_blur(x, sigma))[0, 0].double().numpy() * grad
    np.testing.assert_allclose(res.signed, want, atol=2e-5)
    # supported exactly on the window grown by the kernel's radius (every tap is non-zero)
    support = np.zeros((24, 24), bool)
    support[row - 1 : row + size + 1, col - 1 : col + size + 1] = True
    assert np.all(res.attribution[~support] == 0.0)
    assert np.all(res.attribution[support] > 0)
    assert abs(res.delta) < 1e-4
    assert res.signed.sum() == pytest.approx(res.objective - res.baseline_objective, abs=1e-4)


def test_captum_riemann_trapezoid_weights_sum_to_n_minus_1_over_n():
    """Why the default quadrature is Gauss-Legendre: Captum 0.9's riemann_trapezoid gives a
    linear network (n - 1) / n of its exact attribution."""
    m, x = _linear_method(), _image(16)
    exact = lam(m, x, 4, 4, 4, summary="sum", path="line", sigma=1.0, n_steps=1)
    opts = {"summary": "sum", "path": "line", "sigma": 1.0}
    trap = lam(m, x, 4, 4, 4, n_steps=4, quadrature="riemann_trapezoid", **opts)
    np.testing.assert_allclose(trap.signed, 0.75 * exact.signed, atol=1e-6)


def test_pointwise_network_attributes_only_inside_the_window():
    net = nn.Sequential(nn.Conv2d(1, 1, 1), nn.Tanh())
    with torch.no_grad():
        net[0].weight.fill_(1.7)
        net[0].bias.fill_(0.1)
    m, x = ConvMethod(net).eval(), _image(20, seed=3)
    row, col, size = 5, 8, 6
    res = lam(m, x, row, col, size, sigma=1.5, segments=4, n_steps=2)  # gradient summary
    inside = np.zeros((20, 20), bool)
    inside[row : row + size, col : col + size] = True
    assert np.all(res.attribution[~inside] == 0.0)
    assert res.attribution[inside].sum() > 0
    assert res.gini > 1 - inside.sum() / inside.size - 1e-9  # at least as concentrated as that


def test_completeness_of_the_blur_path_within_tolerance():
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.Tanh(), nn.Conv2d(4, 1, 3, padding=1), nn.Tanh()
    )
    f, x = net.eval(), _image(20, seed=1)
    res = lam_function(f, x, 6, 7, 6, sigma=2.0, segments=8, n_steps=4)
    change = res.objective - res.baseline_objective
    # Captum's delta is sum(attributions) - (F(input) - F(baseline)), summed over the pieces
    assert res.signed.sum() - change == pytest.approx(res.delta, abs=1e-4)
    assert abs(res.delta) <= 1e-3 * abs(change)
    assert res.settings["segments"] == 8 and res.settings["quadrature"] == "gausslegendre"


# -- Res-SRDiff ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def srdiff():
    torch.manual_seed(0)
    return build_method(tiny_config()).eval()


@pytest.mark.parametrize("stochasticity", [1.0, 0.0])
def test_fixed_noise_sampler_matches_sample(srdiff, stochasticity):
    x = _image(32, seed=2)
    sched = srdiff.sampling_schedule(None)
    g = srdiff.predictor()
    gen = torch.Generator().manual_seed(7)
    ref = sample(g, x, sched, generator=gen, stochasticity=stochasticity)
    noise = draw_noise(x, sched, torch.Generator().manual_seed(7), stochasticity)
    with torch.no_grad():
        out = sample_with_noise(g, x, sched, noise, stochasticity)
    assert (out - ref).abs().max() <= 1e-6
    with pytest.raises(ValueError, match="noise tensors"):
        sample_with_noise(g, x, sched, noise[:1] if stochasticity else noise * 2, stochasticity)


def test_method_function_is_super_resolve_with_the_seeded_generator(srdiff):
    x = _image(32, seed=4)
    f = method_function(srdiff, x, seed=11)
    with torch.no_grad():
        out = f(x)
    ref = srdiff.super_resolve(x, generator=torch.Generator().manual_seed(11), window=None)
    assert (out - ref).abs().max() <= 1e-6
    assert (f(torch.cat([x, x])) - out).abs().max() <= 1e-5  # the noise is shared by a batch


@pytest.mark.parametrize("mode", ["sampler", "top-step"])
def test_res_srdiff_attribution_is_finite_and_nonzero(srdiff, mode):
    x = _image(32, seed=5)
    res = lam(srdiff, x, 12, 10, 8, mode=mode, sigma=2.0, segments=3, n_steps=2)
    assert res.attribution.shape == (32, 32)
    assert np.isfinite(res.attribution).all() and res.attribution.sum() > 0
    assert 0 <= res.gini < 1 and res.diffusion_index == pytest.approx(100 * (1 - res.gini))
    change = res.objective - res.baseline_objective
    assert res.signed.sum() - change == pytest.approx(res.delta, abs=1e-3 * max(1, abs(change)))
    assert res.settings["mode"] == mode and res.settings["method"] == "res-srdiff"


# -- windows, crops, errors ------------------------------------------------------------------------
def test_textured_windows_and_context_crop():
    hr = np.zeros((40, 40))
    hr[20:, :] = 1.0  # one horizontal edge at row 20
    mask = np.ones_like(hr, bool)
    mask[:, 32:] = False
    wins = textured_windows(hr, mask, 8, 2)
    assert len(wins) == 2
    assert all(r < 20 <= r + 7 and c + 8 <= 32 for r, c in wins)
    x = torch.arange(40 * 40.0).view(1, 1, 40, 40)
    crop, r, c = context_crop(x, 30, 2, 8, 16)
    assert crop.shape[-2:] == (16, 16)
    assert torch.equal(crop[..., r : r + 8, c : c + 8], x[..., 30:38, 2:10])
    with pytest.raises(ValueError, match="context"):
        context_crop(x, 0, 0, 8, 41)


@pytest.mark.parametrize(
    ("window", "match"),
    [
        ((20, 4, 8), "outside the 24x24 slice"),
        ((-1, 4, 4), "outside the 24x24 slice"),
        ((4, 4, 0), "empty window"),
        ((4, 4, 1), "1-pixel window"),
    ],
)
def test_bad_windows_are_one_line_errors(window, match):
    with pytest.raises(ValueError, match=match) as e:
        lam(_linear_method(), _image(24), *window)
    assert "\n" not in str(e.value)


def test_methods_without_a_network_are_one_line_errors():
    bicubic = build_method(load_config("bicubic-smoke"))
    with pytest.raises(ValueError, match="'bicubic' has no network") as e:
        lam(bicubic, _image(24), 4, 4, 8)
    assert "\n" not in str(e.value)
    with pytest.raises(ValueError, match="'object' is not supported"):
        lam(object(), _image(24), 4, 4, 8)
    with pytest.raises(ValueError, match="one slice"):
        lam(_linear_method(), _image(24).repeat(2, 1, 1, 1), 4, 4, 8)
