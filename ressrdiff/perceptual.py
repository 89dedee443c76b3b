"""LPIPS (Zhang et al. 2018) through the ``lpips`` package, honest about missing weights.

LPIPS needs torchvision's ImageNet AlexNet weights. They are never downloaded here: if
``alexnet-owt-7be5be79.pth`` is not in the torch hub cache, :func:`load_lpips` returns ``None``
and a one-line reason, and callers must fall back (training) or report LPIPS as unavailable
(metrics). A random backbone is only ever built on explicit request, for plumbing tests.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import Tensor, nn

__all__ = ["ALEXNET_FILE", "alexnet_weights_path", "load_lpips", "lpips_distance", "warn_once"]

ALEXNET_FILE = "alexnet-owt-7be5be79.pth"
_warned: set[str] = set()


def alexnet_weights_path() -> Path:
    """Where torchvision looks for the AlexNet weights (``$TORCH_HOME/hub/checkpoints``)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / ALEXNET_FILE


def warn_once(message: str) -> None:
    """Emit a UserWarning once per process for a given message."""
    if message not in _warned:
        _warned.add(message)
        warnings.warn(message, UserWarning, stacklevel=3)


def load_lpips(
    device: torch.device | str = "cpu", *, random_backbone: bool = False
) -> tuple[nn.Module | None, str]:
    """Return ``(lpips_module, description)`` or ``(None, reason)`` when the weights are absent.

    ``random_backbone=True`` builds LPIPS on a randomly initialised AlexNet (``pnet_rand``); its
    values are meaningless as a metric and exist only to exercise code paths in tests.
    """
    try:
        import lpips
    except ImportError:  # pragma: no cover - lpips is a hard dependency
        return None, "LPIPS unavailable: the 'lpips' package is not installed (pip install lpips)"
    if random_backbone:
        net = lpips.LPIPS(net="alex", version="0.1", pnet_rand=True, verbose=False)
        desc = "LPIPS(alex, v0.1) with a RANDOM backbone (plumbing only, not a metric)"
    else:
        path = alexnet_weights_path()
        if not path.is_file():
            return None, (
                f"LPIPS unavailable: AlexNet weights not found at {path} "
                "(copy alexnet-owt-7be5be79.pth there to enable it; nothing is downloaded)"
            )
        net = lpips.LPIPS(net="alex", version="0.1", verbose=False)
        desc = "LPIPS(alex, v0.1)"
    net = net.to(device).eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return net, desc


def lpips_distance(net: nn.Module, x: Tensor, y: Tensor) -> Tensor:
    """Per-image LPIPS between single-channel images in [-1, 1], shape (B,).

    Grey values are repeated to 3 channels and clamped to [-1, 1], the range LPIPS expects.
    """
    if x.shape[1] == 1:
        x, y = x.repeat(1, 3, 1, 1), y.repeat(1, 3, 1, 1)
    return net(x.clamp(-1, 1), y.clamp(-1, 1)).flatten()
