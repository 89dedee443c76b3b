"""The step-count convergence check (chapter 8: TM-DDPM with its own steps)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import SyntheticPairs

from ressrdiff.convergence import step_convergence, summarise_convergence
from ressrdiff.data.slices import MaskedPairedSlices
from ressrdiff.diagnosis import crop_windows


class _Shrink:
    """A stand-in sampler: K steps return ``x_LR * K / (K + 1)`` plus seeded noise of scale
    0.01, so the output, and hence every score, is known in closed form per K and seed."""

    device = torch.device("cpu")

    def super_resolve(self, x_lr, steps=None, generator=None):
        noise = torch.randn(x_lr.shape, generator=generator)
        return x_lr * steps / (steps + 1) + 0.01 * noise

    def nfe_for(self, steps=None):
        return int(steps)


@pytest.fixture(scope="module")
def slices() -> MaskedPairedSlices:
    p = SyntheticPairs(n=3, size=24, seed=5)
    mask = np.zeros((3, 24, 24), dtype=bool)
    mask[:, 4:20, 3:21] = True
    return MaskedPairedSlices(
        hr=p.hr[:, 0].numpy(), lr=p.lr[:, 0].numpy(), subject="s", index=np.arange(3), mask=mask
    )


def test_scores_match_the_closed_form(slices):
    size, seed = 16, 2
    df = step_convergence(_Shrink(), slices, [1, 3, 9], size=size, seed=seed)
    win = crop_windows(slices.mask, size, 1, seed)
    assert len(df) == 3 * len(win) and df["K"].tolist()[:3] == [1, 3, 9]
    for _, r in df.iterrows():
        k, y0, x0 = int(r["slice"]), int(r["y0"]), int(r["x0"])
        assert (k, y0, x0) in {tuple(w) for w in win.tolist()}
        cut = np.s_[y0 : y0 + size, x0 : x0 + size]
        hr, lr, m = slices.hr[k][cut], slices.lr[k][cut], slices.mask[k][cut]
        g = torch.Generator().manual_seed(seed + k)
        noise = torch.randn((1, 1, size, size), generator=g)[0, 0].numpy()
        K = int(r["K"])
        sr = lr * K / (K + 1) + 0.01 * noise

        def db(x, hr=hr, m=m):
            u = np.clip((x + 1) / 2, 0, 1)
            return 10 * np.log10(1 / np.mean((u - (hr + 1) / 2)[m] ** 2))

        assert r["psnr_input"] == pytest.approx(db(lr), rel=1e-6)
        assert r["psnr"] == pytest.approx(db(sr), rel=1e-5)
        assert r["psnr_gain"] == pytest.approx(db(sr) - db(lr), abs=1e-5)
        assert r["nfe"] == K and r["seconds"] >= 0


def test_summary_and_refusals(slices):
    df = step_convergence(_Shrink(), slices, [1, 4], size=16)
    s = summarise_convergence(df)
    assert s.index.tolist() == [1, 4] and (s["windows"] == 3).all()
    want = df.groupby("K")["psnr_gain"].mean()
    np.testing.assert_allclose(s["psnr_gain"], want)
    assert np.isnan(s["change"].iloc[0])
    assert s["change"].iloc[1] == pytest.approx(want[4] - want[1])
    np.testing.assert_allclose(s["s_per_nfe"], s["s_per_window"] / s["nfe"])
    se = df[df["K"] == 4]["psnr_gain"].std(ddof=1) / np.sqrt(3)
    assert s.loc[4, "psnr_gain_se"] == pytest.approx(se)
    with pytest.raises(ValueError, match="must be >= 1"):
        step_convergence(_Shrink(), slices, [0, 2])
    with pytest.raises(ValueError, match="do not fit"):
        step_convergence(_Shrink(), slices, [1], size=64)
