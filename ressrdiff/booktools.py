"""Small helpers shared by the book's notebooks (set-up line, profile banner, smoke label,
notes and warnings, tables, docstrings).

The notebooks only *call* the package; these functions hold the little that every chapter
repeats, so that no notebook defines its own versions of it. What a page shows passes through
:func:`public_text`: no path of the machine that built the book reaches the reader.
"""

from __future__ import annotations

import inspect
import os
import platform
import random
import re
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import __version__

__all__ = [
    "resolve_device",
    "setup_notebook",
    "profile_banner",
    "smoke_label",
    "SMOKE_LABEL",
    "public_text",
    "brief",
    "note",
    "show_warnings_once",
    "show_table",
    "docstring_markdown",
]

_REPO = Path(__file__).resolve().parents[1]

SMOKE_LABEL = "SMOKE RUN, not results. "


def resolve_device(device: str = "auto") -> torch.device:
    """``"auto"``: CUDA when available, else CPU; ``"cuda"`` without a GPU is a clear error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' requested but no CUDA device is available")
    return dev


def setup_notebook(seed: int = 0, device: str = "auto", *, quiet: bool = False) -> torch.device:
    """Seed Python, NumPy and torch with ``seed``, pick the device, and print one set-up line:
    the versions of ressrdiff, torch and CUDA, the device and the seed. Returns the device."""
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002 (notebooks may use the legacy global RNG)
    torch.manual_seed(seed)
    dev = resolve_device(device)
    cuda = torch.version.cuda or "none"
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else platform.processor() or "cpu"
    if not quiet:
        print(
            f"ressrdiff {__version__} | torch {torch.__version__} | CUDA {cuda} | "
            f"device {dev} ({name}, {torch.get_num_threads()} threads) | seed {seed}"
        )
    if _ipython() is not None:
        show_warnings_once()
    return dev


def smoke_label(profile: str) -> str:
    """The prefix for figure titles, table captions and glued result numbers: ``"SMOKE RUN, not
    results. "`` for the ``smoke`` profile, ``""`` otherwise (``f"{smoke_label(profile)}Loss"``)."""
    return SMOKE_LABEL if profile == "smoke" else ""


def profile_banner(profile: str) -> None:
    """Display a Markdown note for the top of a chapter's results; loud for the ``smoke``
    profile. Returns nothing, so that a cell ending with the call shows no repr."""
    if profile == "smoke":
        text = (
            "**Smoke run.** This page was executed with the `smoke` profile (tiny sizes, a few "
            "training steps) to check that the chapter runs. Its numbers are not results."
        )
    else:
        text = f"Executed with the `{profile}` profile."
    try:
        from IPython.display import Markdown, display

        display(Markdown(f"> {text}"))
    except ImportError:  # outside IPython
        print(text)


# --------------------------------------------------------------------------------------------
# What a page may show: no machine paths, each warning once
# --------------------------------------------------------------------------------------------


def _ipython() -> Any:
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    return get_ipython()


def public_text(text: object) -> str:
    """``text`` without the paths of the machine that runs it: the checkout's folder is dropped
    (``/srv/x/ressrdiff/methods/a.py`` -> ``ressrdiff/methods/a.py``) and the home folder
    becomes ``~`` (``~/.cache/torch/hub/...``)."""
    out = str(text)
    for folder, short in ((_REPO, ""), (Path.home(), "~" + os.sep)):
        prefix = str(folder).rstrip(os.sep) + os.sep
        if len(prefix) > 1:  # never strip a bare "/"
            out = out.replace(prefix, short)
    return out


# "LPIPS unavailable: <reason, possibly with one parenthesis>" inside a longer text
_LPIPS_REASON = re.compile(r"LPIPS unavailable: [^()]*(?:\([^()]*\))?")


def brief(text: object) -> str:
    """``text`` (e.g. a checkpoint's loss description) with each "LPIPS unavailable: <why>" cut
    to "LPIPS unavailable" and paths made public: the reason is shown once per chapter, as a
    note (:func:`note`, :func:`show_warnings_once`), not in every line that mentions it."""
    return _LPIPS_REASON.sub("LPIPS unavailable", public_text(text)).replace("  ", " ")


_NOTED: set[str] = set()


def _first_sentence(text: str) -> str:
    flat = re.sub(r"\s+", " ", re.sub(r"[*`\\]", "", public_text(text))).strip()
    m = re.match(r"(.+?[.!?])\s+(?=[A-Z(])", flat)
    return (m.group(1) if m else flat).rstrip(". ")


