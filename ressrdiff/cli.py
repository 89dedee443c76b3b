"""``ressrdiff`` command line: a thin face over the package."""

from __future__ import annotations

import argparse
import math
import signal
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


class Interrupted(KeyboardInterrupt):
    """Ctrl-C, with a note on what was kept (``main`` prints it and exits 130)."""


def _missing_folders(folder: Path) -> list[Path]:
    """``folder`` and those of its parents that do not exist yet, deepest first."""
    missing = []
    for p in (folder, *folder.parents):
        if p.exists():
            break
        missing.append(p)
    return missing


def _remove_if_empty(folders: list[Path]) -> bool:
    """Remove the folders this command created when nothing was written into them."""
    removed = False
    for p in folders:  # deepest first
        try:
            p.rmdir()
            removed = True
        except OSError:  # not empty, or already gone
            break
    return removed


def _cmd_train(args: argparse.Namespace) -> int:
    from .atomic import WriteError
    from .config import load_config
    from .training import Trainer

    cfg = load_config(args.config)
    overrides = {}
    for item in args.set or []:
        if "=" not in item:
            raise ValueError(f"--set {item!r}: expected KEY=VALUE, e.g. train.steps=100")
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
        raise ValueError(
            f"{out / 'last.pt'}: a run already exists there; pass --resume to continue it or "
            "choose another --out"
        )
    if args.resume and not (out / "last.pt").is_file():
        raise ValueError(f"{out / 'last.pt'}: nothing to resume from (no checkpoint in {out})")
    earlier = [n for n in ("log.jsonl", "run.json") if (out / n).exists()]
    earlier += sorted(p.name for p in out.glob("step_*.pt"))
    if not args.resume and earlier:
        raise ValueError(
            f"{out}: holds {', '.join(earlier[:3])} of an earlier run but no last.pt; choose "
            "another --out (or remove them to start afresh)"
        )
    created = _missing_folders(out)
    trainer = None
    try:
        if cfg.method == "bicubic":  # nothing to train: write its checkpoint for `ressrdiff sr`
            from .methods.bicubic import write_checkpoint

            out.mkdir(parents=True, exist_ok=True)
            path = write_checkpoint(cfg, out / "last.pt")
            print(f"bicubic has no weights to train; wrote its checkpoint {path}")
            return 0
        trainer = Trainer(cfg, out, resume=args.resume, progress=not args.quiet)
        if trainer.dist.main and not args.quiet:
            print(
                f"ressrdiff train: {cfg.method} '{cfg.name}' on {trainer.device} "
                f"(world size {trainer.dist.world}), loss = {trainer.method.loss_description}",
                file=sys.stderr,
            )
        hist = trainer.train()
    except BaseException as exc:
        removed = _remove_if_empty(created)
        if isinstance(exc, WriteError | KeyboardInterrupt):
            if trainer is not None and trainer.saved_step is not None:
                note = f"last checkpoint at {trainer.ckpt_path} (step {trainer.saved_step})"
            else:
                note = "no checkpoint was written" + (f"; removed {out}" if removed else "")
            if isinstance(exc, WriteError):
                raise WriteError(f"{exc}; {note}") from None
            raise Interrupted(note) from None
        raise
    if trainer.dist.main and hist:
        print(f"step {trainer.step}: loss {hist[-1]['loss']:.5f}; checkpoint {trainer.ckpt_path}")
    return 0


def _check_sample_args(args: argparse.Namespace) -> None:
    """One-line errors for values ``sample`` would otherwise ignore or misuse."""
    if args.samples < 1 or (args.steps is not None and args.steps < 1):
        raise ValueError(
            f"samples and steps must be >= 1 (got samples={args.samples}, steps={args.steps})"
        )
    if args.upsample is not None and not (math.isfinite(args.upsample) and args.upsample >= 1):
        raise ValueError(f"--upsample must be a factor >= 1, got {args.upsample:g}")
    if args.samples > 1 and not args.std_out:
        raise ValueError("--samples N > 1 needs --std-out PATH for the standard-deviation map")
    if args.std_out and args.samples == 1:
        raise ValueError(f"{args.std_out}: a standard-deviation map needs --samples > 1")


