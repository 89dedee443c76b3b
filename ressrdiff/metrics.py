"""Image-quality metrics on single-channel slices ``(B, 1, H, W)``.

Conventions:

* Every metric is **per image**, shape ``(B,)``; nothing is pooled or summed over the batch.
* The package works in [-1, 1]. :class:`MetricSuite` maps images to [0, 1] with :func:`to_unit`
  (clamped) and scores PSNR, SSIM and GMSD with ``data_range = 1``, as the authors do with piq.
  The low-level :func:`psnr`, :func:`ssim` and :func:`gmsd` take images already in
  ``[0, data_range]``. LPIPS takes [-1, 1] directly.
* PSNR, SSIM and GMSD are the package's own implementations of piq 0.8.0's definitions, not
  calls into piq, because piq returns only pooled per-image values (``reduction='none'`` at
  most; ``piq.ssim(full=True)`` adds the pooled contrast-structure term, not a map): it exposes
  no per-pixel SSIM or GMS map, and the masked variants below need those maps.
  Agreement with piq is tested, unmasked, in ``tests/test_metrics_quality.py``
  (``test_ssim_and_gmsd_match_piq``: SSIM with ``downsample=False`` and GMSD to an absolute
  1e-5, for float64 and float32 inputs; ``test_ssim_downsample_reproduces_piq_default``: SSIM
  with piq's default pooling to 1e-5) and in ``tests/test_metrics_suite.py`` (the
  :class:`MetricSuite` scores: SSIM and GMSD to 1e-5, PSNR to 1e-4 dB since piq adds 1e-8 to
  the MSE, in ``test_score_uses_unit_range_and_masks``). So piq is only needed by the tests.
  Computations run in float64.
* Masked variants (``mask`` boolean, same shape as the images, non-zero = inside) average the
  metric's map over the masked pixels only; where a mask selects nothing the value is NaN (the
  low-level :func:`psnr` keeps its historical behaviour, :meth:`MetricSuite.score` gives NaN).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ressrdiff.perceptual import load_lpips, lpips_distance

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "to_unit",
    "psnr",
    "ssim_downsample_factor",
    "ssim_map",
    "ssim",
    "gms_map",
    "gmsd",
    "lpips_metric",
    "MetricSuite",
    "score_table",
    "summarise",
    "SSIM_WINDOW",
    "SSIM_SIGMA",
    "GMSD_C",
]

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03
GMSD_C = 170.0 / 255.0**2  # Xue et al.'s c = 170 for 8-bit data, rescaled to [0, 1]


def to_unit(x: Tensor) -> Tensor:
    """Map [-1, 1] to [0, 1] (clamped)."""
    return ((x + 1.0) / 2.0).clamp(0.0, 1.0)


def psnr(x: Tensor, ref: Tensor, data_range: float = 1.0, mask: Tensor | None = None) -> Tensor:
    """Per-image PSNR in dB, ``10 log10(data_range^2 / MSE)``, shape (B,). With ``mask`` (same
    shape, boolean) the MSE is taken over the masked pixels of each image only."""
    err = (x.double() - ref.double()) ** 2
    dims = tuple(range(1, err.dim()))
    if mask is None:
        mse = err.mean(dim=dims)
    else:
        m = mask.to(err.dtype)
        mse = (err * m).sum(dim=dims) / m.sum(dim=dims).clamp_min(1.0)
    return 10.0 * torch.log10(data_range**2 / mse.clamp_min(1e-20))


# --------------------------------------------------------------------------- helpers


def _check_pair(x: Tensor, ref: Tensor) -> None:
    if x.shape != ref.shape or x.dim() != 4:
        raise ValueError(
            f"expected two (B, C, H, W) tensors of equal shape, got {x.shape}, {ref.shape}"
        )


def _as_mask(mask: Tensor, like: Tensor) -> Tensor:
    """Boolean mask of ``like``'s shape (non-zero = inside)."""
    if mask.shape != like.shape:
        raise ValueError(f"mask shape {tuple(mask.shape)} != image shape {tuple(like.shape)}")
    return mask.to(device=like.device).bool()


def _pool_mask(mask: Tensor, k: int) -> Tensor:
    """Average-pool a boolean mask by ``k`` and keep blocks that are at least half inside."""
    if k == 1:
        return mask
    return F.avg_pool2d(mask.double(), kernel_size=k) >= 0.5


def _masked_mean(v: Tensor, m: Tensor) -> Tensor:
    """Per-image mean of ``v`` over ``m`` (NaN where ``m`` is empty)."""
    m = m.to(v.dtype)
    n = m.sum(dim=(1, 2, 3))
    out = (v * m).sum(dim=(1, 2, 3)) / n.clamp_min(1.0)
    return torch.where(n > 0, out, torch.full_like(out, math.nan))


