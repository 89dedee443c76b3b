"""The book runner on a tiny stand-in book: parameter merging, batches, failures, staging."""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import pytest
import yaml

from ressrdiff import booktools
from ressrdiff.bookrun import (
    EPILOG_RUN,
    LAUNCH_SERVICES,
    REPOSITORY_ENV,
    BookRunError,
    BookUsageError,
    book_config,
    load_batch,
    load_parameters,
    notebook_parameters,
    parse_param,
    resolve_notebook,
    run_notebook,
    stage_book,
    toc_files,
    toc_notebooks,
)
from ressrdiff.booktools import SMOKE_LABEL, profile_banner, smoke_label
from ressrdiff.cli import main

REPO = Path(__file__).resolve().parents[1]


def _notebook(path: Path, body: str, params: str = 'profile = "cpu"\nseed = 0\nn = 1') -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    p = nbformat.v4.new_code_cell(params)
    p.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell("# 1. T"), p, nbformat.v4.new_code_cell(body)]
    nbformat.write(nb, path)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "_config.yml").write_text("title: t\n", encoding="utf-8")
    toc = {
        "format": "jb-book",
        "root": "book/intro",
        "parts": [{"caption": "A", "chapters": [{"file": "notebooks/01_a"}]}],
    }
    (tmp_path / "_toc.yml").write_text(yaml.safe_dump(toc), encoding="utf-8")
    (tmp_path / "book" / "profiles" / "smoke").mkdir(parents=True)
    (tmp_path / "book" / "intro.md").write_text("# Intro\n", encoding="utf-8")
    prof = tmp_path / "book" / "profiles" / "smoke"
    (prof / "common.yaml").write_text("profile: smoke\nseed: 1\nn: 2\n", encoding="utf-8")
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "notebooks" / "figure.txt").write_text("kept", encoding="utf-8")
    _notebook(tmp_path / "notebooks" / "01_a.ipynb", "print(profile, seed, n * 10)")
    return tmp_path


def test_parameters_merge_in_order_and_missing_files_are_empty(root: Path, tmp_path: Path):
    prof = root / "book" / "profiles" / "smoke"
    assert load_parameters(root, "smoke", "01_a") == {"profile": "smoke", "seed": 1, "n": 2}
    (prof / "01_a.yaml").write_text("", encoding="utf-8")  # an empty file counts as {}
    assert load_parameters(root, "smoke", "01_a")["n"] == 2
    (prof / "01_a.yaml").write_text("n: 3\nseed: 4\n", encoding="utf-8")
    pf = tmp_path / "p.yaml"
    pf.write_text("seed: 5\n", encoding="utf-8")
    got = load_parameters(root, "smoke", "01_a", params_file=pf, overrides={"n": 7})
    assert got == {"profile": "smoke", "seed": 5, "n": 7}
    with pytest.raises(BookRunError, match="unknown profile 'paper'"):
        load_parameters(root, "paper", "01_a")
    with pytest.raises(BookRunError, match="has no .*common.yaml"):
        load_parameters(root, "cpu", "01_a")


def test_parse_param_reads_yaml_values():
    assert parse_param("seed=3") == ("seed", 3)
    assert parse_param("checkpoint=null") == ("checkpoint", None)
    assert parse_param("data_dir=/data/a b") == ("data_dir", "/data/a b")
    assert parse_param("scale=0.5") == ("scale", 0.5)
    with pytest.raises(BookRunError, match="expected KEY=VALUE"):
        parse_param("seed")
    with pytest.raises(BookRunError, match="not a parameter name"):
        parse_param("a-b=1")


