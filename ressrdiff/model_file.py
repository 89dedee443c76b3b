"""The shipped model file: a ``.safetensors`` file of a method's networks with its config.

Reading it lives here, apart from :mod:`ressrdiff.shipping` (which writes such files and needs
the method registry to probe the weights), so that :mod:`ressrdiff.methods.loading` can read a
shipped model without importing the exporter (no import circle).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from .checkpoint import CheckpointError, check_checkpoint_file

__all__ = ["MODEL_FORMAT", "read_shipped"]

MODEL_FORMAT = "ressrdiff-model/1"


def _flatten(networks: dict[str, dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    return {f"{net}/{k}": v for net, sd in networks.items() for k, v in sd.items()}


def _unflatten(flat: dict[str, torch.Tensor]) -> dict[str, dict[str, torch.Tensor]]:
    out: dict[str, dict[str, torch.Tensor]] = {}
    for key, v in flat.items():
        net, _, k = key.partition("/")
        out.setdefault(net, {})[k] = v
    return out


def read_shipped(path: str | Path) -> dict[str, Any]:
    """A shipped ``.safetensors`` model as a checkpoint-like dict (weights in float32), or a
    one-line :class:`CheckpointError`."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file, safe_open

    path = check_checkpoint_file(path, "model")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        flat = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"{path}: not a readable safetensors file ({first})") from None
    if meta.get("format") != MODEL_FORMAT:
        raise CheckpointError(
            f"{path}: not a ressrdiff model (format {meta.get('format')!r}, need {MODEL_FORMAT})"
        )
    nets = _unflatten({k: (v.float() if v.is_floating_point() else v) for k, v in flat.items()})
    return {
        "format": meta["format"],
        "ressrdiff_version": meta.get("ressrdiff_version"),
        "config": json.loads(meta["config"]),
        "signature": json.loads(meta["signature"]) if "signature" in meta else None,
        "networks": nets,
        "ema": None,
        "step": int(meta.get("step", 0)),
        "weights": meta.get("weights", "raw"),
        "loss": meta.get("loss"),
    }
