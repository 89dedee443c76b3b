"""Execute the book's notebooks with papermill and build the HTML from the executed copies.

Jupyter Book cannot pass parameters to a notebook, so the book is made in two stages:

1. **run**: every notebook of ``_toc.yml`` is executed by papermill (kernel ``python3``, working
   directory ``notebooks/``) with the parameters of a *profile*: ``book/profiles/<profile>/
   common.yaml``, then ``book/profiles/<profile>/<stem>.yaml`` if present, then a
   ``--params-file``, then ``--param key=value`` overrides (later wins). Executed copies go to
   ``<out>/<stem>.ipynb``; a notebook that fails leaves ``<stem>.failed.ipynb`` and raises
   :class:`BookRunError` naming the notebook and the cell.
2. **build**: the sources (``_config.yml``, ``_toc.yml``, ``references.bib``, ``book/``, the
   non-notebook files of ``notebooks/``) and the executed notebooks are copied to a staging tree
   ``<out>/book-src/`` at their usual relative paths, and ``jupyter-book build`` renders it
   with execution off into ``<out>/_build/html``. The staged ``_config.yml`` takes the
   repository from one build setting, ``$RESSRDIFF_REPOSITORY_URL``: set, the pages get the
   repository button and Binder and Colab launch buttons for it; unset, those buttons are off
   (no page links to a placeholder) and the ``.ipynb`` download button stays. MathJax 3 (npm
   package ``mathjax``, installed once into a cache) is copied into the HTML's
   ``_static/mathjax``, so equations render without a CDN. The source notebooks are never
   written to.

Outputs appear atomically: notebooks are written beside their target and renamed, the staging
tree and the HTML folder are built aside and swapped in.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "PROFILES",
    "MATHJAX_VERSION",
    "BookRunError",
    "BookUsageError",
    "RunResult",
    "find_root",
    "toc_files",
    "toc_notebooks",
    "resolve_notebook",
    "notebook_parameters",
    "load_parameters",
    "parse_param",
    "load_batch",
    "run_notebook",
    "run_notebooks",
    "run_batch",
    "ensure_mathjax",
    "REPOSITORY_ENV",
    "LAUNCH_SERVICES",
    "repository_url",
    "book_config",
    "stage_book",
    "build_book",
    "add_book_parser",
]

PROFILES = ("smoke", "cpu", "gpu")
REPOSITORY_ENV = "RESSRDIFF_REPOSITORY_URL"
# The launch services the buttons open when a repository URL is set (Binder installs the
# repository from environment.yml; Colab opens the notebook from GitHub).
LAUNCH_SERVICES = {
    "binderhub_url": "https://mybinder.org",
    "colab_url": "https://colab.research.google.com",
}
_REPOSITORY = re.compile(r"https://(?:github\.com|gitlab\.com|bitbucket\.org)/[\w.-]+/[\w.-]+")
MATHJAX_VERSION = "3.2.2"
MATHJAX_ENTRY = "tex-chtml.js"
# The parts of the MathJax es5 tree that tex-chtml.js loads lazily (fonts, TeX extensions,
# the context menu and its accessibility helpers).
_MATHJAX_PARTS = (MATHJAX_ENTRY, "input", "output", "ui", "a11y", "sre", "adaptors")
_CDN_LINK = re.compile(r"<link[^>]*font-awesome/4[^>]*>\s*", re.I)
_STAGE_SKIP = {".ipynb_checkpoints", "__pycache__", "_build", ".DS_Store"}

log = logging.getLogger("ressrdiff.book")


def _public(path: Path, mode: int = 0o666) -> None:
    """Give a file made by ``mkstemp``/``mkdtemp`` (private, 0600/0700) the permissions a
    plain ``open``/``mkdir`` would have under the current umask."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, mode & ~umask)


class BookRunError(RuntimeError):
    """A notebook failed to execute, or the book could not be staged or built."""


class BookUsageError(BookRunError):
    """A usage or input error (a bad option, parameter, profile or file): exit status 2."""


@dataclass
class RunResult:
    """One papermill execution: the notebook, where its copy went, and how it ended."""

    stem: str
    output: Path
    parameters: dict[str, Any]
    seconds: float
    error: str | None = None
    stderr_log: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error is None


# --------------------------------------------------------------------------------------------
# Locating the book and its notebooks
# --------------------------------------------------------------------------------------------


def find_root(start: str | Path | None = None) -> Path:
    """The book's root: the first folder at or above ``start`` (default: the working directory)
    holding ``_toc.yml``, else the repository this package was installed from."""
    here = Path(start or Path.cwd()).resolve()
    for d in (here, *here.parents):
        if (d / "_toc.yml").is_file() and (d / "_config.yml").is_file():
            return d
    repo = Path(__file__).resolve().parents[1]
    if (repo / "_toc.yml").is_file():
        return repo
    raise BookUsageError(f"no _toc.yml at or above {here}: run from the repository (or --root)")


