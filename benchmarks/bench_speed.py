"""Inference speed of Res-SRDiff against the comparison methods (issue 7): prints a table.

Seconds per 256x256 slice and per whole test volume (the default data set's test subject,
super-resolved slice by slice along z) for Res-SRDiff at K = 1, 2, 4, 15 and every comparison
method at its default number of network evaluations (NFE): TM-DDPM at 1000 steps and I2SB at
its default 1000 NFE, both timed on --measure-nfe evaluations and extrapolated per NFE (stated in
the table). Ratios are to Res-SRDiff with 4 steps, measured in the same run. Weights are random:
speed does not depend on them. The paper's figures (A100, unsynchronised; see chapter 12) are
printed beside.

    python benchmarks/bench_speed.py --threads 2                       # CPU, cpu configs
    python benchmarks/bench_speed.py --profile gpu --device cuda --batch 1 16 --bf16
"""

from __future__ import annotations

import argparse
import json

import torch

from ressrdiff import __version__
from ressrdiff.config import load_config
from ressrdiff.evaluation import test_volume_shape
from ressrdiff.methods import build_method
from ressrdiff.timing import SpeedCase, machine_description, speed_table

PAPER = (
    "paper (A100, wall clock around the sampling loop, no CUDA synchronize): Res-SRDiff "
    "0.46 +/- 0.21 s/slice (brain), 0.95 +/- 0.74 s/slice (prostate); I2SB 31-38 s; "
    "TM-DDPM 20-67 s per slice"
)


def cases(profile: str, device: torch.device, measure_nfe: int) -> list[SpeedCase]:
    def build(name: str, **opts):
        cfg = load_config(name).replace(**{"loss.lpips": "off", **opts})
        torch.manual_seed(0)
        return build_method(cfg).to(device).eval()

    res = build({"smoke": "smoke", "cpu": "default-cpu", "gpu": "paper-gpu"}[profile])
    out = [SpeedCase(f"Res-SRDiff K={k}", res, steps=k) for k in (1, 2, 4, 15)]
    out += [
        SpeedCase("Bicubic (B-spline)", build(f"bicubic-{profile}")),
        SpeedCase("Pix2pix", build(f"pix2pix-{profile}")),
        SpeedCase("CycleGAN", build(f"cyclegan-{profile}")),
        SpeedCase("SPSR", build(f"spsr-{profile}")),
        SpeedCase("I2SB", build(f"i2sb-{profile}"), steps=1000, measure_nfe=measure_nfe),
        SpeedCase("TM-DDPM", build(f"tm-ddpm-{profile}"), steps=1000, measure_nfe=measure_nfe),
        SpeedCase(
            "TM-DDPM (U-Net)",
            build(f"tm-ddpm-unet-{profile}"),
            steps=1000,
            measure_nfe=measure_nfe,
        ),
    ]
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="cpu", choices=["smoke", "cpu", "gpu"])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    ap.add_argument("--batch", type=int, nargs="+", default=[1])
    ap.add_argument("--bf16", action="store_true", help="also time bf16 autocast (CUDA)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--measure-nfe", type=int, default=20)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--volume", default="test", help="'test' (the test subject) or S,H,W")
    ap.add_argument("--json", help="write the table here as JSON")
    a = ap.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    dev = torch.device(a.device)
    volume = (
        test_volume_shape() if a.volume == "test" else tuple(int(v) for v in a.volume.split(","))
    )
    print(f"ressrdiff {__version__}, device {dev}: {machine_description(dev)}; volume {volume}")
    cs = cases(a.profile, dev, a.measure_nfe)
    tables = []
    for batch in a.batch:
        for bf16 in [False, True] if a.bf16 else [False]:
            df = speed_table(
                cs,
                (a.size, a.size),
                volume,
                reference="Res-SRDiff K=4",
                batch=batch,
                repeats=a.repeats,
                bf16=bf16,
            )
            tables.append(df)
            with_fmt = df.drop(columns=["method", "device"]).to_string(
                index=False, float_format=lambda v: f"{v:.4g}"
            )
            print(f"\nbatch {batch}, {'bf16' if bf16 else 'fp32'}:\n{with_fmt}")
    print(f"\n{PAPER}")
    if a.json:
        import pandas as pd

        with open(a.json, "w", encoding="utf-8") as f:
            json.dump(pd.concat(tables).to_dict(orient="records"), f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
