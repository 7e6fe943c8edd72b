"""Packaging facts that ComfyUI-Manager, the registry and pytest rely on."""

from __future__ import annotations

import re
import shutil
import subprocess
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


# Paths outside a clone: a sibling checkout of notes (shared/ beside the repo) or folders of one machine.
OUTSIDE_PATH = re.compile(r"\.\./shared|(?<![\w.~])/(?:work|root|home|tmp|opt|farm|mnt|Users)/")


def _repository_text_files() -> list[Path]:
    """Tracked and new (not ignored) files; every file under the root when git is not there."""
    if shutil.which("git") and (ROOT / ".git").exists():
        listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, capture_output=True,
                                check=True).stdout.decode().split("\0")
        paths = [ROOT / name for name in listed if name]
    else:
        paths = [p for p in ROOT.rglob("*") if not any(part.startswith(".") or part == "__pycache__"
                                                         for part in p.relative_to(ROOT).parts)]
    texts = []
    for path in paths:
        if path.is_file() and path.stat().st_size < 5_000_000:
            try:
                path.read_text(encoding="utf-8")
            except UnicodeDecodeError:
                continue  # images, weights
            texts.append(path)
    return texts


def test_no_file_names_a_path_outside_the_repository():
    # A clone must stand alone: photos, fixtures and docs come from inside it (tests/photos/, assets/).
    offenders = []
    for path in _repository_text_files():
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if OUTSIDE_PATH.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()[:120]}")
    assert not offenders, "\n".join(offenders)


def test_the_test_photos_are_in_the_repository_with_their_licence():
    photos = ROOT / "tests" / "photos"
    assert {p.name for p in photos.iterdir()} == {"basketball1.png", "messi5.jpg", "SOURCES.md", "LICENSE-Apache-2.0.txt"}
    sources = (photos / "SOURCES.md").read_text()
    assert "basketball1.png" in sources and "messi5.jpg" in sources and "Apache License 2.0" in sources


PROGRAM_ALIASES = {"train", "evaluate", "generate", "convert"}  # pidm_core/X.py: `python -m pidm_core.X` runs cli/X


def _imported_modules(path: Path, package: str) -> set[str]:
    """Absolute names of the modules a file imports (relative imports resolved against ``package``)."""
    import ast

    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[:len(package.split(".")) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


def test_the_library_imports_no_program_and_no_host():
    offenders = []
    for path in (ROOT / "pidm_core").rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if parts[1] == "cli" or (len(parts) == 2 and parts[1] in PROGRAM_ALIASES):
            continue
        package = ".".join(parts[:-1]) if path.name != "__init__.py" else ".".join(parts[:-1])
        for name in _imported_modules(path, package):
            if name.startswith("pidm_core.cli") or name.split(".")[0] in {"comfy", "comfy_api", "folder_paths", "nodes"}:
                offenders.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not offenders, offenders
