"""The project's shape: imports point one way (server -> realtime -> captioning), packaging is complete."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("server", "realtime", "captioning", "web")
# Which project packages each package may import.
ALLOWED = {
    "server": {"server", "realtime", "captioning", "web"},
    "realtime": {"realtime", "captioning"},
    "captioning": {"captioning"},
    "web": {"web"},
}


def _imported_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found & set(PACKAGES)


def test_imports_point_one_way() -> None:
    """realtime never imports server; captioning imports nothing else of forumlive."""
    wrong = []
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            extra = _imported_packages(path) - ALLOWED[package]
            if extra:
                wrong.append(f"{path.relative_to(ROOT)} imports {sorted(extra)}")
    assert wrong == []


def test_owner_layout_and_packaging() -> None:
    """The top-level packages, Dockerfile and console script exist, and torch is never an unpinned dependency."""
    for name in (*PACKAGES, "tests"):
        assert (ROOT / name).is_dir(), name
    assert (ROOT / "Dockerfile").is_file()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["scripts"]["forumlive"] == "server.cli:main"
    assert project["requires-python"] == ">=3.11"
    deps = project["dependencies"] + sum(project.get("optional-dependencies", {}).values(), [])
    for dep in deps:
        if dep.startswith("torch"):
            assert dep == "torch==2.13.0", "torch must be the CPU build on disk, pinned to 2.13.0"


def test_dockerfile_takes_the_same_install_steps_as_make() -> None:
    """The image installs with scripts/install.sh (as make demo does), runs as non-root, and has a health check."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    makefile = (ROOT / "Makefile").read_text()
    assert "scripts/install.sh" in dockerfile and "scripts/install.sh" in makefile
    assert "USER forumlive" in dockerfile
    assert "HEALTHCHECK" in dockerfile and "/healthz" in dockerfile
    assert '"serve"' in dockerfile


def test_readme_opens_with_the_two_commands() -> None:
    """The README's first commands are make demo and make test, and .ci/run calls make test."""
    readme = (ROOT / "README.md").read_text()
    commands = [line.strip() for line in readme.splitlines() if line.strip().startswith("make ")]
    assert commands[:2] == ["make demo", "make test"]
    assert "make test" in (ROOT / ".ci" / "run").read_text()