def note(text: str, title: str = "Note") -> bool:
    """Display ``text`` (Markdown) as a boxed note (a block quote opened by **title**), with
    paths made public, unless a note or warning with the same first sentence was already shown
    in this kernel. Returns whether it was shown. Outside IPython it prints."""
    key = _first_sentence(text)
    if key in _NOTED:
        return False
    _NOTED.add(key)
    body = " ".join(public_text(text).split())
    if _ipython() is None:
        print(f"{title}: {body}")
        return True
    from IPython.display import Markdown, display

    display(Markdown(f"> **{title}.** {body}"))
    return True


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>#|])")


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: Any = None,
    line: str | None = None,
) -> None:
    text = public_text(message)
    title = "Warning" if category is UserWarning else category.__name__
    note(_MARKDOWN_SPECIAL.sub(r"\\\1", text), title=title)


def show_warnings_once() -> None:
    """Show Python warnings as notes (:func:`note`): without the file, line and source of the
    code that warned, with paths made public, and each message once per kernel (a later
    warning whose first sentence was already shown, e.g. the same LPIPS reason from another
    method, is dropped). :func:`setup_notebook` calls it inside IPython."""
    warnings.showwarning = _show_warning


# --------------------------------------------------------------------------------------------
# Tables and docstrings
# --------------------------------------------------------------------------------------------


def show_table(
    df: Any,
    caption: str = "",
    *,
    digits: int = 3,
    formats: str | Mapping[str, str] | None = None,
    index: bool | None = None,
) -> None:
    """Display a DataFrame as a captioned table whose numbers keep their precision.

    Floats get ``digits`` decimals, unless ``formats`` gives one format for every float column
    (``"{:.3g}"``) or formats per column (``{"p": "{:.2g}"}``); missing values show as "–";
    numbers are right-aligned. A plain 0..n-1 row index is hidden unless ``index`` is True
    (False hides any index). Text passes through :func:`public_text`. Wide tables scroll
    sideways in the book (``book/_static/ressrdiff.css``)."""
    import pandas as pd

    frame = df.infer_objects()  # a transposed table of mixed rows arrives as objects
    plain = (
        frame.index.nlevels == 1
        and frame.index.name is None
        and frame.index.equals(pd.RangeIndex(len(frame)))
    )
    hide_index = index is False or (index is None and plain)
    if hide_index:
        frame = frame.reset_index(drop=True)
    # per-column formats and alignment need unique labels (pandas' Styler)
    by_column = frame.index.is_unique and frame.columns.is_unique
    kinds = list(frame.dtypes)
    is_num = [pd.api.types.is_numeric_dtype(k) and not pd.api.types.is_bool_dtype(k) for k in kinds]
    numeric = [c for c, n in zip(frame.columns, is_num, strict=True) if n]
    floats = [
        c
        for c, k, n in zip(frame.columns, kinds, is_num, strict=True)
        if n and pd.api.types.is_float_dtype(k)
    ]
    for i, n in enumerate(is_num):
        if not n:
            column = frame.iloc[:, i].map(lambda v: public_text(v) if isinstance(v, str) else v)
            frame.isetitem(i, column)
    styler = frame.style.format(precision=digits, na_rep="–")
    if isinstance(formats, str):
        if by_column and floats:
            styler = styler.format(formats, subset=floats, na_rep="–")
        elif not by_column:  # one format for the floats, whatever their column
            fmt = formats
            styler = styler.format(
                lambda v: fmt.format(v) if isinstance(v, float) else v, na_rep="–"
            )
    elif formats and by_column:
        per_column = {c: f for c, f in formats.items() if c in frame.columns}
        if per_column:
            styler = styler.format(per_column, subset=list(per_column), na_rep="–")
    if numeric and by_column:
        styler = styler.set_properties(subset=numeric, **{"text-align": "right"})
    if caption:
        styler = styler.set_caption(public_text(caption))
    if hide_index:
        styler = styler.hide(axis="index")
    if _ipython() is None:
        print(frame.to_string())
        return
    from IPython.display import display

    display(styler)


_ROLE = re.compile(r":(?:py:)?(?:func|meth|class|mod|data|attr|obj|exc|const):`(~?)([^`]+)`")
# wording addressed to the project's issue tracker rather than to a reader of the docstring
_INTERNAL = re.compile(r",? as the issue asks")


def _role_to_code(m: re.Match[str]) -> str:
    target = m.group(2)
    return f"`{target.rsplit('.', 1)[-1] if m.group(1) else target}`"


def docstring_markdown(obj: object) -> str:
    """The docstring of ``obj`` (a module, class or function) as Markdown for a book page:
    Sphinx roles become code (a ``func`` role on ``~a.b`` -> ``b``), double back-quotes single ones,
    and wording addressed to the project's issue tracker is dropped."""
    doc = _ROLE.sub(_role_to_code, inspect.getdoc(obj) or "")
    doc = re.sub(r"``([^`]+)``", r"`\1`", doc)
    return _INTERNAL.sub("", doc)
