"""The example workflows on disk are what scripts/make_example_workflows.py writes (UI and API twins
in step), and they only use bundled assets. The host run of each one is tests/host/test_example_workflows.py."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _generator():
    spec = importlib.util.spec_from_file_location("make_example_workflows", REPO / "scripts" / "make_example_workflows.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_example_workflow_files_are_up_to_date():
    for path, text in _generator().rendered().items():
        assert path.is_file(), f"{path} is missing: run python scripts/make_example_workflows.py"
        assert path.read_text() == text, f"{path} is stale: run python scripts/make_example_workflows.py"


def test_example_workflows_read_only_bundled_assets():
    assets = {p.name for p in (REPO / "assets").iterdir()}
    for path in (REPO / "example_workflows" / "api").glob("*.json"):
        for node in json.loads(path.read_text()).values():
            for key in ("image", "file"):
                value = node["inputs"].get(key)
                if isinstance(value, str):
                    assert value in assets, f"{path.name}: {node['class_type']} reads {value!r}, not in assets/"
