"""Intensity normalisation to [-1, 1] with exact inverses.

* :func:`minmax_slices` - per-slice min-max (the authors' convention): every 2-D slice along
  ``axis`` is mapped from ``[min, max]`` to ``[-1, 1]``; a constant slice maps to -1.
* :func:`robust_volume` - one mapping for the whole volume: the ``lo``/``hi`` percentiles
  (optionally inside a foreground mask) go to -1/1 and values beyond are clipped.

Both return ``(y, params)``; :func:`invert` maps ``y`` back to the input's units and
:func:`apply_mapping` maps any other array (e.g. a super-resolved volume) with the same ``params``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["IntensityParams", "minmax_slices", "robust_volume", "invert", "apply_mapping"]


@dataclass(frozen=True)
class IntensityParams:
    """What :func:`invert` needs: the values mapped to -1 (``lo``) and to +1 (``hi``).

    ``kind`` is ``"minmax_slices"`` (``lo``/``hi`` have one entry per slice along ``axis``) or
    ``"robust"`` (0-d ``lo``/``hi``, ``axis`` is None). ``dtype`` is the float type of inverses.
    """

    kind: str
    lo: np.ndarray
    hi: np.ndarray
    axis: int | None = None
    dtype: np.dtype = np.dtype(np.float32)

    def select(self, index: np.ndarray | slice | list[int]) -> IntensityParams:
        """Parameters of a subset of slices (``minmax_slices`` only); robust ones are shared."""
        if self.kind != "minmax_slices":
            return self
        return IntensityParams(self.kind, self.lo[index], self.hi[index], self.axis, self.dtype)


def _out_dtype(x: np.ndarray) -> np.dtype:
    return np.result_type(x.dtype, np.float32)


def _forward(x: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """``2 (x - lo) / (hi - lo) - 1`` in float64; where ``hi == lo`` the result is -1."""
    rng = hi - lo
    safe = np.where(rng > 0, rng, 1.0)
    y = 2.0 * (x - lo) / safe - 1.0
    return np.where(rng > 0, y, -1.0)


def minmax_slices(x: np.ndarray, axis: int = 0) -> tuple[np.ndarray, IntensityParams]:
    """Map every slice along ``axis`` linearly from its ``[min, max]`` to ``[-1, 1]`` (float32).

    Constant slices map to -1 (no division by zero). ``axis`` is a numpy axis of ``x``.
    """
    a = np.asarray(x)
    if a.ndim < 2:
        raise ValueError(f"minmax_slices: need at least a 2-D array, got shape {a.shape}")
    ax = axis % a.ndim
    other = tuple(i for i in range(a.ndim) if i != ax)
    f = a.astype(np.float64)
    lo = f.min(axis=other)
    hi = f.max(axis=other)
    shape = [1] * a.ndim
    shape[ax] = -1
    y = _forward(f, lo.reshape(shape), hi.reshape(shape)).astype(np.float32)
    return y, IntensityParams("minmax_slices", lo, hi, ax, _out_dtype(a))


def robust_volume(
    x: np.ndarray, lo: float = 0.5, hi: float = 99.5, mask: np.ndarray | None = None
) -> tuple[np.ndarray, IntensityParams]:
    """Map the ``lo`` percentile of ``x`` and the ``hi`` percentile inside ``mask`` (of all of
    ``x`` without a mask) to -1/1, clipping.

    The lower end is taken over the whole volume, i.e. the background level of a magnitude
    image (about 0), so that air maps to -1 and comes back as air after :func:`invert`. Taking
    it inside a brain or head mask instead would clip the background up to a tissue intensity,
    and every super-resolved background voxel would return as that intensity (seen on a real
    head: air at about 30 instead of 0). The upper end inside the mask ignores bright outliers
    outside the anatomy.

    If the percentiles coincide, the min/max are used; a constant input maps to -1. The result is
    float32; :func:`invert` is exact for values that were not clipped.
    """
    a = np.asarray(x)
    if not 0.0 <= lo < hi <= 100.0:
        raise ValueError(f"robust_volume: need 0 <= lo < hi <= 100, got lo={lo}, hi={hi}")
    f = a.astype(np.float64)
    values = f
    p_lo_all = float(np.percentile(f, lo))
    if mask is not None:
        m = np.asarray(mask, dtype=bool)
        if m.shape != a.shape:
            raise ValueError(f"robust_volume: mask shape {m.shape} != image shape {a.shape}")
        if not m.any():
            raise ValueError("robust_volume: the mask is empty")
        values = f[m]
    p_lo, p_hi = p_lo_all, float(np.percentile(values, hi))
    if p_hi <= p_lo:
        p_lo, p_hi = float(f.min()), float(f.max())
    y = np.clip(_forward(f, np.float64(p_lo), np.float64(p_hi)), -1.0, 1.0).astype(np.float32)
    params = IntensityParams(
        "robust", np.asarray(p_lo, np.float64), np.asarray(p_hi, np.float64), None, _out_dtype(a)
    )
    return y, params


def _lo_hi(
    a: np.ndarray, params: IntensityParams, who: str, arg: str
) -> tuple[np.ndarray, np.ndarray]:
    """``params.lo``/``params.hi`` shaped to broadcast against ``a``."""
    lo, hi = params.lo, params.hi
    if params.kind == "minmax_slices":
        ax = params.axis if params.axis is not None else 0
        if a.ndim <= ax or a.shape[ax] != lo.shape[0]:
            raise ValueError(
                f"{who}: {arg} has shape {a.shape} but params hold {lo.shape[0]} slices "
                f"along axis {ax}"
            )
        shape = [1] * a.ndim
        shape[ax] = -1
        return lo.reshape(shape), hi.reshape(shape)
    if params.kind != "robust":
        raise ValueError(f"{who}: unknown normalisation kind {params.kind!r}")
    return lo, hi


def invert(y: np.ndarray, params: IntensityParams) -> np.ndarray:
    """Map normalised values back to the input's units (``lo + (y + 1) / 2 * (hi - lo)``).

    For ``minmax_slices`` ``y`` must have as many slices along ``params.axis`` as ``params``
    (use :meth:`IntensityParams.select` for a subset).
    """
    a = np.asarray(y, dtype=np.float64)
    lo, hi = _lo_hi(a, params, "invert", "y")
    x = lo + (a + 1.0) / 2.0 * (hi - lo)
    return x.astype(params.dtype)


def apply_mapping(x: np.ndarray, params: IntensityParams, clip: bool = True) -> np.ndarray:
    """Map ``x`` (in the input's units) to [-1, 1] with the mapping that made ``params``.

    The forward map of :func:`robust_volume` / :func:`minmax_slices`, ``2 (x - lo) / (hi - lo)
    - 1``, applied to another array on the same scale, e.g. a super-resolved volume scored
    against the HR volume whose ``params`` these are. ``clip`` limits the result to [-1, 1]
    (as :func:`robust_volume` does). Returns float64; ``apply_mapping(x, params)`` of the
    array that made robust ``params`` equals that call's output up to its float32 rounding.
    For ``minmax_slices`` ``x`` must have as many slices along ``params.axis`` as ``params``.
    """
    a = np.asarray(x, dtype=np.float64)
    lo, hi = _lo_hi(a, params, "apply_mapping", "x")
    y = _forward(a, lo, hi)
    return np.clip(y, -1.0, 1.0) if clip else y
