"""``ressrdiff eval``: score methods on the test subjects (a thin face over
:func:`ressrdiff.evaluation.evaluate`)."""

from __future__ import annotations

import argparse

from .data.degrade import DEGRADATIONS

__all__ = ["add_eval_parser"]

EPILOG = """examples:
  ressrdiff eval nearest bspline res-srdiff=runs/default-cpu/last.pt --out runs/eval
  ressrdiff eval bspline k1=last.pt@1 k4=last.pt@4 k15=last.pt@15 --out runs/steps
  ressrdiff eval bspline mine=last.pt --data my_manifest.csv --preset prostate
  ressrdiff eval bspline acq=runs/acquisition-cpu/last.pt --degradation acquisition
  ressrdiff eval bspline k4=last.pt@4 --role val --planes axial,coronal,sagittal

An entry is a reference (nearest, bspline) or LABEL=CHECKPOINT[@STEPS]. SR volumes are cached
under OUT/volumes, per-entry tables and provenance under OUT/metrics, and the combined table is
OUT/metrics.csv. Entries already scored with the same checkpoint, data and settings are read
back, not recomputed. All subjects and checkpoints are checked before anything is written."""


def _run(args: argparse.Namespace) -> int:
    from .evaluation import evaluate, parse_entry
    from .fusion import parse_planes
    from .metrics import MetricSuite, summarise

    entries = [parse_entry(e) for e in args.entries]
    df = evaluate(
        entries,
        args.out,
        data=args.data,
        preset=args.preset,
        seed=args.seed,
        batch=args.batch,
        max_slices=args.max_slices,
        device=args.device,
        progress=not args.quiet,
        suite=MetricSuite(args.device, lpips="off" if args.no_lpips else "auto"),
        degradation=args.degradation,
        role=args.role,
        planes=parse_planes(args.planes) if args.planes else None,
    )
    s = summarise(df)
    piv = s.pivot_table(index="method", columns=["region", "metric"], values="mean")
    print(piv.round(4).to_string())
    print(f"table: {args.out}/metrics.csv")
    return 0


def add_eval_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register the ``eval`` sub-command on ``subparsers`` and return its parser."""
    e = subparsers.add_parser(
        "eval",
        help="score methods on the test subjects (per-slice table, cached, resumable)",
        description=__doc__.splitlines()[0],
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    e.add_argument("entries", nargs="+", help="nearest | bspline | LABEL=CHECKPOINT[@STEPS]")
    e.add_argument("--out", default="runs/eval", help="output folder (default runs/eval)")
    e.add_argument("--data", default=None, help="folder or CSV manifest (default: default set)")
    e.add_argument("--preset", default="brain-4x", help="degradation preset (default brain-4x)")
    e.add_argument(
        "--degradation",
        metavar="{" + ",".join(DEGRADATIONS) + "}",  # checked by evaluate: a one-line error
        default="resample",
        help="how the LR is simulated from HR: resample (the paper's point sampling, default), "
        "acquisition (the large voxel averages what it covers) or acquisition-kspace (the LR "
        "k-space extent); see ressrdiff.data.degrade",
    )
    e.add_argument(  # the older spelling of --degradation acquisition
        "--antialias",
        dest="degradation",
        action="store_const",
        const="acquisition",
        help=argparse.SUPPRESS,
    )
    e.add_argument(
        "--role",
        choices=("test", "val"),
        default="test",
        help="score the test subjects (default; once per final model) or the validation "
        "subjects (where choices are made)",
    )
    e.add_argument(
        "--planes",
        default=None,
        help="orthogonal-plane fusion for checkpoint entries, e.g. axial,coronal,sagittal (the "
        "voxel-wise mean; the whole volume is super-resolved per plane), or axial alone; "
        "default: each checkpoint's infer.planes, as ressrdiff sr",
    )
    e.add_argument("--seed", type=int, default=0)
    e.add_argument(
        "--max-slices", type=int, default=None, help="score N evenly spread slices per subject"
    )
    e.add_argument("--batch", type=int, default=8)
    e.add_argument("--device", default="cpu")
    e.add_argument("--no-lpips", action="store_true", help="skip LPIPS even if weights exist")
    e.add_argument("--quiet", action="store_true", help="no progress bars")
    e.set_defaults(func=_run)
    return e
