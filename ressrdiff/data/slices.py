"""2-D slices of volumes, paired HR/LR slice stacks, and torch datasets of patches and slices.

Axis convention: functions taking numpy arrays use **numpy** axes. An array from
``SimpleITK.GetArrayFromImage`` is ordered ``(z, y, x)``, so image axis ``k`` (x=0, y=1, z=2) is
numpy axis ``2 - k`` (see :func:`image_axis_to_numpy`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.utils.data import Dataset

from .augment import IntensityAugment, augment_pair

__all__ = [
    "image_axis_to_numpy",
    "volume_to_slices",
    "drop_empty",
    "drop_empty_masked",
    "PairedSlices",
    "MaskedPairedSlices",
    "PatchDataset",
    "MaskedPatchDataset",
    "SliceDataset",
]


def image_axis_to_numpy(axis: int, ndim: int = 3) -> int:
    """Numpy axis of the SimpleITK image axis ``axis`` (x=0, y=1, z=2) in a ``(z, y, x)`` array."""
    if not 0 <= axis < ndim:
        raise ValueError(f"image axis must be in 0..{ndim - 1}, got {axis}")
    return ndim - 1 - axis


def volume_to_slices(
    arr: np.ndarray, axis: int, keep: Sequence[int] | np.ndarray | None = None
) -> np.ndarray:
    """Stack of the 2-D slices of a 3-D array along numpy ``axis``: shape ``(N, H, W)``.

    ``keep`` selects slice indices (in that order); the dtype is unchanged. The remaining two axes
    keep their order (e.g. axis 0 of a ``(z, y, x)`` array gives ``(z, y, x)`` slices ``(y, x)``).
    """
    a = np.asarray(arr)
    if a.ndim != 3:
        raise ValueError(f"volume_to_slices: need a 3-D array, got shape {a.shape}")
    stack = np.moveaxis(a, axis, 0)
    if keep is not None:
        stack = stack[np.asarray(keep, dtype=np.int64)]
    return np.ascontiguousarray(stack)


def drop_empty(
    hr_slices: np.ndarray, frac: float = 0.05, *, level: float = 0.05
) -> tuple[np.ndarray, np.ndarray]:
    """Remove slices whose foreground fraction is below ``frac``.

    A pixel is foreground when it exceeds ``min + level * (max - min)``, with min/max taken over
    the whole stack (so a slice of background noise is not mistaken for content). Returns
    ``(kept_slices, kept_indices)``.
    """
    s = np.asarray(hr_slices)
    if s.ndim != 3:
        raise ValueError(f"drop_empty: need an (N, H, W) stack, got shape {s.shape}")
    lo, hi = float(s.min()), float(s.max())
    threshold = lo + level * (hi - lo)
    fg = (s > threshold).reshape(s.shape[0], -1).mean(axis=1)
    kept = np.flatnonzero(fg >= frac) if hi > lo else np.zeros(0, dtype=np.int64)
    return s[kept], kept


@dataclass
class PairedSlices:
    """Aligned HR and LR 2-D slices (float32 ``(N, H, W)``, normalised to [-1, 1]).

    ``subject[k]`` names the volume slice ``k`` came from and ``index[k]`` its slice index there.
    ``hr_range``/``lr_range`` (``(N, 2)``, optional) hold each slice's original (lo, hi), the
    values that were mapped to -1/+1, so results can be returned to scanner units.
    """

    hr: np.ndarray
    lr: np.ndarray
    subject: np.ndarray
    index: np.ndarray
    hr_range: np.ndarray | None = None
    lr_range: np.ndarray | None = None
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.hr = np.ascontiguousarray(self.hr, dtype=np.float32)
        self.lr = np.ascontiguousarray(self.lr, dtype=np.float32)
        if self.hr.ndim != 3 or self.hr.shape != self.lr.shape:
            raise ValueError(
                f"PairedSlices: hr {self.hr.shape} and lr {self.lr.shape} must be equal (N, H, W)"
            )
        n = self.hr.shape[0]
        self.subject = np.asarray(self.subject, dtype=str).reshape(-1)
        if self.subject.shape[0] == 1 and n != 1:
            self.subject = np.repeat(self.subject, n)
        self.index = np.asarray(self.index, dtype=np.int64).reshape(-1)
        if self.subject.shape[0] != n or self.index.shape[0] != n:
            raise ValueError(
                f"PairedSlices: {n} slices but {self.subject.shape[0]} subject ids and "
                f"{self.index.shape[0]} slice indices"
            )
        for name in ("hr_range", "lr_range"):
            val = getattr(self, name)
            if val is not None:
                val = np.asarray(val, dtype=np.float64)
                if val.shape != (n, 2):
                    raise ValueError(f"PairedSlices: {name} must have shape ({n}, 2)")
                setattr(self, name, val)

    def __len__(self) -> int:
        return int(self.hr.shape[0])

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(N, H, W)``."""
        return tuple(self.hr.shape)  # type: ignore[return-value]

    def subset(self, idx: np.ndarray | Sequence[int] | slice) -> PairedSlices:
        """A new ``PairedSlices`` holding the selected slices (rows of every field)."""
        if not isinstance(idx, slice):
            idx = np.asarray(idx, dtype=np.int64)
        return PairedSlices(
            self.hr[idx],
            self.lr[idx],
            self.subject[idx],
            self.index[idx],
            None if self.hr_range is None else self.hr_range[idx],
            None if self.lr_range is None else self.lr_range[idx],
            dict(self.meta),
        )

    def to_units(
        self, which: str, values: np.ndarray, rows: Sequence[int] | None = None
    ) -> np.ndarray:
        """Map normalised slices ``values`` (``(n, H, W)``) back to the units of ``hr``/``lr``."""
        rng = self.hr_range if which == "hr" else self.lr_range
        if which not in ("hr", "lr") or rng is None:
            raise ValueError(f"to_units: no stored range for {which!r}")
        r = rng if rows is None else rng[np.asarray(rows, dtype=np.int64)]
        v = np.asarray(values, dtype=np.float64)
        if v.shape[0] != r.shape[0]:
            raise ValueError(f"to_units: {v.shape[0]} slices but {r.shape[0]} ranges")
        lo, hi = r[:, 0, None, None], r[:, 1, None, None]
        return (lo + (v + 1.0) / 2.0 * (hi - lo)).astype(np.float32)


