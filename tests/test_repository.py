"""Repository hygiene: the equation map, clean notebooks, one dependency list, CI = README."""

from __future__ import annotations

import importlib
import json
import re
import tomllib
from pathlib import Path

import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from ressrdiff.equations import EQUATIONS

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements" / "lock.txt"


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


def _lock_pins(text: str) -> dict[str, tuple[str, set[str]]]:
    """``{normalised name: (version, {what it is required via})}`` from a pip-compile lock."""
    pins: dict[str, tuple[str, set[str]]] = {}
    name = None
    for line in text.splitlines():
        m = re.match(r"^([A-Za-z0-9_.-]+)==(\S+)", line)
        if m:
            name = canonicalize_name(m.group(1))
            pins[name] = (m.group(2), set())
            continue
        via = re.match(r"^\s+#\s+(?:via\s+|  )(\S.*)$", line)
        if via and name and via.group(1).strip() != "via":
            pins[name][1].add(via.group(1).strip())
    return pins


def lock_problems(pyproject: str, lock: str) -> list[str]:
    """Why ``lock`` is out of date with ``pyproject`` (empty when they agree): a direct dependency
    missing from the lock or pinned outside its specifier, or a lock entry that claims to be
    direct but no longer is."""
    pp = tomllib.loads(pyproject)["project"]
    direct = [Requirement(r) for r in pp["dependencies"]]
    direct += [Requirement(r) for deps in pp["optional-dependencies"].values() for r in deps]
    pins = _lock_pins(lock)
    problems = []
    for req in direct:
        name = canonicalize_name(req.name)
        if name not in pins:
            problems.append(f"{req} is not in the lock")
        elif not req.specifier.contains(pins[name][0], prereleases=True):
            problems.append(f"{req} but the lock pins {name}=={pins[name][0]}")
    names = {canonicalize_name(r.name) for r in direct}
    for name, (_, via) in pins.items():
        if "ressrdiff (pyproject.toml)" in via and name not in names:
            problems.append(f"the lock pins {name} as a direct dependency, pyproject.toml does not")
    return problems


def test_lock_matches_pyproject_and_environment_yml():
    problems = lock_problems(
        (ROOT / "pyproject.toml").read_text(encoding="utf-8"), LOCK.read_text(encoding="utf-8")
    )
    assert not problems, (
        "requirements/lock.txt is out of date with pyproject.toml (run `make lock`): "
        + "; ".join(problems)
    )
    pins = _lock_pins(LOCK.read_text(encoding="utf-8"))
    assert pins["torch"][0] == "2.14.1" and pins["torchvision"][0] == "0.29.1"
    env = yaml.safe_load((ROOT / "environment.yml").read_text(encoding="utf-8"))
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert pip == ["-r requirements/lock.txt", "-e ."], "environment.yml installs the lock"
    make = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert "pip install -q -r $(LOCK)" in make and "pip install -q --no-deps -e ." in make


def test_lock_check_catches_a_stale_lock():
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    lock = LOCK.read_text(encoding="utf-8")
    added = pyproject.replace('"tqdm>=4.66",', '"tqdm>=4.66",\n  "not-a-real-package>=1",')
    assert lock_problems(added, lock) == ["not-a-real-package>=1 is not in the lock"]
    raised = pyproject.replace('"numpy>=1.26"', '"numpy>=99"')
    assert [p for p in lock_problems(raised, lock) if p.startswith("numpy>=99 but the lock pins")]
    dropped = pyproject.replace('  "sympy>=1.12",\n', "")
    assert lock_problems(dropped, lock) == [
        "the lock pins sympy as a direct dependency, pyproject.toml does not"
    ]


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    cmds = re.findall(r"^(make \w+)\s*$", readme, flags=re.M)
    assert cmds == ["make book", "make test"], "exactly two set-up-and-run commands"
    assert "`make demo`" in readme  # the smaller demo is mentioned in prose
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert re.search(r"^make test$", ci, flags=re.M)