def test_batch_labels_are_readable_and_unique(tmp_path: Path):
    f = tmp_path / "b.yaml"
    f.write_text(
        "- {data_dir: /data/subj01/}\n- {data_dir: /data/subj02, seed: 1}\n- {}\n", "utf-8"
    )
    labels = [label for label, _ in load_batch(f)]
    assert labels == ["1_data_dir-subj01", "2_data_dir-subj02_seed-1", "3_defaults"]
    f.write_text("prostate: {seed: 1}\nbrain: {seed: 2}\n", encoding="utf-8")
    assert load_batch(f) == [("prostate", {"seed": 1}), ("brain", {"seed": 2})]
    f.write_text("[1, 2]\n", encoding="utf-8")
    with pytest.raises(BookRunError, match="entry 1 is not a mapping"):
        load_batch(f)
    f.write_text("[]\n", encoding="utf-8")
    with pytest.raises(BookRunError, match="no parameter sets"):
        load_batch(f)


def test_toc_and_notebook_names(root: Path):
    assert toc_files(root) == ["book/intro", "notebooks/01_a"]
    assert [p.name for p in toc_notebooks(root)] == ["01_a.ipynb"]
    assert resolve_notebook(root, "01").name == "01_a.ipynb"
    assert resolve_notebook(root, "notebooks/01_a.ipynb").name == "01_a.ipynb"
    _notebook(root / "notebooks" / "01_b.ipynb", "pass")
    with pytest.raises(BookRunError, match="matches several notebooks"):
        resolve_notebook(root, "01")
    toc = yaml.safe_load((root / "_toc.yml").read_text(encoding="utf-8"))
    toc["parts"][0]["chapters"].append({"file": "notebooks/09_missing"})
    (root / "_toc.yml").write_text(yaml.safe_dump(toc), encoding="utf-8")
    with pytest.raises(BookRunError, match="notebooks/09_missing"):
        toc_notebooks(root)


def test_run_notebook_success_failure_and_unknown_parameter(root: Path, tmp_path: Path):
    src = root / "notebooks" / "01_a.ipynb"
    out = tmp_path / "out"
    res = run_notebook(src, out / "01_a.ipynb", {"n": 3, "seed": 2}, log_output=False)
    assert res.ok and res.output.is_file()
    nb = nbformat.read(res.output, as_version=4)
    printed = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))
    assert printed == "cpu 2 30\n"  # parameters injected after the parameters cell
    assert json.loads(src.read_text(encoding="utf-8"))["cells"][1].get("outputs") == []
    with pytest.raises(BookRunError, match=r"01_a has no parameter 'nn' \(its parameters"):
        run_notebook(src, out / "01_a.ipynb", {"nn": 3})

    bad = root / "notebooks" / "02_bad.ipynb"
    _notebook(bad, "import sys\nprint('to stderr', file=sys.stderr)\nx = 1 / 0")
    (out / "02_bad.ipynb").write_text("{}", encoding="utf-8")  # a stale success
    res = run_notebook(bad, out / "02_bad.ipynb", {}, log_output=False)
    assert not res.ok
    assert "notebook 02_bad failed in cell In [2]" in res.error
    assert "`import sys`: ZeroDivisionError: division by zero" in res.error
    assert "to stderr" in res.error  # the captured stderr is quoted
    assert not (out / "02_bad.ipynb").exists() and (out / "02_bad.failed.ipynb").is_file()
    assert not list(out.glob(".*.ipynb")), "a temporary file was left behind"


def test_cli_batch_writes_one_copy_per_set(root: Path, tmp_path: Path, capsys):
    batch = tmp_path / "batch.yaml"
    batch.write_text("- {n: 4}\n- {n: 5, seed: 9}\n", encoding="utf-8")
    out = tmp_path / "executed"
    argv = ["book", "run", "--root", str(root), "--profile", "smoke", "--notebook", "01_a"]
    argv += ["--batch", str(batch), "--out", str(out), "--quiet"]
    assert main(argv) == 0
    got = {}
    for f in sorted(out.glob("*.ipynb")):
        nb = nbformat.read(f, as_version=4)
        got[f.name] = nb.cells[-1].outputs[0]["text"]
    assert got == {"01_a__1_n-4.ipynb": "smoke 1 40\n", "01_a__2_n-5_seed-9.ipynb": "smoke 9 50\n"}
    assert main(["book", "run", "--root", str(root), "--batch", str(batch), "--quiet"]) == 2
    assert "--batch needs --notebook" in capsys.readouterr().err


