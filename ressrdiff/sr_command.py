"""``ressrdiff sr``: super-resolve a whole 3-D volume slice by slice with a trained checkpoint."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .data.degrade import DEGRADATIONS, PRESETS, degradation_of, resolve_degradation

__all__ = ["add_sr_parser", "checkpoint_degradation", "degradation_warning", "run_sr"]

DESCRIPTION = """Super-resolve a whole MRI volume with a trained checkpoint (Algorithm 2 on every
2-D slice along --axis).

By default INPUT is already on the high-resolution grid (e.g. a low-resolution scan
re-gridded to the HR grid, as in the paper). With --lr INPUT is a genuinely low-resolution
volume: it is first re-gridded onto the HR grid of the checkpoint's degradation preset
(same field of view, spacing divided by the preset's factors), with the checkpoint's
interpolator. Each slice is min-max normalised to [-1, 1] as in training and the result is
returned in the input's intensity units, on the HR grid (spacing, origin, direction).
Constant slices, and slices with no foreground (the volume's Otsu mask, one slice of margin),
are copied unchanged. On the CPU with native bf16 (avx512_bf16/amx_bf16) and on CUDA the
network runs under bf16 autocast, in channels-last memory format; --reference-path samples
every slice in fp32, contiguous, instead (the path the speed-ups are measured against:
benchmarks/bench_cpu_levers.py).

A checkpoint is trained on one degradation (its config's data.degradation: resample, the
paper's point sampling, or acquisition, the large voxel averaging what it covers); the summary
line names it. --degradation says how INPUT was made (simulated with that model, or, with --lr,
acquired like it); when it differs from the checkpoint's, one warning line goes to stderr and
the volume is super-resolved all the same."""

EPILOG = """examples:
  ressrdiff sr lr_on_hr_grid.nii.gz -o sr.nii.gz --checkpoint runs/paper/last.pt
  ressrdiff sr scan_3.2mm.nii.gz -o sr_0.8mm.nii.gz --checkpoint last.pt --lr
  ressrdiff sr lr.nii.gz -o sr.nii.gz --checkpoint last.pt --samples 8   # + sr_std.nii.gz
  ressrdiff sr prostate.mha -o sr.mha --checkpoint prostate.pt --lr --preset prostate
  ressrdiff sr lr.nii.gz -o sr.nii.gz --checkpoint last.pt --axis y --batch 32 --device cuda
  ressrdiff sr scan.nii.gz -o sr.nii.gz --checkpoint last.pt --lr --degradation acquisition

Inputs: NIfTI (.nii/.nii.gz), MHA/MHD, NRRD or a DICOM series folder; outputs: .nii.gz,
.nii, .mha or .nrrd. Nothing is written unless every step succeeds (each output is read back
and compared before it replaces anything); an output never overwrites the input or the
checkpoint, and never changes the input's geometry (a skewed direction cannot go to NIfTI).
Results are deterministic for a given --seed, --batch and device. An input whose header
declares more than $RESSRDIFF_MAX_VOXELS voxels (default 100 million) is refused before it is
read. Exit status: 0 done, 1 a write failed (disk full, file size limit), 2 a usage or input
error, 130 interrupted."""


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
    s.add_argument(
        "--degradation",
        metavar="{" + ",".join(DEGRADATIONS) + "}",  # checked in run_sr: a one-line error
        help="how INPUT was degraded (default: the checkpoint's own); a mismatch is warned about",
    )
    s.add_argument(
        "--planes",
        help="orthogonal-plane fusion: super-resolve across each of these planes "
        "(comma-separated: axial,coronal,sagittal) and combine; costs one pass per plane. "
        "Default: the checkpoint's infer.planes (the shipped default model: all three), else "
        "one plane; --planes axial (or --axis) runs one plane",
    )
    s.add_argument(
        "--combine",
        choices=["mean", "median"],
        default="mean",
        help="how --planes combines the per-plane volumes (default mean)",
    )
    s.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    s.add_argument(
        "--no-bf16",
        dest="bf16",
        action="store_false",
        help="sample in fp32 (bf16 autocast is the default on CUDA and on CPUs with native bf16)",
    )
    s.add_argument(
        "--reference-path",
        action="store_true",
        help="fp32, contiguous memory format and every non-constant slice sampled, background "
        "included (slower)",
    )
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.set_defaults(func=run_sr)
    return s


def checkpoint_degradation(path: str | os.PathLike[str]) -> str:
    """The degradation a checkpoint (training ``.pt`` or shipped ``.safetensors``) was trained on:
    its config's ``data.degradation`` (:func:`ressrdiff.data.degrade.degradation_of`; older
    checkpoints without the field: ``"resample"``). Reads the config only, not the network; a
    one-line :class:`CheckpointError` when the file is not a readable checkpoint."""
    from .checkpoint import CheckpointError, checkpoint_config

    p = Path(path)
    try:
        return degradation_of(checkpoint_config(p)["data"])
    except CheckpointError:
        raise
    except Exception as e:  # noqa: BLE001 - anything unreadable is "not a checkpoint"
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(
            f"{p}: no readable degradation in the checkpoint ({reason})"
        ) from None


def degradation_warning(
    checkpoint: str | os.PathLike[str], trained: str, given: str, *, input_is_lr: bool = False
) -> str | None:
    """The one-line warning for an input degraded otherwise than the checkpoint's training data
    (None when they agree)."""
    if given == trained:
        return None
    made = "declared" if input_is_lr else "simulated with"
    return (
        f"ressrdiff sr: warning: checkpoint {checkpoint} was trained on degradation "
        f"{trained!r}, input {made} {given!r}"
    )


def run_sr(args: argparse.Namespace) -> int:
    """Run ``ressrdiff sr``; prints a one-line summary and returns 0.

    Errors are raised (``VolumeError``/``ValueError``, ``CheckpointError``, ``DeviceError``,
    ``WriteError``) for the caller to print as one line; warnings (a degradation mismatch, an
    implausible spacing, an input that looks low-resolution without ``--lr``) are one line each
    on stderr.
    """
    from .checkpoint import CheckpointError
    from .inference import AXES, super_resolve_file

    try:
        trained = checkpoint_degradation(args.checkpoint)
    except CheckpointError:  # super_resolve_file reports it, after the input checks
        trained = None
    given = getattr(args, "degradation", None)
    if given is not None:
        resolve_degradation(given)  # an unknown name: a one-line ValueError before any work
    if trained is not None and given is not None:
        warning = degradation_warning(args.checkpoint, trained, given, input_is_lr=args.lr)
        if warning:
            print(warning, file=sys.stderr)
    planes = None
    if args.planes is not None:
        from .fusion import parse_planes

        planes = parse_planes(args.planes)  # a one-line ValueError before any work
        if args.axis is not None:
            raise ValueError("--planes and --axis exclude each other")
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
        bf16=args.bf16 and not args.reference_path,
        skip_background=not args.reference_path,
        channels_last=not args.reference_path,
        input_is_lr=args.lr,
        preset=args.preset,
        progress=not args.quiet,
        warn=lambda text: print(f"ressrdiff sr: warning: {text}", file=sys.stderr),
        planes=planes,
        combine=args.combine,
    )
    n_const = report.slices - report.network_slices
    where = "xyz"[report.axis]
    if report.planes:
        where = f"{'+'.join(report.planes)} ({args.combine} of {len(report.planes)} planes)"
    const = f", {n_const} constant or background copied" if n_const else ""
    msg = (
        f"ressrdiff sr: {report.slices} slices along {where}{const}; "
        f"checkpoint trained on degradation {trained!r}; "
        f"{report.seconds:.1f} s wall, {report.sampling_seconds:.2f} s sampling, "
        f"{report.network_slices_per_second:.2f} network slices/s; "
        f"wrote {report.output} ({'x'.join(map(str, report.size))})"
    )
    if report.std_output is not None:
        msg += f" and {report.std_output} (std over {args.samples} samples)"
    print(msg, file=sys.stdout)
    return 0
