"""Does an iterative sampler converge in its step count? The check behind chapter 8's
"a conventional DDPM with its own steps".

A DDPM trained with T = 1000 steps (TM-DDPM) is sampled with all T by default; fewer steps
respace its schedule. Sampling a whole 256 x 256 slice with 1000 network calls takes minutes on
a CPU, so this check samples one ``size`` x ``size`` brain window per slice instead (drawn as
training patches are, :func:`ressrdiff.diagnosis.crop_windows`), with every step count of a
list, and scores each against HR inside the brain mask as a gain over the re-gridded input.
Every step count starts from the same seed, so rows differ only in K. The same windows and the
same thread setting give the seconds per window and per network evaluation, so the times of the
step counts are comparable with each other. The function reads no files and draws no plots.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch

from .data.slices import MaskedPairedSlices
from .diagnosis import crop_windows
from .methods.base import Method
from .metrics import psnr, ssim, to_unit

__all__ = ["step_convergence", "summarise_convergence"]


def step_convergence(
    method: Method,
    pairs: MaskedPairedSlices,
    steps_list: Sequence[int],
    *,
    size: int = 64,
    seed: int = 0,
) -> pd.DataFrame:
    """One ``size`` x ``size`` window per slice of ``pairs``, super-resolved by ``method`` with
    each K of ``steps_list`` (generator ``seed + slice`` for every K). One row per window and K:
    the window's place, K, the network evaluations spent (``nfe``), the masked PSNR and masked
    SSIM of the input and of the output against HR (intensities mapped to [0, 1] by
    :func:`ressrdiff.metrics.to_unit`), their gains, and the wall-clock seconds."""
    steps = [int(k) for k in steps_list]
    if not steps or min(steps) < 1:
        raise ValueError(f"step_convergence: step counts must be >= 1, got {list(steps_list)}")
    win = crop_windows(pairs.mask, int(size), 1, seed)
    rows = []
    for k, y0, x0 in win:
        cut = np.s_[k : k + 1, None, y0 : y0 + size, x0 : x0 + size]
        hr = torch.from_numpy(np.ascontiguousarray(pairs.hr[cut])).float()
        lr = torch.from_numpy(np.ascontiguousarray(pairs.lr[cut])).float()
        m = torch.from_numpy(np.ascontiguousarray(pairs.mask[cut])).bool()
        y = to_unit(hr)
        p_in, s_in = float(psnr(to_unit(lr), y, mask=m)[0]), float(ssim(to_unit(lr), y, mask=m)[0])
        for K in steps:
            gen = torch.Generator(device=method.device).manual_seed(seed + int(k))
            t0 = time.perf_counter()
            with torch.no_grad():
                sr = method.super_resolve(lr.to(method.device), steps=K, generator=gen)
            secs = time.perf_counter() - t0
            x = to_unit(sr.cpu().float())
            p, s = float(psnr(x, y, mask=m)[0]), float(ssim(x, y, mask=m)[0])
            rows.append(
                {
                    "slice": int(k),
                    "y0": int(y0),
                    "x0": int(x0),
                    "K": K,
                    "nfe": method.nfe_for(K),
                    "psnr_input": p_in,
                    "psnr": p,
                    "psnr_gain": p - p_in,
                    "ssim_input": s_in,
                    "ssim": s,
                    "ssim_gain": s - s_in,
                    "seconds": secs,
                }
            )
    return pd.DataFrame(rows)


def summarise_convergence(df: pd.DataFrame) -> pd.DataFrame:
    """Per K of a :func:`step_convergence` table: the mean masked PSNR gain with its standard
    error over windows, the mean SSIM gain, the mean seconds per window and per network
    evaluation, and ``change``, the mean gain's change from the next smaller K (NaN
    for the first), so that a reader sees whether the gain has stopped moving."""
    g = df.groupby("K", sort=True)
    out = pd.DataFrame(
        {
            "windows": g.size(),
            "nfe": g["nfe"].first(),
            "psnr_gain": g["psnr_gain"].mean(),
            "psnr_gain_se": g["psnr_gain"].std(ddof=1) / np.sqrt(g.size()),
            "ssim_gain": g["ssim_gain"].mean(),
            "s_per_window": g["seconds"].mean(),
        }
    )
    out["s_per_nfe"] = out["s_per_window"] / out["nfe"].clip(lower=1)
    out["change"] = out["psnr_gain"].diff()
    return out
