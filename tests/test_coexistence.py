"""The pack installed beside comfyui_controlnet_aux, as ComfyUI-Manager installs both, in fresh venvs.

Two orders, each in its own new virtual environment (torch pinned to the test venv's versions, so pip
takes them from its cache):

- pack first (requirements.txt, then install.py), then comfyui_controlnet_aux's requirements
  (tests/fixtures/comfyui_controlnet_aux/): `pip check` passes and Pose From Image's detection works with
  the MediaPipe that ends up installed (before this test's change: AttributeError, mediapipe has no
  attribute 'solutions').
- comfyui_controlnet_aux first, then the pack: installing the pack changes the version of no package that
  was there (nothing downgraded, upgraded or pinned) and adds no OpenCV distribution (no second cv2);
  `pip check` then names only what is left out on purpose: controlnet-aux's declared
  opencv-python-headless, whose `cv2` the opencv-python already there provides.

Slow (several minutes, downloads from PyPI on a first run): marked ``slow``; CI runs it.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
CONTROLNET_AUX = REPO / "tests" / "fixtures" / "comfyui_controlnet_aux" / "requirements.txt"
OPENCV = {"opencv-python", "opencv-python-headless", "opencv-contrib-python", "opencv-contrib-python-headless"}
DETECT = r"""
import cv2, mediapipe
from pidm_core.pose.detect import detect_people
rgb = cv2.cvtColor(cv2.imread("tests/photos/messi5.jpg"), cv2.COLOR_BGR2RGB)
found = detect_people([rgb], backend="auto")[0]
print(mediapipe.__version__, int(found.pose.present.sum()), round(float((found.mask >= 0.5).mean()), 3))
"""


def _run(command: list, **kwargs) -> str:
    done = subprocess.run([str(part) for part in command], cwd=REPO, capture_output=True, text=True, timeout=1800,
                          **kwargs)
    assert done.returncode == 0, f"{command}\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    return done.stdout


class Venv:
    def __init__(self, folder: Path, constraints: Path):
        _run([sys.executable, "-m", "venv", folder])
        self.python = folder / "bin" / "python"
        self.constraints = constraints

    def pip_install(self, *args) -> None:
        _run([self.python, "-m", "pip", "install", "--disable-pip-version-check", "--progress-bar", "off",
              "-c", self.constraints, *args])

    def versions(self) -> dict[str, str]:
        listed = _run([self.python, "-m", "pip", "list", "--format", "json", "--disable-pip-version-check"])
        return {row["name"].lower().replace("_", "-"): row["version"] for row in json.loads(listed)}

    def install_pack(self) -> None:
        """As ComfyUI-Manager does: requirements.txt, then install.py with the same Python."""
        self.pip_install("-r", REPO / "requirements.txt")
        _run([self.python, REPO / "install.py"])


@pytest.fixture()
def constraints(tmp_path) -> Path:
    path = tmp_path / "constraints.txt"
    path.write_text("".join(f"{name}=={importlib.metadata.version(name)}\n" for name in ("torch", "torchvision")))
    return path


def test_pack_then_controlnet_aux_passes_pip_check_and_detects(tmp_path, constraints):
    venv = Venv(tmp_path / "venv", constraints)
    venv.install_pack()
    venv.pip_install("-r", CONTROLNET_AUX)
    _run([venv.python, "-m", "pip", "check", "--disable-pip-version-check"])
    version, joints, mask_share = _run([venv.python, "-c", DETECT], env=dict(os.environ, PYTHONPATH=str(REPO))).split()
    assert version.startswith("1.") and int(joints) >= 14 and 0.05 < float(mask_share) < 0.3


def test_controlnet_aux_then_pack_changes_nothing_that_was_there(tmp_path, constraints):
    venv = Venv(tmp_path / "venv", constraints)
    venv.pip_install("-r", CONTROLNET_AUX)
    before = venv.versions()
    venv.install_pack()
    after = venv.versions()
    changed = {name: (version, after.get(name)) for name, version in before.items() if after.get(name) != version}
    assert changed == {}
    added_opencv = (set(after) - set(before)) & OPENCV
    assert added_opencv == set(), f"the pack added a second OpenCV distribution: {added_opencv}"
    check = subprocess.run([venv.python, "-m", "pip", "check", "--disable-pip-version-check"], capture_output=True,
                           text=True, timeout=300)
    complaints = [line for line in check.stdout.splitlines() if line.strip()]
    assert all(line.startswith("controlnet-aux ") and "requires opencv-python-headless" in line
               for line in complaints), complaints
    _run([venv.python, "-c", DETECT], env=dict(os.environ, PYTHONPATH=str(REPO)))
