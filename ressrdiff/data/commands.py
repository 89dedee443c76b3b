"""``ressrdiff data ...`` sub-commands: ``prepare`` a catalog data set and ``list`` the catalog.

Hook for the main parser::

    from ressrdiff.data.commands import add_data_parser
    add_data_parser(sub)          # sub = parser.add_subparsers(dest="command", ...)

Each sub-command sets ``func`` (taking the parsed ``argparse.Namespace``, returning an exit code).
Errors are raised as :class:`ValueError` / :class:`FileNotFoundError` subclasses with one-line
messages, for the main parser to print.
"""

from __future__ import annotations

import argparse
import sys

__all__ = ["add_data_parser", "cmd_prepare", "cmd_list"]

EPILOG_DATA = """examples:
  ressrdiff data list                          # catalog: licence, grid, role, present or not
  ressrdiff data list --pip-command            # the pip download line for what is missing
  pip download --no-deps nimare==0.22.1 deepmriprep==0.3.0 pydeface==2.1.0 \\
      pycortex==1.4.0 -d ~/.local/share/ressrdiff/sources
  ressrdiff data prepare                       # -> ~/.local/share/ressrdiff/default
  ressrdiff data prepare --root /data/ressrdiff --sources ./downloads

Nothing is downloaded by ressrdiff: sources are read from installed packages or from archives
fetched with `pip download --no-deps` into --sources DIR, $RESSRDIFF_SOURCES or <root>/sources.
The root is --root, $RESSRDIFF_DATA or ~/.local/share/ressrdiff."""


def cmd_prepare(args: argparse.Namespace) -> int:
    """``ressrdiff data prepare``: build the data set and print its folder."""
    from ressrdiff.data.prepare import prepare_dataset

    def log(msg: str) -> None:
        if not args.quiet:
            print(msg, file=sys.stderr)

    folder = prepare_dataset(args.name, args.root, args.sources, args.force, log=log)
    print(folder)
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    """``ressrdiff data list``: the catalog with licence, grid, role and presence."""
    from ressrdiff.data.catalog import dataset_sources, pip_download_command
    from ressrdiff.data.prepare import data_root, find_candidates, source_dirs, verify_source

    sources = dataset_sources(args.name)
    dirs = source_dirs(args.root, args.sources)
    missing = []
    rows = []
    for s in sources:
        cands = find_candidates(s, dirs)
        if not cands:
            status = "MISSING"
            missing.append(s)
        else:
            status = f"present ({cands[0].how}: {cands[0].path})"
            if args.verify:
                verify_source(s, dirs)
                status += ", sha256 ok"
        rows.append((s, status))
    if args.pip_command:
        if missing:
            print(pip_download_command(missing, str(dirs[0])))
        return 0
    print(f"data set '{args.name}' (root {data_root(args.root)})")
    for s, status in rows:
        print(f"{s.id:<16} {s.role:<5} {s.kind}, {s.head}; {s.grid}")
        print(f"{'':<16} {s.requirement}: {s.member}")
        print(f"{'':<16} licence {s.licence}; {s.licence_note}")
        print(f"{'':<16} sha256 {s.sha256[:16]}...  {status}")
    if missing:
        print(f"missing {len(missing)}: run `{pip_download_command(missing, str(dirs[0]))}`")
    return 0


def add_data_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``data prepare`` and ``data list`` to ``subparsers``; return the ``data`` parser."""
    data = subparsers.add_parser(
        "data",
        help="prepare the embedded data set (real MRI shipped in registry packages)",
        description="Prepare or list the embedded data set: real MRI volumes shipped inside "
        "registry packages, with a subject-level train/val/test split.",
        epilog=EPILOG_DATA,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = data.add_subparsers(dest="data_command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--root", help="cache root (default $RESSRDIFF_DATA or ~/.local/share/...)")
        p.add_argument("--sources", help="folder holding archives from `pip download --no-deps`")

    p = sub.add_parser(
        "prepare",
        help="copy, check (sha256), reorient and mask the volumes; write manifest.csv",
        description="Build <root>/NAME: volumes (float32 NIfTI, RAS axes, not resampled), "
        "Otsu foreground masks, manifest.csv and provenance.json. Idempotent.",
    )
    p.add_argument("name", nargs="?", default="default", help="data set (default: default)")
    common(p)
    p.add_argument("--force", action="store_true", help="rebuild even if up to date")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    p.set_defaults(func=cmd_prepare)

    lst = sub.add_parser(
        "list",
        help="show the catalog: licence, grid, role, present or missing",
        description="Show the catalog of the data set and whether each source is present.",
    )
    lst.add_argument("name", nargs="?", default="default", help="data set (default: default)")
    common(lst)
    lst.add_argument("--verify", action="store_true", help="also check the sha256 of each file")
    lst.add_argument(
        "--pip-command",
        action="store_true",
        help="print only the pip download command for the missing sources (nothing if none)",
    )
    lst.set_defaults(func=cmd_list)
    return data
