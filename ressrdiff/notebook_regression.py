"""Regression check of executed notebooks against stored references (pytest-notebook diffing).

The equation chapters print numbers that should not drift silently. ``make notebook-refs``
executes them with the ``smoke`` profile and stores a *regression view* of each under
``tests/notebook_refs/``; ``tests/test_book.py`` compares the view of a fresh execution with it
using pytest-notebook's nbdime-based diff.

The view keeps what a reader can check and drops what changes from run to run:

* kept: cell sources, ``stdout`` streams, and the ``text/plain``, ``text/markdown`` and
  ``text/latex`` data of results and displays (sympy results, tables), the values glued into
  the prose with ``myst_nb.glue``, and the name and message of errors;
* dropped: images, HTML, widget views, ``stderr`` (warnings, progress bars), execution counts,
  cell ids and all metadata;
* masked: memory addresses, durations, dates, the set-up line (versions, device, threads) and
  the run's ``out_dir``.

Run ``python -m ressrdiff.notebook_regression --help`` to regenerate references by hand.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["KEPT_MIMETYPES", "regression_view", "diff_views", "write_reference", "main"]

KEPT_MIMETYPES = ("text/plain", "text/markdown", "text/latex")
GLUE_PREFIX = "application/papermill.record/"  # myst_nb.glue(..., display=False) values
DIFF_IGNORE = (
    "/metadata",
    "/cells/*/metadata",
    "/cells/*/id",
    "/cells/*/execution_count",
    "/cells/*/outputs/*/execution_count",
    "/cells/*/outputs/*/metadata",
    "/cells/*/outputs/*/traceback",
)
_MASKS = (
    # setup_notebook's line: versions, device name and thread count vary between machines
    (re.compile(r"ressrdiff \S+ \| torch \S+ \| CUDA \S+ \| device [^|\n]*\|"), "<SETUP> |"),
    (re.compile(r"0x[0-9a-fA-F]{6,}"), "0x<ADDR>"),
    (re.compile(r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(\.\d+)?"), "<DATETIME>"),
    (
        re.compile(r"(?<![\w.])\d+(\.\d+)?(e-?\d+)?\s?(ns|µs|us|ms|s|sec|seconds|min)\b"),
        "<TIME>",
    ),
)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else "".join(value)


def _mask(text: str, out_dir: str | None) -> str:
    if out_dir:
        text = text.replace(out_dir, "<OUT_DIR>")
        text = text.replace(os.path.normpath(out_dir), "<OUT_DIR>")
    for pattern, repl in _MASKS:
        text = pattern.sub(repl, text)
    return text


def regression_view(nb: Any) -> Any:
    """The comparable part of an executed notebook (see the module docstring), as a new
    nbformat 4.4 notebook."""
    import nbformat

    params = nb.metadata.get("papermill", {}).get("parameters", {})
    out_dir = params.get("out_dir")
    out_dir = str(out_dir) if out_dir else None
    view = nbformat.v4.new_notebook()
    view.nbformat_minor = 4
    view.metadata = {}
    for cell in nb.cells:
        new = nbformat.from_dict({"cell_type": cell.cell_type, "metadata": {}})
        # trailing newlines differ between papermill's injection paths; they are not content
        new.source = _text(cell.source).rstrip("\n")
        if out_dir:  # papermill's injected-parameters cell spells it out
            new.source = new.source.replace(out_dir, "<OUT_DIR>")
        if cell.cell_type == "code":
            new.execution_count = None
            new.outputs = []
            stdout = ""
            for out in cell.get("outputs", []):
                kind = out.get("output_type")
                if kind == "stream":
                    if out.get("name") == "stdout":
                        stdout += _text(out.get("text", ""))
                    continue
                if stdout:  # a stream ends where a result or display begins
                    new.outputs.append(
                        nbformat.v4.new_output("stream", text=_mask(stdout, out_dir))
                    )
                    stdout = ""
                if kind in ("execute_result", "display_data"):
                    data = {
                        k: _mask(_text(v), out_dir)
                        for k, v in out.get("data", {}).items()
                        if k.removeprefix(GLUE_PREFIX) in KEPT_MIMETYPES
                    }
                    if data:
                        new.outputs.append(nbformat.v4.new_output("display_data", data=data))
                elif kind == "error":
                    new.outputs.append(
                        nbformat.v4.new_output(
                            "error",
                            ename=out.get("ename", ""),
                            evalue=_mask(out.get("evalue", ""), out_dir),
                            traceback=[],
                        )
                    )
            if stdout:
                new.outputs.append(nbformat.v4.new_output("stream", text=_mask(stdout, out_dir)))
        view.cells.append(new)
    return view


def diff_views(reference: Any, fresh: Any) -> str:
    """pytest-notebook's diff of two regression views; ``""`` when they agree."""
    from pytest_notebook.diffing import diff_notebooks, diff_to_string, filter_diff

    diff = filter_diff(diff_notebooks(reference, fresh), list(DIFF_IGNORE))
    if not diff:
        return ""
    return diff_to_string(reference, diff, use_color=False)


def write_reference(executed: str | Path, reference: str | Path) -> Path:
    """Store the regression view of an executed notebook at ``reference`` (atomically)."""
    import nbformat

    node = nbformat.read(str(executed), as_version=4)
    ref = Path(reference)
    ref.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{ref.stem}.", suffix=".ipynb", dir=ref.parent)
    os.close(fd)
    nbformat.write(regression_view(node), tmp)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes it private
    os.replace(tmp, ref)
    return ref


def main(argv: list[str] | None = None) -> int:
    """Execute notebooks with the smoke profile and (re)write their reference views."""
    from .bookrun import BookRunError, find_root, run_notebooks

    p = argparse.ArgumentParser(
        prog="python -m ressrdiff.notebook_regression",
        description="Execute notebooks with the smoke profile and write their regression "
        "views (the references tests/test_book.py compares against).",
    )
    p.add_argument("notebooks", nargs="+", help="notebook stems, e.g. 01_forward_process")
    p.add_argument("--out", default="tests/notebook_refs", help="reference folder")
    p.add_argument("--profile", default="smoke", help="profile (the test uses smoke)")
    args = p.parse_args(argv)
    root = find_root()
    with tempfile.TemporaryDirectory(prefix="nbrefs-") as tmp:
        out_dir = os.path.relpath(Path(tmp) / "artifacts", root / "notebooks")
        try:
            results = run_notebooks(
                root,
                args.profile,
                notebooks=args.notebooks,
                out=Path(tmp) / "executed",
                overrides={"out_dir": out_dir},
                log_output=False,
            )
        except BookRunError as e:
            print(f"notebook-refs: error: {e}", file=sys.stderr)
            return 1
        for r in results:
            ref = write_reference(r.output, root / args.out / f"{r.stem}.ipynb")
            print(f"wrote {ref.relative_to(root)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
