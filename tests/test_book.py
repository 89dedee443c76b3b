"""The book end to end with the ``smoke`` profile: papermill -> Jupyter Book -> a real browser.

A session fixture executes every notebook of ``_toc.yml`` once with the smoke profile (the same
runner as ``make book``) and builds the HTML into a temporary folder. The tests then check:

* every notebook executed without error, and every toc page has its HTML file;
* the equation chapters' (01-03) text outputs match ``tests/notebook_refs/`` (pytest-notebook
  diff of the regression views, which drop images and HTML such as chapter 3's pre-rendered
  sliders; regenerate with ``make notebook-refs`` after an intended change);
* in headless Chromium (Debian's ``/usr/bin/chromium`` driven by Playwright, the book served on
  127.0.0.1): every page loads with no console error, failed request or request leaving the
  machine; every equation is typeset by the locally served MathJax; every image has a size;
  notebook pages carry Binder/Colab launch buttons for the repository the book was built with
  (``RESSRDIFF_REPOSITORY_URL``), or none when it was built without one, and always the
  ``.ipynb`` download button; no link anywhere points at a placeholder repository; no page's
  text shows internal wording (issue numbers, ``../shared/`` notes, machine paths, raw Sphinx
  roles, a string's repr); nothing in a page runs off its column outside a scroll container;
  moving the static schedule slider of ``03_noise_schedule`` changes the displayed frame.
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from ressrdiff.bookrun import BookRunError, RunResult, build_book, run_notebooks, toc_files

pytestmark = pytest.mark.slow

REFS = Path(__file__).resolve().parent / "notebook_refs"
# Another book root (same layout) may be tested with RESSRDIFF_BOOK_ROOT; the default is this repo.
ROOT = Path(os.environ.get("RESSRDIFF_BOOK_ROOT") or REFS.parents[1]).resolve()
CHROMIUM = Path(os.environ.get("RESSRDIFF_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
EQUATION_CHAPTERS = ("01_forward_process", "02_reverse_process", "03_noise_schedule")
REGRESSION_CHAPTERS = ("01_forward_process", "02_reverse_process", "03_noise_schedule")
SLIDER_CHAPTER = "03_noise_schedule"
CELL_TIMEOUT_S = 600

TOC = toc_files(ROOT)
TOC_NOTEBOOKS = [e.rsplit("/", 1)[-1] for e in TOC if (ROOT / f"{e}.ipynb").is_file()]


@dataclass
class Book:
    out: Path
    results: dict[str, RunResult]
    html: Path | None = None
    build_error: str | None = None

    def require_html(self) -> Path:
        if self.html is None:
            failed = [r.stem for r in self.results.values() if not r.ok]
            pytest.fail(
                f"the book was not built: notebooks failed {failed}" if failed else self.build_error
            )
        return self.html


def _existing_build(out: Path) -> Book:
    """A book already built by ``ressrdiff book build --profile smoke --out OUT`` (to re-check
    it without executing again: ``RESSRDIFF_BOOK_BUILD=OUT pytest tests/test_book.py``)."""
    import nbformat

    results = {}
    for stem in TOC_NOTEBOOKS:
        path = out / "executed" / f"{stem}.ipynb"
        params = {}
        if path.is_file():
            params = nbformat.read(str(path), as_version=4).metadata["papermill"]["parameters"]
        error = None if path.is_file() else f"no executed copy {path}"
        results[stem] = RunResult(stem, path, params, 0.0, error)
    html = out / "_build" / "html"
    return Book(out, results, html if html.is_dir() else None, f"no HTML in {html}")


@pytest.fixture(scope="session")
def book(tmp_path_factory) -> Book:
    if os.environ.get("RESSRDIFF_BOOK_BUILD"):
        return _existing_build(Path(os.environ["RESSRDIFF_BOOK_BUILD"]))
    out = tmp_path_factory.mktemp("book") / "build"
    overrides = {"out_dir": os.path.relpath(out / "artifacts", ROOT / "notebooks")}
    results = run_notebooks(
        ROOT,
        "smoke",
        out=out / "executed",
        overrides=overrides,
        keep_going=True,
        log_output=False,
        cell_timeout=CELL_TIMEOUT_S,
        quiet=True,
    )
    b = Book(out, {r.stem: r for r in results})
    if all(r.ok for r in results):
        try:
            b.html, _ = build_book(
                ROOT, "smoke", out=out, overrides=overrides, run=False, quiet=True
            )
        except BookRunError as e:
            b.build_error = str(e)
    return b


@pytest.mark.parametrize("stem", TOC_NOTEBOOKS)
def test_notebook_executes_with_smoke_profile(book: Book, stem: str):
    res = book.results[stem]
    assert res.ok, res.error
    assert res.parameters["profile"] == "smoke"


def test_every_toc_page_has_html(book: Book):
    html = book.require_html()
    missing = [e for e in TOC if not (html / f"{e}.html").is_file()]
    assert not missing, f"no HTML for {missing}"
    assert (html / "index.html").is_file()
    assert (html / "_static" / "mathjax" / "tex-chtml.js").is_file(), "MathJax not in the build"


@pytest.mark.parametrize("stem", REGRESSION_CHAPTERS)
def test_equation_chapter_outputs_match_reference(book: Book, stem: str):
    import nbformat

    from ressrdiff.notebook_regression import diff_views, regression_view

    ref = REFS / f"{stem}.ipynb"
    assert ref.is_file(), f"no reference {ref}: run `make notebook-refs`"
    res = book.results[stem]
    assert res.ok, res.error
    fresh = regression_view(nbformat.read(str(res.output), as_version=4))
    diff = diff_views(nbformat.read(str(ref), as_version=4), fresh)
    assert not diff, f"{stem}: outputs differ from {ref} (if intended: make notebook-refs)\n{diff}"


# --------------------------------------------------------------------------------------------
# The browser
# --------------------------------------------------------------------------------------------


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 (signature of the base class)
        pass


@dataclass
class PageVisit:
    errors: list[str] = field(default_factory=list)
    external: list[str] = field(default_factory=list)
    math: int = 0
    untypeset: int = 0
    mjx: int = 0
    tex_errors: int = 0
    images: list[dict] = field(default_factory=list)
    launch: dict[str, int] = field(default_factory=dict)
    launch_hrefs: list[str] = field(default_factory=list)
    text: str = ""
    clipped: list[dict] = field(default_factory=list)


@pytest.fixture(scope="session")
def server(book: Book):
    html = book.require_html()
    handler = functools.partial(_QuietHandler, directory=str(html))
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/"
    srv.shutdown()
    srv.server_close()


@pytest.fixture(scope="session")
def browser():
    if not CHROMIUM.is_file():
        pytest.fail(
            f"Chromium not found at {CHROMIUM}: install Debian's browser with "
            "`apt-get install -y chromium` (.ci/run does this) or set RESSRDIFF_CHROMIUM"
        )
    try:
        from playwright import sync_api
    except ImportError as exc:  # a skip would hide that the pages were never checked
        pytest.fail(
            f"Playwright is not importable ({exc}): install the dev extras with "
            "`pip install -e '.[dev]'` (`make test` does this); the browser checks need it"
        )
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


def _open(browser, base: str, path: str):
    """A new page on ``base + path`` with listeners; returns (page, visit) once MathJax is done
    and every image has loaded."""
    page = browser.new_page()
    visit = PageVisit()
    page.on("console", lambda m: visit.errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: visit.errors.append(f"uncaught: {e}"))
    page.on("requestfailed", lambda r: visit.errors.append(f"request failed: {r.url}"))

    def on_response(resp):
        if resp.status >= 400:
            visit.errors.append(f"HTTP {resp.status}: {resp.url}")

    page.on("response", on_response)

    def route(r):
        if r.request.url.startswith(base):
            r.continue_()
        else:  # offline rendering: nothing may come from outside the build
            visit.external.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    page.goto(base + path, wait_until="load")
    page.evaluate(
        "async () => { if (window.MathJax?.startup?.promise) await MathJax.startup.promise; }"
    )
    page.wait_for_function(
        "() => Array.from(document.images).every(i => i.complete)", timeout=15_000
    )
    return page, visit


# Elements of the article wider than their box whose overflow is visible and that no ancestor
# inside the article scrolls: content cut off at the column's edge, or a page that only a
# sideways scroll of the whole article would show (MathJax's own glyph boxes aside).
CLIPPED_JS = """() => {
  const article = document.querySelector('article') || document.body;
  const scrolls = (el) => ['auto', 'scroll'].includes(getComputedStyle(el).overflowX);
  const out = [];
  for (const el of article.querySelectorAll('*')) {
    if (el.clientWidth === 0 || el.scrollWidth <= el.clientWidth + 1) continue;
    if (el.closest('mjx-container')) continue;
    if (getComputedStyle(el).overflowX !== 'visible') continue;
    let a = el.parentElement, inScroll = false;
    while (a && a !== article) {  // a scroll container inside the article, not the page
      if (scrolls(a)) { inScroll = true; break; }
      a = a.parentElement;
    }
    if (inScroll) continue;
    out.push({tag: el.tagName, scroll: el.scrollWidth, client: el.clientWidth,
              text: (el.textContent || '').trim().slice(0, 80)});
  }
  return out;
}"""

# Wording of the project's own bookkeeping that must not reach a reader: issue numbers and the
# tracker's voice, the project's notes folder, raw Sphinx roles shown as text, the repr of a
# string left as a cell's last expression, and this machine's paths (home and checkout).
FORBIDDEN = [
    (re.compile(r"\b[Ii]ssues? #?\d+"), "an issue number"),
    (re.compile(r"\b[Tt]he issue (?:asks|says)\b|\bthe issue [\"“]"), "the tracker's voice"),
    (re.compile(r"\.\./shared/|\bshared/notes\b"), "the project's notes folder"),
    (re.compile(r":(?:func|class|mod|meth|attr):"), "a raw Sphinx role"),
    (re.compile(r"'Executed with"), "the repr of a string"),
    *(
        (re.compile(re.escape(p)), "a machine path")
        for p in dict.fromkeys(
            ["/work/", "/root/", str(Path.home()).rstrip("/") + "/", str(ROOT) + "/"]
        )
        if len(p) > 2
    ),
]


@pytest.fixture(scope="session")
def visits(browser, server) -> dict[str, PageVisit]:
    out = {}
    for entry in TOC:
        page, visit = _open(browser, server, f"{entry}.html")
        info = page.evaluate(
            """() => ({
              math: document.querySelectorAll('.math').length,
              untypeset: Array.from(document.querySelectorAll('.math'))
                  .filter(e => !e.querySelector('mjx-container')).length,
              mjx: document.querySelectorAll('mjx-container').length,
              tex_errors: document.querySelectorAll('mjx-merror').length,
              images: Array.from(document.images).map(i => ({
                  src: i.getAttribute('src').slice(0, 80), w: i.naturalWidth, h: i.naturalHeight})),
              launch: {
                  binder: document.querySelectorAll('a[href*="mybinder.org"]').length,
                  colab: document.querySelectorAll('a[href*="colab.research.google.com"]').length,
                  repository: document.querySelectorAll('.btn-source-repository-button').length,
                  download_ipynb: document.querySelectorAll(
                      'a.btn-download-source-button[href$=".ipynb"]').length,
                  placeholder: document.querySelectorAll(
                      'a[href*="your-org"], a[href*="executablebooks/jupyter-book"]').length},
              launch_hrefs: Array.from(document.querySelectorAll(
                  '.dropdown-launch-buttons a, a.btn-source-repository-button'))
                  .map(a => a.getAttribute('href')),
              text: (document.querySelector('article') || document.body).innerText,
            })"""
        )
        info["clipped"] = page.evaluate(CLIPPED_JS)
        for k, v in info.items():
            setattr(visit, k, v)
        page.close()
        out[entry] = visit
    return out


def test_pages_load_without_console_errors_or_external_requests(visits):
    bad = {e: v.errors for e, v in visits.items() if v.errors}
    assert not bad, f"console errors: {bad}"
    ext = {e: v.external for e, v in visits.items() if v.external}
    assert not ext, f"requests leaving the build (breaks offline reading): {ext}"


def test_equations_are_typeset_by_local_mathjax(visits):
    for entry, v in visits.items():
        assert v.untypeset == 0, f"{entry}: {v.untypeset} of {v.math} equations not typeset"
        assert v.tex_errors == 0, f"{entry}: {v.tex_errors} TeX errors"
    for stem in EQUATION_CHAPTERS:
        entry = f"notebooks/{stem}"
        if entry in visits:
            assert visits[entry].mjx > 0, f"{entry}: no MathJax output (mjx-container)"
    assert any(f"notebooks/{s}" in visits for s in EQUATION_CHAPTERS), "no equation chapter"


def test_every_image_has_a_size(visits):
    for entry, v in visits.items():
        empty = [i["src"] for i in v.images if not (i["w"] > 0 and i["h"] > 0)]
        assert not empty, f"{entry}: images without size: {empty}"
    assert sum(len(v.images) for v in visits.values()) > 0


def _built_repository(book: Book) -> str:
    """The repository URL the book was built with (its staged _config.yml), "" for none."""
    config = yaml.safe_load((book.out / "book-src" / "_config.yml").read_text(encoding="utf-8"))
    return ((config or {}).get("repository") or {}).get("url") or ""


def test_notebook_pages_have_launch_buttons(book: Book, visits):
    url = _built_repository(book)
    for entry, v in visits.items():
        assert v.launch["placeholder"] == 0, f"{entry}: a link points at a placeholder repository"
        if not entry.startswith("notebooks/"):
            continue
        assert v.launch["download_ipynb"] == 1, f"{entry}: no .ipynb download button"
        if url:  # RESSRDIFF_REPOSITORY_URL was set: Binder, Colab and the repository, for it
            assert v.launch["binder"] and v.launch["colab"] and v.launch["repository"], (
                f"{entry}: launch buttons {v.launch}"
            )
            owner_repo = url.split("://", 1)[1].split("/", 1)[1]
            stray = [h for h in v.launch_hrefs if owner_repo not in h]
            assert not stray, f"{entry}: buttons not pointing at {url}: {stray}"
        else:  # built without a repository: no launch or repository button at all
            assert not (v.launch["binder"] or v.launch["colab"] or v.launch["repository"]), (
                f"{entry}: buttons without a repository URL: {v.launch} {v.launch_hrefs}"
            )
    assert any(e.startswith("notebooks/") for e in visits), "no notebook page visited"


def test_pages_show_no_internal_wording_or_machine_paths(visits):
    found = {}
    for entry, v in visits.items():
        assert v.text.strip(), f"{entry}: no article text"
        for pattern, what in FORBIDDEN:
            for m in pattern.finditer(v.text):
                context = v.text[max(0, m.start() - 50) : m.end() + 30].replace("\n", " ")
                found.setdefault(entry, []).append(f"{what}: ...{context}...")
    assert not found, f"internal wording on the pages: {found}"


def test_nothing_runs_off_the_page_outside_a_scroll_container(visits):
    clipped = {e: v.clipped[:5] for e, v in visits.items() if v.clipped}
    assert not clipped, f"content cut off at the column's edge (not scrollable): {clipped}"


def test_static_schedule_slider_changes_the_frame(browser, server):
    entry = f"notebooks/{SLIDER_CHAPTER}"
    assert entry in TOC, f"{entry} is not in _toc.yml"
    page, visit = _open(browser, server, f"{entry}.html")
    sliders = page.locator("input[type=range]")
    assert sliders.count() > 0, f"{entry}: no static slider (input[type=range])"
    frame_of = """(el) => {
        const box = el.closest('.animation') || el.closest('.cell_output') || document;
        const img = box.querySelector('img');
        return img ? img.getAttribute('src') : null; }"""
    for k in range(sliders.count()):
        slider = sliders.nth(k)
        slider.scroll_into_view_if_needed()
        lo, hi, now = (slider.evaluate(f"e => Number(e.{a})") for a in ("min", "max", "value"))
        assert hi > lo, f"slider {k} of {entry} has a single position"
        before = slider.evaluate(frame_of)
        assert before, f"slider {k} of {entry}: no frame image beside it"
        target = hi if now != hi else lo
        slider.fill(str(int(target)))  # sets the value and fires "input", as a drag does
        after = slider.evaluate(frame_of)
        assert after != before, f"slider {k} of {entry}: moving it did not change the frame"
    assert not visit.errors, f"{entry}: console errors while sliding: {visit.errors}"
    page.close()


def test_intro_first_screen_says_what_works_and_how_to_run_it(browser, server):
    """On a 1366 x 768 laptop screen, before any scrolling: the two commands and the headline
    sentence with its glued numbers."""
    page, _ = _open(browser, server, "book/intro.html")
    page.set_viewport_size({"width": 1366, "height": 768})
    text = page.evaluate(
        """() => Array.from(document.querySelectorAll('article p, article pre'))
              .filter(e => e.getBoundingClientRect().top < window.innerHeight)
              .map(e => e.innerText).join('\\n')"""
    )
    page.close()
    assert "make book" in text and "make test" in text, text
    assert "Does it work here?" in text, text
    assert re.search(r"B-spline re-gridding: [+-]?\d+\.\d\d dB masked PSNR", text), text
