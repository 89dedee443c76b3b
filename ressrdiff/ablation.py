"""The validation ablation: each lever of a working Res-SRDiff as one row, on the same slices.

A row is a model (a shipped or trained checkpoint) with fixed sampling settings: the number of
steps K, the network window (whole slices or sliding windows), the reverse-step stochasticity
and the noise temperature. Every row is scored on the same validation slices by
:func:`ressrdiff.diagnosis.gain_over_input` (masked PSNR and SSIM gain over the re-gridded
input, and the spectral distance ``|log hf|`` of the SR's top octave from HR's), so rows differ
only in their lever. The test subject is refused: levers are chosen on validation data.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch

from .data.degrade import degradation_of
from .data.slices import MaskedPairedSlices
from .diagnosis import gain_over_input
from .methods.base import Method
from .schedule import respace_indices

__all__ = ["SCORED_DATA", "AblationRow", "ablation_table", "refuse_test_subject", "scored_data"]


@dataclass
class AblationRow:
    """One row: ``method`` sampled with ``steps`` (None: its default) and ``sr_options``
    (keywords of ``super_resolve``: ``window``, ``stochasticity``, ``temperature``)."""

    label: str
    method: Method
    steps: int | None = None
    sr_options: dict[str, Any] = field(default_factory=dict)
    lever: str = ""  # what this row changes, in words


#: the data fields that make a slice pair what it is at scoring time
SCORED_DATA = ("preset", "regrid", "axis", "resolved_normalisation", "degradation")


def scored_data(m: Method) -> dict[str, Any]:
    """The :data:`SCORED_DATA` fields of ``m``'s config (its degradation resolved)."""
    d = m.cfg.data
    return {k: degradation_of(d) if k == "degradation" else getattr(d, k) for k in SCORED_DATA}


def _setting(opts: dict[str, Any], key: str, default: float) -> float:
    value = opts.get(key)
    return float(default if value is None else value)


def refuse_test_subject(pairs: MaskedPairedSlices) -> list[str]:
    """The subjects of ``pairs``; a ValueError if the test subject (pycortex S1) is among them."""
    subjects = sorted({str(s) for s in np.atleast_1d(pairs.subject)})
    if any("pycortex" in s for s in subjects):
        raise ValueError(f"refusing to score the test subject ({', '.join(subjects)})")
    return subjects


def ablation_table(
    rows: list[AblationRow], pairs: MaskedPairedSlices, *, seed: int = 0
) -> pd.DataFrame:
    """One line per row: its settings, the mean masked PSNR gain over the input with its
    standard error over slices, the mean SSIM gain, the mean ``|log hf|`` (0: the SR's
    top-octave power equals HR's) and seconds per slice. Every row's model must see its input as
    the first row's does (:data:`SCORED_DATA`: preset, re-gridding, axis, normalisation and
    degradation); training-only fields such as ``intensity`` may differ."""
    refuse_test_subject(pairs)
    want = scored_data(rows[0].method)
    out = []
    for r in rows:
        m = r.method
        if scored_data(m) != want:
            raise ValueError(
                f"{r.label}: its input differs from {rows[0].label}'s "
                f"({scored_data(m)} against {want}); the rows are not comparable"
            )
        t0 = time.perf_counter()
        df = gain_over_input(m, pairs, steps=r.steps, seed=seed, sr_options=r.sr_options)
        secs = (time.perf_counter() - t0) / len(pairs)
        K = int(r.steps or m.sample_steps)
        opts = r.sr_options
        x0 = torch.from_numpy(np.ascontiguousarray(pairs.lr[:1]))[:, None]
        out.append(
            {
                "row": r.label,
                "lever": r.lever,
                "K": K,
                "t": ",".join(map(str, respace_indices(m.schedule.T, K))),
                "window": m.window_for(x0, opts.get("window", "model")),
                "eta": _setting(opts, "stochasticity", m.cfg.infer.stochasticity),
                "tau": _setting(opts, "temperature", m.cfg.infer.temperature),
                "psnr_gain": float(df["psnr_gain"].mean()),
                "psnr_gain_se": float(df["psnr_gain"].std() / np.sqrt(len(df))),
                "ssim_gain": float(df["ssim_gain"].mean()),
                "abs_log_hf": float(np.abs(np.log(df["hf_model"])).mean()),
                "s_per_slice": secs,
            }
        )
    return pd.DataFrame(out)
