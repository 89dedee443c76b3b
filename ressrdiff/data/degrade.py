"""Degradations: simulate a low-resolution (LR) acquisition of a high-resolution (HR) volume.

Two named models (:data:`DEGRADATIONS`), plus a k-space variant of the second:

* ``"resample"``, the paper's: ``SimpleITK.Resample`` samples the HR image at the LR voxel
  centres (linear interpolation). Each LR voxel is a point sample, so detail above the LR
  Nyquist frequency aliases into the LR image instead of being averaged away.
* ``"acquisition"``, a physical acquisition model: a large voxel measures the signal it covers.
  Along the slice direction that is the slice-selection profile, in-plane the point-spread
  function of the coarser k-space sampling; both are modelled as a Gaussian whose FWHM is the LR
  voxel size on that axis (partial-volume averaging; the usual image-formation model of MRI
  super-resolution, Greenspan 2009, "Super-resolution in medical imaging", Comput J 52:43-63).
  The HR voxel already carries a PSF of FWHM = HR spacing, and Gaussians add in quadrature, so
  the HR image is smoothed with FWHM ``s * sqrt(f**2 - 1)`` (:func:`antialias_sigmas`), then
  sampled at the LR voxel centres. Optional white Gaussian noise models the LR scan's thermal
  noise: SNR grows with voxel volume (Haacke et al., "Magnetic Resonance Imaging: Physical
  Principles and Sequence Design", Wiley 1999, ch. 15: SNR ~ voxel volume x sqrt(number of
  samples); at a fixed field of view the number of samples falls as 1/voxel volume), so the noise
  SD in image units is ``noise_sd / sqrt(prod(f))`` for an HR-voxel noise SD ``noise_sd``, the SD
  of a mean of ``prod(f)`` independent HR voxels. The noise is Gaussian, the high-SNR limit of
  the Rician noise of magnitude images (Gudbjartsson and Patz 1995, MRM 34:910-914). This is what
  ``antialias=True`` used to select, and it is bitwise the same image without noise.
* ``"acquisition-kspace"``: the same physics with the LR scan's k-space extent instead of a
  Gaussian: the HR spectrum (DFT, i.e. a periodic field of view) is truncated to the LR extent
  ``|k| <= 1 / (2 f s)`` per axis with a Tukey window (taper fraction ``tukey_alpha``; 0 is a
  sharp cut with its sinc PSF and Gibbs ringing, 1 a Hann window; Harris 1978), and evaluated
  exactly at the LR voxel centres (no interpolation). Same optional noise.

The LR grid keeps the field of view (FOV) of the HR grid: its spacing is ``f * s`` and its first
voxel centre sits at the centre of the first block of ``f`` HR voxels, i.e.
``origin_LR = origin_HR + D @ ((f - 1) / 2 * s)`` with ``D`` the direction matrix. Leaving
``origin_LR = origin_HR`` would put every LR voxel ``(f - 1) / 2`` HR voxels (1.5 for f = 4)
away from the block it summarises, a systematic shift between HR and LR.

The LR size is ``floor(n / f)`` (at least 1), so when ``n`` is not a multiple of ``f`` the last
``n mod f`` HR voxels fall outside the LR FOV; :func:`regrid` fills them with the nearest edge
value of the LR image (SimpleITK's nearest-neighbour extrapolator) rather than with 0.

Factors are given per image axis in SimpleITK order ``(x, y, z)``. The degradation is a choice
independent of the preset's factors (``data.degradation`` in a config, ``ressrdiff eval
--degradation``, ``ressrdiff sr --degradation``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import SimpleITK as sitk

from ressrdiff.data.io import VolumeError

__all__ = [
    "PRESETS",
    "INTERPOLATORS",
    "DEGRADATIONS",
    "resolve_factors",
    "resolve_degradation",
    "degradation_of",
    "antialias_sigmas",
    "lr_noise_sd",
    "resample_lr",
    "acquisition_lr",
    "kspace_lr",
    "kspace_window",
    "lr_grid",
    "downsample",
    "regrid",
    "degrade",
    "same_grid",
    "check_same_grid",
    "grid_text",
]

#: Down-sampling factors per axis (x, y, z). brain-4x: 0.8 mm iso -> 3.2 mm iso (7T MP2RAGE);
#: prostate: 0.66 x 0.66 x 1.5 mm -> 1.98 x 1.98 x 3.0 mm (the paper's "2 x 2 x 3 mm").
PRESETS: dict[str, tuple[int, int, int]] = {"brain-4x": (4, 4, 4), "prostate": (3, 3, 2)}

#: Interpolator names accepted by :func:`downsample` and :func:`regrid`.
INTERPOLATORS: dict[str, int] = {
    "nearest": sitk.sitkNearestNeighbor,
    "linear": sitk.sitkLinear,
    "bspline": sitk.sitkBSpline,  # cubic B-spline
    "lanczos": sitk.sitkLanczosWindowedSinc,
}

_FWHM_PER_SIGMA = 2.0 * np.sqrt(2.0 * np.log(2.0))  # 2.3548


def _interpolator(name: str) -> int:
    try:
        return INTERPOLATORS[name]
    except KeyError:
        raise ValueError(
            f"unknown interpolator {name!r}; use one of {', '.join(INTERPOLATORS)}"
        ) from None


def resolve_factors(preset_or_factors: str | float | Sequence[float], dim: int = 3) -> np.ndarray:
    """Per-axis factors (float64, length ``dim``) from a preset name, a scalar or a sequence."""
    if isinstance(preset_or_factors, str):
        if preset_or_factors not in PRESETS:
            raise ValueError(
                f"unknown degradation preset {preset_or_factors!r}; use one of "
                f"{', '.join(PRESETS)} or explicit factors"
            )
        f = np.asarray(PRESETS[preset_or_factors], dtype=np.float64)
    else:
        f = np.asarray(preset_or_factors, dtype=np.float64)
        if f.ndim == 0:
            f = np.full(dim, float(f))
    if f.shape != (dim,):
        raise ValueError(f"need {dim} down-sampling factors (x, y, z order), got {f.tolist()}")
    if not np.all(np.isfinite(f)) or np.any(f < 1):
        raise ValueError(f"down-sampling factors must be finite and >= 1, got {f.tolist()}")
    return f


def _geometry(img: sitk.Image) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    dim = img.GetDimension()
    return (
        np.asarray(img.GetSize(), dtype=np.int64),
        np.asarray(img.GetSpacing(), dtype=np.float64),
        np.asarray(img.GetOrigin(), dtype=np.float64),
        np.asarray(img.GetDirection(), dtype=np.float64).reshape(dim, dim),
    )


def antialias_sigmas(spacing: Sequence[float], factors: Sequence[float]) -> np.ndarray:
    """Gaussian sigmas (mm) with which the ``"acquisition"`` degradation smooths the HR image.

    An HR voxel is taken to have a point-spread function of FWHM = HR spacing ``s``. Gaussians add
    in quadrature, so smoothing with FWHM ``s * sqrt(f**2 - 1)`` gives a total FWHM of ``f * s``,
    the LR spacing. ``sigma = FWHM / 2.3548``; an axis with ``f = 1`` is not smoothed. (The name
    is that of the older ``antialias=True`` flag, which selected the same smoothing.)
    """
    s = np.asarray(spacing, dtype=np.float64)
    f = np.asarray(factors, dtype=np.float64)
    return s * np.sqrt(np.maximum(f**2 - 1.0, 0.0)) / _FWHM_PER_SIGMA


def lr_noise_sd(noise_sd: float, factors: Sequence[float]) -> float:
    """The noise SD of an LR voxel for noise SD ``noise_sd`` in an HR voxel:
    ``noise_sd / sqrt(prod(f))``. SNR is proportional to voxel volume times the square root of the
    number of samples (Haacke et al. 1999); at a fixed field of view an LR voxel ``prod(f)`` times
    larger comes with ``prod(f)`` times fewer samples, so its noise relative to the signal falls
    by ``sqrt(prod(f))``, as for the mean of ``prod(f)`` independent HR voxels."""
    if not np.isfinite(noise_sd) or noise_sd < 0:
        raise ValueError(f"noise_sd must be finite and >= 0, got {noise_sd}")
    return float(noise_sd) / float(np.sqrt(np.prod(np.asarray(factors, dtype=np.float64))))


def _smooth(img: sitk.Image, sigmas_mm: np.ndarray) -> sitk.Image:
    """Separable Gaussian smoothing with per-axis sigma in mm (axes with sigma 0 untouched)."""
    out = img
    for axis, sigma in enumerate(sigmas_mm):
        if sigma <= 0:
            continue
        if out.GetSize()[axis] >= 4:  # the recursive filter needs 4 voxels along the axis
            order = sitk.RecursiveGaussianImageFilter.ZeroOrder
            out = sitk.RecursiveGaussian(out, float(sigma), False, order, axis)
        else:
            var = [0.0] * img.GetDimension()
            var[axis] = float(sigma) ** 2
            out = sitk.DiscreteGaussian(out, var, 32, 0.001, True)
    return out


def _lr_geometry(img: sitk.Image, f: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(size, spacing, origin) of the FOV-preserving LR grid of ``img`` for factors ``f``."""
    size, spacing, origin, direction = _geometry(img)
    lr_size = np.maximum(1, np.floor(size / f + 1e-9)).astype(np.int64)
    return lr_size, spacing * f, origin + direction @ ((f - 1.0) / 2.0 * spacing)


