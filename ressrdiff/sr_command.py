"""``ressrdiff sr``: super-resolve a whole 3-D volume slice by slice with a trained checkpoint."""

from __future__ import annotations

import argparse
import sys

from .data.degrade import PRESETS

__all__ = ["add_sr_parser", "run_sr"]

DESCRIPTION = """Super-resolve a whole MRI volume with a trained checkpoint (Algorithm 2 on every
2-D slice along --axis).

By default INPUT is already on the high-resolution grid (e.g. a low-resolution scan
re-gridded to the HR grid, as in the paper). With --lr INPUT is a genuinely low-resolution
volume: it is first re-gridded onto the HR grid of the checkpoint's degradation preset
(same field of view, spacing divided by the preset's factors), with the checkpoint's
interpolator. Each slice is min-max normalised to [-1, 1] as in training and the result is
returned in the input's intensity units, on the HR grid (spacing, origin, direction).
Constant slices (empty background) are copied unchanged."""

EPILOG = """examples:
  ressrdiff sr lr_on_hr_grid.nii.gz -o sr.nii.gz --checkpoint runs/paper/last.pt
  ressrdiff sr scan_3.2mm.nii.gz -o sr_0.8mm.nii.gz --checkpoint last.pt --lr
  ressrdiff sr lr.nii.gz -o sr.nii.gz --checkpoint last.pt --samples 8   # + sr_std.nii.gz
  ressrdiff sr prostate.mha -o sr.mha --checkpoint prostate.pt --lr --preset prostate
  ressrdiff sr lr.nii.gz -o sr.nii.gz --checkpoint last.pt --axis y --batch 32 --device cuda

Inputs: NIfTI (.nii/.nii.gz), MHA/MHD, NRRD or a DICOM series folder; outputs: .nii.gz,
.nii, .mha or .nrrd. Nothing is written unless every step succeeds; an output never
overwrites the input or the checkpoint. Results are deterministic for a given --seed,
--batch and device."""


def add_sr_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register the ``sr`` sub-command on ``subparsers`` and return its parser."""
    s = subparsers.add_parser(
        "sr",
        help="super-resolve a whole 3-D volume, slice by slice",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    s.add_argument("input", help="3-D volume file or DICOM series folder")
    s.add_argument("-o", "--output", required=True, help="SR volume (.nii.gz, .nii, .mha, .nrrd)")
    s.add_argument("--checkpoint", required=True, help="training checkpoint (last.pt)")
    s.add_argument(
        "--steps", type=int, help="sampling steps K (default: the checkpoint's, 4 for the paper)"
    )
    s.add_argument(
        "--samples",
        type=int,
        default=1,
        help="N samples per slice; N > 1 writes their mean and a standard-deviation map",
    )
    s.add_argument(
        "--std-out",
        help="standard-deviation map for N > 1 (default: OUTPUT with _std before the suffix)",
    )
    s.add_argument(
        "--axis",
        choices=["z", "y", "x"],
        help="image axis the 2-D slices are cut across (default: the checkpoint's, usually z)",
    )
    s.add_argument(
        "--batch", type=int, default=8, help="network inputs per forward pass (default 8)"
    )
    s.add_argument("--device", help="cpu, cuda, cuda:1 (default: cuda if available)")
    s.add_argument(
        "--lr",
        action="store_true",
        help="INPUT is genuinely low-resolution: re-grid it by the preset's factors first",
    )
    s.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        help="refuse a checkpoint trained for another degradation preset",
    )
    s.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    s.add_argument(
        "--no-bf16",
        dest="bf16",
        action="store_false",
        help="sample in fp32 on CUDA (bf16 autocast is the default there)",
    )
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.set_defaults(func=run_sr)
    return s


def run_sr(args: argparse.Namespace) -> int:
    """Run ``ressrdiff sr``; prints a one-line summary and returns 0.

    Errors are raised (``VolumeError``/``ValueError``, ``CheckpointError``) for the caller to
    print as one line.
    """
    from .inference import AXES, super_resolve_file

    report = super_resolve_file(
        args.input,
        args.output,
        args.checkpoint,
        std_output=args.std_out,
        steps=args.steps,
        samples=args.samples,
        axis=None if args.axis is None else AXES[args.axis],
        batch=args.batch,
        seed=args.seed,
        device=args.device,
        bf16=args.bf16,
        input_is_lr=args.lr,
        preset=args.preset,
        progress=not args.quiet,
    )
    n_const = report.slices - report.network_slices
    const = f", {n_const} constant copied" if n_const else ""
    msg = (
        f"ressrdiff sr: {report.slices} slices along {'xyz'[report.axis]}{const}; "
        f"{report.seconds:.1f} s wall, {report.sampling_seconds:.2f} s sampling, "
        f"{report.network_slices_per_second:.2f} network slices/s; "
        f"wrote {report.output} ({'x'.join(map(str, report.size))})"
    )
    if report.std_output is not None:
        msg += f" and {report.std_output} (std over {args.samples} samples)"
    print(msg, file=sys.stdout)
    return 0
