"""Issue 15's ablation on the validation head: each lever, one row, the same slices.

Every row is ``LABEL=CHECKPOINT`` with optional sampling settings after ``@``:
``K`` (steps), ``w=`` (network window: model | auto | none | a size), ``eta=`` (reverse-step
stochasticity, :func:`ressrdiff.diffusion.reverse_step`) and ``tau=`` (the sampler's noise
temperature, x_T's included; :func:`ressrdiff.diffusion.sample`), e.g.
``skip-K4=runs/acquisition-cpu-skip/last.pt@4,w=auto,eta=1``. All rows score the same evenly
spread validation slices (chosen by the first row's data config; every row must share its
degradation and data, or the script stops) with :func:`ressrdiff.diagnosis.gain_over_input`:
masked PSNR and SSIM gain over the re-gridded input, ``|log hf|`` (distance of the SR's
top-octave power from HR's; :mod:`ressrdiff.spectrum`) and seconds per slice. The test subject
is refused.

    python benchmarks/ablation_val.py --slices 16 \\
        plain-K1=runs/acquisition-cpu/last.pt@1 plain-K4=runs/acquisition-cpu/last.pt@4 \\
        skip-K1=runs/acquisition-cpu-skip/last.pt@1 skip-K4=runs/acquisition-cpu-skip/last.pt@4
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
import torch

from ressrdiff.diagnosis import gain_over_input, split_slices
from ressrdiff.methods import load_method
from ressrdiff.schedule import respace_indices

WINDOWS = {"none": None, "model": "model", "auto": "auto"}


class _Row:
    """One method with fixed sampling settings, as ``gain_over_input`` calls it."""

    def __init__(self, method, steps: int | None, window, eta: float | None, tau=None) -> None:
        self.method, self.steps, self.window, self.eta, self.tau = method, steps, window, eta, tau

    @property
    def device(self) -> torch.device:
        return self.method.device

    def super_resolve(self, x, steps=None, generator=None, **_):
        return self.method.super_resolve(
            x,
            steps=self.steps,
            generator=generator,
            window=self.window,
            stochasticity=self.eta,
            temperature=self.tau,
        )


def parse_row(text: str) -> tuple[str, str, int | None, object, float | None, float | None]:
    """``LABEL=PATH[@K][,w=W][,eta=E][,tau=T]`` -> (label, path, K, window, eta, tau)."""
    if "=" not in text:
        raise SystemExit(f"{text!r}: expected LABEL=CHECKPOINT[@K][,w=...][,eta=...]")
    label, rest = text.split("=", 1)
    path, _, opts = rest.partition("@")
    steps: int | None = None
    window: object = "model"
    eta: float | None = None
    tau: float | None = None
    for part in filter(None, opts.split(",")):
        if part.startswith("w="):
            w = part[2:].lower()
            window = WINDOWS[w] if w in WINDOWS else int(w)
        elif part.startswith("eta="):
            eta = float(part[4:])
        elif part.startswith("tau="):
            tau = float(part[4:])
        else:
            steps = int(part)
    return label, path, steps, window, eta, tau


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("rows", nargs="+")
    ap.add_argument("--slices", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=None)
    a = ap.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    rows = [parse_row(r) for r in a.rows]
    methods = {p: load_method(p, device="cpu") for _, p, *_ in rows}
    first = methods[rows[0][1]]
    for p, m in methods.items():
        if m.cfg.data != first.cfg.data:
            raise SystemExit(f"{p}: trained on other data than {rows[0][1]}; not comparable")
    pairs = split_slices(first, "val", a.slices)
    subjects = sorted({str(s) for s in np.atleast_1d(pairs.subject)})
    if any("pycortex" in s for s in subjects):
        raise SystemExit(f"refusing to score the test subject ({subjects})")
    print(
        f"{len(pairs)} val slices of {', '.join(subjects)}; {torch.get_num_threads()} threads; "
        "AMD EPYC CPU"
    )
    out = []
    for label, path, steps, window, eta, tau in rows:
        m = methods[path]
        t0 = time.perf_counter()
        df = gain_over_input(_Row(m, steps, window, eta, tau), pairs, seed=a.seed)
        K = steps or m.sample_steps
        out.append(
            {
                "row": label,
                "steps": steps or m.sample_steps,
                "t": ",".join(map(str, respace_indices(m.schedule.T, K))),
                "window": m.window_for(torch.from_numpy(pairs.lr[:1])[:, None], window),
                "eta": m.cfg.infer.stochasticity if eta is None else eta,
                "tau": m.cfg.infer.temperature if tau is None else tau,
                "psnr_gain": df["psnr_gain"].mean(),
                "psnr_gain_se": df["psnr_gain"].std() / np.sqrt(len(df)),
                "ssim_gain": df["ssim_gain"].mean(),
                "abs_log_hf": np.abs(np.log(df["hf_model"])).mean(),
                "s_per_slice": (time.perf_counter() - t0) / len(pairs),
            }
        )
        print(pd.DataFrame(out[-1:]).round(3).to_string(index=False, header=len(out) == 1))
    pd.set_option("display.width", 200)
    print(pd.DataFrame(out).round(3).to_string(index=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