def test_stage_book_uses_executed_copies_and_drops_cdn_links(root: Path, tmp_path: Path):
    executed = tmp_path / "executed"
    executed.mkdir()
    with pytest.raises(BookRunError, match="no executed copy .* for: 01_a"):
        stage_book(root, executed, tmp_path / "stage")
    nb = nbformat.read(root / "notebooks" / "01_a.ipynb", as_version=4)
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {}}
    link = '<link rel="stylesheet" href="https://maxcdn.bootstrapcdn.com/font-awesome/4.4.0/x.css">'
    nb.cells[2].outputs = [
        nbformat.v4.new_output("display_data", data={"text/html": f"{link}\n<div>frames</div>"})
    ]
    nbformat.write(nb, executed / "01_a.ipynb")
    stage = stage_book(root, executed, tmp_path / "stage")
    staged = nbformat.read(stage / "notebooks" / "01_a.ipynb", as_version=4)
    assert "widgets" not in staged.metadata
    assert staged.cells[2].outputs[0]["data"]["text/html"] == "<div>frames</div>"
    assert (stage / "notebooks" / "figure.txt").read_text(encoding="utf-8") == "kept"
    assert (stage / "_toc.yml").is_file() and (stage / "book" / "intro.md").is_file()
    assert not (stage / "book" / "profiles").exists()
    # the sources are untouched
    assert "widgets" not in nbformat.read(root / "notebooks" / "01_a.ipynb", 4).metadata


def _staged_config(root: Path, tmp_path: Path) -> dict:
    executed = tmp_path / "executed"
    executed.mkdir(exist_ok=True)
    nbformat.write(nbformat.read(root / "notebooks" / "01_a.ipynb", 4), executed / "01_a.ipynb")
    stage = stage_book(root, executed, tmp_path / "stage")
    return yaml.safe_load((stage / "_config.yml").read_text(encoding="utf-8"))


def test_staged_config_has_the_repository_url_only_when_it_is_set(
    root: Path, tmp_path: Path, monkeypatch
):
    source = {
        "title": "t",
        "repository": {"url": "https://github.com/your-org/ressrdiff", "branch": "main"},
        "launch_buttons": {"notebook_interface": "jupyterlab", "binderhub_url": "https://x.org"},
        "html": {"use_repository_button": True, "use_download_button": True},
    }
    (root / "_config.yml").write_text(yaml.safe_dump(source), encoding="utf-8")
    monkeypatch.setenv(REPOSITORY_ENV, "https://github.com/example/ressrdiff/")
    cfg = _staged_config(root, tmp_path)
    assert cfg["repository"] == {"url": "https://github.com/example/ressrdiff", "branch": "main"}
    assert cfg["launch_buttons"] == {"notebook_interface": "jupyterlab", **LAUNCH_SERVICES}
    assert cfg["html"]["use_repository_button"] is True and cfg["title"] == "t"

    monkeypatch.delenv(REPOSITORY_ENV)
    cfg = _staged_config(root, tmp_path)
    assert cfg["repository"]["url"] == ""
    launch = cfg["launch_buttons"]
    assert not any(launch[k] for k in ("binderhub_url", "colab_url", "jupyterhub_url", "thebe"))
    assert cfg["html"]["use_repository_button"] is False
    assert cfg["html"]["use_download_button"] is True
    assert "your-org" not in yaml.safe_dump(cfg)
    assert yaml.safe_load((root / "_config.yml").read_text(encoding="utf-8")) == source

    monkeypatch.setenv(REPOSITORY_ENV, "your-org/ressrdiff")
    with pytest.raises(BookUsageError, match=REPOSITORY_ENV):
        _staged_config(root, tmp_path)


