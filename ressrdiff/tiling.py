"""Sliding-window evaluation of a network, so that inference sees the window size training saw.

The networks are trained on random ``data.patch`` x ``data.patch`` crops but asked for whole
slices at inference. :func:`tiled_predictor` turns a predictor ``g(x_t, x_lr, t)`` into one that
evaluates ``g`` on overlapping windows of that size and blends them with Gaussian weights
(MONAI's :func:`~monai.inferers.sliding_window_inference`). Only the network evaluation is tiled:
a sampler that calls the tiled predictor keeps its state and noise whole-slice.
:func:`tiled_map` does the same for a one-image map ``f(x)`` (the feed-forward methods).

:func:`resolve_window` turns the ``window`` keyword of ``Method.super_resolve`` into a window
size or None (whole slice): ``"auto"`` is the training patch when the slice is larger than it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["WindowSpec", "resolve_window", "tiled_predictor", "tiled_map", "window_roi"]

Predictor = Callable[[Tensor, Tensor, Tensor], Tensor]

#: the defaults of the ``overlap`` and ``sw_batch_size`` keywords
DEFAULT_OVERLAP = 0.5
DEFAULT_SW_BATCH = 8


@dataclass(frozen=True)
class WindowSpec:
    """How one network call is tiled: square ``size`` windows (clipped to the slice), overlapping
    by the fraction ``overlap``, ``sw_batch_size`` windows per network call, blended with
    ``mode`` weights (``"gaussian"``, sigma ``sigma_scale`` x window)."""

    size: int
    overlap: float = DEFAULT_OVERLAP
    sw_batch_size: int = DEFAULT_SW_BATCH
    mode: str = "gaussian"
    sigma_scale: float = 0.125

    def __post_init__(self) -> None:
        if int(self.size) < 1:
            raise ValueError(f"window size must be >= 1, got {self.size}")
        if not 0.0 <= float(self.overlap) < 1.0:
            raise ValueError(f"window overlap must lie in [0, 1), got {self.overlap}")
        if int(self.sw_batch_size) < 1:
            raise ValueError(f"sw_batch_size must be >= 1, got {self.sw_batch_size}")


def resolve_window(
    window: int | str | None, patch: int | None, shape: tuple[int, ...]
) -> int | None:
    """The window size for slices of ``shape`` (``(..., H, W)``), or None for the whole slice.

    ``None``: whole slice. ``"auto"``: ``patch`` (the training patch size) when the slice is
    larger than it along either axis, else whole slice. An int: that size; a window covering
    the whole slice is the whole slice."""
    H, W = int(shape[-2]), int(shape[-1])
    if window is None:
        return None
    if isinstance(window, str):
        if window != "auto":
            raise ValueError(f"window must be an int, None or 'auto', got {window!r}")
        if patch is None:
            return None
        window = int(patch)
    if isinstance(window, bool) or int(window) != window or int(window) < 1:
        raise ValueError(f"window must be an int >= 1, None or 'auto', got {window!r}")
    window = int(window)
    return window if window < max(H, W) else None


def window_roi(size: int, shape: tuple[int, ...]) -> tuple[int, int]:
    """The ``size`` x ``size`` window clipped to a slice of ``shape`` (no zero padding)."""
    return min(int(size), int(shape[-2])), min(int(size), int(shape[-1]))


def _sliding(inputs: Tensor, spec: WindowSpec, fn: Callable[[Tensor], Tensor]) -> Tensor:
    from monai.inferers import sliding_window_inference  # lazy: MONAI is slow to import

    out = sliding_window_inference(
        inputs,
        roi_size=window_roi(spec.size, tuple(inputs.shape)),
        sw_batch_size=int(spec.sw_batch_size),
        predictor=fn,
        overlap=float(spec.overlap),
        mode=spec.mode,
        sigma_scale=spec.sigma_scale,
    )
    return out.as_tensor() if hasattr(out, "as_tensor") else out


def tiled_predictor(g: Predictor, spec: WindowSpec) -> Predictor:
    """``g(x_t, x_lr, t)`` evaluated on overlapping windows of ``spec.size`` pixels.

    ``x_t`` and ``x_lr`` are concatenated along the channels and windowed together; each window
    gets its sample's step. ``t`` is per sample (``(B,)``, or a scalar for all): samples that
    share a step are windowed in one call (in Algorithm 2 that is the whole batch), others
    separately, so MONAI's window batches never mix steps. The output has ``x_t``'s dtype."""

    def tiled(x_t: Tensor, x_lr: Tensor, t: Tensor) -> Tensor:
        B, c = x_t.shape[0], x_t.shape[1]
        t = torch.as_tensor(t, device=x_t.device)
        t = t.expand(B) if t.dim() == 0 else t
        if t.shape != (B,):
            raise ValueError(f"tiled predictor: t must be a scalar or ({B},), got {tuple(t.shape)}")
        x_lr = x_lr.to(x_t.dtype)
        out: Tensor | None = None
        for value in torch.unique(t):
            idx = torch.nonzero(t == value).flatten()
            inp = torch.cat([x_t[idx], x_lr[idx]], dim=1)

            def call(w: Tensor, value: Tensor = value) -> Tensor:
                return g(w[:, :c], w[:, c:], value.expand(w.shape[0]))

            y = _sliding(inp, spec, call).to(x_t.dtype)
            if len(idx) == B:
                return y
            if out is None:
                out = torch.empty((B, *y.shape[1:]), dtype=y.dtype, device=y.device)
            out[idx] = y
        assert out is not None
        return out

    return tiled


def tiled_map(f: Callable[[Tensor], Tensor], spec: WindowSpec) -> Callable[[Tensor], Tensor]:
    """A one-image map ``f(x)`` (a feed-forward generator) evaluated on overlapping windows."""

    def tiled(x: Tensor) -> Tensor:
        return _sliding(x, spec, f)

    return tiled
