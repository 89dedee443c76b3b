"""The committed notebooks are clean sources that follow the book's skeleton (fast, no kernel).

Checks per notebook: no outputs or execution counts, exactly one ``parameters`` cell and it is
the first code cell (with the common parameters), the plain ``python3`` kernelspec, the
skeleton headings in order, the set-up call; and that ``_toc.yml``, ``notebooks/`` and the
profile files agree with each other.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest
import yaml

from ressrdiff.bookrun import PROFILES, toc_files

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
SKELETON = ("Overview", "Prerequisites", "Setup", "Summary", "What's next")
COMMON_PARAMETERS = ("profile", "seed", "device", "out_dir")


def _load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _src(cell: dict) -> str:
    s = cell.get("source", "")
    return s if isinstance(s, str) else "".join(s)


def _code_cells(nb: dict) -> list[dict]:
    return [c for c in nb["cells"] if c["cell_type"] == "code"]


def _parameter_names(nb: dict) -> set[str]:
    cell = _code_cells(nb)[0]
    names = set()
    for node in ast.parse(_src(cell)).body:
        targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
        names |= {t.id for t in targets if isinstance(t, ast.Name)}
    return names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_has_no_outputs_or_execution_counts(path: Path):
    nb = _load(path)
    for i, cell in enumerate(_code_cells(nb)):
        assert not cell.get("outputs"), f"{path.name}: code cell {i} has outputs (clear them)"
        assert cell.get("execution_count") is None, f"{path.name}: code cell {i} has a count"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_first_code_cell_is_the_only_parameters_cell(path: Path):
    nb = _load(path)
    tagged = [
        i
        for i, c in enumerate(nb["cells"])
        if "parameters" in c.get("metadata", {}).get("tags", [])
    ]
    assert len(tagged) == 1, f"{path.name}: {len(tagged)} cells tagged 'parameters', want 1"
    first_code = next(i for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code")
    assert tagged[0] == first_code, f"{path.name}: the parameters cell is not the first code cell"
    missing = set(COMMON_PARAMETERS) - _parameter_names(nb)
    assert not missing, f"{path.name}: parameters cell lacks {sorted(missing)}"


#: a code cell longer than this many lines is a code wall unless its input is hidden
CODE_WALL_LINES = 15
HIDDEN = {"hide-input", "remove-input", "hide-cell", "remove-cell", "parameters"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_long_code_cells_hide_their_input(path: Path):
    """The pages show no code walls: a code cell of more than :data:`CODE_WALL_LINES` lines
    carries ``hide-input`` (or another hiding tag), so the reader sees its output and a toggle."""
    walls = [
        f"code cell {k} ({len(_src(c).splitlines())} lines)"
        for k, c in enumerate(_code_cells(_load(path)))
        if len(_src(c).splitlines()) > CODE_WALL_LINES
        and not HIDDEN & set(c.get("metadata", {}).get("tags", []))
    ]
    assert not walls, f"{path.name}: {', '.join(walls)} without a hide-input tag"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_kernelspec_is_plain_python3(path: Path):
    ks = _load(path)["metadata"].get("kernelspec", {})
    assert ks.get("name") == "python3", f"{path.name}: kernelspec {ks.get('name')!r}"
    assert ks.get("language", "python") == "python", path.name


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_skeleton_headings_in_order(path: Path):
    nb = _load(path)
    md = "\n".join(_src(c) for c in nb["cells"] if c["cell_type"] == "markdown")
    assert re.match(r"\s*# \S", md), f"{path.name}: does not start with a '# N. Title' heading"
    h2 = [h.strip() for h in re.findall(r"^## (.+)$", md, flags=re.M)]
    pos = []
    for name in SKELETON:
        assert name in h2, f"{path.name}: no '## {name}' heading (has {h2})"
        pos.append(h2.index(name))
    assert pos == sorted(pos), f"{path.name}: skeleton headings out of order: {h2}"
    assert h2[-1] == "What's next", f"{path.name}: '## What's next' is not the last section"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_setup_cell_prints_versions_and_profile(path: Path):
    code = "\n".join(_src(c) for c in _code_cells(_load(path)))
    assert "setup_notebook(" in code, f"{path.name}: no setup_notebook(seed, device) call"
    assert "profile_banner(" in code, f"{path.name}: no profile_banner(profile) call"


def test_toc_and_notebooks_folder_agree():
    entries = toc_files(ROOT)
    for entry in entries:
        assert any((ROOT / f"{entry}{ext}").is_file() for ext in (".md", ".ipynb")), (
            f"_toc.yml lists {entry!r}, which does not exist"
        )
    listed = {e for e in entries if e.startswith("notebooks/")}
    on_disk = {f"notebooks/{p.stem}" for p in NOTEBOOKS}
    assert on_disk - listed == set(), f"notebooks missing from _toc.yml: {on_disk - listed}"
    assert len(entries) == len(set(entries)), "_toc.yml lists a page twice"


@pytest.mark.parametrize("profile", PROFILES)
def test_profile_files_name_real_notebooks_and_parameters(profile: str):
    folder = ROOT / "book" / "profiles" / profile
    common = yaml.safe_load((folder / "common.yaml").read_text(encoding="utf-8"))
    assert set(COMMON_PARAMETERS) <= set(common), f"{profile}/common.yaml lacks a common key"
    assert common["profile"] == profile
    stems = {p.stem: p for p in NOTEBOOKS}
    for f in sorted(folder.glob("*.yaml")):
        if f.name == "common.yaml":
            continue
        assert f.stem in stems, f"{f.relative_to(ROOT)} names no notebook"
        params = yaml.safe_load(f.read_text(encoding="utf-8")) or {}
        unknown = set(params) - _parameter_names(_load(stems[f.stem]))
        assert not unknown, f"{f.relative_to(ROOT)}: {sorted(unknown)} not in the parameters cell"
