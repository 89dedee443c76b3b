"""Repository hygiene: the equation map, clean notebooks, one dependency list, CI = README."""

from __future__ import annotations

import importlib
import json
import re
import tomllib
from pathlib import Path

import yaml

from ressrdiff.equations import EQUATIONS

ROOT = Path(__file__).resolve().parents[1]


def _resolve(dotted: str):
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ModuleNotFoundError:
            continue
        for name in parts[i:]:
            obj = getattr(obj, name)
        return obj
    raise ImportError(dotted)


def test_each_equation_maps_to_one_function_that_cites_it():
    assert len(set(EQUATIONS.values())) == len(EQUATIONS)
    for eq, dotted in EQUATIONS.items():
        doc = _resolve(dotted).__doc__ or ""
        assert eq.lower() in doc.lower(), f"{dotted} does not cite {eq}"


def test_notebooks_have_no_outputs_and_a_parameters_cell():
    for nb_path in sorted((ROOT / "notebooks").glob("**/*.ipynb")):
        nb = json.loads(nb_path.read_text(encoding="utf-8"))
        code = [c for c in nb["cells"] if c["cell_type"] == "code"]
        assert not any(c.get("outputs") for c in code), f"{nb_path.name} has outputs"
        assert any("parameters" in c.get("metadata", {}).get("tags", []) for c in code), nb_path
        assert nb["metadata"].get("kernelspec", {}).get("name") == "python3", nb_path


def test_environment_yml_matches_pyproject():
    pp = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    want = set(pp["dependencies"]) | {
        d for deps in pp["optional-dependencies"].values() for d in deps
    }
    env = yaml.safe_load((ROOT / "environment.yml").read_text(encoding="utf-8"))
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    have = {d for d in pip if not d.startswith("-e")}
    assert have == want
    assert "torch==2.14.1" in want and "torchvision==0.29.1" in want


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    cmds = re.findall(r"^(make \w+)\s*$", readme, flags=re.M)
    assert cmds == ["make book", "make test"], "exactly two set-up-and-run commands"
    assert "`make demo`" in readme  # the smaller demo is mentioned in prose
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert re.search(r"^make test$", ci, flags=re.M)
