"""``ressrdiff`` command line: a thin face over the package."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

__all__ = ["main"]

EPILOG_TRAIN = """examples:
  ressrdiff train --config tiny-cpu --out runs/tiny          # shipped config, CPU
  ressrdiff train --config paper-gpu --out runs/paper        # paper-size, on a GPU
  ressrdiff train --config my.yaml --out runs/x --resume     # continue after a kill
  ressrdiff train --config tiny-cpu --out runs/t --set train.steps=50 --set seed=3
  torchrun --nproc_per_node 2 -m ressrdiff train --config tiny-cpu --out runs/ddp
shipped configs: {configs}"""

EPILOG_SAMPLE = """INPUT is one 2-D slice (.npy, .png, 2-D .nii/.nii.gz/.mha/.nrrd) that is already
on the HR grid (e.g. nearest-neighbour re-gridded, as in the paper), or a genuinely
low-resolution slice with --upsample F, which re-grids it first. Intensities are mapped
to [-1, 1] by min-max, as in training, and the output is returned to the input's units.

examples:
  ressrdiff sample lr.npy -o sr.npy --checkpoint runs/tiny/last.pt
  ressrdiff sample lr_small.png -o sr.nii.gz --checkpoint last.pt --upsample 4 --steps 4
  ressrdiff sample lr.npy -o sr.npy --checkpoint last.pt --samples 8 --std-out sd.npy"""


def _parse_value(text: str):
    return yaml.safe_load(text)


def _cmd_train(args: argparse.Namespace) -> int:
    from .config import load_config
    from .training import Trainer

    cfg = load_config(args.config)
    overrides = {}
    for item in args.set or []:
        if "=" not in item:
            raise SystemExit(f"--set {item!r}: expected KEY=VALUE, e.g. train.steps=100")
        k, v = item.split("=", 1)
        overrides[k.strip()] = _parse_value(v)
    if overrides:
        cfg = cfg.replace(**overrides)
    if args.device:
        cfg = cfg.replace(**{"train.device": args.device})
    if args.method and args.method != cfg.method:
        # another method on this config's data and budget: its own name, so that the default
        # run folder never holds (or overwrites) the config's original method
        cfg = cfg.replace(method=args.method, name=f"{cfg.name}-{args.method}")
    out = Path(args.out or Path("runs") / cfg.name)
    if not args.resume and (out / "last.pt").exists():
        raise SystemExit(
            f"{out / 'last.pt'}: a run already exists there; pass --resume to continue it or "
            "choose another --out"
        )
    if cfg.method == "bicubic":  # nothing to train: write its checkpoint for `ressrdiff sr`
        from .methods.bicubic import write_checkpoint

        out.mkdir(parents=True, exist_ok=True)
        path = write_checkpoint(cfg, out / "last.pt")
        print(f"bicubic has no weights to train; wrote its checkpoint {path}")
        return 0
    trainer = Trainer(cfg, out, resume=args.resume, progress=not args.quiet)
    if trainer.dist.main:
        print(
            f"ressrdiff train: {cfg.method} '{cfg.name}' on {trainer.device} "
            f"(world size {trainer.dist.world}), loss = {trainer.method.loss_description}",
            file=sys.stderr,
        )
    hist = trainer.train()
    if trainer.dist.main and hist:
        print(f"step {trainer.step}: loss {hist[-1]['loss']:.5f}; checkpoint {trainer.ckpt_path}")
    return 0


def _cmd_sample(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from .data.degrade import upsample_slice
    from .data.intensity import invert, minmax_slices
    from .data.io import SLICE_WRITE_SUFFIXES, check_output_path, read_slice_2d, write_slice_2d
    from .methods import load_method

    src = Path(args.input)
    if args.samples > 1 and not args.std_out:
        raise SystemExit("--samples N > 1 needs --std-out PATH for the standard-deviation map")
    for o in [args.output] + ([args.std_out] if args.std_out else []):
        check_output_path(o, allowed=SLICE_WRITE_SUFFIXES, refuse={"input": src})
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    method = load_method(args.checkpoint, device=device)
    arr = read_slice_2d(src)
    if args.upsample:
        arr = upsample_slice(arr, args.upsample, args.regrid)
    y, params = minmax_slices(arr[None], axis=0)
    x_lr = torch.from_numpy(y)[None].to(device)  # (1, 1, H, W)
    g = torch.Generator(device=device).manual_seed(args.seed)
    with torch.autocast(
        "cuda", dtype=torch.bfloat16, enabled=device.startswith("cuda") and args.bf16
    ):
        if args.samples > 1:
            ens = method.super_resolve_ensemble(x_lr, args.samples, steps=args.steps, generator=g)
            sr, sd = ens.mean, ens.std
        else:
            sr, sd = method.super_resolve(x_lr, steps=args.steps, generator=g), None
    sr_units = invert(sr[0].float().cpu().numpy(), params)[0]
    write_slice_2d(sr_units, args.output, refuse=[src])
    msg = f"wrote {args.output} ({sr_units.shape[0]}x{sr_units.shape[1]})"
    if sd is not None:
        scale = (params.hi - params.lo)[0] / 2.0  # std in the input's units
        write_slice_2d(
            (sd[0, 0].float().cpu().numpy() * scale).astype(np.float32), args.std_out, refuse=[src]
        )
        msg += f" and {args.std_out} (std over {args.samples} samples)"
    print(msg)
    return 0


def build_parser() -> argparse.ArgumentParser:
    from . import __version__
    from .config import named_configs

    p = argparse.ArgumentParser(
        prog="ressrdiff",
        description="Res-SRDiff: residual-shifting diffusion for 4-step MRI super-resolution.",
    )
    p.add_argument("--version", action="version", version=f"ressrdiff {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser(
        "train",
        help="train a method from a config (Algorithm 1)",
        description="Train a method from a config file or a shipped config name. Checkpoints "
        "(last.pt), a per-step log (log.jsonl) and run.json go to --out.",
        epilog=EPILOG_TRAIN.format(configs=", ".join(named_configs())),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    t.add_argument("--config", required=True, help="YAML/JSON file or shipped config name")
    t.add_argument("--out", help="run folder (default runs/<name>)")
    t.add_argument("--resume", action="store_true", help="continue from <out>/last.pt exactly")
    t.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="override a config value, e.g. train.steps=200 (repeatable)",
    )
    t.add_argument("--device", choices=["cpu", "cuda", "auto"], help="override train.device")
    t.add_argument(
        "--method",
        help="train another method on this config's data and budget (bicubic, pix2pix, "
        "cyclegan, spsr; the run is named CONFIG-METHOD). i2sb and tm-ddpm need options of "
        "their own: use their shipped configs, e.g. --config i2sb-cpu",
    )
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.set_defaults(func=_cmd_train)

    s = sub.add_parser(
        "sample",
        help="super-resolve one 2-D slice (Algorithm 2)",
        description="Super-resolve one 2-D slice with a trained checkpoint.",
        epilog=EPILOG_SAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    s.add_argument("input", help="2-D LR slice (see below)")
    s.add_argument("-o", "--output", required=True, help="SR output (.npy, .nii.gz, .mha, .png)")
    s.add_argument("--checkpoint", required=True, help="training checkpoint (last.pt)")
    s.add_argument(
        "--steps",
        type=int,
        help="sampling steps K (default: the config's; K < T respaces and keeps step T)",
    )
    s.add_argument(
        "--samples",
        type=int,
        default=1,
        help="N samples; N > 1 writes the mean and a standard-deviation map",
    )
    s.add_argument("--std-out", help="where to write the standard-deviation map")
    s.add_argument("--upsample", type=float, help="re-grid a low-resolution INPUT by this factor")
    s.add_argument(
        "--regrid",
        default="nearest",
        choices=["nearest", "bspline", "linear"],
        help="interpolator for --upsample (nearest = the paper)",
    )
    s.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    s.add_argument("--device", help="cpu, cuda, cuda:1 (default: cuda if available)")
    s.add_argument(
        "--no-bf16",
        dest="bf16",
        action="store_false",
        help="sample in fp32 on CUDA (bf16 autocast is the default there)",
    )
    s.set_defaults(func=_cmd_sample)

    from .data.commands import add_data_parser
    from .sr_command import add_sr_parser

    add_sr_parser(sub)
    add_data_parser(sub)
    from .eval_command import add_eval_parser

    add_eval_parser(sub)
    from .export_command import add_export_parser

    add_export_parser(sub)
    from .bookrun import add_book_parser

    add_book_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    from .checkpoint import CheckpointError
    from .config import ConfigError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ConfigError, CheckpointError, ValueError, FileNotFoundError) as e:
        print(f"ressrdiff {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
