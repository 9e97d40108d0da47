"""environment.yml lists exactly the dependencies of pyproject.toml (runtime + test extra), in order."""

from __future__ import annotations

import re
import tomllib

from qbdi_utils import paths


def _pyproject_deps() -> list[str]:
    data = tomllib.loads((paths.REPO_ROOT / "pyproject.toml").read_text())
    proj = data["project"]
    return list(proj["dependencies"]) + list(proj.get("optional-dependencies", {}).get("test", []))


def _environment_pip_deps() -> tuple[list[str], str]:
    """(pip requirement strings of environment.yml, its python pin) by a minimal YAML reading."""
    text = (paths.REPO_ROOT / "environment.yml").read_text()
    lines = text.splitlines()
    pip_deps, python = [], ""
    in_pip = False
    for line in lines:
        s = line.split("#", 1)[0].rstrip() if not line.lstrip().startswith("- \"") else line.rstrip()
        if re.match(r"^\s*-\s*python\s*=", s):
            python = s.split("=", 1)[1].strip()
        if re.match(r"^\s*-\s*pip:\s*$", s):
            in_pip = True
            continue
        if in_pip:
            m = re.match(r"^\s+-\s+(.+)$", s)
            if not m:
                in_pip = False
                continue
            pip_deps.append(m.group(1).strip().strip('"').strip("'"))
    return pip_deps, python


def test_yaml_reader_matches_pyyaml_when_available():
    yaml = __import__("pytest").importorskip("yaml")
    env = yaml.safe_load((paths.REPO_ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    assert _environment_pip_deps()[0] == pip


def test_environment_lists_same_dependencies_as_pyproject():
    pip_deps, python = _environment_pip_deps()
    assert pip_deps, "environment.yml has no pip: section"
    assert pip_deps[-1].startswith("-e ."), "environment.yml should end with the editable install"
    env = [d for d in pip_deps if not d.startswith("-e")]
    py = _pyproject_deps()
    missing = [d for d in py if d not in env]
    extra = [d for d in env if d not in py]
    assert not missing and not extra, (f"in pyproject but not environment.yml: {missing}; "
                                       f"in environment.yml but not pyproject: {extra}")
    assert env == py, "same dependencies but in a different order; keep both lists in one order"


def test_environment_python_matches_requires_python():
    _, python = _environment_pip_deps()
    data = tomllib.loads((paths.REPO_ROOT / "pyproject.toml").read_text())
    req = data["project"]["requires-python"]
    assert python == "3.11" and ">=3.11" in req and "<3.12" in req


def test_editable_install_includes_test_extra():
    pip_deps, _ = _environment_pip_deps()
    assert pip_deps[-1].replace('"', "") == "-e .[test]"