def _read_yaml(path: Path) -> Any:
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f)


def _walk_toc(node: Any, out: list[str]) -> None:
    if isinstance(node, Mapping):
        if "file" in node:
            out.append(str(node["file"]))
        for key in ("parts", "chapters", "sections"):
            for child in node.get(key) or []:
                _walk_toc(child, out)
    elif isinstance(node, list):
        for child in node:
            _walk_toc(child, out)


def toc_files(root: str | Path) -> list[str]:
    """Every ``file`` entry of ``_toc.yml`` (root first, then in reading order), as written."""
    toc = _read_yaml(Path(root) / "_toc.yml") or {}
    if not isinstance(toc, Mapping) or "root" not in toc:
        raise BookUsageError(f"{Path(root) / '_toc.yml'}: expected a jb-book toc with a 'root'")
    files = [str(toc["root"])]
    _walk_toc(toc, files)
    return files


def _page_source(root: Path, entry: str) -> Path | None:
    base = root / entry
    if base.suffix in (".md", ".ipynb") and base.is_file():
        return base
    for ext in (".ipynb", ".md"):
        if base.with_suffix(base.suffix + ext).is_file():
            return base.with_suffix(base.suffix + ext)
    return None


def toc_notebooks(root: str | Path) -> list[Path]:
    """The notebooks of ``_toc.yml`` in reading order; a missing toc entry is an error."""
    root = Path(root)
    out = []
    for entry in toc_files(root):
        src = _page_source(root, entry)
        if src is None:
            raise BookUsageError(
                f"_toc.yml lists {entry!r} but neither {entry}.md nor .ipynb exists"
            )
        if src.suffix == ".ipynb":
            out.append(src)
    return out


def resolve_notebook(root: str | Path, name: str) -> Path:
    """A notebook from a name: ``06_sampling``, ``06_sampling.ipynb``, a path, or a unique
    prefix such as ``06``."""
    root = Path(root)
    cand = Path(name)
    for p in (cand, root / cand, root / "notebooks" / cand):
        for q in (p, p.with_name(p.name + ".ipynb")):
            if q.suffix == ".ipynb" and q.is_file():
                return q.resolve()
    pool = sorted({*(root / "notebooks").glob("*.ipynb"), *toc_notebooks(root)})
    hits = [p for p in pool if p.stem.startswith(cand.stem)]
    if len(hits) == 1:
        return hits[0].resolve()
    names = ", ".join(p.stem for p in pool) or "none"
    what = "matches several notebooks" if hits else "is not a notebook"
    raise BookUsageError(f"--notebook {name!r} {what} (notebooks: {names})")


# --------------------------------------------------------------------------------------------
# Parameters
# --------------------------------------------------------------------------------------------


def notebook_parameters(path: str | Path) -> dict[str, Any]:
    """The parameters declared in a notebook's ``parameters`` cell, name -> default text."""
    import papermill

    params = papermill.inspect_notebook(str(path))
    return {k: v.get("default") for k, v in params.items()}


def _yaml_mapping(path: Path, what: str) -> dict[str, Any]:
    if not path.is_file():
        return {}
    data = _read_yaml(path)
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise BookUsageError(f"{path}: {what} must be a YAML mapping of parameter: value")
    return dict(data)


