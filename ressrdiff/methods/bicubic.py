"""Bicubic baseline: cubic B-spline interpolation from the LR grid, no training.

The paper's "Bicubic" is the LR volume resampled onto the HR grid with a cubic B-spline, i.e.
SimpleITK's ``sitkBSpline``; :func:`bicubic_volume` does exactly that on volumes.

:meth:`Bicubic.super_resolve` works on the same inputs as every other method: slices already on
the HR grid, re-gridded from the LR grid, in [-1, 1]. With ``data.regrid: nearest`` (the
paper's pre-upsampling) it cannot see the LR grid, so it first recovers it: with the
FOV-preserving LR grid of :mod:`ressrdiff.data.degrade`, nearest re-gridding copies LR sample
``k`` into HR pixels ``k f .. k f + f - 1`` (blocks starting at pixel 0; LR sample ``k`` sits at
HR coordinate ``k f + (f - 1) / 2``), so the mean of each block is that LR sample (to float
rounding). Trailing pixels beyond the last whole block are edge copies and are ignored. It then
evaluates the cubic B-spline interpolant of those samples on the HR grid, as SimpleITK does:
B-spline coefficients with mirror boundary conditions; an HR pixel outside the LR field of view
(continuous LR index beyond ``[-0.5, n - 0.5]`` along either axis) takes the nearest LR sample.
Inside the field of view the interpolation is linear and separable: one precomputed matrix per
axis (built in float64 with NumPy) applied with ``torch.matmul``, on any device. The result
matches ``regrid(lr, hr, "bspline")`` to float32 precision (see the tests).

With ``data.regrid: bspline`` (the authors' code's choice, and ``default-cpu``'s) the input
slices were re-gridded with ``sitkBSpline`` from the LR volume, which is exactly the Bicubic
result (in 3-D, even through-plane), so :meth:`Bicubic.super_resolve` returns them unchanged.

With nearest re-gridding, inputs must be block-aligned, as whole slices are; random training
crops generally are not, one more reason this method is never trained. Slices are 2-D: the
through-plane factor of a volume is not undone here (use :func:`bicubic_volume` for the 3-D
interpolation).
The in-plane factors come from ``data.preset`` and ``data.axis`` or from ``options.factors``.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import SimpleITK as sitk
import torch
from torch import Tensor, nn

from ..checkpoint import save_checkpoint
from ..config import RunConfig
from ..data.degrade import regrid, resolve_factors
from .base import register
from .feedforward import FeedForwardMethod, method_options

__all__ = [
    "Bicubic",
    "bicubic_volume",
    "bspline_upsample_matrix",
    "cubic_bspline",
    "slice_factors",
    "write_checkpoint",
]


def cubic_bspline(t: np.ndarray) -> np.ndarray:
    """The cubic B-spline basis ``beta_3(t)``: ``2/3 - t^2 + |t|^3 / 2`` for ``|t| < 1``,
    ``(2 - |t|)^3 / 6`` for ``1 <= |t| < 2``, else 0."""
    a = np.abs(np.asarray(t, dtype=np.float64))
    return np.where(a < 1, 2 / 3 - a**2 + a**3 / 2, np.where(a < 2, (2 - a) ** 3 / 6, 0.0))


def _mirror(k: np.ndarray, n: int) -> np.ndarray:
    """Whole-sample mirror of index ``k`` into ``0..n-1`` (``-1 -> 1``, ``n -> n - 2``)."""
    if n == 1:
        return np.zeros_like(k)
    period = 2 * (n - 1)
    k = np.mod(k, period)
    return np.where(k > n - 1, period - k, k)


@lru_cache(maxsize=64)
def bspline_upsample_matrix(n_lr: int, n_hr: int, factor: int) -> np.ndarray:
    """``(n_hr, n_lr)`` float64 matrix mapping LR samples to the cubic B-spline interpolant at
    the HR pixel centres ``u_j = (j - (f - 1) / 2) / f`` (in LR index units).

    Interpolating: the coefficients ``c`` solve ``(c[i-1] + 4 c[i] + c[i+1]) / 6 = s[i]`` with
    mirrored ends. HR pixels with ``u_j`` outside ``[-0.5, n_lr - 0.5]`` copy the nearest sample.
    """
    if n_lr < 1 or n_hr < 1 or factor < 1:
        raise ValueError(f"bspline_upsample_matrix: bad sizes n_lr={n_lr}, n_hr={n_hr}, f={factor}")
    idx = np.arange(n_lr)
    prefilter = np.zeros((n_lr, n_lr))
    for off, w in ((-1, 1 / 6), (0, 4 / 6), (1, 1 / 6)):
        np.add.at(prefilter, (idx, _mirror(idx + off, n_lr)), w)
    u = (np.arange(n_hr) - (factor - 1) / 2) / factor
    base = np.floor(u).astype(np.int64)
    weights = np.zeros((n_hr, n_lr))
    rows = np.arange(n_hr)
    for off in (-1, 0, 1, 2):
        k = base + off
        np.add.at(weights, (rows, _mirror(k, n_lr)), cubic_bspline(u - k))
    mat = weights @ np.linalg.inv(prefilter)
    outside = (u < -0.5) | (u > n_lr - 0.5)
    mat[outside] = 0.0
    mat[outside, np.clip(np.rint(u[outside]).astype(np.int64), 0, n_lr - 1)] = 1.0
    mat.setflags(write=False)
    return mat


def slice_factors(preset: str, axis: int) -> tuple[int, int]:
    """In-plane (row, column) down-sampling factors of slices cut across image ``axis``
    (x=0, y=1, z=2) under degradation ``preset`` (factors given in x, y, z order)."""
    f = resolve_factors(preset)
    if axis not in (0, 1, 2):
        raise ValueError(f"image axis must be 0, 1 or 2, got {axis}")
    rows, cols = [a for a in (2, 1, 0) if a != axis]  # numpy (z, y, x) order minus the axis
    return _as_int(f[rows]), _as_int(f[cols])


def _as_int(v: float) -> int:
    if abs(v - round(v)) > 1e-9 or v < 1:
        raise ValueError(f"bicubic: block recovery needs integer factors >= 1, got {v}")
    return int(round(v))


def bicubic_volume(lr: sitk.Image, reference: sitk.Image) -> sitk.Image:
    """The paper's Bicubic on volumes: the LR volume resampled onto ``reference``'s (HR) grid with
    SimpleITK's cubic B-spline (``sitkBSpline``)."""
    return regrid(lr, reference, "bspline")


