"""install.py (run by ComfyUI-Manager): pip's complaint about the MediaPipe extras left out on purpose
is replaced by a plain note; any other conflict is shown as pip wrote it."""

from __future__ import annotations

import importlib.util
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _install():
    spec = importlib.util.spec_from_file_location("pidm_install", REPO / "install.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


install = _install()

HEADER = ("ERROR: pip's dependency resolver does not currently take into account all the packages that are installed. "
          "This behaviour is the source of the following dependency conflicts.")


def test_the_expected_complaint_about_left_out_dependencies_is_dropped():
    lines = ["Installing collected packages: mediapipe", HEADER,
             "mediapipe 1.2.2 requires opencv-contrib-python, which is not installed.",
             "mediapipe 1.2.2 requires sounddevice~=0.5, which is not installed.",
             "Successfully installed mediapipe-1.2.2"]
    shown, dropped = install.filter_pip_output(lines)
    assert dropped
    assert shown == ["Installing collected packages: mediapipe", "Successfully installed mediapipe-1.2.2"]


def test_any_other_conflict_is_shown_whole():
    lines = [HEADER, "mediapipe 1.2.2 requires sounddevice~=0.5, which is not installed.",
             "mediapipe 1.2.2 has requirement flatbuffers~=25.9, but you have flatbuffers 24.3."]
    shown, dropped = install.filter_pip_output(lines)
    assert not dropped and shown == lines
    other = [HEADER, "torchvision 0.29.1 requires torch==2.14.1, but you have torch 2.13.0 which is incompatible."]
    assert install.filter_pip_output(other) == (other, False)


def _run_main(monkeypatch, *, cv2: bool = True, controlnet_aux: bool = True, mediapipe_state: str = "ok",
              missing: dict | None = None):
    """install.main() with pip and the fresh-interpreter probes replaced; returns pip's argument lists."""
    calls = []
    usable = {"import cv2": cv2, install.DETECTORS[0][2]: controlnet_aux}
    monkeypatch.setattr(install, "runs", lambda code: usable[code])
    monkeypatch.setattr(install, "python_says",
                        lambda code, *args, check=False: mediapipe_state if code == install.PROBE else "\n".join((missing or {})[args[0]]))
    monkeypatch.setattr(install, "pip_install", lambda args: calls.append(list(args)))
    assert install.main() == 0
    return calls


def test_official_mediapipe_with_only_its_missing_dependencies_less_cv2_and_audio(monkeypatch):
    missing = {"mediapipe": ["absl-py~=2.3", "opencv-contrib-python", "sounddevice~=0.5", "flatbuffers~=25.9"]}
    calls = _run_main(monkeypatch, mediapipe_state="cannot be imported (ModuleNotFoundError: No module named 'mediapipe')",
                      missing=missing)
    assert calls == [["--no-deps", "mediapipe"], ["absl-py~=2.3", "flatbuffers~=25.9"]]


def test_controlnet_aux_without_its_opencv_and_opencv_only_when_no_cv2(monkeypatch):
    missing = {"controlnet-aux": ["timm", "opencv-python-headless", "einops"]}
    calls = _run_main(monkeypatch, controlnet_aux=False, missing=missing)
    assert calls == [["--no-deps", "controlnet-aux==0.0.10"], ["timm", "einops"]]
    calls = _run_main(monkeypatch, cv2=False, controlnet_aux=False, missing=missing)
    assert calls == [["opencv-python-headless"], ["--no-deps", "controlnet-aux==0.0.10"], ["timm", "einops"]]


def test_what_works_is_left_alone(monkeypatch):
    assert _run_main(monkeypatch) == []


def test_a_mediapipe_without_either_api_is_left_alone(monkeypatch, capsys):
    """Another pack pinned an odd build: the pack neither replaces nor downgrades it, and says so."""
    assert _run_main(monkeypatch, mediapipe_state="mediapipe 0.8.1 has neither API (ImportError: ...)") == []
    assert "left as it is" in capsys.readouterr().out


def test_the_probe_and_the_requirement_reader_run():
    """The snippets install.py runs in a fresh interpreter are valid Python that print what this
    environment has."""
    state = install.python_says(install.PROBE)
    assert state == "ok" or state.startswith(("cannot be imported", "mediapipe "))
    assert install.runs("import cv2") and not install.runs("raise SystemExit(1)")
    missing = install.missing_requirements("controlnet-aux")  # all installed in the test venv but its cv2
    assert all(install.requirement_name(line) not in install.LEFT_OUT for line in missing)
    with pytest.raises(subprocess.CalledProcessError):  # a reader that fails is an error, not "nothing missing"
        install.missing_requirements("no-such-distribution")
