"""`apply_mapping`: the forward intensity map of `robust_volume` / `minmax_slices` on any array."""

from __future__ import annotations

import numpy as np
import pytest

from ressrdiff.data.intensity import apply_mapping, invert, minmax_slices, robust_volume


def _volume() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.gamma(2.0, 100.0, (5, 12, 10))
    mask = np.zeros(x.shape, bool)
    mask[:, 3:9, 2:8] = True
    return x, mask


def test_apply_mapping_reproduces_robust_volume() -> None:
    x, mask = _volume()
    y, params = robust_volume(x, mask=mask)
    z = apply_mapping(x, params)
    assert z.dtype == np.float64
    np.testing.assert_allclose(z, y, atol=1e-6)  # y is the float32 rounding of z
    assert z.min() == -1.0 and z.max() == 1.0


def test_apply_mapping_on_another_array_is_the_linear_map_of_the_params() -> None:
    x, mask = _volume()
    _, params = robust_volume(x, mask=mask)
    lo, hi = float(params.lo), float(params.hi)
    other = np.array([lo, (lo + hi) / 2, hi, hi + (hi - lo), lo - (hi - lo) / 2])
    np.testing.assert_allclose(apply_mapping(other, params, clip=False), [-1, 0, 1, 3, -2])
    np.testing.assert_allclose(apply_mapping(other, params), [-1, 0, 1, 1, -1])
    inside = other[:3]
    np.testing.assert_allclose(invert(apply_mapping(inside, params), params), inside, rtol=1e-6)


def test_apply_mapping_minmax_slices_per_slice() -> None:
    x, _ = _volume()
    x[:, 4] = 7.0  # a constant slice along axis 1 maps to -1
    y, params = minmax_slices(x, axis=1)
    np.testing.assert_allclose(apply_mapping(x, params), y, atol=1e-6)
    assert np.all(apply_mapping(x, params)[:, 4] == -1.0)
    with pytest.raises(ValueError, match="apply_mapping: x has shape"):
        apply_mapping(x[:, :3], params)
