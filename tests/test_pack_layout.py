"""Packaging facts that ComfyUI-Manager, the registry and pytest rely on."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _requirements(path: Path) -> list[str]:
    lines = (line.split("#")[0].strip() for line in path.read_text().splitlines())
    return [line for line in lines if line]


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def test_tests_are_not_a_package():
    # With tests/__init__.py pytest would walk up to the repository root, whose __init__.py is the
    # ComfyUI entry point, and import it as a package.
    offenders = [p.relative_to(ROOT) for p in (ROOT / "tests").rglob("__init__.py")]
    assert not offenders, offenders


def test_requirements_never_pin_torch():
    names = {_name(r) for r in _requirements(ROOT / "requirements.txt")}
    assert not names & {"torch", "torchvision", "torchaudio"}, names


def test_pyproject_dependencies_mirror_requirements():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert sorted(project["project"]["dependencies"]) == sorted(_requirements(ROOT / "requirements.txt"))
    comfy = project["tool"]["comfy"]
    assert comfy["PublisherId"] and comfy["DisplayName"] == "ComfyUI-PIDM"
    assert project["project"]["urls"]["Repository"].startswith("https://github.com/")