def _cmd_sample(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from .atomic import write_files
    from .data.degrade import upsample_slice
    from .data.header import check_voxel_count
    from .data.intensity import invert, minmax_slices
    from .data.io import SLICE_WRITE_SUFFIXES, check_output_path, read_slice_2d, slice_output
    from .devices import bf16_autocast, resolve_device
    from .methods import load_method

    _check_sample_args(args)
    src = Path(args.input)
    out = check_output_path(args.output, allowed=SLICE_WRITE_SUFFIXES, refuse={"input": src})
    std_out = None
    if args.std_out:
        std_out = check_output_path(
            args.std_out,
            allowed=SLICE_WRITE_SUFFIXES,
            refuse={"input": src},
            outputs={"SR output (-o)": out},
        )
    device = resolve_device(args.device)
    method = load_method(args.checkpoint, device=device)
    arr = read_slice_2d(src)
    if args.upsample:
        size = tuple(int(round(n * args.upsample)) for n in arr.shape[::-1])
        check_voxel_count(f"{src} upsampled by {args.upsample:g}", size)
        arr = upsample_slice(arr, args.upsample, args.regrid)
    y, params = minmax_slices(arr[None], axis=0)
    x_lr = torch.from_numpy(y)[None].to(device)  # (1, 1, H, W)
    g = torch.Generator(device=device).manual_seed(args.seed)
    with bf16_autocast(device, args.bf16):
        if args.samples > 1:
            ens = method.super_resolve_ensemble(x_lr, args.samples, steps=args.steps, generator=g)
            sr, sd = ens.mean, ens.std
        else:
            sr, sd = method.super_resolve(x_lr, steps=args.steps, generator=g), None
    sr_units = invert(sr[0].float().cpu().numpy(), params)[0]
    outputs = [slice_output(sr_units, out)]
    msg = f"wrote {args.output} ({sr_units.shape[0]}x{sr_units.shape[1]})"
    if sd is not None and std_out is not None:
        scale = (params.hi - params.lo)[0] / 2.0  # std in the input's units
        std = (sd[0, 0].float().cpu().numpy() * scale).astype(np.float32)
        outputs.insert(0, slice_output(std, std_out))  # both or neither; the SR appears last
        msg += f" and {args.std_out} (std over {args.samples} samples)"
    write_files(outputs)
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
    t.add_argument("--quiet", action="store_true", help="no start line and no progress bar")
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
        help="sample in fp32 (the reference path); the default is bf16 autocast on CUDA and "
        "on CPUs with native bf16 (avx512_bf16/amx_bf16)",
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


#: Exit status of a failure while running (a write failed), of a usage or input error, and of
#: Ctrl-C.
EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 1, 2, 130


def _ignore_sigxfsz() -> None:
    """A write beyond ``ulimit -f`` must fail with EFBIG (reported by the writer), not kill the
    process with SIGXFSZ (Python ignores it already; embedding programs may not)."""
    if hasattr(signal, "SIGXFSZ"):
        try:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        except ValueError:  # not the main thread
            pass


def main(argv: list[str] | None = None) -> int:
    """Run one command. Exit status: 0 success; 1 a failure while running (a write failed:
    disk full, file size limit); 2 a usage or input error (bad option, file, config,
    checkpoint or device; a run that already exists); 130 interrupted (Ctrl-C). Every error is
    one line on stderr."""
    from .atomic import WriteError
    from .checkpoint import CheckpointError
    from .config import ConfigError

    _ignore_sigxfsz()
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt as e:
        note = str(e) or ("nothing written" if args.command in ("sr", "sample") else "")
        note = f"; {note}" if note else ""
        print(f"ressrdiff {args.command}: interrupted{note}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except WriteError as e:
        print(f"ressrdiff {args.command}: error: {e}", file=sys.stderr)
        return EXIT_FAILED
    except (ConfigError, CheckpointError, ValueError, FileNotFoundError) as e:
        print(f"ressrdiff {args.command}: error: {e}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