def load_parameters(
    root: str | Path,
    profile: str,
    stem: str,
    params_file: str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The parameters for one notebook: profile ``common.yaml`` < ``<stem>.yaml`` <
    ``params_file`` < ``overrides`` (later wins). Missing or empty files count as ``{}``."""
    if profile not in PROFILES:
        raise BookUsageError(f"unknown profile {profile!r} (profiles: {', '.join(PROFILES)})")
    folder = Path(root) / "book" / "profiles" / profile
    if not (folder / "common.yaml").is_file():
        raise BookUsageError(f"profile {profile!r} has no {folder / 'common.yaml'}")
    params = _yaml_mapping(folder / "common.yaml", "a profile file")
    params.update(_yaml_mapping(folder / f"{stem}.yaml", "a profile file"))
    if params_file is not None:
        pf = Path(params_file)
        if not pf.is_file():
            raise BookUsageError(f"--params-file {pf} does not exist")
        params.update(_yaml_mapping(pf, "--params-file"))
    params.update(overrides or {})
    return params


def parse_param(text: str) -> tuple[str, Any]:
    """``key=value`` -> ``(key, value)``; the value is read as YAML (``3`` is an int, ``null``
    is None, ``a/b`` a string)."""
    if "=" not in text:
        raise BookUsageError(f"--param {text!r}: expected KEY=VALUE, e.g. seed=1")
    key, value = text.split("=", 1)
    key = key.strip()
    if not key.isidentifier():
        raise BookUsageError(f"--param {text!r}: {key!r} is not a parameter name")
    return key, yaml.safe_load(value) if value.strip() else ""


def _slug(text: str, limit: int = 48) -> str:
    s = re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.")
    return s[:limit].rstrip("-.") or "run"


def _value_label(value: Any) -> str:
    if isinstance(value, str) and ("/" in value or os.sep in value):
        return Path(value.rstrip("/")).name or value  # a folder: its last part is the readable bit
    return str(value)


def load_batch(path: str | Path) -> list[tuple[str, dict[str, Any]]]:
    """A batch file -> ``[(label, parameters), ...]``.

    Either a YAML list of mappings (labels are made from the values, e.g. ``01_data_dir-subj07``)
    or a mapping ``label: {parameters}`` (labels as given)."""
    p = Path(path)
    if not p.is_file():
        raise BookUsageError(f"--batch {p} does not exist")
    data = _read_yaml(p)
    items: list[tuple[str | None, Any]]
    if isinstance(data, list):
        items = [(None, d) for d in data]
    elif isinstance(data, Mapping):
        items = [(str(k), v) for k, v in data.items()]
    else:
        raise BookUsageError(f"--batch {p}: expected a list of parameter mappings")
    if not items:
        raise BookUsageError(f"--batch {p} holds no parameter sets")
    out, seen = [], set()
    width = len(str(len(items)))
    for i, (label, params) in enumerate(items, 1):
        if params is None:
            params = {}
        if not isinstance(params, Mapping):
            raise BookUsageError(f"--batch {p}: entry {i} is not a mapping of parameter: value")
        if label is None:
            desc = "_".join(f"{k}-{_value_label(v)}" for k, v in params.items()) or "defaults"
            label = f"{i:0{width}d}_{_slug(desc)}"
        label = _slug(label, limit=64)
        if label in seen:
            raise BookUsageError(f"--batch {p}: label {label!r} is used twice")
        seen.add(label)
        out.append((label, dict(params)))
    return out


# --------------------------------------------------------------------------------------------
# Execution
# --------------------------------------------------------------------------------------------

ENGINE = "ressrdiff-sliced-poll"
_POLL_SLICE_S = 1.0


def _slice_polls(channel: Any) -> None:
    """Make ``channel.get_msg`` wait in slices of ``_POLL_SLICE_S`` seconds.

    nbclient waits for a cell's reply with one unbounded poll of the zmq socket. With
    ipywidgets in a cell (comm traffic on the same loop), that poll can miss the wake-up for a
    reply that did arrive, and the run hangs with the kernel idle (seen here with ipykernel 7;
    nbclient issue #312). A new poll checks the socket at once, so short slices turn the hang
    into a delay of at most one slice. A finite timeout is kept as the overall deadline."""
    import queue

    get_msg = channel.get_msg

    async def sliced_get_msg(timeout: float | None = None) -> dict[str, Any]:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = _POLL_SLICE_S if deadline is None else deadline - time.monotonic()
            try:
                return await get_msg(timeout=max(0.0, min(_POLL_SLICE_S, left)))
            except queue.Empty:
                if deadline is not None and time.monotonic() >= deadline:
                    raise

    channel.get_msg = sliced_get_msg


def _register_engine() -> str:
    """Register (once) the papermill engine the book runs with: papermill's nbclient engine
    whose kernel client polls in slices (see :func:`_slice_polls`)."""
    from papermill.clientwrap import PapermillNotebookClient
    from papermill.engines import NBClientEngine, papermill_engines
    from papermill.utils import merge_kwargs, remove_args

    if ENGINE in getattr(papermill_engines, "_engines", {}):
        return ENGINE

    class SlicedPollClient(PapermillNotebookClient):
        async def async_start_new_kernel_client(self):
            kc = await super().async_start_new_kernel_client()
            _slice_polls(kc.shell_channel)
            _slice_polls(kc.iopub_channel)
            return kc

    class SlicedPollEngine(NBClientEngine):
        @classmethod
        def execute_managed_notebook(
            cls,
            nb_man,
            kernel_name,
            log_output=False,
            stdout_file=None,
            stderr_file=None,
            start_timeout=60,
            execution_timeout=None,
            **kwargs,
        ):
            # as papermill's NBClientEngine, with the client above
            kwargs = remove_args(["input_path"], **kwargs)
            safe_kwargs = remove_args(["timeout", "startup_timeout"], **kwargs)
            final_kwargs = merge_kwargs(
                safe_kwargs,
                timeout=execution_timeout if execution_timeout else kwargs.get("timeout"),
                startup_timeout=start_timeout,
                kernel_name=kernel_name,
                log=logging.getLogger("papermill"),
                log_output=log_output,
                stdout_file=stdout_file,
                stderr_file=stderr_file,
            )
            return SlicedPollClient(nb_man, **final_kwargs).execute()

    papermill_engines.register(ENGINE, SlicedPollEngine)
    return ENGINE


def _failure_message(stem: str, exc: BaseException, out: Path, stderr_log: Path | None) -> str:
    from papermill.exceptions import PapermillExecutionError

    if isinstance(exc, PapermillExecutionError):
        first = next((ln for ln in (exc.source or "").splitlines() if ln.strip()), "")
        msg = (
            f"notebook {stem} failed in cell In [{exc.exec_count}] (cell {exc.cell_index} of the "
            f"executed copy) `{first.strip()[:80]}`: {exc.ename}: {exc.evalue}"
        )
    else:
        msg = f"notebook {stem} failed: {type(exc).__name__}: {exc}"
    msg += f"\n  partial output: {out}"
    if stderr_log is not None and stderr_log.is_file():
        tail = stderr_log.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-15:]
        if tail:
            msg += f"\n  stderr ({stderr_log}), last lines:\n    " + "\n    ".join(tail)
    return msg


def run_notebook(
    src: str | Path,
    dst: str | Path,
    parameters: Mapping[str, Any],
    *,
    cwd: str | Path | None = None,
    kernel: str = "python3",
    log_output: bool = True,
    cell_timeout: float | None = None,
    strict_parameters: bool = True,
) -> RunResult:
    """Execute ``src`` with papermill into ``dst`` (written atomically) and return the result.

    The kernel's stderr goes to ``<dst folder>/logs/<dst stem>.stderr.log``; cell outputs are
    logged to the ``papermill`` logger when ``log_output``. A failing cell does not raise here:
    the partial notebook is kept as ``<dst stem>.failed.ipynb``, any earlier ``dst`` is removed
    and :attr:`RunResult.error` says which cell failed. With ``strict_parameters`` a parameter
    the notebook does not declare is an error (papermill itself would only warn)."""
    import papermill

    src, dst = Path(src).resolve(), Path(dst).resolve()
    if not src.is_file():
        raise BookUsageError(f"notebook {src} does not exist")
    cwd = Path(cwd).resolve() if cwd is not None else src.parent
    params = dict(parameters)
    if strict_parameters:
        declared = notebook_parameters(src)
        if not declared:
            raise BookUsageError(f"notebook {src.stem} has no cell tagged 'parameters'")
        unknown = sorted(set(params) - set(declared))
        if unknown:
            raise BookUsageError(
                f"notebook {src.stem} has no parameter {', '.join(map(repr, unknown))} "
                f"(its parameters: {', '.join(declared)})"
            )
    dst.parent.mkdir(parents=True, exist_ok=True)
    logs = dst.parent / "logs"
    logs.mkdir(exist_ok=True)
    stderr_log = logs / f"{dst.stem}.stderr.log"
    failed = dst.with_name(f"{dst.stem}.failed.ipynb")
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dst.stem}.", suffix=".ipynb", dir=dst.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    t0 = time.perf_counter()
    error = None
    try:
        kwargs: dict[str, Any] = {}
        if cell_timeout is not None:
            kwargs["execution_timeout"] = cell_timeout
        with open(stderr_log, "w", encoding="utf-8") as err:
            papermill.execute_notebook(
                str(src),
                str(tmp),
                parameters=params,
                engine_name=_register_engine(),
                kernel_name=kernel,
                cwd=str(cwd),
                log_output=log_output,
                progress_bar=False,
                stderr_file=err,
                **kwargs,
            )
    except Exception as exc:  # papermill raises PapermillExecutionError, kernels other errors
        error = _failure_message(src.stem, exc, failed, stderr_log)
    except BaseException:  # Ctrl-C: leave no temporary file behind
        tmp.unlink(missing_ok=True)
        raise
    seconds = time.perf_counter() - t0
    if tmp.is_file():
        _public(tmp)
    if error is None:
        os.replace(tmp, dst)
        failed.unlink(missing_ok=True)
    else:
        dst.unlink(missing_ok=True)  # never leave a stale success beside a failure
        if tmp.is_file():
            os.replace(tmp, failed)
    return RunResult(src.stem, dst if error is None else failed, params, seconds, error, stderr_log)


def _announce(msg: str, quiet: bool) -> None:
    if not quiet:
        print(msg, file=sys.stderr, flush=True)


def run_notebooks(
    root: str | Path,
    profile: str = "cpu",
    *,
    notebooks: Iterable[str] | None = None,
    out: str | Path = "build/executed",
    params_file: str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    keep_going: bool = False,
    log_output: bool = True,
    cell_timeout: float | None = None,
    quiet: bool = False,
) -> list[RunResult]:
    """Execute notebooks (default: all of ``_toc.yml``, in its order) with a profile into
    ``out`` (a relative ``out`` is under ``root``), each with working directory
    ``root/notebooks``. Stops at the first failure with :class:`BookRunError` unless
    ``keep_going``."""
    root = Path(root).resolve()
    out = (root / out) if not Path(out).is_absolute() else Path(out)
    srcs = [resolve_notebook(root, n) for n in notebooks] if notebooks else toc_notebooks(root)
    if not srcs:
        raise BookUsageError("no notebooks to run (none in _toc.yml, none named with --notebook)")
    jobs = [
        (
            f"{src.stem} ({profile})",
            src.stem,
            src,
            out / src.name,
            load_parameters(root, profile, src.stem, params_file, overrides),
            None,
        )
        for src in srcs
    ]
    return _run_jobs(root, jobs, log_output, cell_timeout, keep_going, quiet)


def run_batch(
    root: str | Path,
    notebook: str,
    batch: str | Path,
    profile: str = "cpu",
    *,
    out: str | Path = "build/executed",
    params_file: str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    keep_going: bool = False,
    log_output: bool = True,
    cell_timeout: float | None = None,
    quiet: bool = False,
) -> list[RunResult]:
    """Run one notebook once per parameter set of a batch file, writing
    ``<out>/<stem>__<label>.ipynb`` for each. The batch entry wins over ``overrides``, which win
    over ``params_file`` and the profile."""
    root = Path(root).resolve()
    out = (root / out) if not Path(out).is_absolute() else Path(out)
    src = resolve_notebook(root, notebook)
    sets = load_batch(batch)
    jobs = []
    for label, entry in sets:
        params = load_parameters(root, profile, src.stem, params_file, {**(overrides or {})})
        params.update(entry)
        title = f"{src.stem} / {label}"
        jobs.append((title, title, src, out / f"{src.stem}__{label}.ipynb", params, label))
    return _run_jobs(root, jobs, log_output, cell_timeout, keep_going, quiet)


def _run_jobs(
    root: Path,
    jobs: list[tuple[str, str, Path, Path, dict[str, Any], str | None]],
    log_output: bool,
    cell_timeout: float | None,
    keep_going: bool,
    quiet: bool,
) -> list[RunResult]:
    """Run ``(start title, end title, source, destination, parameters, batch label)`` jobs in
    order with progress lines; stop at the first failure unless ``keep_going``."""
    results = []
    for i, (start, end, src, dst, params, label) in enumerate(jobs, 1):
        _announce(f"[{i}/{len(jobs)}] {start} ...", quiet)
        res = run_notebook(
            src,
            dst,
            params,
            cwd=root / "notebooks",
            log_output=log_output,
            cell_timeout=cell_timeout,
        )
        if label is not None:
            res.extra["label"] = label
        results.append(res)
        state = "ok" if res.ok else "FAILED"
        _announce(f"[{i}/{len(jobs)}] {end}: {state} in {res.seconds:.1f} s", quiet)
        if not res.ok and not keep_going:
            raise BookRunError(res.error)
    return results


# --------------------------------------------------------------------------------------------
# MathJax, staging and the HTML build
# --------------------------------------------------------------------------------------------


def _cache_dir() -> Path:
    base = os.environ.get("RESSRDIFF_CACHE") or os.environ.get("XDG_CACHE_HOME")
    return Path(base) / "ressrdiff" if base else Path.home() / ".cache" / "ressrdiff"


def ensure_mathjax(cache: str | Path | None = None, version: str = MATHJAX_VERSION) -> Path:
    """The ``es5`` folder of the npm package ``mathjax@version``, installed once with npm into
    ``cache`` (default ``$RESSRDIFF_CACHE`` / ``$XDG_CACHE_HOME`` / ``~/.cache``, under
    ``ressrdiff/mathjax-<version>``). ``$RESSRDIFF_MATHJAX`` may point at an es5 folder instead."""
    env = os.environ.get("RESSRDIFF_MATHJAX")
    if env:
        es5 = Path(env)
        if not (es5 / MATHJAX_ENTRY).is_file():
            raise BookUsageError(f"RESSRDIFF_MATHJAX={env} has no {MATHJAX_ENTRY} (expected es5/)")
        return es5
    base = Path(cache) if cache else _cache_dir()
    final = base / f"mathjax-{version}"
    es5 = final / "node_modules" / "mathjax" / "es5"
    if (es5 / MATHJAX_ENTRY).is_file():
        return es5
    npm = shutil.which("npm")
    if npm is None:
        raise BookRunError(
            "the book serves MathJax itself (no CDN) and needs npm once to fetch the 'mathjax' "
            f"package {version}: install Node.js/npm (apt-get install npm, conda install nodejs) "
            "or set RESSRDIFF_MATHJAX to a mathjax es5/ folder"
        )
    base.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".mathjax-{version}.", dir=base))
    cmd = [npm, "install", "--prefix", str(tmp), f"mathjax@{version}"]
    cmd += ["--no-audit", "--no-fund", "--no-save", "--silent"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0 or not (tmp / "node_modules/mathjax/es5" / MATHJAX_ENTRY).is_file():
        shutil.rmtree(tmp, ignore_errors=True)
        raise BookRunError(
            f"npm could not install mathjax@{version} (exit {proc.returncode}): "
            f"{(proc.stderr or proc.stdout).strip()[-500:]}"
        )
    _public(tmp, 0o777)
    if final.exists():  # another build won the race
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        os.replace(tmp, final)
    return es5


def _copy_mathjax(es5: Path, dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    for part in _MATHJAX_PARTS:
        src = es5 / part
        if src.is_dir():
            shutil.copytree(src, dest / part)
        elif src.is_file():
            shutil.copy2(src, dest / part)


def _ignore_stage(folder: str, names: list[str]) -> set[str]:
    skip = {n for n in names if n in _STAGE_SKIP}
    if Path(folder).name == "book":
        skip.add("profiles")  # run-time parameters, not pages
    return skip


def _swap_dir(tmp: Path, final: Path) -> None:
    """Put ``tmp`` at ``final``, replacing what was there with two renames."""
    old = final.with_name(f".{final.name}.old")
    if old.exists():
        shutil.rmtree(old)
    if final.exists():
        os.replace(final, old)
    os.replace(tmp, final)
    if old.exists():
        shutil.rmtree(old)


def _offline_outputs(node: Any) -> None:
    """Make an executed notebook render without a CDN: drop saved widget state (myst-nb would
    load the widget manager from a CDN; the static page shows the kernel-free fallbacks) and
    the Font Awesome 4 stylesheet that matplotlib's jshtml animations link to (the theme's own
    Font Awesome draws their buttons)."""
    node.metadata.pop("widgets", None)
    for cell in node.cells:
        for output in cell.get("outputs", []):
            html = output.get("data", {}).get("text/html")
            if html is None:
                continue
            text = html if isinstance(html, str) else "".join(html)
            output["data"]["text/html"] = _CDN_LINK.sub("", text)


def repository_url(environ: Mapping[str, str] | None = None) -> str | None:
    """The repository the book's buttons point at: ``$RESSRDIFF_REPOSITORY_URL`` (e.g.
    ``https://github.com/ORG/ressrdiff``, where this repository is published), or None when
    it is unset or empty. Anything but a GitHub, GitLab or Bitbucket repository URL is a usage
    error (the theme builds the launch links from its owner and name)."""
    value = (os.environ if environ is None else environ).get(REPOSITORY_ENV, "").strip()
    value = value.removesuffix("/").removesuffix(".git")
    if not value:
        return None
    if not _REPOSITORY.fullmatch(value):
        raise BookUsageError(
            f"{REPOSITORY_ENV}={value!r}: expected a repository URL such as "
            "https://github.com/ORG/REPO (GitHub, GitLab or Bitbucket)"
        )
    return value


def book_config(root: str | Path, url: str | None) -> dict[str, Any]:
    """The book's ``_config.yml`` as staged for a build. With a repository ``url``: the
    repository button and the Binder and Colab launch buttons (:data:`LAUNCH_SERVICES`) for
    it. Without: the repository URL empty and the repository, issue, edit and launch buttons
    off, so that no page links to a placeholder; the ``.ipynb`` download button is kept."""
    config = _read_yaml(Path(root) / "_config.yml") or {}
    if not isinstance(config, Mapping):
        raise BookUsageError(f"{Path(root) / '_config.yml'}: expected a YAML mapping")
    config = dict(config)
    repo = dict(config.get("repository") or {})
    launch = dict(config.get("launch_buttons") or {})
    html = dict(config.get("html") or {})
    repo["url"] = url or ""
    for key, service in LAUNCH_SERVICES.items():
        launch[key] = service if url else ""
    if not url:
        launch.update(jupyterhub_url="", thebe=False)
        html.update(use_issues_button=False, use_edit_page_button=False)
    html["use_repository_button"] = bool(url)
    html.setdefault("use_download_button", True)
    config.update(repository=repo, launch_buttons=launch, html=html)
    return config


def stage_book(root: str | Path, executed: str | Path, stage: str | Path) -> Path:
    """Copy the book's sources to ``stage`` with every toc notebook replaced by its executed
    copy from ``executed`` (same relative paths, so links and launch buttons still match the
    repository) and ``_config.yml`` written by :func:`book_config` for the repository of
    :func:`repository_url`. A missing executed copy is an error."""
    import nbformat

    root, executed, stage = Path(root).resolve(), Path(executed).resolve(), Path(stage).resolve()
    config = book_config(root, repository_url())
    notebooks = toc_notebooks(root)
    missing = [nb.stem for nb in notebooks if not (executed / nb.name).is_file()]
    if missing:
        raise BookUsageError(
            f"no executed copy in {executed} for: {', '.join(missing)} (run `ressrdiff book run`)"
        )
    stage.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{stage.name}.", dir=stage.parent))
    _public(tmp, 0o777)
    try:
        with open(tmp / "_config.yml", "w", encoding="utf-8") as f:
            yaml.safe_dump(config, f, sort_keys=False, allow_unicode=True)
        for name in ("_toc.yml", "references.bib"):
            if (root / name).is_file():
                shutil.copy2(root / name, tmp / name)
        for folder in ("book", "_static", "notebooks"):
            if (root / folder).is_dir():
                shutil.copytree(
                    root / folder,
                    tmp / folder,
                    ignore=lambda d, n: (
                        _ignore_stage(d, n) | {x for x in n if x.endswith(".ipynb")}
                    ),
                )
        for nb in notebooks:
            rel = nb.relative_to(root)
            node = nbformat.read(executed / nb.name, as_version=4)
            _offline_outputs(node)
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            nbformat.write(node, tmp / rel)
        _swap_dir(tmp, stage)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return stage


def _jupyter_book() -> list[str]:
    exe = Path(sys.executable).parent / "jupyter-book"
    if exe.is_file():
        return [str(exe)]
    found = shutil.which("jupyter-book")
    if found is None:
        raise BookRunError("jupyter-book is not installed: pip install -e '.[book]'")
    return [found]


def build_book(
    root: str | Path,
    profile: str = "cpu",
    *,
    out: str | Path = "build",
    params_file: str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    run: bool = True,
    keep_going: bool = False,
    strict: bool = True,
    log_output: bool = True,
    cell_timeout: float | None = None,
    quiet: bool = False,
) -> tuple[Path, list[RunResult]]:
    """Execute every toc notebook into ``<out>/executed``, stage ``<out>/book-src`` and run
    ``jupyter-book build`` (execution off; Sphinx warnings are errors when ``strict``).
    Returns the HTML folder ``<out>/_build/html`` and the run results.

    Unless ``out_dir`` is given in ``overrides``, chapters share artifacts in
    ``<out>/artifacts``. With ``keep_going`` a failed notebook does not stop the others; the
    build then raises :class:`BookRunError` listing the failures after staging nothing."""
    root = Path(root).resolve()
    out = (root / out) if not Path(out).is_absolute() else Path(out)
    executed = out / "executed"
    overrides = dict(overrides or {})
    if "out_dir" not in overrides:
        overrides["out_dir"] = os.path.relpath(out / "artifacts", root / "notebooks")
    results: list[RunResult] = []
    mathjax = ensure_mathjax()  # before the long part: a missing npm fails at once
    if run:
        results = run_notebooks(
            root,
            profile,
            out=executed,
            params_file=params_file,
            overrides=overrides,
            keep_going=keep_going,
            log_output=log_output,
            cell_timeout=cell_timeout,
            quiet=quiet,
        )
        failed = [r for r in results if not r.ok]
        if failed:
            raise BookRunError("\n".join(r.error or "" for r in failed))
    t0 = time.perf_counter()
    stage = stage_book(root, executed, out / "book-src")
    url = repository_url()
    _announce(
        f"launch buttons (Binder, Colab) and repository button for {url}"
        if url
        else f"launch and repository buttons off ({REPOSITORY_ENV} is unset)",
        quiet,
    )
    html_tmp = out / ".html-build"
    if html_tmp.exists():
        shutil.rmtree(html_tmp)
    cmd = [*_jupyter_book(), "build", str(stage), "--path-output", str(html_tmp), "-q"]
    if strict:
        cmd += ["-W", "--keep-going"]
    _announce(f"jupyter-book build ({'strict' if strict else 'warnings allowed'}) ...", quiet)
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=str(stage))
    if proc.returncode != 0:
        text = (proc.stdout + proc.stderr).strip()
        raise BookRunError(f"jupyter-book build failed (exit {proc.returncode}):\n{text[-4000:]}")
    # MathJax goes in after Sphinx: Jupyter Book would turn every .js file of a _static source
    # folder into a <script> tag on every page. mathjax_path in _config.yml points here.
    _copy_mathjax(mathjax, html_tmp / "_build" / "html" / "_static" / "mathjax")
    html = out / "_build" / "html"
    html.parent.mkdir(parents=True, exist_ok=True)
    _swap_dir(html_tmp / "_build" / "html", html)
    shutil.rmtree(html_tmp, ignore_errors=True)
    pages = len(list(html.rglob("*.html")))
    _announce(
        f"book: {html / 'index.html'} ({pages} HTML files, "
        f"HTML build {time.perf_counter() - t0:.1f} s)",
        quiet,
    )
    return html, results


# --------------------------------------------------------------------------------------------
# Command line: ``ressrdiff book run`` and ``ressrdiff book build``
# --------------------------------------------------------------------------------------------

EPILOG_RUN = """Parameters: book/profiles/<profile>/common.yaml < <profile>/<notebook>.yaml <
--params-file < --param (later wins); a --batch entry wins over all of them. A parameter the
notebook does not declare is an error.

examples:
  ressrdiff book run --profile smoke                          # every chapter, tiny sizes
  ressrdiff book run --profile gpu --notebook 06_sampling --param checkpoint=runs/paper/last.pt
  ressrdiff book run --notebook 04 --param data_dir=/data/prostate --out build/prostate
  ressrdiff book run --notebook 04 --batch folders.yaml      # one executed copy per entry

a batch file is a YAML list of parameter sets (labels made from the values) or a mapping of
label: parameters, e.g.
  - {data_dir: /data/subj01}
  - {data_dir: /data/subj02, seed: 1}"""


def _setup_logging(quiet: bool, log_output: bool) -> None:
    if quiet or not log_output:
        return
    pm = logging.getLogger("papermill")
    if not pm.handlers:
        h = logging.StreamHandler(sys.stderr)
        h.setFormatter(logging.Formatter("  | %(message)s"))
        pm.addHandler(h)
    pm.setLevel(logging.INFO)
    pm.propagate = False


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    return dict(parse_param(p) for p in args.param or [])


def _cmd_run(args: argparse.Namespace) -> int:
    try:
        root = find_root(args.root)
        _setup_logging(args.quiet, args.log_output)
        common = dict(
            out=Path(args.out).resolve() if args.out else root / "build" / "executed",
            params_file=args.params_file,
            overrides=_overrides(args),
            keep_going=args.keep_going,
            log_output=args.log_output,
            cell_timeout=args.cell_timeout,
            quiet=args.quiet,
        )
        if args.batch:
            if not args.notebook:
                raise BookUsageError("--batch needs --notebook NAME (the notebook to repeat)")
            results = []
            for nb in args.notebook:
                results += run_batch(root, nb, args.batch, args.profile, **common)
        else:
            results = run_notebooks(root, args.profile, notebooks=args.notebook, **common)
    except BookRunError as e:
        print(f"ressrdiff book run: error: {e}", file=sys.stderr)
        return 2 if isinstance(e, BookUsageError) else 1
    failed = [r for r in results if not r.ok]
    for r in results:
        print(f"{'ok    ' if r.ok else 'FAILED'} {r.seconds:7.1f} s  {r.output}")
    for r in failed:
        print(f"ressrdiff book run: error: {r.error}", file=sys.stderr)
    return 1 if failed else 0


def _cmd_build(args: argparse.Namespace) -> int:
    try:
        root = find_root(args.root)
        _setup_logging(args.quiet, args.log_output)
        build_book(
            root,
            args.profile,
            out=Path(args.out).resolve() if args.out else root / "build",
            params_file=args.params_file,
            overrides=_overrides(args),
            run=not args.no_run,
            keep_going=args.keep_going,
            strict=args.strict,
            log_output=args.log_output,
            cell_timeout=args.cell_timeout,
            quiet=args.quiet,
        )
    except BookRunError as e:
        print(f"ressrdiff book build: error: {e}", file=sys.stderr)
        return 2 if isinstance(e, BookUsageError) else 1
    return 0


def _common_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--profile", default="cpu", choices=PROFILES, help="parameter profile")
    p.add_argument(
        "--param", action="append", metavar="KEY=VALUE", help="override a parameter (repeatable)"
    )
    p.add_argument("--params-file", help="a YAML mapping of parameters (over the profile)")
    p.add_argument("--root", help="the book's root folder (default: found from the cwd)")
    p.add_argument("--keep-going", action="store_true", help="run the others after a failure")
    p.add_argument(
        "--cell-timeout", type=float, help="seconds one cell may take (default: no limit)"
    )
    p.add_argument(
        "--no-log-output",
        dest="log_output",
        action="store_false",
        help="do not echo cell outputs while running",
    )
    p.add_argument("--quiet", action="store_true", help="print only the summary and errors")


def add_book_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``ressrdiff book {run,build}``."""
    b = sub.add_parser(
        "book",
        help="execute the book's notebooks (papermill) and build the HTML",
        description="Execute the book's notebooks with a parameter profile, and build the book.",
    )
    bsub = b.add_subparsers(dest="book_command", required=True)
    r = bsub.add_parser(
        "run",
        help="execute notebooks with papermill (profiles, overrides, batches)",
        description="Execute notebooks with papermill into --out; the sources stay unchanged.",
        epilog=EPILOG_RUN,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _common_args(r)
    r.add_argument(
        "--notebook",
        action="append",
        metavar="NAME",
        help="a notebook (stem, file or unique prefix; repeatable; default: all of _toc.yml)",
    )
    r.add_argument("--out", help="folder for the executed copies (default ROOT/build/executed)")
    r.add_argument("--batch", help="YAML list of parameter sets: one executed copy per set")
    r.set_defaults(func=_cmd_run)

    bb = bsub.add_parser(
        "build",
        help="run every notebook, then jupyter-book build (execution off)",
        description="Execute all notebooks of _toc.yml into OUT/executed, stage the sources with "
        "the executed copies in OUT/book-src, and build the HTML into OUT/_build/html.",
    )
    _common_args(bb)
    bb.add_argument("--out", help="build folder (default ROOT/build)")
    bb.add_argument(
        "--no-run", action="store_true", help="reuse the executed copies in OUT/executed"
    )
    bb.add_argument(
        "--no-strict",
        dest="strict",
        action="store_false",
        help="let Sphinx warnings pass (default: warnings fail the build)",
    )
    bb.set_defaults(func=_cmd_build)