def lr_grid(img: sitk.Image, factors: str | float | Sequence[float]) -> sitk.Image:
    """An empty float32 image on the LR grid that :func:`downsample` gives for ``img``: a cheap
    reference for checking that a given LR volume lies on the preset's LR grid of an HR volume
    (with :func:`same_grid`)."""
    f = resolve_factors(factors, img.GetDimension())
    lr_size, lr_spacing, lr_origin = _lr_geometry(img, f)
    ref = sitk.Image([int(v) for v in lr_size], sitk.sitkFloat32)
    ref.SetSpacing(lr_spacing.tolist())
    ref.SetOrigin(lr_origin.tolist())
    ref.SetDirection(img.GetDirection())
    return ref


def _sample(src: sitk.Image, img: sitk.Image, f: np.ndarray, interpolator: str) -> sitk.Image:
    """``src`` (float32, on the grid of ``img``) sampled at the LR voxel centres of ``img``."""
    lr_size, lr_spacing, lr_origin = _lr_geometry(img, f)
    lo = float(sitk.GetArrayViewFromImage(src).min())
    return sitk.Resample(
        src,
        [int(v) for v in lr_size],
        sitk.Transform(),
        _interpolator(interpolator),
        lr_origin.tolist(),
        lr_spacing.tolist(),
        img.GetDirection(),
        lo,
        sitk.sitkFloat32,
        True,
    )


