"""Intensity augmentation of training pairs for transfer to other scanners (MONAI transforms).

Real scans differ from the training heads in receive-coil shading, contrast and noise. The
transforms come from MONAI (``RandBiasField``, ``AdjustContrast``, ``RandGaussianNoise``) rather
than code of our own; this module only decides where each acts:

* a **bias field** (a smooth multiplicative shading, Legendre polynomials of degree 3) and a
  **gamma** change of contrast act on HR and LR alike. Ideally they would act on the HR before
  degradation, but our LR is simulated once per 3-D volume (the acquisition model averages across
  slices, so it cannot be redone on a 2-D patch), so they act on the pair instead: the bias field
  is smooth at the scale of the LR voxel, so averaging and shading commute up to its curvature,
  and a gamma change is pointwise, so it commutes with re-gridding exactly only where the
  intensity is locally constant -- the residual is the approximation this choice makes;
* **noise** is acquisition noise: it goes to the LR only, and the target stays clean, so the
  network learns to remove it rather than to reproduce it.

Intensities are in [-1, 1]; the field and gamma act on ``(x + 1) / 2`` in [0, 1], where a
multiplicative field and a power law make physical sense, and the result is mapped back and
clipped to [-1, 1]. Every draw comes from the caller's :class:`numpy.random.Generator`, so a
training item stays a pure function of ``(seed, epoch, index)``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

__all__ = ["IntensityAugment", "augment_pair"]


@dataclass(frozen=True)
class IntensityAugment:
    """Ranges of the intensity augmentation (each transform applied with probability ``prob``).

    ``bias_coeff``: the largest Legendre coefficient of the log bias field (MONAI's
    ``coeff_range`` is ``(0, bias_coeff)``); ``gamma``: the range of the contrast exponent;
    ``noise_sd``: the largest noise standard deviation, as a fraction of the [0, 1] range."""

    prob: float = 0.5
    bias_coeff: float = 0.3
    gamma: tuple[float, float] = (0.7, 1.5)
    noise_sd: float = 0.03

    def __post_init__(self) -> None:
        lo, hi = self.gamma
        if not 0.0 <= self.prob <= 1.0:
            raise ValueError(f"intensity augmentation: prob must be in [0, 1], got {self.prob}")
        if self.bias_coeff < 0 or self.noise_sd < 0 or not 0 < lo <= hi:
            raise ValueError(
                "intensity augmentation: bias_coeff and noise_sd must be >= 0 and gamma a range "
                f"0 < lo <= hi, got {self.bias_coeff}, {self.noise_sd}, {self.gamma}"
            )

    @classmethod
    def from_config(cls, value: Any) -> IntensityAugment | None:
        """``data.intensity`` of a config: false/None (off), true (the defaults) or a mapping
        of the fields above."""
        if value is None or value is False:
            return None
        if value is True:
            return cls()
        if isinstance(value, dict):
            d = dict(value)
            if "gamma" in d:
                d["gamma"] = tuple(float(g) for g in d["gamma"])
            try:
                return cls(**d)
            except TypeError as e:
                raise ValueError(f"data.intensity: {e}") from None
        raise ValueError(f"data.intensity must be true, false or a mapping, got {value!r}")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["gamma"] = list(self.gamma)
        return d


def _seed(rng: np.random.Generator) -> int:
    return int(rng.integers(2**31 - 1))


def augment_pair(
    hr: np.ndarray, lr: np.ndarray, rng: np.random.Generator, aug: IntensityAugment
) -> tuple[np.ndarray, np.ndarray]:
    """Bias field and gamma on both of ``hr``, ``lr`` (2-D arrays in [-1, 1]), then noise on
    ``lr`` alone; every random choice is drawn from ``rng``."""
    from monai.transforms import AdjustContrast, RandBiasField, RandGaussianNoise  # heavy import

    draws = rng.random(3)
    if not (draws < aug.prob).any():
        return hr, lr  # nothing drawn: the pair exactly as given
    pair = (np.stack([hr, lr]).astype(np.float32) + 1.0) / 2.0  # (2, H, W) in [0, 1]
    if draws[0] < aug.prob and aug.bias_coeff > 0:
        bias = RandBiasField(degree=3, coeff_range=(0.0, aug.bias_coeff), prob=1.0)
        bias.set_random_state(seed=_seed(rng))
        pair = np.asarray(bias(pair))  # the same field on both channels
    if draws[1] < aug.prob:
        g = float(rng.uniform(*aug.gamma))
        # one min/max over both channels, so HR and LR get the same intensity map
        pair = np.asarray(AdjustContrast(gamma=g)(pair))
    if draws[2] < aug.prob and aug.noise_sd > 0:
        sd = float(rng.uniform(0.0, aug.noise_sd))
        noise = RandGaussianNoise(prob=1.0, mean=0.0, std=sd, sample_std=False)
        noise.set_random_state(seed=_seed(rng))
        pair[1:] = np.asarray(noise(pair[1:]))
    out = np.clip(pair * 2.0 - 1.0, -1.0, 1.0).astype(np.float32)
    return out[0], out[1]
