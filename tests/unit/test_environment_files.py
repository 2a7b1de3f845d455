"""environment.yml, binder/environment.yml and pyproject.toml must describe the same environment."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].lower()


def _pip_section(path: Path) -> list[str]:
    env = yaml.safe_load(path.read_text())
    for dep in env["dependencies"]:
        if isinstance(dep, dict) and "pip" in dep:
            return dep["pip"]
    raise AssertionError(f"{path} has no pip section")


def test_binder_copy_is_identical() -> None:
    assert (ROOT / "binder" / "environment.yml").read_text() == (ROOT / "environment.yml").read_text()


def test_conda_env_matches_pyproject_dependencies() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert sorted(_pip_section(ROOT / "environment.yml")) == sorted(project["dependencies"])
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert "python=3.11" in env["dependencies"]


def test_pymilvus_is_not_a_resolved_dependency() -> None:
    """pymilvus 1.1.2 is installed with --no-deps after the rest; listing it would break the resolver."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert "pymilvus" not in {_name(d) for d in project["dependencies"]}
    assert "pymilvus==1.1.2" in (ROOT / "binder" / "postBuild").read_text()
    assert "--no-deps" in (ROOT / "binder" / "postBuild").read_text()


def test_binder_start_ends_with_exec() -> None:
    lines = [line for line in (ROOT / "binder" / "start").read_text().splitlines() if line.strip()]
    assert lines[-1] == 'exec "$@"'
    assert "LABKIT_SIZE" in (ROOT / "binder" / "start").read_text()