def _add_noise(lr: sitk.Image, sd: float, seed: int | np.random.Generator | None) -> sitk.Image:
    """``lr`` plus white Gaussian noise of SD ``sd`` (``lr`` itself when ``sd`` is 0)."""
    if sd <= 0:
        return lr
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    arr = sitk.GetArrayFromImage(lr).astype(np.float64)
    noisy = sitk.GetImageFromArray((arr + rng.normal(0.0, sd, arr.shape)).astype(np.float32))
    noisy.CopyInformation(lr)
    return noisy


def resample_lr(
    img: sitk.Image,
    factors: str | float | Sequence[float],
    *,
    interpolator: str = "linear",
    noise_sd: float = 0.0,
    seed: int | np.random.Generator | None = 0,
) -> sitk.Image:
    """The ``"resample"`` degradation (the paper's): ``img`` sampled at the LR voxel centres with
    ``interpolator``, without averaging (detail above the LR Nyquist frequency aliases). It has no
    noise model: ``noise_sd`` must be 0 (``seed`` is unused)."""
    if noise_sd:
        raise ValueError(
            "degradation 'resample' has no noise model; use 'acquisition' for noise_sd > 0"
        )
    f = resolve_factors(factors, img.GetDimension())
    return _sample(sitk.Cast(img, sitk.sitkFloat32), img, f, interpolator)


