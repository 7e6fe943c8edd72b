"""The pack puts the example workflows' inputs into ComfyUI's input folder at load (nodes/folders.py),
never replacing a user's file. The real host run: tests/host/test_example_workflows.py."""

from __future__ import annotations

import importlib.util
import json
import logging
import sys
import types
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ASSETS = REPO / "assets"


def _folders():
    # Loaded by path: importing nodes/ as a package needs ComfyUI; this file needs only the stdlib.
    spec = importlib.util.spec_from_file_location("pidm_folders", REPO / "nodes" / "folders.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


folders = _folders()


def _inputs_the_examples_read() -> set[str]:
    names = set()
    for path in (REPO / "example_workflows").glob("*.json"):
        for node in json.loads(path.read_text())["nodes"]:
            if node["type"] in ("LoadImage", "LoadImageMask", "LoadVideo", "PIDMLoadPose"):
                names.add(node["widgets_values"][0])
    return names


def test_every_input_an_example_reads_is_provided():
    provided = {p.name for p in folders.example_inputs()}
    assert _inputs_the_examples_read() == provided
    assert all(name.startswith("pidm_") for name in provided)


def test_copies_the_bundled_inputs_into_a_missing_folder(tmp_path):
    target = tmp_path / "ComfyUI" / "input"
    copied = folders.provide_example_inputs(target)
    assert sorted(copied) == sorted(p.name for p in folders.example_inputs())
    for name in copied:
        assert (target / name).read_bytes() == (ASSETS / name).read_bytes()
    assert folders.provide_example_inputs(target) == []  # the second load copies nothing


def test_never_replaces_a_users_file_nor_writes_through_a_link(tmp_path):
    target = tmp_path / "input"
    target.mkdir()
    (target / "pidm_person.png").write_bytes(b"the user's own picture")
    outside = tmp_path / "outside.json"
    (target / "pidm_pose_sequence.json").symlink_to(outside)  # dangling: the file it names does not exist
    (target / "pidm_mask_upper.png").mkdir()
    copied = folders.provide_example_inputs(target)
    assert "pidm_person.png" not in copied and "pidm_pose_sequence.json" not in copied
    assert (target / "pidm_person.png").read_bytes() == b"the user's own picture"
    assert not outside.exists()
    assert (target / "pidm_mask_upper.png").is_dir()
    assert "pidm_pose_arms_raised.json" in copied


def test_a_folder_that_cannot_be_written_is_logged_and_the_load_goes_on(tmp_path, monkeypatch, caplog):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")  # an input folder below a file cannot be created, even as root
    fake = types.SimpleNamespace(get_input_directory=lambda: str(blocker / "input"), models_dir=str(blocker / "models"))
    monkeypatch.setitem(sys.modules, "folder_paths", fake)
    with pytest.raises(OSError):
        folders.provide_example_inputs(blocker / "input")
    with caplog.at_level(logging.WARNING):
        folders.provide_at_load()  # does not raise
    text = caplog.text
    assert "could not copy the example workflows' inputs" in text and "copy assets/pidm_* there by hand" in text
    assert "could not create" in text


def test_load_creates_the_model_folder(tmp_path, monkeypatch):
    fake = types.SimpleNamespace(get_input_directory=lambda: str(tmp_path / "input"), models_dir=str(tmp_path / "models"))
    monkeypatch.setitem(sys.modules, "folder_paths", fake)
    folders.provide_at_load()
    assert (tmp_path / "models" / "pidm").is_dir()
    assert sorted(p.name for p in (tmp_path / "input").iterdir()) == sorted(p.name for p in folders.example_inputs())
