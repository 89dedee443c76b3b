"""Progress bars go to stderr only when it is a terminal (never into logs, files or pipes); in
a Jupyter kernel ``tqdm.auto`` draws them as widgets, so they stay on there."""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["progress_enabled"]


def progress_enabled(wanted: bool, stream: Any = None) -> bool:
    """Whether to show a progress bar: ``wanted``, and ``stream`` (default stderr) is a TTY or
    this is a Jupyter kernel."""
    if not wanted:
        return False
    if "ipykernel" in sys.modules:
        return True
    stream = sys.stderr if stream is None else stream
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False