def acquisition_lr(
    img: sitk.Image,
    factors: str | float | Sequence[float],
    *,
    interpolator: str = "linear",
    noise_sd: float = 0.0,
    seed: int | np.random.Generator | None = 0,
) -> sitk.Image:
    """The ``"acquisition"`` degradation: each LR voxel averages what it covers.

    The HR image is smoothed with a Gaussian per axis (:func:`antialias_sigmas`: with the HR
    voxel's own PSF, a total FWHM of one LR voxel, the slice-selection profile and in-plane PSF of
    the larger voxel; partial-volume averaging, Greenspan 2009), then sampled at the LR voxel
    centres with ``interpolator``. With ``noise_sd`` > 0 (the noise SD of one HR voxel, in image
    units) white Gaussian noise of SD :func:`lr_noise_sd` is added to the LR voxels, drawn from
    ``seed`` (an int, a ``numpy`` Generator, or None for fresh entropy). Without noise (the
    default) the result is bitwise that of the older ``downsample(..., antialias=True)``.
    """
    f = resolve_factors(factors, img.GetDimension())
    sd = lr_noise_sd(noise_sd, f)
    _, spacing, _, _ = _geometry(img)
    src = _smooth(sitk.Cast(img, sitk.sitkFloat32), antialias_sigmas(spacing, f))
    return _add_noise(_sample(src, img, f, interpolator), sd, seed)


def kspace_window(n: int, spacing: float, factor: float, tukey_alpha: float = 0.5) -> np.ndarray:
    """Weights of the ``n`` DFT bins (``numpy.fft.fftfreq`` order) of an axis with HR spacing
    ``spacing`` that an LR scan ``factor`` times coarser measures: 1 inside the LR extent
    ``|k| <= (1 - tukey_alpha) * k_c``, a cosine taper to 0 at ``k_c = 1 / (2 * factor *
    spacing)`` (the LR Nyquist frequency), 0 beyond (a Tukey window, Harris 1978;
    ``tukey_alpha`` 1 is a Hann window). ``tukey_alpha`` 0 is a sharp cut, with weight 1/2 on a
    bin exactly at ``k_c`` so that the result stays real."""
    if not 0.0 <= tukey_alpha <= 1.0:
        raise ValueError(f"tukey_alpha must be in [0, 1], got {tukey_alpha}")
    k = np.abs(np.fft.fftfreq(n, d=spacing))
    kc = 1.0 / (2.0 * factor * spacing)
    tol = 1e-9 * kc
    if tukey_alpha == 0:
        return np.where(k < kc - tol, 1.0, np.where(k <= kc + tol, 0.5, 0.0))
    k0 = (1.0 - tukey_alpha) * kc
    taper = 0.5 * (1.0 + np.cos(np.pi * np.clip(k - k0, 0.0, None) / (tukey_alpha * kc)))
    return np.where(k >= kc - tol, 0.0, np.where(k <= k0, 1.0, taper))


def _kspace_operator(n: int, m: int, spacing: float, factor: float, alpha: float) -> np.ndarray:
    """The real (m, n) matrix: DFT of an axis, the LR window, evaluation at the LR centres."""
    w = kspace_window(n, spacing, factor, alpha)
    keep = np.flatnonzero(w > 0)
    k = np.fft.fftfreq(n)[keep] * n  # signed integer frequencies
    x = np.arange(n)
    centres = (factor - 1.0) / 2.0 + factor * np.arange(m)  # in HR voxel units
    forward = np.exp(-2j * np.pi * np.outer(k, x) / n)  # (kept, n)
    back = np.exp(2j * np.pi * np.outer(centres, k) / n) * w[keep]  # (m, kept)
    return np.real(back @ forward) / n


def kspace_lr(
    img: sitk.Image,
    factors: str | float | Sequence[float],
    *,
    interpolator: str = "linear",
    noise_sd: float = 0.0,
    seed: int | np.random.Generator | None = 0,
    tukey_alpha: float = 0.5,
) -> sitk.Image:
    """The ``"acquisition-kspace"`` degradation: the LR scan's k-space extent.

    Per axis with ``f > 1``, the HR spectrum (DFT: the field of view is periodic, as in MRI) is
    weighted by :func:`kspace_window` (zero beyond the LR Nyquist frequency) and the resulting
    band-limited image is evaluated exactly at the LR voxel centres (``interpolator`` is not
    used). Noise as in :func:`acquisition_lr`. Returns a float32 image on :func:`lr_grid`.
    """
    dim = img.GetDimension()
    f = resolve_factors(factors, dim)
    sd = lr_noise_sd(noise_sd, f)
    _interpolator(interpolator)  # unused, but checked: the same one-line error as the others
    ref = lr_grid(img, f)
    _, spacing, _, _ = _geometry(img)
    arr = sitk.GetArrayFromImage(img).astype(np.float64)  # numpy axes reversed: (z, y, x)
    for axis in range(dim):
        if f[axis] == 1:
            continue
        ax = dim - 1 - axis
        op = _kspace_operator(
            arr.shape[ax], ref.GetSize()[axis], spacing[axis], f[axis], tukey_alpha
        )
        arr = np.moveaxis(np.tensordot(op, arr, axes=([1], [ax])), 0, ax)
    lr = sitk.GetImageFromArray(arr.astype(np.float32))
    lr.CopyInformation(ref)
    return _add_noise(lr, sd, seed)


