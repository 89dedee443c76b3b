"""Shared fixtures: a tiny network config and a small synthetic paired-slice dataset."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import yaml

from ressrdiff.config import RunConfig

TINY_MODEL = {
    "preset": "tiny-cpu",
    "base_channels": 8,
    "channel_mult": [1, 2],
    "num_res_blocks": 1,
    "swin_levels": [1],
    "swin_mid": True,
    "swin_head_dim": 8,
    "window_size": 4,
}


class SyntheticPairs:
    """Smooth random 'slices' (HR) and their 4x block-averaged, nearest-upsampled LR, in [-1, 1].
    Deterministic; crops are fixed so that only the trainer's sampling order matters."""

    def __init__(self, n: int = 16, size: int = 16, seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        x = F.avg_pool2d(torch.rand(n, 1, size + 8, size + 8, generator=g), 5, 1)[..., :size, :size]
        x = (x - x.amin((2, 3), keepdim=True)) / (
            x.amax((2, 3), keepdim=True) - x.amin((2, 3), keepdim=True)
        )
        self.hr = 2 * x - 1
        self.lr = F.interpolate(F.avg_pool2d(self.hr, 4), scale_factor=4, mode="nearest")
        self.epochs_seen: list[int] = []

    def __len__(self) -> int:
        return self.hr.shape[0]

    def set_epoch(self, epoch: int) -> None:
        self.epochs_seen.append(epoch)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"hr": self.hr[i], "lr": self.lr[i]}


def tiny_config(**overrides) -> RunConfig:
    base = RunConfig.from_dict(
        {
            "name": "test",
            "seed": 0,
            "model": dict(TINY_MODEL),
            "schedule": {"preset": "paper"},
            "loss": {"lpips": "off"},
            "data": {"source": "npz", "path": "unused.npz", "patch": 16},
            "train": {
                "steps": 6,
                "batch_size": 4,
                "lr": 2e-3,
                "warmup_steps": 2,
                "log_every": 1,
                "ckpt_every": 3,
                "ema_decay": 0.9,
                "device": "cpu",
            },
        }
    )
    return base.replace(**overrides) if overrides else base


@pytest.fixture
def pairs() -> SyntheticPairs:
    return SyntheticPairs()


@pytest.fixture(autouse=True)
def _threads():
    torch.set_num_threads(2)


def write_npz_run(tmp_path, steps=3, batch=4, name="cfg.yaml", n=16):
    """A run config training the tiny model on ``n`` synthetic 16x16 pairs saved as .npz;
    returns (config path, pairs)."""
    pairs = SyntheticPairs(n=n, size=16)
    npz = tmp_path / "pairs.npz"
    np.savez(npz, hr=pairs.hr[:, 0].numpy(), lr=pairs.lr[:, 0].numpy())
    cfg = {
        "name": "cli",
        "seed": 1,
        "model": TINY_MODEL,
        "schedule": {"preset": "paper"},
        "loss": {"lpips": "off"},
        "data": {"source": "npz", "path": str(npz), "patch": 16, "augment": False},
        "train": {
            "steps": steps,
            "batch_size": batch,
            "lr": 1e-3,
            "warmup_steps": 1,
            "ckpt_every": 100,
            "log_every": 1,
            "device": "cpu",
            "ema_decay": None,
        },
    }
    path = tmp_path / name
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return path, pairs
