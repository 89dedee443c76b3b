"""Through-plane consistency (ressrdiff.consistency): per-plane PSNR in closed form, the block,
and the fusion study's rows against super_resolve_planes itself."""

from __future__ import annotations

import math

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from ressrdiff import consistency
from ressrdiff.config import load_config
from ressrdiff.consistency import central_block, fusion_study, plane_psnr, volume_scores
from ressrdiff.diagnosis import degrade_like, percentile_unit
from ressrdiff.fusion import super_resolve_planes
from ressrdiff.methods import build_method


def test_plane_psnr_is_the_closed_form_for_a_constant_error_in_every_plane():
    rng = np.random.default_rng(0)
    ref = rng.uniform(-1, 1, (14, 16, 18))
    mask = np.zeros(ref.shape, dtype=bool)
    mask[1:13, 2:15, 3:17] = True
    x = ref + np.where(mask, 0.02, 0.7)  # the error outside the mask is ignored
    want = 10 * math.log10(4 / 0.02**2)
    for axis in range(3):
        assert plane_psnr(x, ref, mask, axis) == pytest.approx(want, rel=1e-5)
    s = volume_scores(x, ref, mask)
    assert s["psnr_3d"] == pytest.approx(want, rel=1e-5)
    assert {"psnr_axial", "psnr_coronal", "psnr_sagittal", "ssim_axial"} <= set(s)


def test_plane_psnr_sees_stripes_across_slices_only():
    """An error that changes from one axial slice to the next (stripes in a reformat) costs the
    same in the volume, but the per-slice means differ: axial slices each see one level."""
    ref = np.zeros((8, 8, 8))
    mask = np.ones_like(ref, dtype=bool)
    err = np.where(np.arange(8) % 2 == 0, 0.01, 0.1)[:, None, None] * np.ones_like(ref)
    x = ref + err
    axial, sagittal = plane_psnr(x, ref, mask, 0), plane_psnr(x, ref, mask, 2)
    mse = np.mean(err**2)
    assert sagittal == pytest.approx(10 * math.log10(4 / mse), rel=1e-6)  # each mixes both
    want_axial = np.mean([10 * math.log10(4 / e**2) for e in (0.01, 0.1)])
    assert axial == pytest.approx(want_axial, rel=1e-6)


def test_central_block_is_centred_on_the_mask_and_clipped():
    mask = np.zeros((20, 30, 40), dtype=bool)
    mask[2:6, 10:20, 30:40] = True
    z, y, x = central_block(mask, 8)
    assert (z.start, z.stop) == (0, 8)  # clipped at the volume's edge
    assert (y.stop - y.start, x.stop - x.start) == (8, 8)
    assert y.start <= 15 < y.stop and x.start <= 35 <= x.stop
    assert central_block(mask, 100)[2] == slice(0, 40)


@pytest.fixture()
def method_and_volume(monkeypatch):
    torch.manual_seed(0)
    cfg = load_config("smoke").replace(**{"loss.lpips": "off", "data.degradation": "acquisition"})
    m = build_method(cfg).eval()
    with torch.no_grad():  # the zero-initialised head would make every output x_LR
        for p in m.net.parameters():
            p.add_(0.05 * torch.randn_like(p))
    rng = np.random.default_rng(1)
    zz, yy, xx = np.meshgrid(*(np.linspace(-1, 1, 24),) * 3, indexing="ij")
    inside = xx**2 + yy**2 + zz**2 < 0.8
    a = np.where(inside, 500 + 100 * np.sin(5 * xx) * np.cos(4 * zz), 3.0)
    a = (a + rng.normal(0, 2, a.shape)).astype(np.float32)
    hr = sitk.GetImageFromArray(a)
    monkeypatch.setattr(consistency, "split_volume", lambda method, role: ("s", hr, inside))
    return m, hr, inside


def test_fusion_study_rows_are_the_planes_and_their_mean(method_and_volume):
    m, hr, inside = method_and_volume
    study = fusion_study(m, block=16, steps=1)
    t = study.table.set_index("output")
    assert list(t.index) == [
        "B-spline input",
        "axial only",
        "coronal only",
        "sagittal only",
        "3 planes, mean",
        "3 planes, median",
    ]
    assert study.block == (16, 16, 16) and t.loc["axial only", "gain_vs_axial_db"] == 0.0
    # the mean row is super_resolve_planes' own 3-plane mean of the same LR block
    sl = central_block(inside, 16)
    z, y, x = sl
    block = hr[x.start : x.stop, y.start : y.stop, z.start : z.stop]
    lr = degrade_like(m, block)
    want, _, _ = super_resolve_planes(m, lr, steps=1, progress=False)
    unit = percentile_unit(sitk.GetArrayFromImage(block), inside[sl])
    np.testing.assert_allclose(
        study.volumes["3 planes, mean"], unit(sitk.GetArrayFromImage(want)), atol=1e-5
    )
    with pytest.raises(ValueError, match="test subject"):
        fusion_study(m, role="test")