#: The named degradations: name -> function ``(img, factors, *, interpolator, noise_sd, seed)``
#: returning the float32 LR image on :func:`lr_grid` (see the module docstring).
DEGRADATIONS: dict[str, Callable[..., sitk.Image]] = {
    "resample": resample_lr,
    "acquisition": acquisition_lr,
    "acquisition-kspace": kspace_lr,
}


def resolve_degradation(degradation: str | None = None, antialias: bool | None = None) -> str:
    """The degradation's name, checked against :data:`DEGRADATIONS` (one-line ``ValueError``).

    ``None`` is ``"resample"`` (what a config or checkpoint without the field meant).
    ``antialias=True`` is the deprecated spelling of ``"acquisition"`` and selects it (an error
    with another explicit degradation); ``antialias`` False or None changes nothing.
    """
    name = "resample" if degradation is None else degradation
    if not isinstance(name, str) or name not in DEGRADATIONS:
        raise ValueError(f"unknown degradation {name!r}; use one of {', '.join(DEGRADATIONS)}")
    if antialias:
        if name not in ("resample", "acquisition"):
            raise ValueError(
                f"antialias=True (the old spelling of 'acquisition') contradicts degradation "
                f"{name!r}"
            )
        return "acquisition"
    return name


def degradation_of(data: Any) -> str:
    """The degradation named by a config's ``data`` section: a
    :class:`ressrdiff.config.DataConfig` or the plain dict a checkpoint stores. Without the field
    (older configs and checkpoints) it is ``"resample"``; the legacy ``antialias: true`` is
    ``"acquisition"``."""
    if isinstance(data, Mapping):
        name, antialias = data.get("degradation"), data.get("antialias")
    else:
        name, antialias = getattr(data, "degradation", None), getattr(data, "antialias", None)
    return resolve_degradation(name, bool(antialias))


def downsample(
    img: sitk.Image,
    factors: str | float | Sequence[float],
    *,
    degradation: str = "resample",
    interpolator: str = "linear",
    noise_sd: float = 0.0,
    seed: int | np.random.Generator | None = 0,
    antialias: bool | None = None,
) -> sitk.Image:
    """Down-sample ``img`` by ``factors`` (per axis x, y, z) onto an FOV-preserving LR grid.

    LR spacing = ``s * f``, LR size = ``max(1, floor(n / f))``, LR origin =
    ``origin + D @ ((f - 1) / 2 * s)``, same direction. ``degradation`` names the model in
    :data:`DEGRADATIONS`: ``"resample"`` (the paper's point sampling with ``interpolator``,
    ``"linear"`` by default), ``"acquisition"`` (Gaussian voxel profile, then sampling) or
    ``"acquisition-kspace"``. ``noise_sd`` (HR-voxel noise SD; 0 = none) and ``seed`` apply to
    the acquisition models. ``antialias=True`` is the deprecated spelling of
    ``degradation="acquisition"``. Returns a float32 image.
    """
    name = resolve_degradation(degradation, antialias)
    return DEGRADATIONS[name](img, factors, interpolator=interpolator, noise_sd=noise_sd, seed=seed)


