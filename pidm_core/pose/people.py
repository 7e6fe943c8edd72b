"""Every person in the frames of a video: COCO-18 joints per person, per frame.

:func:`open_people_detector` opens one detector for a whole video and gives a callable
``rgb uint8 [H, W, 3] -> list of float32 [18, 3]`` (x_px, y_px, confidence in the frame's own pixels).
Unlike :func:`~pidm_core.pose.detect.detect_poses` it finds several people per frame, so that a tracker
can tell the person it follows from someone walking past, and its cost per frame is bounded:

* Frames larger than ``detect_side`` (longest side, default 640) are shrunk before detection and the
  joints scaled back; MediaPipe looks at a 256 px crop of each person anyway, so 720p or 4K frames
  cost what a 640 px frame costs and give the same joints.
* ``"mediapipe"``: MediaPipe Pose (Tasks API) with ``num_poses = max_people``, by default in its video
  mode (``video_mode=True``): each frame starts from the people of the frame before, and the person
  detector runs again only while fewer than ``max_people`` are followed. On the synthetic driving videos
  it found the person in more frames than the image mode (which detects every frame afresh) and was
  faster with two people in view (benchmarks/video_poses.py, docs/video_poses.md). The legacy API
  finds one person at most.
* ``"openpose"``: controlnet_aux's OpenPose body network (every person, natively), where its weights are
  found as :mod:`.detect` finds them; much slower on a CPU.
* ``"auto"``: as :func:`~pidm_core.pose.detect.resolve_backend` decides for photos (openpose when its
  weights are there, else mediapipe), so one setting means the same thing on both nodes.

A joint is kept when its confidence is >= ``threshold`` and it lies on the frame; a person is kept when
at least one limb has both ends (as for photos); at most ``max_people`` are returned, largest first.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Callable, Iterator, Sequence

import cv2
import numpy as np

from . import mediapipe_pose
from .detect import (
    PoseDetectorUnavailableError,
    _keep_visible,
    _load_openpose_body,
    _openpose_people,
    _openpose_weights_path,
    has_limb,
    resolve_backend,
)
from .formats import coco18_from_mediapipe33

DEFAULT_MAX_PEOPLE = 2  # the followed person and one other: enough to tell them apart at a crossing
MAX_PEOPLE = 10
DEFAULT_DETECT_SIDE = 640
DEFAULT_THRESHOLD = 0.3
DEFAULT_VIDEO_MODE = True  # measured: more people found and faster with two in view (docs/video_poses.md)

PeopleDetector = Callable[[np.ndarray], "list[np.ndarray]"]


def detection_scale(width: int, height: int, detect_side: int) -> float:
    """The factor (<= 1) a ``width × height`` frame is shrunk by before detection."""
    return min(1.0, detect_side / max(width, height))


def shrink_for_detection(rgb: np.ndarray, detect_side: int) -> tuple[np.ndarray, float]:
    """``(frame, scale)``: the frame shrunk so its longest side is at most ``detect_side`` (INTER_AREA),
    and the factor applied (1.0 when it was small enough)."""
    height, width = rgb.shape[:2]
    scale = detection_scale(width, height, detect_side)
    if scale >= 1.0:
        return rgb, 1.0
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA), scale


def _checked(value: object, name: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) or not (
            low <= float(value) <= high):
        raise ValueError(f"{name} must be a number from {low:g} to {high:g}, got {value!r}")
    return float(value)


def _check_frame(rgb: np.ndarray) -> np.ndarray:
    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3 or min(rgb.shape[:2]) < 1:
        raise ValueError(f"a video frame must be RGB uint8 [H, W, 3], got {rgb.dtype} {rgb.shape}")
    return rgb


@contextlib.contextmanager
def _raw_detector(name: str, max_people: int, openpose_dirs, allow_download: bool, device,
                  video_mode: bool, frame_rate: float) -> Iterator[Callable[[np.ndarray], list]]:
    """A callable ``rgb -> raw people [18, 3]`` (px of that rgb, raw scores) for a resolved backend."""
    if name == "openpose":
        body = _load_openpose_body(_openpose_weights_path(openpose_dirs, allow_download), device)
        yield lambda rgb: _openpose_people(body, rgb)
        return
    try:
        opened = mediapipe_pose.open_pose_people(max_people, video=video_mode)
    except ImportError as error:
        raise PoseDetectorUnavailableError(f"the mediapipe backend cannot run: {error}") from error
    with opened as run:
        clock = {"frames": 0}

        def detect(rgb: np.ndarray) -> list:
            clock["frames"] += 1  # video mode needs growing timestamps (its own smoothing reads them)
            return [coco18_from_mediapipe33(landmarks) for landmarks in run(rgb, round(clock["frames"] * 1000 / frame_rate))]

        yield detect


@contextlib.contextmanager
def open_people_detector(
    backend: str = "auto",
    max_people: int = DEFAULT_MAX_PEOPLE,
    threshold: float = DEFAULT_THRESHOLD,
    *,
    detect_side: int = DEFAULT_DETECT_SIDE,
    openpose_dirs: Sequence[str | Path] = (),
    allow_download: bool = False,
    device: object | None = None,
    video_mode: bool = DEFAULT_VIDEO_MODE,
    frame_rate: float = 25.0,
) -> Iterator[PeopleDetector]:
    """``with open_people_detector() as detect: people = detect(rgb)`` for the frames of one video.

    ``people``: up to ``max_people`` float32 ``[18, 3]`` arrays (x_px, y_px, confidence; 0 = missing) in
    the pixels of ``rgb``, largest first; an empty list when nobody is found. ``backend``: ``"auto"`` |
    ``"mediapipe"`` | ``"openpose"`` (module doc). ``threshold``: minimum joint confidence (0..1).
    ``detect_side``: frames with a longer side are shrunk to it for detection (>= 64). ``video_mode``:
    MediaPipe's video running mode (follows the previous frame's people), fed one frame every
    1/``frame_rate`` seconds.
    Raises ValueError for bad settings, :class:`PoseDetectorUnavailableError` when no backend can run.
    """
    if isinstance(max_people, bool) or not isinstance(max_people, (int, np.integer)) or not (
            1 <= max_people <= MAX_PEOPLE):
        raise ValueError(f"max_people must be a whole number from 1 to {MAX_PEOPLE}, got {max_people!r}")
    threshold = _checked(threshold, "threshold", 0.0, 1.0)
    if isinstance(detect_side, bool) or not isinstance(detect_side, (int, np.integer)) or detect_side < 64:
        raise ValueError(f"detect_side must be a whole number of pixels >= 64, got {detect_side!r}")
    name = resolve_backend(backend, openpose_dirs)
    if not (isinstance(frame_rate, (int, float, np.integer, np.floating)) and 0 < float(frame_rate) < 1000):
        raise ValueError(f"frame_rate must be a positive number of frames per second, got {frame_rate!r}")
    with _raw_detector(name, int(max_people), openpose_dirs, allow_download, device, video_mode,
                       float(frame_rate)) as raw:

        def detect(rgb: np.ndarray) -> list[np.ndarray]:
            rgb = _check_frame(rgb)
            height, width = rgb.shape[:2]
            small, scale = shrink_for_detection(rgb, int(detect_side))
            people = []
            for joints in raw(small):
                joints = np.array(joints, dtype=np.float64)
                joints[:, :2] = (joints[:, :2] + 0.5) / scale - 0.5  # pixel centres map to pixel centres
                pose = _keep_visible(joints, width, height, threshold)
                if has_limb(pose):
                    people.append(pose)
            people.sort(key=lambda p: -p.bbox_area())
            return [p.keypoints.copy() for p in people[:max_people]]

        detect.backend = name  # type: ignore[attr-defined]  (the backend auto chose, for reports)
        yield detect
