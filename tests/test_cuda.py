"""CUDA paths: bf16 autocast + channels-last training, sampling on the GPU. Skipped without CUDA
(CI has none); run on a GPU machine with ``pytest tests/test_cuda.py``."""

from __future__ import annotations

import pytest
import torch
from conftest import SyntheticPairs, tiny_config

from ressrdiff.methods import build_method
from ressrdiff.methods.base import per_sample_draws
from ressrdiff.training import Trainer

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def test_per_sample_draws_identical_on_cpu_and_cuda():
    seeds = torch.tensor([3, 99, 12345])
    t_cpu, n_cpu = per_sample_draws(seeds, 15, (1, 8, 8), torch.device("cpu"), torch.float32)
    t_gpu, n_gpu = per_sample_draws(seeds, 15, (1, 8, 8), torch.device("cuda"), torch.float32)
    assert torch.equal(t_cpu, t_gpu.cpu()) and torch.equal(n_cpu, n_gpu.cpu())


def test_bf16_channels_last_training_reduces_loss(tmp_path):
    cfg = tiny_config(
        **{"train.device": "cuda", "train.steps": 60, "train.lr": 3e-3, "train.ckpt_every": 1000}
    )
    tr = Trainer(cfg, tmp_path, dataset=SyntheticPairs(n=16, size=32), progress=False)
    assert next(tr.method.net.parameters()).is_cuda
    hist = tr.train()
    first = sum(h["mse"] for h in hist[:5]) / 5
    last = sum(h["mse"] for h in hist[-5:]) / 5
    assert all(torch.isfinite(torch.tensor(h["loss"])) for h in hist)
    assert last < 0.5 * first


def test_cuda_sampling_bf16_close_to_fp32():
    m = build_method(tiny_config()).cuda().eval()
    x = SyntheticPairs(n=2, size=32).lr.cuda()
    g = torch.Generator(device="cuda")
    a = m.super_resolve(x, steps=4, generator=g.manual_seed(0))
    with torch.autocast("cuda", dtype=torch.bfloat16):
        b = m.super_resolve(x, steps=4, generator=g.manual_seed(0)).float()
    assert a.is_cuda and a.shape == x.shape
    assert ((a - b).norm() / a.norm()).item() < 0.05
    oracle = m.sampling_schedule(4)
    from ressrdiff.diffusion import sample

    hr = SyntheticPairs(n=2, size=32).hr.cuda()
    out = sample(lambda xt, xl, t: hr, x, oracle, generator=g)
    torch.testing.assert_close(out, hr, rtol=0, atol=1e-6)
