"""Does a trained model beat its own input on the slices it trained on? (issue 7's "find out why").

Scores checkpoints against the re-gridded LR input they start from, inside the brain mask, on
evenly spread slices of the *training* and *validation* subjects (``--splits``; the test subject
only when asked for, and never to choose a model). If a model does not beat its input even on
training slices, it underfits (budget or capacity); if it beats it on training but not on
validation slices, it overfits. Chapter 13 of the book runs the same functions
(``ressrdiff.diagnosis``).

    python benchmarks/diagnose_fit.py models/default-cpu.safetensors --slices 16 --per-t
"""

from __future__ import annotations

import argparse

import pandas as pd
import torch

from ressrdiff.diagnosis import gain_over_input, one_call_gain, split_slices, summarise_gain
from ressrdiff.methods import load_method


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoints", nargs="+")
    ap.add_argument("--slices", type=int, default=16, help="slices per split, evenly spread")
    ap.add_argument("--splits", nargs="+", default=["train", "val"])
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument(
        "--per-t",
        action="store_true",
        help="Res-SRDiff: also score one call g(x_t, x_LR, t) at every t, x_t drawn by eq (4) "
        "from the true x_HR, on the first split",
    )
    a = ap.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    pd.set_option("display.width", 160)
    rows = []
    for ck in a.checkpoints:
        m = load_method(ck)
        for k, split in enumerate(a.splits):
            sub = split_slices(m, split, a.slices)
            rows.append(gain_over_input(m, sub, steps=a.steps, label=ck, split=split))
            if a.per_t and k == 0 and m.name == "res-srdiff":
                print(f"{ck}, {split} slices: one call at each t, PSNR gain over the input (dB)")
                print(one_call_gain(m, sub).round(3).to_string(index=False))
    print(summarise_gain(pd.concat(rows)).round(3).to_string(index=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
