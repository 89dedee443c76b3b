"""Does the K-step chain earn its steps? Sampling variants of one model on validation slices.

Issue 15 asks why Res-SRDiff's K = 4 chain scores below one step and sets the bar on the
validation subject: K = 4 masked PSNR >= K = 1 - 0.5 dB, with K = 4's fine-detail energy closer
to HR's than K = 1's (``hf``: power in the top octave relative to HR, 1 = HR;
:mod:`ressrdiff.spectrum`). This script scores sampling variants of one checkpoint, all with
the same network and no retraining, on evenly spread slices of the validation head (the test
subject is refused):

* the default respacing for K = 1, 2, 4 and T (:func:`ressrdiff.schedule.respace_indices`);
* other sub-sequences of the T steps given with ``--variants`` (e.g. ``6,10,15``: three calls
  that stop at t = 6, so the t = 1 call, which copies its input state, is skipped);
* reverse steps with less fresh noise, ``--stochasticity 1 0.5 0``
  (:func:`ressrdiff.diffusion.reverse_step`; 1 is eq (9)'s posterior, 0 deterministic);

each with the model's own inference window (``infer.window``) unless ``--window`` says otherwise.
Columns: masked PSNR and SSIM gain over the re-gridded input, ``hf_model`` and
``|log hf|`` (distance from HR's spectrum, smaller is closer), and seconds per slice.

    python benchmarks/bench_chain.py runs/acquisition-cpu/last.pt --slices 8
    python benchmarks/bench_chain.py model.safetensors --variants 6,10,15 1,4,9,15 --window auto
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

ALLOWED_SPLITS = ("val", "train")


class _Variant:
    """A Res-SRDiff method whose ``super_resolve`` samples one fixed sub-sequence of steps."""

    def __init__(self, method, steps: list[int], window, stochasticity: float = 1.0) -> None:
        self.method, self.steps, self.window = method, steps, window
        self.stochasticity = stochasticity

    @property
    def device(self) -> torch.device:
        return self.method.device

    def super_resolve(self, x, steps=None, generator=None, **_):
        from ressrdiff.diffusion import sample

        sched = self.method.schedule.subsequence(self.steps)
        g = self.method.inference_predictor(x, self.window)
        return sample(g, x, sched, generator=generator, stochasticity=self.stochasticity)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint")
    ap.add_argument("--slices", type=int, default=8)
    ap.add_argument("--split", default="val", choices=ALLOWED_SPLITS)
    ap.add_argument("--steps", type=int, nargs="+", default=[1, 2, 4, 15], help="values of K")
    ap.add_argument("--variants", nargs="*", default=[], help="comma-separated step lists")
    ap.add_argument("--window", default="model", help="model | auto | none | a size")
    ap.add_argument(
        "--stochasticity",
        type=float,
        nargs="+",
        default=[1.0],
        help="reverse-step stochasticity values (1: eq 9's posterior, 0: deterministic; "
        "ressrdiff.diffusion.reverse_step)",
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=None)
    a = ap.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    pd.set_option("display.width", 160)
    window = {"none": None, "model": "model", "auto": "auto"}.get(a.window.lower())
    if window is None and a.window.lower() != "none":
        window = int(a.window)

    m = load_method(a.checkpoint, device="cpu")
    pairs = split_slices(m, a.split, a.slices)
    subjects = sorted({str(s) for s in np.atleast_1d(pairs.subject)})
    if any("pycortex" in s for s in subjects):
        raise SystemExit(f"refusing to score the test subject ({subjects})")
    T = m.schedule.T
    runs = [(f"K={K}", respace_indices(T, K)) for K in a.steps if K <= T]
    runs += [(f"steps {v}", [int(s) for s in v.split(",")]) for v in a.variants]
    print(
        f"{a.checkpoint}: {len(pairs)} {a.split} slices of {', '.join(subjects)}; window "
        f"{a.window} -> {m.window_for(torch.from_numpy(pairs.lr[:1])[:, None], window)}; "
        f"{torch.get_num_threads()} threads"
    )
    rows = []
    for (label, steps), eta in ((r, e) for e in a.stochasticity for r in runs):
        t0 = time.perf_counter()
        df = gain_over_input(_Variant(m, steps, window, eta), pairs, seed=a.seed)
        rows.append(
            {
                "sampler": label,
                "stochasticity": eta,
                "steps": ",".join(map(str, steps)),
                "psnr_gain": df["psnr_gain"].mean(),
                "psnr_gain_sd": df["psnr_gain"].std(),
                "ssim_gain": df["ssim_gain"].mean(),
                "hf_input": df["hf_input"].mean(),
                "hf_model": df["hf_model"].mean(),
                "abs_log_hf": np.abs(np.log(df["hf_model"])).mean(),
                "s_per_slice": (time.perf_counter() - t0) / len(pairs),
            }
        )
    print(pd.DataFrame(rows).round(3).to_string(index=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
