"""``ressrdiff export``: a training checkpoint to a shipped safetensors model + manifest entry."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

EPILOG = """The manifest entry records the method, config, data split and hashes, steps, package
version, the file's sha256 and the commands that reproduce it. With --record (written by
benchmarks/train_reference.py beside the checkpoint), it also records the training command, its
wall time and the machine.

examples:
  ressrdiff export runs/ref/default-cpu/last.pt -o models/default-cpu.safetensors \\
      --manifest models/manifest.json
  ressrdiff sr lr.nii.gz -o sr.nii.gz --checkpoint models/default-cpu.safetensors"""


def _window_size(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError(
            f"--infer-window: use none, auto or a size in pixels, got {text!r}"
        ) from None


def _cmd_export(args: argparse.Namespace) -> int:
    from .shipping import data_provenance, export_model, update_manifest

    ckpt = Path(args.checkpoint)
    infer: dict = {}
    if args.infer_window is not None:
        w = args.infer_window
        infer["window"] = None if w == "none" else w if w == "auto" else _window_size(w)
    if args.infer_overlap is not None:
        infer["overlap"] = args.infer_overlap
    if args.infer_stochasticity is not None:
        infer["stochasticity"] = args.infer_stochasticity
    if args.infer_temperature is not None:
        infer["temperature"] = args.infer_temperature
    if args.infer_planes is not None:
        from .fusion import parse_planes

        infer["planes"] = None if args.infer_planes == "none" else parse_planes(args.infer_planes)
    entry = export_model(
        ckpt, args.output, dtype=args.dtype, weights=args.weights, infer=infer or None
    )
    record_path = Path(args.record) if args.record else ckpt.parent / "train_record.json"
    record = json.loads(record_path.read_text(encoding="utf-8")) if record_path.is_file() else {}
    entry["data"] = data_provenance(entry["config"])
    entry["train_command"] = record.get("command")
    kept = record.get("steps") not in (None, entry["steps"])  # a checkpoint kept by keep_every
    entry["train_wall_s"] = None if kept else record.get("wall_s")
    if kept:
        entry["kept_from_run"] = (
            f"step {entry['steps']} of a {record['steps']}-step run (train.keep_every); the "
            f"whole run took {record.get('wall_s')} s"
        )
    entry["train_machine"] = record.get("machine")
    entry["export_command"] = (
        f"ressrdiff export {args.checkpoint} -o {args.output} --dtype {args.dtype} "
        f"--weights {args.weights}"
        + (f" --infer-window {args.infer_window}" if args.infer_window is not None else "")
        + (f" --infer-overlap {args.infer_overlap}" if args.infer_overlap is not None else "")
        + (
            f" --infer-stochasticity {args.infer_stochasticity}"
            if args.infer_stochasticity is not None
            else ""
        )
        + (
            f" --infer-temperature {args.infer_temperature}"
            if args.infer_temperature is not None
            else ""
        )
        + (f" --infer-planes {args.infer_planes}" if args.infer_planes is not None else "")
    )
    msg = (
        f"wrote {args.output} ({entry['bytes'] / 1e6:.2f} MB, {entry['dtype']}, "
        f"{entry['parameters']:,} parameters, step {entry['steps']})"
    )
    if args.manifest:
        update_manifest(args.manifest, entry)
        msg += f"; manifest {args.manifest}"
    print(msg)
    return 0


def add_export_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    e = sub.add_parser(
        "export",
        help="ship a checkpoint as a small safetensors model with a manifest entry",
        description="Write the inference weights of a training checkpoint (EMA when present) "
        "to a .safetensors file, float16 when it keeps the output within 50 dB PSNR of float32.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    e.add_argument("checkpoint", help="training checkpoint (last.pt)")
    e.add_argument("-o", "--output", required=True, help="output .safetensors file")
    e.add_argument(
        "--manifest", help="JSON manifest to add the entry to (e.g. models/manifest.json)"
    )
    e.add_argument("--dtype", default="auto", choices=["auto", "float16", "float32"])
    e.add_argument(
        "--weights",
        default="ema",
        choices=["ema", "raw"],
        help="EMA weights (default; raw when the run kept none) or the raw optimised ones",
    )
    e.add_argument("--record", help="train_record.json (default: beside the checkpoint)")
    e.add_argument(
        "--infer-window",
        help="how the shipped model runs its network: none (whole slices), auto (sliding "
        "windows of the training patch size) or a size in pixels; recorded in its config "
        "(default: the checkpoint's)",
    )
    e.add_argument("--infer-overlap", type=float, help="window overlap fraction in [0, 1)")
    e.add_argument(
        "--infer-stochasticity",
        type=float,
        help="fresh noise per reverse step of Res-SRDiff, in [0, 1]: 1 is Algorithm 2 as "
        "published, 0 a deterministic chain (ressrdiff.diffusion.reverse_step); recorded in "
        "its config (default: the checkpoint's)",
    )
    e.add_argument(
        "--infer-temperature",
        type=float,
        help="scale of every noise draw of Res-SRDiff's sampler, x_T's included, in [0, 1]: 1 is "
        "Algorithm 2, 0 starts at x_LR without noise; recorded in its config",
    )
    e.add_argument(
        "--infer-planes",
        help="the planes ressrdiff sr fuses by default for a whole volume, e.g. "
        "axial,coronal,sagittal, or none (one plane); recorded in its config",
    )
    e.set_defaults(func=_cmd_export)
    return e
