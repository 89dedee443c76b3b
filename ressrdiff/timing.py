"""Inference timing: seconds per slice and per volume for any method, measured the same way.

Timing rules (the paper's timings do not state them; see chapter 12):

* one warm-up call, then ``repeats`` timed calls; the median is reported;
* on CUDA, ``torch.cuda.synchronize`` before the clock starts and before it stops, so the time
  covers the GPU work and not only the kernel launches;
* a sampler with many network evaluations (NFE) may be timed on ``measure_nfe`` of them and
  extrapolated linearly to its full NFE (``extrapolated`` says so): every evaluation costs the
  same network call, and the per-step arithmetic is negligible beside it;
* random inputs: speed does not depend on image content.
"""

from __future__ import annotations

import contextlib
import statistics
import time
from dataclasses import asdict, dataclass
from typing import Any

import torch

from .methods.base import Method

__all__ = ["SliceTiming", "SpeedCase", "machine_description", "speed_table", "time_method", "sync"]


@dataclass(frozen=True)
class SliceTiming:
    """One timing: seconds per slice of ``height`` x ``width`` at ``batch`` slices per call."""

    method: str
    nfe: int
    measured_nfe: int
    extrapolated: bool
    height: int
    width: int
    batch: int
    device: str
    precision: str
    repeats: int
    s_per_call: float  # median over repeats, at measured_nfe
    s_per_slice: float  # at the full nfe
    s_per_slice_min: float
    s_per_slice_max: float
    s_per_slice_cpu: float  # the median from process CPU time (summed over threads)

    def per_volume(self, n_slices: int) -> float:
        """Seconds for ``n_slices`` slices of this size at this batch size."""
        return self.s_per_slice * n_slices

    def as_dict(self) -> dict:
        return asdict(self)


def sync(device: torch.device) -> None:
    """Wait for queued GPU work (no-op on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@torch.no_grad()
def time_method(
    method: Method,
    height: int,
    width: int,
    *,
    steps: int | None = None,
    batch: int = 1,
    repeats: int = 3,
    measure_nfe: int | None = None,
    bf16: bool = False,
    seed: int = 0,
    synchronize: bool = True,
    sr_options: dict[str, Any] | None = None,
) -> SliceTiming:
    """Median seconds per ``height`` x ``width`` slice of ``method.super_resolve(x, steps)``.

    ``measure_nfe``: when the method's NFE at ``steps`` exceeds it, time ``measure_nfe``
    evaluations and scale by NFE / ``measure_nfe``. ``bf16``: autocast to bfloat16 (CUDA only).
    ``synchronize=False`` reproduces an unsynchronised timer (the authors' code; chapter 12): on
    a GPU it can stop before the queued kernels finish; on a CPU it makes no difference.
    ``sr_options``: keywords of ``super_resolve`` (e.g. ``window=None``: whole-slice calls).
    """
    if repeats < 1 or batch < 1:
        raise ValueError("repeats and batch must be >= 1")
    dev = method.device
    if bf16 and dev.type != "cuda":
        raise ValueError("bf16 timing needs the method on a CUDA device")
    nfe = method.nfe_for(steps)
    run_steps, measured = steps, nfe
    if measure_nfe is not None and nfe > measure_nfe:
        run_steps, measured = measure_nfe, measure_nfe
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(batch, 1, height, width, generator=g) * 2 - 1).to(dev)
    ctx = torch.autocast("cuda", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()

    def call() -> None:
        with ctx:
            method.super_resolve(
                x,
                steps=run_steps,
                generator=torch.Generator(dev).manual_seed(seed),
                **(sr_options or {}),
            )

    call()  # warm-up (allocations, cuDNN autotuning, lazy inits)
    times, cpu_times = [], []
    for _ in range(repeats):
        sync(dev)  # start from an idle device in both modes
        t0, c0 = time.perf_counter(), time.process_time()
        call()
        if synchronize:
            sync(dev)
        times.append(time.perf_counter() - t0)
        cpu_times.append(time.process_time() - c0)
    sync(dev)
    scale = (nfe / measured if measured else 1.0) / batch
    return SliceTiming(
        method=method.name,
        nfe=nfe,
        measured_nfe=measured,
        extrapolated=measured != nfe,
        height=height,
        width=width,
        batch=batch,
        device=str(dev),
        precision="bf16" if bf16 else "fp32",
        repeats=repeats,
        s_per_call=statistics.median(times),
        s_per_slice=statistics.median(times) * scale,
        s_per_slice_min=min(times) * scale,
        s_per_slice_max=max(times) * scale,
        s_per_slice_cpu=statistics.median(cpu_times) * scale,
    )


@dataclass(frozen=True)
class SpeedCase:
    """One row of a speed table: ``method`` sampled with ``steps`` (None: its default), timed on
    ``measure_nfe`` evaluations at most (None: all), with ``sr_options`` (keywords of
    ``super_resolve``, e.g. ``window``)."""

    label: str
    method: Method
    steps: int | None = None
    measure_nfe: int | None = None
    sr_options: dict[str, Any] | None = None


def speed_table(
    cases: list[SpeedCase],
    slice_hw: tuple[int, int] = (256, 256),
    volume: tuple[int, int, int] | None = None,
    *,
    reference: str | None = None,
    batch: int = 1,
    repeats: int = 3,
    bf16: bool = False,
):
    """Seconds per ``slice_hw`` slice and, with ``volume`` = (slices, height, width), per whole
    volume super-resolved slice by slice, for every case, plus each one's ratio to
    ``reference`` (a case label) measured in the same call. Returns a pandas DataFrame."""
    import pandas as pd

    rows = []
    for c in cases:

        def timed(h: int, w: int, c: SpeedCase = c) -> SliceTiming:
            return time_method(
                c.method,
                h,
                w,
                steps=c.steps,
                batch=batch,
                repeats=repeats,
                measure_nfe=c.measure_nfe,
                bf16=bf16,
                sr_options=c.sr_options,
            )

        t = timed(*slice_hw)
        row = {
            "label": c.label,
            "method": c.method.name,
            "nfe": t.nfe,
            "measured_nfe": t.measured_nfe,
            "extrapolated": t.extrapolated,
            "device": t.device,
            "precision": t.precision,
            "batch": batch,
            f"s_per_slice_{slice_hw[0]}x{slice_hw[1]}": t.s_per_slice,
        }
        if volume is not None:
            n, h, w = volume
            tv = t if (h, w) == tuple(slice_hw) else timed(h, w)
            row[f"s_per_slice_{h}x{w}"] = tv.s_per_slice
            row["s_per_volume"] = tv.per_volume(n)
        rows.append(row)
    df = pd.DataFrame(rows)
    if reference is not None:
        if reference not in set(df["label"]):
            raise ValueError(f"reference {reference!r} is not one of the cases")
        ref = df.set_index("label").loc[reference]
        key = f"s_per_slice_{slice_hw[0]}x{slice_hw[1]}"
        df["ratio_slice"] = df[key] / ref[key]
        if volume is not None:
            df["ratio_volume"] = df["s_per_volume"] / ref["s_per_volume"]
    return df


def machine_description(device: torch.device | str = "cpu") -> str:
    """A one-line description of the hardware a timing ran on: the GPU's name, or the CPU model
    with torch's thread count and the number of cores."""
    import os
    import platform

    device = torch.device(device)
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (torch {torch.__version__})"
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            cpu = next(
                (ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), cpu
            )
    except OSError:
        pass
    return (
        f"{cpu}, {torch.get_num_threads()} torch threads on {os.cpu_count()} cores "
        f"(torch {torch.__version__})"
    )