def _gaussian_1d(size: int, sigma: float, *, dtype: torch.dtype, device: torch.device) -> Tensor:
    """Normalised 1-D Gaussian of ``size`` taps; its outer product is piq's 2-D window."""
    r = torch.arange(size, dtype=dtype, device=device) - (size - 1) / 2
    g = torch.exp(-(r**2) / (2 * sigma**2))
    return g / g.sum()


def ssim_downsample_factor(h: int, w: int) -> int:
    """piq's SSIM pooling factor ``max(1, round(min(H, W) / 256))`` (Python rounding)."""
    return max(1, round(min(h, w) / 256))


# --------------------------------------------------------------------------- SSIM


def ssim_map(
    x: Tensor, ref: Tensor, *, data_range: float = 1.0, downsample: bool = False
) -> Tensor:
    """SSIM map (Wang et al. 2004) on the valid region, shape (B, C, H' - 10, W' - 10).

    11x11 Gaussian window with sigma 1.5, k1 = 0.01, k2 = 0.03, no padding (each map pixel is a
    window that lies fully inside the image); ``H', W'`` are the sizes after the optional
    ``downsample`` average pooling (see :func:`ssim`). Inputs in ``[0, data_range]``.
    """
    _check_pair(x, ref)
    x, ref = x.double() / data_range, ref.double() / data_range
    f = ssim_downsample_factor(*x.shape[-2:])
    if downsample and f > 1:
        x, ref = F.avg_pool2d(x, kernel_size=f), F.avg_pool2d(ref, kernel_size=f)
    if min(x.shape[-2:]) < SSIM_WINDOW:
        raise ValueError(f"SSIM needs images of at least {SSIM_WINDOW}x{SSIM_WINDOW}")
    b, c, h, w = x.shape
    g = _gaussian_1d(SSIM_WINDOW, SSIM_SIGMA, dtype=x.dtype, device=x.device)
    # the five local moments in one separable 'valid' Gaussian blur (row then column pass)
    stack = torch.stack([x, ref, x * x, ref * ref, x * ref], dim=2).reshape(b * c * 5, 1, h, w)
    stack = F.conv2d(F.conv2d(stack, g.view(1, 1, 1, -1)), g.view(1, 1, -1, 1))
    mu_x, mu_y, e_xx, e_yy, e_xy = stack.reshape(b, c, 5, *stack.shape[-2:]).unbind(dim=2)
    var_x = e_xx - mu_x**2
    var_y = e_yy - mu_y**2
    cov = e_xy - mu_x * mu_y
    c1, c2 = SSIM_K1**2, SSIM_K2**2
    luminance = (2 * mu_x * mu_y + c1) / (mu_x**2 + mu_y**2 + c1)
    contrast_structure = (2 * cov + c2) / (var_x + var_y + c2)
    return luminance * contrast_structure


def ssim(
    x: Tensor,
    ref: Tensor,
    mask: Tensor | None = None,
    downsample: bool = False,
    *,
    data_range: float = 1.0,
) -> Tensor:
    """Per-image SSIM, shape (B,): the mean of :func:`ssim_map`.

    Unmasked it equals ``piq.ssim(x, ref, data_range=1., downsample=False, reduction='none')``.
    ``downsample``: piq's *default* (``True``) first average-pools by
    ``round(min(H, W) / 256)`` -- x2 at the authors' 384x384 crops, x1 (no effect) for 197x233
    slices. We default to ``False`` (SSIM at full resolution); ``downsample=True`` reproduces
    piq's default and so the authors' numbers.

    With ``mask``: mean of the SSIM map over the map pixels whose window centre is in the mask
    (the mask is pooled like the image when ``downsample`` pools, then cropped to the valid
    region by (11 - 1) / 2 = 5 pixels per side). NaN where no such pixel exists.
    """
    s = ssim_map(x, ref, data_range=data_range, downsample=downsample)
    if mask is None:
        return s.mean(dim=(1, 2, 3))
    m = _as_mask(mask, x)
    f = ssim_downsample_factor(*x.shape[-2:])
    if downsample and f > 1:
        m = _pool_mask(m, k=f)
    r = SSIM_WINDOW // 2
    m = m[..., r : m.shape[-2] - r, r : m.shape[-1] - r]
    return _masked_mean(s, m)


# --------------------------------------------------------------------------- GMSD


def _gmsd_pool(t: Tensor) -> Tensor:
    """piq's GMSD pre-processing: zero-pad bottom/right to even size, 2x2 average pool stride 2."""
    pad = max(t.shape[-2] % 2, t.shape[-1] % 2)
    return F.avg_pool2d(F.pad(t, (0, pad, 0, pad)), kernel_size=2, stride=2)


