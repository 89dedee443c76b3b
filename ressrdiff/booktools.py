"""Small helpers shared by the book's notebooks (set-up line, profile banner, smoke label).

The notebooks only *call* the package; these functions hold the little that every chapter
repeats, so that no notebook defines its own versions of it.
"""

from __future__ import annotations

import platform
import random

import numpy as np
import torch

from . import __version__

__all__ = ["resolve_device", "setup_notebook", "profile_banner", "smoke_label", "SMOKE_LABEL"]

SMOKE_LABEL = "SMOKE RUN, not results. "


def resolve_device(device: str = "auto") -> torch.device:
    """``"auto"``: CUDA when available, else CPU; ``"cuda"`` without a GPU is a clear error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' requested but no CUDA device is available")
    return dev


def setup_notebook(seed: int = 0, device: str = "auto", *, quiet: bool = False) -> torch.device:
    """Seed Python, NumPy and torch with ``seed``, pick the device, and print one set-up line:
    the versions of ressrdiff, torch and CUDA, the device and the seed. Returns the device."""
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002 (notebooks may use the legacy global RNG)
    torch.manual_seed(seed)
    dev = resolve_device(device)
    cuda = torch.version.cuda or "none"
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else platform.processor() or "cpu"
    if not quiet:
        print(
            f"ressrdiff {__version__} | torch {torch.__version__} | CUDA {cuda} | "
            f"device {dev} ({name}, {torch.get_num_threads()} threads) | seed {seed}"
        )
    return dev


def smoke_label(profile: str) -> str:
    """The prefix for figure titles, table captions and glued result numbers: ``"SMOKE RUN, not
    results. "`` for the ``smoke`` profile, ``""`` otherwise (``f"{smoke_label(profile)}Loss"``)."""
    return SMOKE_LABEL if profile == "smoke" else ""


def profile_banner(profile: str) -> str:
    """A Markdown note for the top of a chapter's results; loud for the ``smoke`` profile."""
    if profile == "smoke":
        text = (
            "**Smoke run.** This page was executed with the `smoke` profile (tiny sizes, a few "
            "training steps) to check that the chapter runs. Its numbers are not results."
        )
    else:
        text = f"Executed with the `{profile}` profile."
    try:
        from IPython.display import Markdown, display

        display(Markdown(f"> {text}"))
    except ImportError:  # outside IPython
        print(text)
    return text
