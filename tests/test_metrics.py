"""PSNR against its closed form."""

import math

import torch

from ressrdiff.metrics import psnr, to_unit


def test_psnr_closed_form_and_mask():
    ref = torch.zeros(2, 1, 8, 8)
    x = ref.clone()
    x[0] += 0.1  # MSE 0.01 -> 20 dB
    x[1, :, :4] += 0.5  # half the pixels off by 0.5: MSE 0.125 -> 9.03 dB
    p = psnr(x, ref)
    assert math.isclose(p[0].item(), 20.0, abs_tol=1e-5)
    assert math.isclose(p[1].item(), 10 * math.log10(1 / 0.125), abs_tol=1e-5)
    mask = torch.zeros_like(ref, dtype=torch.bool)
    mask[:, :, 4:] = True  # only the untouched half of image 1
    assert psnr(x, ref, mask=mask)[1].item() > 150  # error-free region: capped by 1e-20
    assert math.isclose(
        psnr(x, ref, data_range=2.0)[0].item(), 20 + 20 * math.log10(2), abs_tol=1e-5
    )


def test_to_unit():
    assert torch.equal(
        to_unit(torch.tensor([-1.0, 0.0, 1.0, 3.0])), torch.tensor([0.0, 0.5, 1.0, 1.0])
    )
