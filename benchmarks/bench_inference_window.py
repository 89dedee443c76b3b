"""Whole-slice network calls against sliding windows of the training patch size (issue 15).

A model trained on ``data.patch`` x ``data.patch`` crops is run at inference either on whole
slices or, inside Algorithm 2, on overlapping windows of the patch size blended with Gaussian
weights (``ressrdiff.tiling``; the sampler's state and noise stay whole-slice). This script
scores both on evenly spread slices of the *validation* subject (the default data set's ``val``
role, the pydeface head; the test subject is refused), as masked PSNR/SSIM gain over the
re-gridded input (``ressrdiff.diagnosis.gain_over_input``), with seconds per slice, for each
window setting and each number of sampling steps K:

    python benchmarks/bench_inference_window.py models/default-cpu.safetensors --slices 8
    python benchmarks/bench_inference_window.py runs/x/last.pt --slices 2 --steps 1 4 --threads 2

``gain_vs_whole`` is the mean paired (per slice) PSNR difference to the whole-slice row with the
same K. Seconds per slice are wall-clock after a warm-up, slice by slice (batch 1), and include
the scoring (milliseconds).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
import torch

from ressrdiff.diagnosis import gain_over_input, split_slices
from ressrdiff.methods import load_method

#: roles this script may score (never the test subject: it is scored once per final model)
ALLOWED_SPLITS = ("val", "train")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint")
    ap.add_argument("--slices", type=int, default=8, help="validation slices, evenly spread")
    ap.add_argument("--split", default="val", choices=ALLOWED_SPLITS)
    ap.add_argument("--steps", type=int, nargs="+", default=[1, 4], help="values of K")
    ap.add_argument("--overlaps", type=float, nargs="+", default=[0.25, 0.5])
    ap.add_argument("--window", type=int, default=None, help="default: the checkpoint's data.patch")
    ap.add_argument("--sw-batch", type=int, default=8, help="windows per network call")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--device", default="cpu")
    a = ap.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    pd.set_option("display.width", 160)

    m = load_method(a.checkpoint, device=a.device)
    pairs = split_slices(m, a.split, a.slices)
    subjects = sorted({str(s) for s in np.atleast_1d(pairs.subject)})
    if any("pycortex" in s for s in subjects):
        raise SystemExit(f"refusing to score the test subject ({subjects})")
    window = int(a.window or m.cfg.data.patch)
    h, w = pairs.hr.shape[-2:]
    steps: list[int | None] = [None] if getattr(m, "nfe", None) is not None else list(a.steps)
    print(
        f"{a.checkpoint}: {m.name}, trained on {m.cfg.data.patch}x{m.cfg.data.patch} patches; "
        f"{len(pairs)} {a.split} slices of {', '.join(subjects)} ({h}x{w}); "
        f"{torch.get_num_threads()} threads on {a.device}"
    )
    settings: list[tuple[str, dict]] = [("whole", {"window": None})]
    for ov in a.overlaps:
        opts = {"window": window, "overlap": ov, "sw_batch_size": a.sw_batch}
        settings.append((f"{window} px, overlap {ov:g}", opts))

    import monai.inferers  # noqa: F401  (imported before the clock: ressrdiff.tiling imports it lazily)

    with torch.no_grad():  # warm-up (allocations, lazy inits), not timed
        x = torch.from_numpy(np.ascontiguousarray(pairs.lr[:1]))[:, None].float().to(m.device)
        for _, opts in settings:
            m.super_resolve(x, steps=1 if steps[0] is not None else None, **opts)

    rows = []
    for K in steps:
        whole = None
        for label, opts in settings:
            t0 = time.perf_counter()
            df = gain_over_input(m, pairs, steps=K, seed=a.seed, sr_options=opts)
            sec = (time.perf_counter() - t0) / len(pairs)
            if whole is None:
                whole = df
            rows.append(
                {
                    "inference": label,
                    "K": K if K is not None else 1,
                    "psnr_input": df["psnr_input"].mean(),
                    "psnr_model": df["psnr_model"].mean(),
                    "psnr_gain": df["psnr_gain"].mean(),
                    "gain_vs_whole": (df["psnr_model"] - whole["psnr_model"]).mean(),
                    "ssim_gain": df["ssim_gain"].mean(),
                    "hf_input": df["hf_input"].mean(),
                    "hf_model": df["hf_model"].mean(),
                    "s_per_slice": sec,
                    "n": len(df),
                }
            )
    print(pd.DataFrame(rows).round(3).to_string(index=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