def test_the_book_config_names_no_placeholder_and_loads_the_book_css():
    assert "your-org" not in (REPO / "_config.yml").read_text(encoding="utf-8")
    off = book_config(REPO, None)
    assert off["repository"]["url"] == "" and not off["html"]["use_repository_button"]
    assert not off["launch_buttons"]["binderhub_url"] and not off["launch_buttons"]["colab_url"]
    on = book_config(REPO, "https://github.com/example/ressrdiff")
    assert on["launch_buttons"]["binderhub_url"] == LAUNCH_SERVICES["binderhub_url"]
    assert on["html"]["use_download_button"] is True
    sphinx = on["sphinx"]["config"]
    for name in sphinx["html_css_files"]:
        assert any((REPO / d / name).is_file() for d in sphinx["html_static_path"]), name


def test_sliced_polls_recover_a_missed_wakeup_and_keep_the_deadline(monkeypatch):
    import asyncio
    import queue
    from concurrent.futures import ThreadPoolExecutor

    from ressrdiff import bookrun

    monkeypatch.setattr(bookrun, "_POLL_SLICE_S", 0.01)

    class Channel:
        """A socket whose poll never wakes by itself (a missed wake-up): the reply is only
        found by a new poll, from the ``ready_at``-th one on (never when None)."""

        def __init__(self, ready_at: int | None) -> None:
            self.ready_at, self.timeouts = ready_at, []

        async def get_msg(self, timeout=None):
            if timeout is None:
                raise AssertionError("an unbounded poll would hang here")
            self.timeouts.append(timeout)
            await asyncio.sleep(timeout)
            if self.ready_at is None or len(self.timeouts) < self.ready_at:
                raise queue.Empty
            return {"msg": "reply"}

    ch = Channel(ready_at=3)
    bookrun._slice_polls(ch)

    def run(coro):  # in a fresh thread: the book tests' kernels may leave a loop on this one
        with ThreadPoolExecutor(1) as pool:
            return pool.submit(asyncio.run, coro).result()

    assert run(ch.get_msg(timeout=None)) == {"msg": "reply"}
    assert ch.timeouts == [0.01, 0.01, 0.01]
    never = Channel(ready_at=None)
    bookrun._slice_polls(never)
    with pytest.raises(queue.Empty):
        run(never.get_msg(timeout=0.05))
    assert 3 <= len(never.timeouts) <= 7  # polled in slices, and gave up at the deadline


def _help_examples() -> list[tuple[str, dict]]:
    """(notebook, parameters) of every ``--notebook`` example in ``book run --help``; a
    ``--batch`` example gets the keys of the batch entries shown at the end of the help."""
    lines = EPILOG_RUN.splitlines()
    batch = {}
    for line in lines:
        if line.strip().startswith("- {"):
            batch.update(yaml.safe_load(line.strip()[2:]))
    out = []
    for line in lines:
        words = line.split("#")[0].split()
        if words[:3] != ["ressrdiff", "book", "run"] or "--notebook" not in words:
            continue
        params = {}
        for flag, value in zip(words, words[1:], strict=False):
            if flag == "--param":
                params.update([parse_param(value)])
        if "--batch" in words:
            params.update(batch)
        out.append((words[words.index("--notebook") + 1], params))
    return out


def test_help_examples_name_parameters_their_notebooks_declare():
    examples = _help_examples()
    assert any("data_dir" in params for _, params in examples), "no data_dir example left"
    for name, params in examples:
        declared = notebook_parameters(resolve_notebook(REPO, name))  # the parameters cell only
        unknown = sorted(set(params) - set(declared))
        assert not unknown, f"`book run --notebook {name}` example sets undeclared {unknown}"


def test_smoke_label_marks_only_the_smoke_profile():
    assert smoke_label("smoke") == SMOKE_LABEL and "SMOKE" in SMOKE_LABEL
    assert smoke_label("cpu") == smoke_label("gpu") == ""


