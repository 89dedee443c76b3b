"""Does a trained model beat its own input on the slices it trained on? (issue 7's "find out why").

Scores a checkpoint against the re-gridded LR input it starts from, inside the brain mask, on
evenly spread slices of the *training* and *validation* subjects only (the test subject is never
read, so nothing here tunes on it). If the model does not beat its input even on training
slices, it underfits (budget or capacity), and more training or a larger network is the remedy;
if it beats it on training but not validation slices, it overfits.

    python benchmarks/diagnose_fit.py models/default-cpu.safetensors --slices 16
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from ressrdiff.data.manifest import load_pairs
from ressrdiff.data.prepare import prepare_dataset
from ressrdiff.diffusion import q_sample
from ressrdiff.methods import load_method
from ressrdiff.metrics import psnr, ssim, to_unit


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoints", nargs="+")
    ap.add_argument("--slices", type=int, default=16, help="slices per split, evenly spread")
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument(
        "--per-t",
        action="store_true",
        help="Res-SRDiff: also score g(x_t, x_LR, t) for every t, with x_t drawn by eq (4) from "
        "the true x_HR (what one network call can do at each noise level)",
    )
    a = ap.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    print(
        f"{'model':<34} {'split':<6} {'n':>3} {'input PSNR':>11} {'model PSNR':>11} "
        f"{'gain dB':>8} {'input SSIM':>11} {'model SSIM':>11}"
    )
    for ck in a.checkpoints:
        m = load_method(ck)
        d = m.cfg.data
        for split in ("train", "val"):
            pairs = load_pairs(
                prepare_dataset("default"),
                split,
                d.preset,
                d.regrid,
                axis=d.axis,
                normalisation=d.resolved_normalisation,
                seed=m.cfg.seed,
            )
            rows = np.unique(np.linspace(0, len(pairs) - 1, a.slices).round().astype(int))
            sub = pairs.subset(rows)
            hr = torch.from_numpy(sub.hr)[:, None]
            lr = torch.from_numpy(sub.lr)[:, None]
            mask = torch.from_numpy(sub.mask)[:, None]
            with torch.no_grad():
                sr = torch.cat(
                    [
                        m.super_resolve(
                            lr[i : i + 1], steps=a.steps, generator=torch.Generator().manual_seed(0)
                        )
                        for i in range(len(lr))
                    ]
                )
            y = to_unit(hr)
            p_in, p_sr = psnr(to_unit(lr), y, mask=mask), psnr(to_unit(sr), y, mask=mask)
            s_in, s_sr = ssim(to_unit(lr), y, mask=mask), ssim(to_unit(sr), y, mask=mask)
            print(
                f"{ck:<34} {split:<6} {len(rows):>3} {p_in.mean():>11.2f} {p_sr.mean():>11.2f} "
                f"{(p_sr - p_in).mean():>+8.2f} {s_in.mean():>11.3f} {s_sr.mean():>11.3f}"
            )
            if a.per_t and m.name == "res-srdiff" and split == "train":
                g, sch = m.predictor(), m.schedule
                gen = torch.Generator().manual_seed(1)
                line = []
                for t in range(1, sch.T + 1):
                    tt = torch.full((len(hr),), t, dtype=torch.long)
                    x_t = q_sample(hr, lr, tt, sch, torch.randn(hr.shape, generator=gen))
                    with torch.no_grad():
                        x0 = torch.cat(
                            [
                                g(x_t[i : i + 1], lr[i : i + 1], tt[i : i + 1])
                                for i in range(len(hr))
                            ]
                        )
                    gain = (psnr(to_unit(x0.clamp(-1, 1)), y, mask=mask) - p_in).mean()
                    line.append(f"t={t}: {gain:+.2f}")
                print("   one call at each t, PSNR gain over the input (dB): " + ", ".join(line))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