def _as_pairs(pairs: PairedSlices | tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(pairs, PairedSlices):
        return pairs.hr, pairs.lr
    hr, lr = (np.ascontiguousarray(a, dtype=np.float32) for a in pairs)
    if hr.ndim != 3 or hr.shape != lr.shape:
        raise ValueError(f"need equal (N, H, W) hr/lr stacks, got {hr.shape} and {lr.shape}")
    return hr, lr


def _pad_to(a: np.ndarray, min_h: int, min_w: int, mode: str = "reflect") -> np.ndarray:
    """Pad the last two axes at the bottom/right up to at least ``(min_h, min_w)``."""
    h, w = a.shape[-2:]
    ph, pw = max(0, min_h - h), max(0, min_w - w)
    if ph == 0 and pw == 0:
        return a
    # reflect needs >= 2 samples along an axis; fall back to edge padding for a single row/column
    m = mode if (mode != "reflect" or min(h, w) >= 2) else "edge"
    widths = [(0, 0)] * (a.ndim - 2) + [(0, ph), (0, pw)]
    return np.pad(a, widths, mode=m)


class PatchDataset(Dataset):
    """Random ``patch x patch`` crops of aligned (HR, LR) slices.

    Item ``i`` is a pure function of ``(seed, epoch, i)``: a :class:`numpy.random.Generator`
    seeded with ``[seed, epoch, i]`` picks the slice, the crop corner and (if ``augment``) one of
    the 8 flips/rotations, applied identically to HR and LR. Call :meth:`set_epoch` before each
    epoch for fresh crops (with DataLoader workers, avoid ``persistent_workers`` or recreate the
    loader, since workers hold a copy of the dataset). Slices smaller than the patch are padded
    at the bottom/right by reflection. Items are ``{"hr": (1,p,p), "lr": (1,p,p)}`` float32.
    """

    def __init__(
        self,
        pairs: PairedSlices | tuple[np.ndarray, np.ndarray],
        patch: int = 64,
        *,
        samples_per_epoch: int | None = None,
        seed: int = 0,
        augment: bool = False,
        intensity: IntensityAugment | None = None,
    ) -> None:
        self.hr, self.lr = _as_pairs(pairs)
        self.intensity = intensity
        if len(self.hr) == 0:
            raise ValueError("PatchDataset: no slices")
        if patch < 1:
            raise ValueError(f"PatchDataset: patch must be >= 1, got {patch}")
        self.patch = int(patch)
        n = samples_per_epoch if samples_per_epoch is not None else 8 * len(self.hr)
        if n < 1:
            raise ValueError(f"PatchDataset: samples_per_epoch must be >= 1, got {n}")
        self.samples_per_epoch = int(n)
        self.seed = int(seed)
        self.augment = bool(augment)
        self.epoch = 0
        h, w = self.hr.shape[1:]
        if h < self.patch or w < self.patch:
            self.hr = _pad_to(self.hr, self.patch, self.patch)
            self.lr = _pad_to(self.lr, self.patch, self.patch)

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose crops ``__getitem__`` returns."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.samples_per_epoch

    def _origin(self, rng: np.random.Generator, k: int) -> tuple[int, int]:
        """Top-left corner of the crop from slice ``k``: uniform over the slice."""
        h, w = self.hr.shape[1:]
        return int(rng.integers(h - self.patch + 1)), int(rng.integers(w - self.patch + 1))

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        if not 0 <= i < self.samples_per_epoch:
            raise IndexError(f"PatchDataset index {i} out of range 0..{self.samples_per_epoch - 1}")
        rng = np.random.default_rng([self.seed, self.epoch, int(i)])
        k = int(rng.integers(len(self.hr)))
        y0, x0 = self._origin(rng, k)
        p = self.patch
        win = (k, slice(y0, y0 + p), slice(x0, x0 + p))
        pair = np.stack([self.hr[win], self.lr[win]])
        if self.augment:
            rot, flip = int(rng.integers(4)), bool(rng.integers(2))
            pair = np.rot90(pair, rot, axes=(1, 2))
            if flip:
                pair = pair[:, :, ::-1]
        if self.intensity is not None:  # drawn last: items without it are unchanged
            pair = np.stack(augment_pair(pair[0], pair[1], rng, self.intensity))
        pair = torch.from_numpy(np.ascontiguousarray(pair, dtype=np.float32))
        return {"hr": pair[0:1], "lr": pair[1:2]}


class SliceDataset(Dataset):
    """Whole aligned slices for evaluation.

    Items: ``{"hr": (1,H',W'), "lr": (1,H',W'), "size": tensor([H, W]), "subject": str,
    "index": int}``. With ``pad_multiple > 1`` slices are reflect-padded at the bottom/right to
    ``H', W'`` divisible by it (crop back with ``x[..., :H, :W]``); otherwise ``H', W' = H, W``.
    """

    def __init__(self, pairs: PairedSlices, *, pad_multiple: int = 1) -> None:
        if pad_multiple < 1:
            raise ValueError(f"SliceDataset: pad_multiple must be >= 1, got {pad_multiple}")
        self.pairs = pairs
        self.pad_multiple = int(pad_multiple)

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, i: int) -> dict[str, object]:
        if not 0 <= i < len(self.pairs):
            raise IndexError(f"SliceDataset index {i} out of range 0..{len(self.pairs) - 1}")
        hr, lr = self.pairs.hr[i], self.pairs.lr[i]
        h, w = hr.shape
        m = self.pad_multiple
        both = _pad_to(np.stack([hr, lr]), -(-h // m) * m, -(-w // m) * m)
        t = torch.from_numpy(np.ascontiguousarray(both))
        return {
            "hr": t[0:1],
            "lr": t[1:2],
            "size": torch.tensor([h, w]),
            "subject": str(self.pairs.subject[i]),
            "index": int(self.pairs.index[i]),
        }


def drop_empty_masked(
    slices: np.ndarray, mask_slices: np.ndarray, frac: float = 0.05
) -> tuple[np.ndarray, np.ndarray]:
    """Remove slices whose foreground mask covers less than ``frac`` of the slice.

    The mask-based counterpart of :func:`drop_empty` (``mask_slices`` is an ``(N, H, W)`` stack
    aligned with ``slices``; any value > 0 is foreground). Returns ``(kept_slices, kept_indices)``.
    """
    s, m = np.asarray(slices), np.asarray(mask_slices)
    if s.ndim != 3 or m.shape != s.shape:
        raise ValueError(
            f"drop_empty_masked: need equal (N, H, W) stacks, got {s.shape}, {m.shape}"
        )
    fg = (m > 0).reshape(m.shape[0], -1).mean(axis=1)
    kept = np.flatnonzero(fg >= frac)
    return s[kept], kept


@dataclass
class MaskedPairedSlices(PairedSlices):
    """:class:`PairedSlices` with each slice's foreground mask (bool ``(N, H, W)``).

    ``mask[k]`` is True on the head/brain of slice ``k`` and False on background and padding; use
    it for masked metrics. ``subset`` keeps the masks aligned with the slices.
    """

    mask: np.ndarray | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.mask is not None:
            self.mask = np.ascontiguousarray(self.mask, dtype=bool)
            if self.mask.shape != self.hr.shape:
                raise ValueError(
                    f"MaskedPairedSlices: mask {self.mask.shape} != slices {self.hr.shape}"
                )

    def subset(self, idx: np.ndarray | Sequence[int] | slice) -> MaskedPairedSlices:
        """A new ``MaskedPairedSlices`` holding the selected slices and their masks."""
        base = super().subset(idx)
        if not isinstance(idx, slice):
            idx = np.asarray(idx, dtype=np.int64)
        return MaskedPairedSlices(
            base.hr,
            base.lr,
            base.subject,
            base.index,
            base.hr_range,
            base.lr_range,
            base.meta,
            None if self.mask is None else self.mask[idx],
        )


class MaskedPatchDataset(PatchDataset):
    """:class:`PatchDataset` whose crops are centred on the foreground: the centre of each crop is
    a foreground pixel of the chosen slice, drawn uniformly (the crop is shifted to stay inside
    the slice; a slice without foreground gets a uniform crop).

    Useful when slices of different sizes were padded to a common size (e.g. a 0.5 mm and a 1 mm
    volume in one training set), where plain random crops often land in padding or air. Items
    are still a pure function of ``(seed, epoch, i)`` and have the same format.
    """

    def __init__(
        self,
        pairs: MaskedPairedSlices,
        patch: int = 64,
        *,
        samples_per_epoch: int | None = None,
        seed: int = 0,
        augment: bool = False,
        intensity: IntensityAugment | None = None,
    ) -> None:
        if getattr(pairs, "mask", None) is None:
            raise ValueError("MaskedPatchDataset: the pairs carry no mask (use load_pairs)")
        super().__init__(
            pairs,
            patch,
            samples_per_epoch=samples_per_epoch,
            seed=seed,
            augment=augment,
            intensity=intensity,
        )
        self.mask = _pad_to(np.asarray(pairs.mask, dtype=bool), self.patch, self.patch, "constant")

    def _origin(self, rng: np.random.Generator, k: int) -> tuple[int, int]:
        """Crop centred on a random foreground pixel of slice ``k`` (uniform if it has none)."""
        h, w = self.hr.shape[1:]
        p = self.patch
        fg = np.flatnonzero(self.mask[k])
        if not fg.size:
            return super()._origin(rng, k)
        cy, cx = divmod(int(fg[rng.integers(fg.size)]), w)
        return min(max(cy - p // 2, 0), h - p), min(max(cx - p // 2, 0), w - p)
