"""Learnability: how much of the HR slice a linear filter of the LR input recovers.

A super-resolution model can only add what its input determines. The cheapest estimator that
uses the input is linear: a ``k`` x ``k`` filter (plus a bias) applied to the re-gridded LR
slice. Fitted by least squares on training slices and scored on other slices, its masked PSNR
gain over its own input (the B-spline re-gridded LR slice) says how much of the lost detail is
linearly recoverable under a degradation:

* under the paper's ``"resample"`` degradation the LR voxels are point samples of the HR grid:
  detail above the LR Nyquist frequency is folded into lower frequencies (aliasing) rather than
  attenuated, and a linear filter cannot unfold it, so it can gain little over the B-spline;
* under the ``"acquisition"`` model each LR voxel averages what it covers (a Gaussian voxel
  profile): the attenuated frequencies below the LR Nyquist frequency can be boosted again, so
  a linear filter gains (deconvolution).

A network that gains no more than this filter has learnt nothing beyond linear sharpening.
The PSNR is that of :func:`ressrdiff.diagnosis.gain_over_input`: images in [-1, 1] mapped to
[0, 1] by :func:`ressrdiff.metrics.to_unit`, the MSE taken over the brain mask only, so the
gains compare with a model's.

The fit is our own code rather than a library's regression: it is the closed-form solution of
the normal equations ``(A^T A + lambda I) w = A^T y`` (``lambda`` a small ridge on the weights),
with one row of ``A`` per masked pixel (its ``k^2`` LR neighbours and a 1), accumulated in
float64 chunk by chunk, so that millions of pixels never need the whole design matrix in memory
(as scikit-learn's ``LinearRegression`` would), masks select the rows, and the PSNR is the
package's. Numpy, torch and pandas only; it reads no files (load slices with
:func:`ressrdiff.data.manifest.load_pairs`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor

from .metrics import psnr, to_unit
from .spectrum import radial_power_spectrum

__all__ = [
    "LinearFilter",
    "fit_linear_filter",
    "apply_linear_filter",
    "filter_gain",
    "mean_radial_spectrum",
]

ArrayLike = np.ndarray | Tensor

_CHUNK = 1 << 16  # pixels per block of the normal equations (about 43 MB of float64 at k = 9)


@dataclass(frozen=True)
class LinearFilter:
    """A ``k`` x ``k`` correlation filter plus a bias: ``out[y, x] = bias + sum_{i, j}
    weights[i, j] * lr[y + i - r, x + j - r]`` with ``r = (k - 1) / 2`` (edges replicated).

    ``n_pixels`` is the number of masked pixels it was fitted on."""

    weights: np.ndarray
    bias: float
    n_pixels: int

    @property
    def size(self) -> int:
        """``k``, the side of the filter in pixels."""
        return int(self.weights.shape[0])

    def response(self, bins: int = 16, n: int = 64) -> tuple[np.ndarray, np.ndarray]:
        """``(f, g)``: the filter's amplitude response by radial frequency, ``f`` in cycles per
        pixel (``bins`` rings up to 0.5) and ``g`` the root-mean-square of ``|H(f)|`` over each
        ring (the weights zero-padded to ``n`` x ``n``, through
        :func:`ressrdiff.spectrum.radial_power_spectrum`); 1 passes a frequency unchanged,
        above 1 boosts it. The bias is left out."""
        pad = torch.zeros(n, n, dtype=torch.float64)
        pad[: self.size, : self.size] = torch.from_numpy(np.asarray(self.weights))
        f, p = radial_power_spectrum(pad, bins)  # mean |H|^2 / n^2 per ring
        return f.numpy(), (p * n * n).sqrt().numpy()


def _stack(x: ArrayLike, name: str) -> Tensor:
    """``(N, H, W)`` float64 tensor from a ``(H, W)``, ``(N, H, W)`` or ``(N, 1, H, W)`` array."""
    t = torch.as_tensor(np.asarray(x) if not isinstance(x, Tensor) else x).detach().cpu()
    if t.dim() == 4 and t.shape[1] == 1:
        t = t[:, 0]
    elif t.dim() == 2:
        t = t[None]
    if t.dim() != 3:
        raise ValueError(f"{name}: expected (N, H, W) slices, got shape {tuple(t.shape)}")
    return t if t.dtype == torch.bool else t.to(torch.float64)


def _check(lr: Tensor, hr: Tensor, mask: Tensor) -> None:
    if lr.shape != hr.shape or mask.shape != lr.shape:
        raise ValueError(
            f"lr {tuple(lr.shape)}, hr {tuple(hr.shape)} and mask {tuple(mask.shape)} differ"
        )


def _pad(lr: Tensor, r: int) -> Tensor:
    """``lr`` padded by ``r`` pixels on each side, edges replicated."""
    return F.pad(lr[:, None], (r, r, r, r), mode="replicate")[:, 0] if r else lr


def fit_linear_filter(
    lr: ArrayLike,
    hr: ArrayLike,
    mask: ArrayLike,
    size: int = 9,
    *,
    max_pixels: int | None = None,
    seed: int = 0,
    ridge: float = 1e-4,
) -> LinearFilter:
    """Least-squares ``size`` x ``size`` filter plus bias mapping ``lr`` to ``hr`` (both
    ``(N, H, W)``, e.g. the ``lr`` and ``hr`` of a
    :class:`ressrdiff.data.slices.MaskedPairedSlices`) over the pixels where ``mask`` is True.

    Each masked pixel is one equation: its ``size``^2 LR neighbours (edges replicated) and a 1
    against its HR value. ``max_pixels`` bounds the equations: that many masked pixels are drawn
    without replacement by a generator seeded ``seed`` (all when None or fewer). The normal
    equations are solved with a ridge of ``ridge`` times the mean diagonal of ``A^T A`` added to
    the weights' diagonal (not the bias's): a re-gridded LR slice carries almost no power at the
    highest frequencies, so its neighbourhoods are nearly collinear and, unpenalised, the weights
    would amplify those frequencies without bound for a vanishing gain in fit; the default
    ``1e-4`` keeps them finite. ``ridge=0`` is plain least squares (a minimum-norm solution)."""
    if size < 1 or size % 2 == 0:
        raise ValueError(f"fit_linear_filter: size must be a positive odd number, got {size}")
    lr_t, hr_t, m_t = _stack(lr, "lr"), _stack(hr, "hr"), _stack(mask, "mask").bool()
    _check(lr_t, hr_t, m_t)
    where = torch.nonzero(m_t)  # (M, 3): slice, row, column
    if len(where) == 0:
        raise ValueError("fit_linear_filter: the mask selects no pixel")
    if max_pixels is not None and len(where) > max_pixels:
        g = torch.Generator().manual_seed(int(seed))
        keep = torch.randperm(len(where), generator=g)[: int(max_pixels)]
        where = where[keep.sort().values]
    r = size // 2
    padded = _pad(lr_t, r)
    dy, dx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    dy, dx = dy.flatten(), dx.flatten()
    n_feat = size * size + 1
    ata = torch.zeros(n_feat, n_feat, dtype=torch.float64)
    aty = torch.zeros(n_feat, dtype=torch.float64)
    for start in range(0, len(where), _CHUNK):
        n, y, x = where[start : start + _CHUNK].unbind(dim=1)
        a = torch.empty(len(n), n_feat, dtype=torch.float64)
        a[:, :-1] = padded[n[:, None], y[:, None] + dy, x[:, None] + dx]
        a[:, -1] = 1.0
        ata += a.T @ a
        aty += a.T @ hr_t[n, y, x]
    diag = torch.arange(n_feat - 1)
    ata[diag, diag] += ridge * float(ata[diag, diag].mean())
    w = torch.linalg.lstsq(ata, aty[:, None], driver="gelsd").solution[:, 0]
    return LinearFilter(
        weights=w[:-1].reshape(size, size).numpy().copy(),
        bias=float(w[-1]),
        n_pixels=int(len(where)),
    )


def apply_linear_filter(filt: LinearFilter, lr: ArrayLike) -> np.ndarray:
    """``filt`` applied to each slice of ``lr`` (``(N, H, W)`` or ``(H, W)``): float64 slices of
    the same shape (``(N, H, W)``), edges replicated as in :func:`fit_linear_filter`."""
    x = _stack(lr, "lr")
    w = torch.from_numpy(np.asarray(filt.weights, dtype=np.float64))[None, None]
    out = F.conv2d(_pad(x, filt.size // 2)[:, None], w)[:, 0] + filt.bias  # a correlation
    return out.numpy()


def filter_gain(filt: LinearFilter, lr: ArrayLike, hr: ArrayLike, mask: ArrayLike) -> pd.DataFrame:
    """Per slice of ``(N, H, W)`` slices in [-1, 1]: the masked PSNR (dB, on [0, 1] via
    :func:`ressrdiff.metrics.to_unit`, MSE over ``mask``) of the input ``lr`` and of the
    filtered input against ``hr``, and the gain, as :func:`ressrdiff.diagnosis.gain_over_input`
    scores a model. Columns ``slice``, ``psnr_input``, ``psnr_filter``, ``psnr_gain``; NaN for
    a slice whose mask is empty."""
    lr_t, hr_t, m_t = _stack(lr, "lr"), _stack(hr, "hr"), _stack(mask, "mask").bool()
    _check(lr_t, hr_t, m_t)
    out = torch.from_numpy(apply_linear_filter(filt, lr_t))
    y, m = to_unit(hr_t)[:, None], m_t[:, None]
    p_in = psnr(to_unit(lr_t)[:, None], y, mask=m)
    p_f = psnr(to_unit(out)[:, None], y, mask=m)
    empty = ~m_t.flatten(1).any(dim=1)
    p_in, p_f = p_in.masked_fill(empty, float("nan")), p_f.masked_fill(empty, float("nan"))
    return pd.DataFrame(
        {
            "slice": np.arange(len(lr_t)),
            "psnr_input": p_in.numpy(),
            "psnr_filter": p_f.numpy(),
            "psnr_gain": (p_f - p_in).numpy(),
        }
    )


def mean_radial_spectrum(
    slices: ArrayLike, bins: int = 32, spacing: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``(f, P)``: the radial power spectrum of :func:`ressrdiff.spectrum.radial_power_spectrum`
    (``bins`` rings up to the Nyquist frequency), averaged over the slices of ``(N, H, W)``,
    each slice's mean removed first (so the lowest ring holds no constant offset). ``f`` is in
    cycles per pixel, or in cycles/mm when ``spacing`` (the pixel size in mm) is given."""
    x = _stack(slices, "slices")
    x = x - x.mean(dim=(-2, -1), keepdim=True)
    f, p = radial_power_spectrum(x, bins)
    f = f if spacing is None else f / float(spacing)
    return f.numpy(), p.mean(dim=0).numpy()