def gms_map(x: Tensor, ref: Tensor, *, data_range: float = 1.0) -> Tensor:
    """Gradient magnitude similarity map of Xue et al. 2014, shape (B, 1, ceil(H/2), ceil(W/2)).

    Both images are 2x2 average-pooled (stride 2, zero-padded to even size), their gradient
    magnitudes taken with the Prewitt/3 filters (zero padding, 'same' size), and
    ``GMS = (2 m_x m_r + c) / (m_x^2 + m_r^2 + c)`` with ``c = 170 / 255^2`` on [0, 1] data.
    Single-channel inputs only.
    """
    _check_pair(x, ref)
    if x.shape[1] != 1:
        raise ValueError("gms_map expects single-channel images (B, 1, H, W)")
    x, ref = x.double() / data_range, ref.double() / data_range
    x, ref = _gmsd_pool(x), _gmsd_pool(ref)
    px = torch.tensor([[-1.0, 0.0, 1.0]] * 3, dtype=x.dtype, device=x.device) / 3
    kernels = torch.stack([px, px.T])[:, None]  # (2, 1, 3, 3): d/dx, d/dy

    def magnitude(t: Tensor) -> Tensor:
        g = F.conv2d(t, kernels, padding=1)
        return g.pow(2).sum(dim=1, keepdim=True).sqrt()

    mx, mr = magnitude(x), magnitude(ref)
    return (2 * mx * mr + GMSD_C) / (mx**2 + mr**2 + GMSD_C)


def gmsd(x: Tensor, ref: Tensor, mask: Tensor | None = None, *, data_range: float = 1.0) -> Tensor:
    """Per-image GMSD (Xue et al. 2014), shape (B,): the population std of :func:`gms_map`.

    Unmasked it equals ``piq.gmsd(x, ref, data_range=1., reduction='none')`` (the reference
    MATLAB code uses the sample std instead; the difference is negligible at image sizes).
    With ``mask``: the std over the GMS pixels whose 2x2 block (pooled exactly like the images)
    has at least half of its image pixels in the mask -- zero padding is not counted, so an
    all-true mask gives the unmasked value; NaN where the mask is empty. 0 means identical
    gradients.
    """
    g = gms_map(x, ref, data_range=data_range)
    if mask is None:
        return g.std(dim=(1, 2, 3), correction=0)
    m = _as_mask(mask, x).double()
    m = _gmsd_pool(m) / _gmsd_pool(torch.ones_like(m)) >= 0.5  # share of the block's real pixels
    mean = _masked_mean(g, m)
    return _masked_mean((g - mean[:, None, None, None]) ** 2, m).sqrt()


# --------------------------------------------------------------------------- LPIPS


def lpips_metric(x: Tensor, ref: Tensor, net: nn.Module) -> Tensor:
    """Per-image LPIPS, shape (B,), for images in [-1, 1], via
    :func:`ressrdiff.perceptual.lpips_distance` (grey repeated to 3 channels).

    Each value is one image's spatial mean -- not the batch sum the authors' evaluation reports.
    Get ``net`` from :func:`ressrdiff.perceptual.load_lpips` (or use :class:`MetricSuite`).
    """
    _check_pair(x, ref)
    with torch.no_grad():
        return lpips_distance(net, x, ref).double()


# --------------------------------------------------------------------------- suite and tables

LpipsMode = Literal["auto", "off", "random-for-tests"]


