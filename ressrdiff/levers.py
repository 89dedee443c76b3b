"""CPU inference levers: each way of running the same sampler, timed against the
reference path in one run, with the masked PSNR of its output against the reference output.

The reference path is fp32 under ``torch.no_grad``, one slice per call, with the model's own
``infer`` window setting (what ``ressrdiff sr --reference-path`` runs). Every lever samples at
``temperature=0`` (:func:`ressrdiff.diffusion.sample`: no noise draws), so the output is a
function of the input alone and only numerical differences (or, for whole slices, a different
inference path) separate the levers. Timing follows :mod:`ressrdiff.timing`: one warm-up, then
the median of ``repeats`` calls. Written here rather than with ``torch.utils.benchmark``
because each lever must also return its output for the accuracy column.
"""

from __future__ import annotations

import contextlib
import statistics
import time
from collections.abc import Callable

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from .devices import bf16_autocast, channels_last_networks
from .methods.base import Method

__all__ = ["LEVERS", "Lever", "default_lever", "lever_table", "masked_psnr", "validation_input"]


def masked_psnr(a: Tensor | np.ndarray, b: Tensor | np.ndarray, mask: Tensor | np.ndarray) -> float:
    """PSNR in dB of ``a`` against ``b`` over ``mask``, for images on [-1, 1] (data range 2);
    inf when they agree exactly there."""
    a, b, m = (torch.as_tensor(np.asarray(v)) for v in (a, b, mask))
    d = (a.double() - b.double())[m.bool()]
    mse = float((d**2).mean())
    return float("inf") if mse == 0 else 10 * float(np.log10(4.0 / mse))


#: keywords of _runner: batch, bf16, channels_last, threads, ``net`` (a module that stands in
#: for the method's network while the lever runs, e.g. an exported graph), super_resolve options
Lever = dict

_W = {"batch": 8, "inference_mode": True, "window": None}  # whole-slice network calls
_FAST = {**_W, "bf16": True, "channels_last": True}  # the default path for whole slices

#: name -> settings; the first is the reference path. The windowed rows run the model's own
#: ``infer`` window setting, the others whole slices.
LEVERS: dict[str, Lever] = {
    "reference (fp32, no_grad, 1 slice/call)": {},
    "inference_mode, 8 slices/call": {"batch": 8, "inference_mode": True},
    "+ 64 windows/call": {"batch": 8, "inference_mode": True, "sw_batch_size": 64},
    "8 slices/call, channels-last": {"batch": 8, "inference_mode": True, "channels_last": True},
    "8 slices/call, channels-last, bf16": {
        "batch": 8,
        "inference_mode": True,
        "channels_last": True,
        "bf16": True,
    },
    "whole slices (window=None), fp32": _W,
    "whole slices, bf16": {**_W, "bf16": True},
    "whole slices, bf16, channels-last": _FAST,
    "whole slices, bf16, channels-last, 16 slices/call": {**_FAST, "batch": 16},
    "whole slices, bf16, channels-last, 1 thread": {**_FAST, "threads": 1},
}


def _runner(method: Method, x: Tensor, steps: int | None, lever: Lever) -> Callable[[], Tensor]:
    opts = dict(lever)
    batch = int(opts.pop("batch", 1))
    bf16 = bool(opts.pop("bf16", False))
    fast = bool(opts.pop("inference_mode", False))
    cl = bool(opts.pop("channels_last", False))
    threads = opts.pop("threads", None)
    stand_in = opts.pop("net", None)

    def go() -> Tensor:
        outs = []
        with contextlib.ExitStack() as ctx:
            if stand_in is not None:
                ctx.callback(setattr, method, "net", method.net)
                method.net = stand_in
            if threads is not None:  # intra-op threads for this lever only
                ctx.callback(torch.set_num_threads, torch.get_num_threads())
                torch.set_num_threads(int(threads))
            ctx.enter_context(torch.inference_mode() if fast else torch.no_grad())
            ctx.enter_context(bf16_autocast(x.device, bf16))
            ctx.enter_context(channels_last_networks(method.networks().values(), cl))
            for part in x.split(batch):
                outs.append(method.super_resolve(part, steps=steps, temperature=0.0, **opts))
        return torch.cat(outs).float()

    return go


def lever_table(
    method: Method,
    x: Tensor,
    mask: Tensor,
    *,
    steps: int | None = None,
    repeats: int = 3,
    levers: dict[str, Lever] | None = None,
) -> pd.DataFrame:
    """One row per lever: median seconds per slice of ``x`` (N, 1, H, W), seconds for 256 such
    slices, the ratio of the reference's seconds to the lever's, and the masked PSNR of the
    lever's output against the reference's over ``mask`` (N, 1, H, W)."""
    levers = LEVERS if levers is None else levers
    ref_out, rows = None, []
    for name, lever in levers.items():
        fn = _runner(method, x, steps, lever)
        fn()  # warm-up
        times, out = [], None
        for _ in range(max(1, int(repeats))):
            t0 = time.perf_counter()
            out = fn()
            times.append((time.perf_counter() - t0) / len(x))
        ref_out = out if ref_out is None else ref_out
        s = statistics.median(times)
        rows.append(
            {
                "lever": name,
                "s_per_slice": s,
                "s_per_256_slices": 256 * s,
                "masked_psnr_vs_reference_db": masked_psnr(out, ref_out, mask),
            }
        )
    df = pd.DataFrame(rows)
    df["ratio"] = df["s_per_slice"].iloc[0] / df["s_per_slice"]
    return df


def validation_input(method: Method, n: int, size: int = 256) -> tuple[Tensor, Tensor]:
    """``n`` validation slices of the default data set as ``method`` sees them, padded with
    background (-1) to ``size`` x ``size`` (a typical clinical matrix), and their brain masks."""
    from .diagnosis import split_slices  # needs the prepared default data set

    pairs = split_slices(method, "val", n)

    def pad(a: np.ndarray, fill: float) -> Tensor:
        out = np.full((len(a), size, size), fill, dtype=np.float32)
        h, w = min(size, a.shape[1]), min(size, a.shape[2])
        out[:, :h, :w] = a[:, :h, :w]
        return torch.from_numpy(out)[:, None]

    return pad(pairs.lr, -1.0), pad(pairs.mask.astype(np.float32), 0.0) > 0


def default_lever(method: Method) -> str:
    """The row of :data:`LEVERS` that ``ressrdiff sr``'s default path runs for ``method``:
    bf16 (where native) and channels-last on the model's own window setting."""
    if method.cfg.infer.window is None:
        return "whole slices, bf16, channels-last"
    return "8 slices/call, channels-last, bf16"
