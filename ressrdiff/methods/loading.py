"""Rebuild a trained method from its checkpoint, for inference."""

from __future__ import annotations

from pathlib import Path

import torch

from ..checkpoint import CheckpointError, load_checkpoint
from ..config import ConfigError, RunConfig
from ..model_file import read_shipped
from .base import METHODS, Method

__all__ = ["load_method"]


def load_method(
    path: str | Path,
    *,
    device: str | torch.device = "cpu",
    use_ema: bool = True,
    expect: RunConfig | None = None,
) -> Method:
    """Load a method (in eval mode) from a training checkpoint or a shipped ``.safetensors``
    model (:mod:`ressrdiff.shipping`).

    ``use_ema`` takes the EMA weights when the checkpoint has them. With ``expect``, the
    checkpoint must match that config's method, network and schedule, or a one-line
    :class:`CheckpointError` says what differs.
    """
    if Path(path).suffix == ".safetensors":
        ckpt = read_shipped(path)
    else:
        ckpt = load_checkpoint(path, map_location="cpu")
    try:
        cfg = RunConfig.from_dict(ckpt["config"], where=str(path))
    except (KeyError, ConfigError) as e:
        raise CheckpointError(f"{path}: checkpoint has no valid config ({e})") from None
    if cfg.method not in METHODS:
        raise CheckpointError(f"{path}: unknown method {cfg.method!r} in checkpoint")
    cfg = cfg.replace(**{"loss.lpips": "off"})  # inference needs no loss network
    method = METHODS[cfg.method](cfg)
    method.check_signature(ckpt, str(path))
    if expect is not None:
        METHODS[expect.method](expect.replace(**{"loss.lpips": "off"})).check_signature(
            ckpt, str(path)
        )
    source = ckpt["ema"] if use_ema and ckpt.get("ema") else ckpt["networks"]
    for name, net in method.networks().items():
        try:
            net.load_state_dict(source[name])
        except (KeyError, RuntimeError) as e:
            first = str(e).strip().splitlines()[0]
            raise CheckpointError(
                f"{path}: weights do not fit network {name!r} ({first})"
            ) from None
    method.trained_step = int(ckpt.get("step", 0))
    method.trained_loss = str(ckpt.get("loss") or "not recorded")
    method.weights = "ema" if source is ckpt.get("ema") else ckpt.get("weights", "raw")
    return method.to(device).eval()