class MetricSuite:
    """PSNR, SSIM, GMSD and LPIPS for batches of [-1, 1] slices, built once per evaluation.

    ``lpips``: ``'auto'`` loads LPIPS(alex, v0.1) if the torchvision AlexNet weights are in the
    torch hub cache (nothing is downloaded) and otherwise reports LPIPS as NaN; ``'off'`` skips
    it (NaN); ``'random-for-tests'`` uses a randomly initialised AlexNet and names its column
    ``lpips_random_backbone`` so it can never pass for LPIPS. ``lpips_status`` describes the
    LPIPS in use (or why there is none); ``lpips_reason`` is ``None`` when the real LPIPS is
    loaded, else that explanation. ``ssim_downsample=True`` reproduces piq's default pooling.
    """

    def __init__(
        self,
        device: torch.device | str = "cpu",
        lpips: LpipsMode = "auto",
        *,
        ssim_downsample: bool = False,
    ) -> None:
        if lpips not in ("auto", "off", "random-for-tests"):
            raise ValueError(f"lpips must be 'auto', 'off' or 'random-for-tests', got {lpips!r}")
        self.device = torch.device(device)
        self.ssim_downsample = ssim_downsample
        self.lpips_key = "lpips_random_backbone" if lpips == "random-for-tests" else "lpips"
        self.lpips_net: nn.Module | None
        if lpips == "off":
            self.lpips_net, self.lpips_status = None, "LPIPS disabled (lpips='off')"
        else:
            self.lpips_net, self.lpips_status = load_lpips(
                self.device, random_backbone=lpips == "random-for-tests"
            )
        self.lpips_reason: str | None = (
            None if self.lpips_net is not None and lpips == "auto" else self.lpips_status
        )

    @property
    def metric_names(self) -> tuple[str, ...]:
        """Whole-image metric keys, in output order."""
        return ("psnr", "ssim", "gmsd", self.lpips_key)

    @torch.no_grad()
    def score(self, sr: Tensor, hr: Tensor, mask: Tensor | None = None) -> dict[str, np.ndarray]:
        """Per-image scores of ``sr`` against ``hr`` (both (B, 1, H, W) in [-1, 1]).

        Keys: ``psnr, ssim, gmsd`` and ``lpips`` (NaN where unavailable; ``lpips_random_backbone``
        instead in 'random-for-tests' mode), plus ``psnr_masked, ssim_masked, gmsd_masked`` when
        ``mask`` is given. LPIPS has no masked variant: its deep features see the whole image,
        so zeroing or cropping the background would change what is measured rather than restrict
        it. Masked values are NaN where an image's mask is empty. Each value is a float64 array
        of length B.
        """
        _check_pair(sr, hr)
        sr, hr = sr.to(self.device), hr.to(self.device)
        x, y = to_unit(sr), to_unit(hr)
        out: dict[str, Tensor] = {
            "psnr": psnr(x, y, data_range=1.0),
            "ssim": ssim(x, y, downsample=self.ssim_downsample),
            "gmsd": gmsd(x, y),
        }
        if self.lpips_net is not None:
            out[self.lpips_key] = lpips_metric(sr, hr, self.lpips_net)
        else:
            out[self.lpips_key] = torch.full((sr.shape[0],), math.nan, dtype=torch.float64)
        if mask is not None:
            m = _as_mask(mask, sr)
            empty = m.flatten(1).sum(dim=1) == 0
            p = psnr(x, y, data_range=1.0, mask=m)
            out["psnr_masked"] = torch.where(empty, torch.full_like(p, math.nan), p)
            out["ssim_masked"] = ssim(x, y, mask=m, downsample=self.ssim_downsample)
            out["gmsd_masked"] = gmsd(x, y, mask=m)
        return {k: v.detach().cpu().double().numpy() for k, v in out.items()}


def _per_image(value: object, n: int, name: str) -> list:
    """Broadcast a scalar (str/int) to ``n`` entries or check a sequence's length."""
    if isinstance(value, Tensor | np.ndarray):
        value = value.tolist()
    if isinstance(value, str) or not isinstance(value, Sequence):
        return [value] * n
    if len(value) != n:
        raise ValueError(f"{name} has {len(value)} entries for a batch of {n}")
    return list(value)


def score_table(
    sr: Tensor,
    hr: Tensor,
    *,
    subject: str | Sequence[str],
    slice_index: int | Sequence[int] | Tensor | np.ndarray,
    method: str,
    mask: Tensor | None = None,
    suite: MetricSuite,
) -> pd.DataFrame:
    """Tidy (long) table of per-slice scores: columns ``subject, slice, method, metric, value,
    region``, one row per slice x metric x region (``'whole'``, and ``'mask'`` for PSNR, SSIM
    and GMSD when ``mask`` is given; metric names carry no ``_masked`` suffix).

    ``subject`` may be one string for the whole batch or one per slice; ``slice_index`` is one
    index per slice (a scalar only for a batch of one). ``df.attrs['lpips_status']`` holds
    ``suite.lpips_status`` so a table says whether its LPIPS column is real.
    """
    import pandas as pd

    n = sr.shape[0]
    if n > 1 and isinstance(slice_index, int):
        raise ValueError("slice_index must give one index per slice")
    subjects = _per_image(subject, n, "subject")
    slices = [int(s) for s in _per_image(slice_index, n, "slice_index")]
    scores = suite.score(sr, hr, mask)
    frames = []
    for key, values in scores.items():
        masked = key.endswith("_masked")
        frames.append(
            pd.DataFrame(
                {
                    "subject": subjects,
                    "slice": slices,
                    "method": method,
                    "metric": key.removesuffix("_masked"),
                    "value": values,
                    "region": "mask" if masked else "whole",
                }
            )
        )
    df = pd.concat(frames, ignore_index=True)
    df.attrs["lpips_status"] = suite.lpips_status
    return df


def summarise(df: pd.DataFrame) -> pd.DataFrame:
    """Mean, sd (ddof = 1) and n per method x metric x region of a :func:`score_table` table.

    NaN values (unavailable LPIPS, empty masks) are skipped, so ``n`` counts the finite values.
    """
    out = (
        df.groupby(["method", "metric", "region"], sort=False)["value"]
        .agg(mean="mean", sd=lambda v: v.std(ddof=1), n="count")
        .reset_index()
    )
    out.attrs = dict(df.attrs)
    return out