def test_public_text_and_brief_hide_machine_paths_and_repeated_reasons():
    home = str(Path.home())
    text = f"{REPO}/ressrdiff/methods/x.py:66 and {home}/.cache/torch/hub/a.pth"
    assert booktools.public_text(text) == "ressrdiff/methods/x.py:66 and ~/.cache/torch/hub/a.pth"
    loss = (
        f"10*MSE alone (LPIPS unavailable: AlexNet weights not found at {home}/.cache/a.pth "
        "(copy a.pth there to enable it; nothing is downloaded))"
    )
    assert booktools.brief(loss) == "10*MSE alone (LPIPS unavailable)"
    assert booktools.brief("4*MSE + LPIPS(alex, v0.1)") == "4*MSE + LPIPS(alex, v0.1)"


def test_notes_and_warnings_are_shown_once_without_paths(monkeypatch, capsys):
    import warnings

    monkeypatch.setattr(booktools, "_NOTED", set())
    monkeypatch.setattr(warnings, "showwarning", warnings.showwarning)
    reason = f"LPIPS unavailable: weights not found at {Path.home()}/.cache/a.pth (copy it there)"
    assert booktools.note(reason) is True
    assert booktools.note(reason) is False
    booktools.show_warnings_once()
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn(f"{reason}. Training uses 10*MSE alone.", UserWarning, stacklevel=1)
        warnings.warn("Something else entirely. Twice.", UserWarning, stacklevel=1)
        warnings.warn("Something else entirely. Twice!", UserWarning, stacklevel=1)
    out = capsys.readouterr().out
    assert out.count("LPIPS unavailable") == 1 and "~/.cache/a.pth" in out
    assert str(Path.home()) + "/" not in out and __file__ not in out
    assert out.count("Warning: Something else entirely") == 1


def test_profile_banner_displays_markdown_and_returns_nothing(monkeypatch):
    shown = []
    monkeypatch.setattr("IPython.display.display", shown.append)
    assert profile_banner("cpu") is None  # a cell ending with the call shows no repr
    assert [m.data for m in shown] == ["> Executed with the `cpu` profile."]


def test_show_table_formats_numbers_with_their_precision(monkeypatch):
    import pandas as pd

    shown = []
    monkeypatch.setattr(booktools, "_ipython", lambda: object())
    monkeypatch.setattr("IPython.display.display", shown.append)
    df = pd.DataFrame({"psnr": [19.06631, float("nan")], "p": [1.6e-05, 0.5], "n": [3, 4]})
    booktools.show_table(df, "A caption", digits=2, formats={"p": "{:.2g}"})
    html = shown[0].to_html()
    cells = [c.split(">")[-1] for c in html.split("</td>")[:-1]]
    assert cells == ["19.07", "1.6e-05", "3", "–", "0.5", "4"]
    assert "A caption" in html and "row_heading" not in html  # a plain 0..n-1 index is hidden
    # repeated labels (pd.concat leaves them) still render, floats formatted whatever the column
    booktools.show_table(pd.concat([df, df], axis=1), "Twice", formats="{:.1f}")
    cells = [c.split(">")[-1] for c in shown[1].to_html().split("</td>")[:-1]]
    assert cells[:6] == ["19.1", "0.0", "3", "19.1", "0.0", "3"]


def test_docstring_markdown_drops_sphinx_roles_and_tracker_wording():
    from ressrdiff.methods import cyclegan

    def f():
        """See :func:`~ressrdiff.stats.table1` and :class:`ressrdiff.nn.vit.ViT`, ``x``."""

    assert booktools.docstring_markdown(f) == "See `table1` and `ressrdiff.nn.vit.ViT`, `x`."
    text = booktools.docstring_markdown(cyclegan)
    assert ":class:" not in text and "``" not in text and "issue" not in text
    assert re.search(r"serve as two unpaired\s+collections\.", text)
