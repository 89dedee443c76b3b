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

Numbers in outputs are compared as numbers (:func:`numbers_agree`): an output text whose
non-numeric text is identical to the reference's counts as equal when each of its numbers agrees
with the reference's within a relative tolerance of :data:`RTOL` (1e-9), or, for two numbers
printed at the same fixed precision with at least four significant digits, differs by one unit in
the last printed digit (a rounding flip: ``1.750349e-09`` vs ``1.750348e-09`` can come from values
1e-15 apart). Integers and short numbers get no such allowance. So last-bit differences between
numerical libraries (``0.9999`` vs ``0.9998999999999998``) pass, while a real change (1e-6
relative, printed to enough digits to show it) fails. Everything else
(cell sources, words, table layout, error names) is compared strictly.

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

__all__ = [
    "KEPT_MIMETYPES",
    "RTOL",
    "numbers_agree",
    "regression_view",
    "diff_views",
    "write_reference",
    "main",
]

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


#: Relative tolerance of :func:`numbers_agree`.
RTOL = 1e-9
# a decimal number as printed by Python, numpy, pandas or f-strings (sign, digits, point, exponent)
_NUMBER = re.compile(r"(?<![\w.])[-+]?(?:\d+\.\d+|\.\d+|\d+)(?:[eE][-+]?\d+)?(?!\w)")


def _fixed_format(token: str) -> tuple[int, bool, int] | None:
    """(decimals, has exponent, significant digits) of a non-integer ``token``; None for an
    integer."""
    mantissa, e, exponent = token.lower().lstrip("+-").partition("e")
    if "." not in mantissa and not e:
        return None
    digits = mantissa.replace(".", "").lstrip("0")
    return len(mantissa.partition(".")[2]), bool(e), len(digits)


def _rounding_flip(a: str, b: str) -> bool:
    """True when ``a`` and ``b`` are printed at the same fixed precision, with at least four
    significant digits, and differ by one unit in their last digit."""
    fa, fb = _fixed_format(a), _fixed_format(b)
    if fa is None or fb is None or fa[:2] != fb[:2] or min(fa[2], fb[2]) < 4:
        return False
    ma, _, ea = a.lower().partition("e")
    mb, _, eb = b.lower().partition("e")
    if int(ea or 0) != int(eb or 0):
        return False
    unit = 10.0 ** -fa[0]
    return abs(float(ma) - float(mb)) <= unit * (1 + 1e-9)


def numbers_agree(reference: str, fresh: str, rtol: float = RTOL) -> bool:
    """True when ``fresh`` equals ``reference`` but for numbers that agree within ``rtol``
    (relative) or by a rounding flip of their last printed digit (see the module docstring)."""
    if reference == fresh:
        return True
    if _NUMBER.split(reference) != _NUMBER.split(fresh):  # the text around the numbers differs
        return False
    for a, b in zip(_NUMBER.findall(reference), _NUMBER.findall(fresh), strict=True):
        x, y = float(a), float(b)
        if x == y or abs(x - y) <= rtol * max(abs(x), abs(y)) or _rounding_flip(a, b):
            continue
        return False
    return True


def _align_numbers(reference: Any, fresh: Any) -> None:
    """Replace each output text of ``fresh`` by the reference's where :func:`numbers_agree`
    says they are the same, so that the diff shows only real differences."""

    def texts(out: Any) -> list[tuple[Any, str]]:
        if out.get("output_type") == "stream":
            return [(out, "text")]
        if out.get("output_type") == "error":
            return [(out, "evalue")]
        data = out.get("data", {})
        return [(data, k) for k in data]

    for ref_cell, new_cell in zip(reference.cells, fresh.cells, strict=False):
        if ref_cell.get("cell_type") != "code" or new_cell.get("cell_type") != "code":
            continue
        for ref_out, new_out in zip(ref_cell.outputs, new_cell.outputs, strict=False):
            if ref_out.get("output_type") != new_out.get("output_type"):
                continue
            ref_texts = dict((k, _text(holder[k])) for holder, k in texts(ref_out))
            for holder, key in texts(new_out):
                if key in ref_texts and numbers_agree(ref_texts[key], _text(holder[key])):
                    holder[key] = ref_texts[key]


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
    """pytest-notebook's diff of two regression views, numbers compared within their tolerance
    (:func:`numbers_agree`); ``""`` when they agree. ``fresh`` is not modified."""
    import copy

    from pytest_notebook.diffing import diff_notebooks, diff_to_string, filter_diff

    fresh = copy.deepcopy(fresh)
    _align_numbers(reference, fresh)
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
            print(f"wrote {os.path.relpath(ref, root) if ref.is_relative_to(root) else ref}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
