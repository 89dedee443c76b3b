"""Verdicts on the evaluation runner's per-slice table: which methods failed at their budget,
and whether a model meets its quality bar against B-spline re-gridding.

Chapter 7 ranks methods and chapter 9 tests them; both drop the methods that
:func:`failed_methods` names, for the reason it gives, so that a failed row is shown once as
failed and never ranked. :func:`quality_bar` holds the project's quality bars for a working
Res-SRDiff in one place (:data:`QUALITY_BARS`), per degradation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import stats

#: A method "returns its input" when, on every scored slice, its PSNR and SSIM equal those of a
#: reference re-gridding within these tolerances (dB, SSIM units).
IDENTITY_PSNR_DB = 0.01
IDENTITY_SSIM = 1e-4

#: Table labels of interpolation methods, whose job is to return their re-gridded input: never
#: failed (chapter 7 also exempts every method that makes no network evaluation).
INTERPOLATIONS = ("bicubic",)


def failed_methods(
    df: pd.DataFrame,
    region: str = "mask",
    references: Sequence[str] = ("nearest", "bspline"),
    exempt: Sequence[str] = INTERPOLATIONS,
) -> dict[str, str]:
    """The methods of ``df`` (columns method, subject, slice, region, metric, value) that
    failed at their budget, mapped to the reason in words. Two rules, each a lower bar than any
    working super-resolution method clears:

    - **it returns its input unchanged**: on every scored slice its PSNR and SSIM in ``region``
      equal those of a reference re-gridding (``nearest`` or ``bspline``) within
      :data:`IDENTITY_PSNR_DB` and :data:`IDENTITY_SSIM`;
    - **it does worse than copying its input**: its mean PSNR in ``region`` lies below that of
      nearest-neighbour re-gridding of the same LR slices.

    The references and the ``exempt`` methods (by default :data:`INTERPOLATIONS`) are never
    failed. Methods without PSNR in ``region`` are left out.
    """
    refs = [r for r in references if r in set(df["method"])]
    out: dict[str, str] = {}
    for m in dict.fromkeys(df["method"]):
        if m in refs or m in exempt:
            continue
        for ref in refs:
            same = True
            for metric, tol in (("psnr", IDENTITY_PSNR_DB), ("ssim", IDENTITY_SSIM)):
                w = stats.paired_matrix(df, metric, region, [ref, m])
                if not len(w) or not bool((np.abs(w[m] - w[ref]) <= tol).all()):
                    same = False
                    break
            if same:
                out[m] = f"returns its input unchanged (scores as {ref} re-gridding on every slice)"
                break
        if m in out or "nearest" not in refs:
            continue
        w = stats.paired_matrix(df, "psnr", region, ["nearest", m])
        if len(w) and w[m].mean() < w["nearest"].mean():
            gap = float(w["nearest"].mean() - w[m].mean())
            out[m] = (
                f"does worse than copying its input: mean PSNR {w[m].mean():.2f} dB, "
                f"{gap:.2f} dB below nearest-neighbour re-gridding"
            )
    return out


@dataclass(frozen=True)
class Bar:
    """One metric's bar on the paired difference model − reference (per slice, in the mask):
    the mean must reach ``min_gain``, the 95 % CI's lower bound must exceed ``min_ci_low`` and its
    upper bound must reach ``min_ci_high`` (None: no such condition)."""

    metric: str
    min_gain: float | None = None
    min_ci_low: float | None = None
    min_ci_high: float | None = None

    def requirement(self) -> str:
        parts = []
        if self.min_gain is not None:
            parts.append(f"gain ≥ {self.min_gain:+g}")
        if self.min_ci_low is not None:
            parts.append(f"CI low > {self.min_ci_low:+g}")
        if self.min_ci_high is not None:
            parts.append(f"CI high ≥ {self.min_ci_high:+g} (not significantly worse)")
        return ", ".join(parts) or "reported, no requirement"

    def met(self, estimate: float, low: float, high: float) -> bool:
        return bool(
            (self.min_gain is None or estimate >= self.min_gain)
            and (self.min_ci_low is None or low > self.min_ci_low)
            and (self.min_ci_high is None or high >= self.min_ci_high)
        )


#: The quality bars of Res-SRDiff K=4 against B-spline re-gridding on the test subject (masked,
#: paired over slices, 95 % CI), per degradation.
QUALITY_BARS: dict[str, tuple[Bar, ...]] = {
    "acquisition": (Bar("psnr", min_gain=1.0, min_ci_low=0.5), Bar("ssim", min_gain=0.02)),
    "resample": (Bar("psnr", min_ci_high=0.0), Bar("ssim")),
}


def quality_bar(
    df: pd.DataFrame,
    label: str,
    degradation: str,
    *,
    reference: str = "bspline",
    region: str = "mask",
    seed: int = 0,
    n_resamples: int = 10_000,
) -> pd.DataFrame:
    """One row per metric of :data:`QUALITY_BARS` ``[degradation]``: the mean paired difference
    ``label`` − ``reference`` over the scored slices, its 95 % bootstrap CI (clusters: subjects
    when there are at least two, else slices: with one subject the interval shows the
    slice-to-slice spread within it), the requirement, whether it is met, the paired test
    (:func:`ressrdiff.stats.paired_comparison`) and the number of slices."""
    if degradation not in QUALITY_BARS:
        raise ValueError(
            f"no quality bar for degradation {degradation!r} ({', '.join(QUALITY_BARS)})"
        )
    rows = {}
    for bar in QUALITY_BARS[degradation]:
        w = stats.paired_matrix(df, bar.metric, region, [reference, label])
        d = (w[label] - w[reference]).to_numpy()
        subj = w.index.get_level_values("subject").to_numpy()
        clusters = subj if len(np.unique(subj)) >= 2 else np.arange(len(d))
        ci = stats.cluster_bootstrap_ci(d, clusters, seed=seed, n_resamples=n_resamples)
        pc = stats.paired_comparison(w[reference], w[label], names=(reference, label))
        rows[bar.metric.upper()] = {
            "difference": ci.estimate,
            "95 % CI low": ci.low,
            "95 % CI high": ci.high,
            "required": bar.requirement(),
            "met": bar.met(ci.estimate, ci.low, ci.high),
            "paired test": pc.test,
            "p": pc.pvalue,
            "slices": len(d),
            "clusters": "subjects" if len(np.unique(subj)) >= 2 else "slices",
        }
    return pd.DataFrame(rows).T