@register("bicubic")
class Bicubic(FeedForwardMethod):
    """Cubic B-spline interpolation from the recovered LR grid; no parameters, no training."""

    nfe: ClassVar[int] = 0
    tileable: ClassVar[bool] = False  # nearest re-gridding needs whole, block-aligned slices
    defaults: ClassVar[dict[str, Any]] = {"factors": None}

    def __init__(self, cfg: RunConfig) -> None:
        super().__init__(cfg)
        opts = method_options(cfg, self.defaults, self.name)
        if cfg.data.regrid not in ("nearest", "bspline"):
            raise ValueError(
                f"{cfg.name}: bicubic needs nearest- or B-spline-regridded slices; "
                f"data.regrid is {cfg.data.regrid!r}"
            )
        self.regrid = cfg.data.regrid
        if opts["factors"] is None:
            self.factors = slice_factors(cfg.data.preset, cfg.data.axis)
        else:
            f = opts["factors"]
            if not isinstance(f, list | tuple) or len(f) != 2:
                raise ValueError(f"{cfg.name}: options.factors must be [rows, cols], got {f!r}")
            self.factors = (_as_int(float(f[0])), _as_int(float(f[1])))
        self.loss_description = "none (interpolation, not trained)"

    def networks(self) -> dict[str, nn.Module]:
        return {}

    def signature(self) -> dict[str, Any]:
        return {"method": self.name, "factors": list(self.factors), "regrid": self.regrid}

    def optim_groups(self) -> dict[str, list[nn.Parameter]]:
        raise ValueError(
            "method 'bicubic' has nothing to train (no parameters); use it directly or write "
            "its checkpoint with ressrdiff.methods.bicubic.write_checkpoint"
        )

    def forward(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        self.optim_groups()  # raises: there is no training step
        return {}

    def generate(self, x_lr: Tensor) -> Tensor:
        if self.regrid == "bspline":  # the input already is the B-spline interpolation
            return x_lr.float().clone()
        fr, fc = self.factors
        B, C, H, W = x_lr.shape
        hl, wl = H // fr, W // fc
        if hl < 1 or wl < 1:
            raise ValueError(f"bicubic: slice {H}x{W} smaller than one {fr}x{fc} LR block")
        x = x_lr.float()[..., : hl * fr, : wl * fc]
        small = x.reshape(B, C, hl, fr, wl, fc).mean(dim=(3, 5))  # the LR samples
        my = torch.tensor(bspline_upsample_matrix(hl, H, fr), dtype=torch.float32, device=x.device)
        mx = torch.tensor(bspline_upsample_matrix(wl, W, fc), dtype=torch.float32, device=x.device)
        with torch.autocast(x.device.type, enabled=False):
            out = my @ small @ mx.T
        # as SimpleITK: a pixel outside the LR field of view along either axis takes the nearest
        # LR sample in both axes (no B-spline along the other axis)
        iy, out_y = _nearest_lr(hl, H, fr)
        ix, out_x = _nearest_lr(wl, W, fc)
        if out_y.any() or out_x.any():
            near = small[..., torch.from_numpy(iy).to(x.device), :][
                ..., torch.from_numpy(ix).to(x.device)
            ]
            mask = torch.from_numpy(out_y[:, None] | out_x[None, :]).to(x.device)
            out = torch.where(mask, near, out)
        return out


def _nearest_lr(n_lr: int, n_hr: int, factor: int) -> tuple[np.ndarray, np.ndarray]:
    """Nearest LR index of each HR pixel and whether the pixel lies outside the LR FOV."""
    u = (np.arange(n_hr) - (factor - 1) / 2) / factor
    return np.clip(np.rint(u).astype(np.int64), 0, n_lr - 1), (u < -0.5) | (u > n_lr - 0.5)


def write_checkpoint(cfg: RunConfig, path: str | Path) -> Path:
    """Write a bicubic checkpoint (step 0, no weights) in the training checkpoint format, so
    that ``load_method`` and ``ressrdiff sr --checkpoint`` treat bicubic like a trained method."""
    if cfg.method != "bicubic":
        raise ValueError(f"write_checkpoint: config method is {cfg.method!r}, not 'bicubic'")
    m = Bicubic(cfg)
    return save_checkpoint(
        path,
        {
            "config": cfg.to_dict(),
            "signature": m.signature(),
            "method": cfg.method,
            "loss": m.loss_description,
            "step": 0,
            "networks": {},
            "ema": {},
            "history": [],
            "world_size": 1,
            "torch_version": torch.__version__,
        },
    )