def regrid(lr: sitk.Image, reference: sitk.Image, method: str = "nearest") -> sitk.Image:
    """Resample ``lr`` onto exactly the grid of ``reference`` (float32 result).

    ``method``: ``"nearest"`` (the paper's pre-upsampling), ``"bspline"`` (cubic, as in the
    authors' code), ``"linear"`` or ``"lanczos"``. Reference voxels outside the LR field of view
    take the value of the nearest LR voxel (edge extension), never 0. An LR image with fewer
    than 4 voxels along an axis is re-gridded linearly even when ``"bspline"`` is asked for.
    """
    if lr.GetDimension() != reference.GetDimension():
        raise ValueError(
            f"regrid: LR is {lr.GetDimension()}-D but the reference is {reference.GetDimension()}-D"
        )
    src = sitk.Cast(lr, sitk.sitkFloat32)
    lo = float(sitk.GetArrayViewFromImage(src).min())
    if method == "bspline" and min(src.GetSize()) < 4:
        # a cubic B-spline wants 4 samples per axis; on a 2x2x2 image ITK's B-spline gave NaN
        # intermittently (seen once in CI), so such tiny images are re-gridded linearly
        method = "linear"
    return sitk.Resample(
        src, reference, sitk.Transform(), _interpolator(method), lo, sitk.sitkFloat32, True
    )


def degrade(
    hr: sitk.Image,
    preset_or_factors: str | float | Sequence[float],
    *,
    regrid_method: str = "nearest",
    degradation: str = "resample",
    interpolator: str = "linear",
    noise_sd: float = 0.0,
    seed: int | np.random.Generator | None = 0,
    antialias: bool | None = None,
) -> sitk.Image:
    """The network's LR input: ``regrid(downsample(hr, f, ...), hr)``, a float32 volume on the HR
    grid.

    ``preset_or_factors`` is a key of :data:`PRESETS` or per-axis factors (x, y, z); the other
    keywords are those of :func:`downsample`.
    """
    lr = downsample(
        hr,
        preset_or_factors,
        degradation=degradation,
        interpolator=interpolator,
        noise_sd=noise_sd,
        seed=seed,
        antialias=antialias,
    )
    return regrid(lr, hr, regrid_method)


def same_grid(a: sitk.Image, b: sitk.Image, tol: float = 1e-4) -> bool:
    """True when ``a`` and ``b`` have the same size, and spacing/origin/direction within ``tol``."""
    if a.GetDimension() != b.GetDimension() or a.GetSize() != b.GetSize():
        return False
    pairs = (
        (a.GetSpacing(), b.GetSpacing()),
        (a.GetOrigin(), b.GetOrigin()),
        (a.GetDirection(), b.GetDirection()),
    )
    return all(np.allclose(x, y, rtol=0.0, atol=tol) for x, y in pairs)


def grid_text(img: sitk.Image) -> str:
    """A one-line description of ``img``'s grid (size, spacing, origin) for error messages."""

    def fmt(v: Sequence[float]) -> str:
        return "(" + ", ".join(f"{x:.4g}" for x in v) + ")"

    return (
        f"size {'x'.join(map(str, img.GetSize()))}, spacing {fmt(img.GetSpacing())}, "
        f"origin {fmt(img.GetOrigin())}"
    )


def check_same_grid(
    a: sitk.Image, b: sitk.Image, names: Sequence[str] = ("a", "b"), tol: float = 1e-4
) -> None:
    """Raise :class:`VolumeError` naming both files when ``a`` and ``b`` are on different grids."""
    if not same_grid(a, b, tol):
        same_dir = a.GetDimension() == b.GetDimension() and np.allclose(
            a.GetDirection(), b.GetDirection(), atol=tol
        )
        extra = "" if same_dir else ", directions differ"
        raise VolumeError(
            f"{names[0]} and {names[1]}: grids differ ({grid_text(a)} vs {grid_text(b)}{extra})"
        )


def upsample_slice(arr: np.ndarray, factor: float, method: str = "nearest") -> np.ndarray:
    """Re-grid a genuinely low-resolution 2-D slice onto a grid ``factor`` times finer, with the
    same field of view (the 2-D counterpart of :func:`regrid` after :func:`downsample`)."""
    if factor < 1:
        raise ValueError(f"upsample_slice: factor must be >= 1, got {factor}")
    lr = sitk.GetImageFromArray(np.asarray(arr, dtype=np.float32))  # spacing 1, origin 0
    size = [int(round(n * factor)) for n in lr.GetSize()]
    ref = sitk.Image(size, sitk.sitkFloat32)
    ref.SetSpacing([1.0 / factor] * 2)
    ref.SetOrigin([-(factor - 1.0) / (2.0 * factor)] * 2)
    return sitk.GetArrayFromImage(regrid(lr, ref, method))
