"""A Sphinx extension for the book (listed under ``sphinx.extra_extensions`` in ``_config.yml``).

With Jupyter Book 1.x on Sphinx 7.4, sphinx-thebe's inline configuration script
(``const THEBE_JS_URL = ...``) ends up twice in every page: it is registered once with the
filename ``None`` and once with ``''``, which Sphinx does not see as equal. The second copy
raises ``SyntaxError: Identifier 'THEBE_JS_URL' has already been declared`` in the browser
console. This extension drops repeated inline scripts from each page's script list.
"""

from __future__ import annotations

from typing import Any

__all__ = ["dedupe_inline_scripts", "setup"]


def dedupe_inline_scripts(app: Any, pagename: str, templatename: str, context: dict, doctree: Any):
    """``html-page-context`` hook: keep the first of several inline scripts with one body."""
    scripts = context.get("script_files")
    if not isinstance(scripts, list):
        return
    seen: set[str] = set()
    kept = []
    for js in scripts:
        body = (
            getattr(js, "attributes", {}).get("body") if not getattr(js, "filename", "") else None
        )
        if body is not None:
            if body in seen:
                continue
            seen.add(body)
        kept.append(js)
    scripts[:] = kept  # in place: Sphinx restores this list object after the page


def setup(app: Any) -> dict[str, Any]:
    app.connect("html-page-context", dedupe_inline_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
