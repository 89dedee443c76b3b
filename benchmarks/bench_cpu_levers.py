"""CPU speed levers for Res-SRDiff inference (issue 19), as ratios to today's path in one run.

Each lever runs the same shipped model with K steps on the same 256 x 256 slices (validation
slices of the default data set, padded with background to 256 x 256) and reports the median
seconds per slice after a warm-up, the implied seconds for a 256-slice volume, the speed-up over
the reference path, and the PSNR of its output against the reference output (fp32, eager,
``torch.no_grad``, the model's own network windows), in dB on [-1, 1] (inf: identical). Every
lever samples at ``temperature=0`` (no noise draws; :func:`ressrdiff.diffusion.sample`), so the
output is a function of the input alone and only numerical differences separate the levers
(batching changes which noise a slice would draw otherwise); the cost of the draws is negligible.

    python benchmarks/bench_cpu_levers.py models/acquisition-cpu-long.safetensors --slices 8
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time
from collections.abc import Callable

import numpy as np
import pandas as pd
import torch

from ressrdiff.diagnosis import split_slices
from ressrdiff.methods import load_method
from ressrdiff.timing import machine_description

SIZE = 256


def _slices(method, n: int) -> torch.Tensor:
    pairs = split_slices(method, "val", n)
    lr = np.full((len(pairs), SIZE, SIZE), -1.0, dtype=np.float32)
    h, w = min(SIZE, pairs.lr.shape[1]), min(SIZE, pairs.lr.shape[2])
    lr[:, :h, :w] = pairs.lr[:, :h, :w]
    return torch.from_numpy(lr)[:, None]


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = float(((a.double() - b.double()) ** 2).mean())
    return float("inf") if mse == 0 else 10 * np.log10(4.0 / mse)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint")
    ap.add_argument("--slices", type=int, default=8)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    m = load_method(a.checkpoint, device="cpu")
    x = _slices(m, a.slices)

    def run(
        batch: int = 1,
        ctx: Callable[[], contextlib.AbstractContextManager] = torch.no_grad,
        **opts,
    ) -> Callable[[], torch.Tensor]:
        def go() -> torch.Tensor:
            gen = torch.Generator().manual_seed(0)
            outs = []
            with ctx():
                for part in x.split(batch):
                    outs.append(
                        m.super_resolve(part, steps=a.steps, generator=gen, temperature=0.0, **opts)
                    )
            return torch.cat(outs).float()

        return go

    def bf16():
        stack = contextlib.ExitStack()
        stack.enter_context(torch.inference_mode())
        stack.enter_context(torch.autocast("cpu", dtype=torch.bfloat16))
        return stack

    levers: dict[str, Callable[[], torch.Tensor]] = {
        "reference (no_grad, 1 slice, windows as shipped)": run(),
        "inference_mode": run(ctx=torch.inference_mode),
        "8 slices per call": run(batch=8, ctx=torch.inference_mode),
        "8 slices, 64 windows per call": run(batch=8, ctx=torch.inference_mode, sw_batch_size=64),
        "8 slices, bf16 autocast": run(batch=8, ctx=bf16),
        "whole slices (no windows)": run(batch=8, ctx=torch.inference_mode, window=None),
    }
    ref_out = None
    rows = []
    for name, fn in levers.items():
        fn()  # warm-up
        times, out = [], None
        for _ in range(a.repeats):
            t0 = time.perf_counter()
            out = fn()
            times.append((time.perf_counter() - t0) / len(x))
        if ref_out is None:
            ref_out = out
        s = statistics.median(times)
        rows.append(
            {
                "lever": name,
                "s_per_slice": s,
                "s_per_256_slices": 256 * s,
                "psnr_vs_reference_db": _psnr(out, ref_out),
            }
        )
    df = pd.DataFrame(rows)
    df["speedup"] = df["s_per_slice"].iloc[0] / df["s_per_slice"]
    print(
        f"{a.checkpoint}: K={a.steps}, {len(x)} slices of {SIZE}x{SIZE}, {a.threads} threads, "
        f"{machine_description()}; median of {a.repeats} after a warm-up"
    )
    pd.set_option("display.width", 200)
    print(df.round(3).to_string(index=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
