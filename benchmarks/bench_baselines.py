"""Compare registered methods: parameters, training speed and inference time; prints a table.

For each method: its parameter count (all trained networks, and those used at inference),
training steps/s on random 64x64 patches with batch 8 (Trainer steps: forward, every optimiser
group's backward and step, EMA), and seconds per 256x256 slice at inference with the number of
network function evaluations (NFE) stated; each rate also from process CPU time. Weights are
random: speed does not depend on them. Run one process on a quiet machine:

    python benchmarks/bench_baselines.py                      # every method, cpu configs
    python benchmarks/bench_baselines.py --methods bicubic pix2pix cyclegan spsr
    python benchmarks/bench_baselines.py --methods res-srdiff pix2pix --config res-srdiff=tiny-cpu
    python benchmarks/bench_baselines.py --configs default-cpu-noswin tm-ddpm-unet-cpu
    python benchmarks/bench_baselines.py --methods pix2pix --profile gpu --device cuda

Each method's config is ``<method>-<profile>`` (profile ``cpu`` by default) unless given with
``--config METHOD=NAME``; ``res-srdiff`` defaults to ``smoke``, ``default-cpu`` or ``paper-gpu``.
``--configs`` adds rows by config name (e.g. two configs of one method). ``--steps`` applies to
the iterative samplers only. An iterative sampler with more network evaluations (NFE) than
``--extrapolate-from`` (default 20) is timed at that many evaluations and its time scaled by
NFE / that count; such rows are marked ``~`` (a sampler step costs one network evaluation plus
an update that is negligible beside it).
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from typing import Any

import torch
from bench_method import RandomPairs  # the same timing data (a sibling script)

from ressrdiff import __version__
from ressrdiff.config import load_config, named_configs
from ressrdiff.methods import METHODS, Method, build_method
from ressrdiff.nn import count_parameters
from ressrdiff.timing import sync, time_method
from ressrdiff.training import Trainer

FALLBACK = {"res-srdiff": {"smoke": "smoke", "cpu": "default-cpu", "gpu": "paper-gpu"}}


def config_name(method: str, profile: str, explicit: dict[str, str]) -> str:
    if method in explicit:
        return explicit[method]
    name = f"{method}-{profile}"
    if name not in named_configs() and method in FALLBACK:
        name = FALLBACK[method].get(profile, name)
    if name not in named_configs():
        raise SystemExit(f"no shipped config {name!r} for method {method!r}; use --config")
    return name


def inference_nets(m: Method) -> dict[str, torch.nn.Module]:
    """The networks ``super_resolve`` runs (``inference_networks()`` where a method defines
    it, e.g. one generator of CycleGAN), else all its networks."""
    return getattr(m, "inference_networks", m.networks)()


def bench(
    method: str | None, cfg_name: str, args: argparse.Namespace, device: torch.device
) -> dict[str, Any]:
    cfg = load_config(cfg_name)
    if method is not None and cfg.method != method:
        cfg = cfg.replace(method=method)
    method = cfg.method
    cfg = cfg.replace(
        **{
            "train.device": device.type,
            "train.batch_size": args.train_batch,
            "train.steps": 10**6,
            "train.ckpt_every": 10**6,
            "train.log_every": 10**6,
            "data.patch": args.train_size,
        }
    )
    torch.manual_seed(0)
    m = build_method(cfg).to(device)
    row: dict[str, Any] = {
        "method": method,
        "config": cfg_name,
        "params": sum(count_parameters(n) for n in m.networks().values()),
        "params_inf": sum(count_parameters(n) for n in inference_nets(m).values()),
    }
    # training throughput
    ds = RandomPairs(max(64, 4 * args.train_batch), args.train_size)
    with tempfile.TemporaryDirectory() as tmp:
        try:
            tr = Trainer(cfg, tmp, dataset=ds, progress=False, method=m)
        except ValueError:  # e.g. bicubic: nothing to train
            row["train"] = row["train_cpu"] = "n/a"
        else:
            for _ in range(args.warmup):
                tr.train_step()
            sync(device)
            t0, c0 = time.perf_counter(), time.process_time()
            for _ in range(args.train_steps):
                tr.train_step()
            sync(device)
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            row["train"] = f"{args.train_steps / wall:.2f}"
            row["train_cpu"] = f"{args.train_steps / cpu:.2f}"
    # inference: the package's timing rule (warm-up, median, NFE extrapolation)
    m.eval()
    iterative = getattr(m, "nfe", None) is None
    t = time_method(
        m,
        args.size,
        args.size,
        steps=args.steps if iterative else None,
        repeats=args.repeats,
        measure_nfe=args.extrapolate_from if iterative else None,
    )
    row["nfe"] = f"{t.nfe}" + ("~" if t.extrapolated else "")
    row["s_slice"] = t.s_per_slice
    row["s_slice_cpu"] = t.s_per_slice_cpu
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--methods", nargs="+", default=None, help="default: every registered one")
    ap.add_argument("--configs", nargs="+", default=[], help="extra rows, by config name")
    ap.add_argument("--profile", default="cpu", help="config suffix: smoke, cpu or gpu")
    ap.add_argument(
        "--config", action="append", default=[], metavar="METHOD=NAME", help="config per method"
    )
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--train-size", type=int, default=64)
    ap.add_argument("--train-batch", type=int, default=8)
    ap.add_argument("--train-steps", type=int, default=5, help="timed steps")
    ap.add_argument("--warmup", type=int, default=1, help="untimed steps first")
    ap.add_argument("--size", type=int, default=256, help="inference slice size (square)")
    ap.add_argument("--steps", type=int, default=None, help="sampling steps (iterative methods)")
    ap.add_argument(
        "--extrapolate-from",
        type=int,
        default=20,
        help="time iterative samplers with more NFE at this many and scale (default 20)",
    )
    ap.add_argument("--repeats", type=int, default=3, help="timed inference runs (median)")
    args = ap.parse_args()

    explicit = dict(item.split("=", 1) for item in args.config)
    if args.methods is None:
        args.methods = [] if args.configs else sorted(METHODS)
    unknown = [m for m in args.methods if m not in METHODS]
    if unknown:
        raise SystemExit(f"unknown method(s) {unknown}; registered: {sorted(METHODS)}")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor()
    print(
        f"ressrdiff {__version__}, torch {torch.__version__}, device {device} ({name}), "
        f"threads {torch.get_num_threads()}; training {args.train_size}^2 batch "
        f"{args.train_batch} ({args.train_steps} steps after {args.warmup} warm-up); "
        f"inference {args.size}^2 batch 1 (median of {args.repeats} after 1 warm-up)\n"
    )
    header = (
        f"| {'method':<11} | {'config':<18} | {'params':>10} | {'params (SR)':>11} | "
        f"{'train steps/s':>13} | {'(CPU time)':>10} | {'NFE':>5} | {'s / slice':>9} | "
        f"{'(CPU time)':>10} |"
    )
    print(header)
    print("|" + "|".join("-" * (len(c)) for c in header.split("|")[1:-1]) + "|")
    rows = [(m, config_name(m, args.profile, explicit)) for m in args.methods]
    rows += [(None, name) for name in args.configs]
    for method, cfg_name in rows:
        r = bench(method, cfg_name, args, device)
        print(
            f"| {r['method']:<11} | {r['config']:<18} | {r['params']:>10,} | "
            f"{r['params_inf']:>11,} | {r['train']:>13} | {r['train_cpu']:>10} | "
            f"{r['nfe']:>5} | {r['s_slice']:>9.4f} | {r['s_slice_cpu']:>10.4f} |",
            flush=True,
        )
    print(
        f"\nNFE marked ~: timed at {args.extrapolate_from} network evaluations and scaled to "
        "the NFE.\n(CPU time): the same rate from the process's CPU time instead of wall time. "
        "With one thread\n(--threads 1) it approximates the wall-clock rate on an otherwise idle "
        "core, "
        "which helps\non a shared machine; with more threads it sums over them."
    )


if __name__ == "__main__":
    main()
