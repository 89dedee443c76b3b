"""Benchmark Res-SRDiff sampling and training speed; prints a table (not a test).

Seconds per slice for K sampling steps (respaced from T=15), a 1000-step sampler extrapolated
from 20 measured network evaluations, and training steps/s. Weights are random: speed does not
depend on them. Run on the CPU here or on a GPU:

    python benchmarks/bench_method.py --config tiny-cpu --size 256
    python benchmarks/bench_method.py --config paper-gpu --device cuda --batch 1 16 --bf16
"""

from __future__ import annotations

import argparse
import platform
import resource
import statistics
import time

import torch

from ressrdiff import __version__
from ressrdiff.config import load_config
from ressrdiff.diffusion import sample
from ressrdiff.methods import build_method
from ressrdiff.nn import count_parameters
from ressrdiff.schedule import Schedule
from ressrdiff.training import Trainer


class RandomPairs:
    """Random patches: timing does not depend on image content."""

    def __init__(self, n: int, size: int) -> None:
        g = torch.Generator().manual_seed(0)
        self.hr = torch.rand(n, 1, size, size, generator=g) * 2 - 1
        self.lr = self.hr + 0.1 * torch.randn(n, 1, size, size, generator=g)

    def __len__(self) -> int:
        return self.hr.shape[0]

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"hr": self.hr[i], "lr": self.lr[i]}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device: torch.device, repeats: int) -> list[float]:
    fn()  # warm-up
    out = []
    for _ in range(repeats):
        _sync(device)
        t0 = time.perf_counter()
        fn()
        _sync(device)
        out.append(time.perf_counter() - t0)
    return out


def peak_mem(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.max_memory_allocated(device) / 2**30:.2f} GiB (CUDA allocated)"
    return f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB (process RSS)"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="tiny-cpu")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--size", type=int, default=256, help="inference slice size (square)")
    ap.add_argument("--batch", type=int, nargs="+", default=[1], help="inference batch sizes")
    ap.add_argument("--steps", type=int, nargs="+", default=[1, 2, 4, 15])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--bf16", action="store_true", help="also time bf16 autocast (CUDA)")
    ap.add_argument("--train-size", type=int, default=64)
    ap.add_argument("--train-batch", type=int, default=8)
    ap.add_argument("--train-steps", type=int, default=10)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--no-swin", action="store_true", help="the w/o-Swin ablation network")
    args = ap.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    overrides = {"loss.lpips": "off", "train.device": device.type}
    if args.no_swin:
        overrides["model.use_swin"] = False
    cfg = load_config(args.config).replace(**overrides)
    method = build_method(cfg).to(device).eval()
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor()
    print(
        f"ressrdiff {__version__}, torch {torch.__version__}, device {device} ({name}), "
        f"threads {torch.get_num_threads()}"
    )
    print(
        f"config {args.config}: {count_parameters(method.net) / 1e6:.2f} M parameters, "
        f"schedule T={method.schedule.T}, use_swin={method.model_cfg.use_swin}"
    )

    precisions = [("fp32", False)] + ([("bf16", True)] if args.bf16 else [])
    rows = []
    for B in args.batch:
        x = torch.rand(B, 1, args.size, args.size, device=device) * 2 - 1
        for prec, bf16 in precisions:

            def run(K, x=x, bf16=bf16):
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                    method.super_resolve(x, steps=K, generator=None)

            for K in args.steps:
                ts = timed(lambda K=K, run=run: run(K), device, args.repeats)
                rows.append((B, prec, f"{K}", statistics.mean(ts) / B, statistics.pstdev(ts) / B))
            # a 1000-step DDPM-style sampler with the same network: time 20 evaluations
            sched20 = Schedule.from_eq14(20, 2.0, 0.02, 0.99995, 0.3)

            def run20(x=x, bf16=bf16, sched20=sched20):
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                    sample(method.net, x, sched20)  # the bare network: 20 evaluations

            ts = timed(run20, device, max(1, args.repeats - 1))
            per = statistics.mean(ts) / B
            rows.append((B, prec, "1000 (from 20)", per * 50, statistics.pstdev(ts) / B * 50))
    print(
        f"\nSampling, {args.size}x{args.size} slices (mean over {args.repeats} runs, "
        f"after one warm-up):"
    )
    print(f"{'batch':>5} {'prec':>5} {'steps K':>15} {'s/slice':>10} {'sd':>8} {'x vs K=4':>9}")
    for B, prec, K, m, sd in rows:
        ref = next(r[3] for r in rows if r[0] == B and r[1] == prec and r[2] == "4")
        print(f"{B:>5} {prec:>5} {K:>15} {m:>10.4f} {sd:>8.4f} {m / ref:>9.2f}")
    print(f"peak memory after sampling: {peak_mem(device)}")

    # training throughput
    tcfg = cfg.replace(
        **{
            "train.batch_size": args.train_batch,
            "train.steps": 10**6,
            "train.ckpt_every": 10**6,
            "train.ema_decay": 0.999,
        }
    )
    ds = RandomPairs(max(64, args.train_batch * 4), args.train_size)
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        tr = Trainer(tcfg, tmp, dataset=ds, progress=False)
        for _ in range(3):
            tr.train_step()
        _sync(device)
        t0 = time.perf_counter()
        for _ in range(args.train_steps):
            tr.train_step()
        _sync(device)
        dt = time.perf_counter() - t0
    amp = "bf16 autocast + channels-last" if device.type == "cuda" and tcfg.train.bf16 else "fp32"
    print(
        f"\nTraining ({amp}), {args.train_size}x{args.train_size}, batch {args.train_batch}: "
        f"{args.train_steps / dt:.2f} steps/s ({dt / args.train_steps:.3f} s/step, "
        f"{args.train_steps} steps after 3 warm-up)"
    )
    print(f"peak memory after training: {peak_mem(device)}")


if __name__ == "__main__":
    main()
