"""Train a config on prepared slice pairs for a fixed number of steps, then score the 4-step SR
of held-out slices against the nearest-neighbour input and B-spline re-gridding (PSNR).

The .npz holds ``train_hr, train_lr`` (N, H, W) and ``test_hr, test_lr_nearest,
test_lr_bspline`` in [-1, 1] (per-slice min-max). ``benchmarks/export_demo.py`` writes it from
the embedded demo data. PSNR is per slice on [0, 1] with data range 1, over the whole slice and
over the foreground (HR above 5 % of its range); the full metric suite comes with the data issue.

    python benchmarks/train_eval.py --config paper-gpu --npz demo.npz --steps 3000 --device cuda
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from ressrdiff import __version__
from ressrdiff.config import load_config
from ressrdiff.data.slices import PairedSlices, PatchDataset
from ressrdiff.metrics import psnr, to_unit
from ressrdiff.training import Trainer


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(a.astype(np.float32))[:, None]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="tiny-cpu")
    ap.add_argument("--npz", required=True)
    ap.add_argument("--steps", type=int, required=True)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--eval-steps", type=int, nargs="+", default=[1, 4, 15])
    ap.add_argument("--batch", type=int, default=None, help="override train.batch_size")
    ap.add_argument("--patch", type=int, default=None, help="override data.patch")
    ap.add_argument("--out", default="runs/train_eval")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = ap.parse_args()

    import yaml

    z = np.load(args.npz)
    cfg = load_config(args.config)
    over = {
        "train.steps": args.steps,
        "train.device": args.device,
    }
    if args.batch:
        over["train.batch_size"] = args.batch
    if args.patch:
        over["data.patch"] = args.patch
    for kv in args.set:
        k, v = kv.split("=", 1)
        over[k] = yaml.safe_load(v)
    cfg = cfg.replace(**over)
    n = len(z["train_hr"])
    pairs = PairedSlices(
        hr=z["train_hr"].astype(np.float32),
        lr=z["train_lr"].astype(np.float32),
        subject=np.array(["train"] * n),
        index=np.arange(n),
    )
    ds = PatchDataset(pairs, cfg.data.patch, seed=cfg.seed, augment=cfg.data.augment)
    out = Path(args.out)
    tr = Trainer(cfg, out, dataset=ds, resume=(out / "last.pt").exists())
    t0 = time.perf_counter()
    hist = tr.train()
    train_s = time.perf_counter() - t0
    device = tr.device
    method = tr.method
    if tr.ema:  # sample with the EMA weights
        method.net.load_state_dict(tr.ema["net"].shadow.state_dict())
    method.eval()

    hr = _t(z["test_hr"])
    mask = hr > -0.9
    res: dict[str, list[float]] = {}
    res_fg: dict[str, list[float]] = {}
    timing: dict[str, float] = {}
    for name in ("test_lr_nearest", "test_lr_bspline"):
        x = _t(z[name])
        res[name] = psnr(to_unit(x), to_unit(hr)).tolist()
        res_fg[name] = psnr(to_unit(x), to_unit(hr), mask=mask).tolist()
    x_lr = _t(z["test_lr_nearest"]).to(device)
    bf16 = device.type == "cuda" and cfg.train.bf16
    for K in args.eval_steps:
        g = torch.Generator(device=device).manual_seed(0)
        outs = []
        if device.type == "cuda":
            torch.cuda.synchronize()
        t1 = time.perf_counter()
        for part in x_lr.split(8):
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                outs.append(method.super_resolve(part, steps=K, generator=g).float().cpu())
        if device.type == "cuda":
            torch.cuda.synchronize()
        timing[f"res-srdiff K={K}"] = (time.perf_counter() - t1) / len(x_lr)
        sr = torch.cat(outs)
        res[f"res-srdiff K={K}"] = psnr(to_unit(sr), to_unit(hr)).tolist()
        res_fg[f"res-srdiff K={K}"] = psnr(to_unit(sr), to_unit(hr), mask=mask).tolist()
        if K == 4:
            np.save(out / "sr_k4.npy", sr[:, 0].numpy().astype(np.float16))

    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(
        f"ressrdiff {__version__}, torch {torch.__version__}, {name}; config {args.config}, "
        f"{args.steps} steps x batch {cfg.train.batch_size} at {cfg.data.patch}^2 in "
        f"{train_s:.0f} s ({args.steps / train_s:.2f} steps/s); loss {method.loss_description}"
    )
    print(
        f"final training loss (mean of the last {len(hist[-5:])} log records, "
        f"{cfg.train.log_every} steps each): {statistics.mean(h['loss'] for h in hist[-5:]):.4f}"
    )
    print(f"\nPSNR on {len(hr)} held-out axial slices (dB, mean ± SD; [0,1], data range 1)")
    print(f"{'input / method':<22} {'whole slice':>16} {'foreground':>16} {'s/slice':>9}")
    summary = {}
    for k in res:
        a, b = np.array(res[k]), np.array(res_fg[k])
        summary[k] = {
            "psnr": a.mean(),
            "psnr_sd": a.std(ddof=1),
            "psnr_fg": b.mean(),
            "psnr_fg_sd": b.std(ddof=1),
            "s_per_slice": timing.get(k),
        }
        ts = f"{timing[k]:.4f}" if k in timing else "-"
        print(
            f"{k:<22} {a.mean():>8.2f} ± {a.std(ddof=1):<5.2f} "
            f"{b.mean():>8.2f} ± {b.std(ddof=1):<5.2f} {ts:>9}"
        )
    for label, table in (("whole slice", res), ("foreground", res_fg)):
        ref = np.array(table["test_lr_bspline"])
        for K in args.eval_steps:
            d = np.array(table[f"res-srdiff K={K}"]) - ref
            print(
                f"{label}: res-srdiff K={K} minus B-spline: {d.mean():+.2f} dB "
                f"(better on {(d > 0).sum()}/{len(d)} slices)"
            )
    (out / "results.json").write_text(
        json.dumps(
            {
                "summary": summary,
                "per_slice": res,
                "per_slice_fg": res_fg,
                "device": name,
                "config": cfg.to_dict(),
                "train_seconds": train_s,
            },
            indent=1,
            default=float,
        )
    )


if __name__ == "__main__":
    main()
