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

import pandas as pd
import torch

from ressrdiff.ablation import AblationRow, ablation_table, refuse_test_subject
from ressrdiff.diagnosis import split_slices
from ressrdiff.methods import load_method

WINDOWS = {"none": None, "model": "model", "auto": "auto"}


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
    pairs = split_slices(first, "val", a.slices)
    subjects = refuse_test_subject(pairs)
    print(
        f"{len(pairs)} val slices of {', '.join(subjects)}; {torch.get_num_threads()} threads; "
        "AMD EPYC CPU"
    )
    table = ablation_table(
        [
            AblationRow(
                label,
                methods[path],
                steps,
                {"window": window, "stochasticity": eta, "temperature": tau},
            )
            for label, path, steps, window, eta, tau in rows
        ],
        pairs,
        seed=a.seed,
    )
    pd.set_option("display.width", 200)
    print(table.drop(columns="lever").round(3).to_string(index=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
