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

import collections
import contextlib
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

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
MAX_WORKERS = 8
DEFAULT_VIDEO_MODE = True  # measured: more people found and faster with two in view (docs/video_poses.md)


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
                  video_mode: bool, frame_rate: float) -> Iterator[Callable[[np.ndarray, int], list]]:
    """A callable ``(rgb, frame number) -> raw people [18, 3]`` (px of that rgb, raw scores) for a
    resolved backend; the frame number gives MediaPipe's video mode its timestamps."""
    if name == "openpose":
        body = _load_openpose_body(_openpose_weights_path(openpose_dirs, allow_download), device)
        yield lambda rgb, number: _openpose_people(body, rgb)
        return
    try:
        opened = mediapipe_pose.open_pose_people(max_people, video=video_mode)
    except ImportError as error:
        raise PoseDetectorUnavailableError(f"the mediapipe backend cannot run: {error}") from error
    with opened as run:
        yield lambda rgb, number: [coco18_from_mediapipe33(landmarks)
                                   for landmarks in run(rgb, round(number * 1000 / frame_rate))]


class PeopleDetector:
    """The people of video frames (module doc). ``detector(rgb)`` for one frame at a time;
    ``detector.stream(frames)`` for ``(index, rgb)`` pairs, giving ``(index, rgb, people)`` in order
    while up to :attr:`workers` frames are detected at once, each worker a model of its own (MediaPipe
    runs a frame on one core; in video mode each worker follows every ``workers``-th frame).
    :attr:`backend`: the backend that runs."""

    def __init__(self, backend: str, raws: list, detect_side: int, threshold: float, max_people: int):
        self.backend, self._raws = backend, raws
        self._detect_side, self._threshold, self._max_people = detect_side, threshold, max_people
        self._number = 0

    @property
    def workers(self) -> int:
        return len(self._raws)

    def _people(self, raw, rgb: np.ndarray, number: int) -> list[np.ndarray]:
        rgb = _check_frame(rgb)
        height, width = rgb.shape[:2]
        small, scale = shrink_for_detection(rgb, self._detect_side)
        people = []
        for joints in raw(small, number):
            joints = np.array(joints, dtype=np.float64)
            joints[:, :2] = (joints[:, :2] + 0.5) / scale - 0.5  # pixel centres map to pixel centres
            pose = _keep_visible(joints, width, height, self._threshold)
            if has_limb(pose):
                people.append(pose)
        people.sort(key=lambda p: -p.bbox_area())
        return [p.keypoints.copy() for p in people[:self._max_people]]

    def __call__(self, rgb: np.ndarray) -> list[np.ndarray]:
        self._number += 1
        return self._people(self._raws[0], rgb, self._number)

    def stream(self, frames: Iterable[tuple[int, np.ndarray]]) -> Iterator[tuple[int, np.ndarray, list]]:
        if self.workers == 1:
            for index, rgb in frames:
                yield index, rgb, self(rgb)
            return
        pending: collections.deque = collections.deque()
        with ThreadPoolExecutor(self.workers, thread_name_prefix="pidm-pose") as pool:
            try:
                for index, rgb in frames:
                    self._number += 1
                    raw = self._raws[self._number % self.workers]
                    pending.append((index, rgb, pool.submit(self._people, raw, rgb, self._number)))
                    if len(pending) == self.workers:  # the oldest is given before another frame is read,
                        done_index, done_rgb, future = pending.popleft()  # and before its worker gets one
                        yield done_index, done_rgb, future.result()
                while pending:
                    done_index, done_rgb, future = pending.popleft()
                    yield done_index, done_rgb, future.result()
            finally:
                for _, _, future in pending:
                    future.cancel()


MIN_WORKER_RATE = 10.0  # frames per second each video-mode worker must still see (below: one worker)


def default_workers(frame_rate: float | None = None, video_mode: bool = False) -> int:
    """Detection workers by default: two where two cores are free to the process (measured: nearly
    twice the frames per second on a 2-core CPU, docs/video_poses.md), else one. In video mode each
    worker follows every other frame, so two run only where each still sees :data:`MIN_WORKER_RATE`
    frames a second: a walker turning round at 12.5 fps (a 25 fps video read with frame step 2) was lost
    for 5 of 10 frames with two workers and found in all 10 with one (tests/host/test_video_poses_host.py)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if video_mode and frame_rate is not None and float(frame_rate) / 2 < MIN_WORKER_RATE:
        return 1
    return 2 if cores >= 2 else 1


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
    workers: int | None = None,
) -> Iterator[PeopleDetector]:
    """``with open_people_detector() as detect: people = detect(rgb)`` (or ``detect.stream(frames)``)
    for the frames of one video.

    ``people``: up to ``max_people`` float32 ``[18, 3]`` arrays (x_px, y_px, confidence; 0 = missing) in
    the pixels of ``rgb``, largest first; an empty list when nobody is found. ``backend``: ``"auto"`` |
    ``"mediapipe"`` | ``"openpose"`` (module doc). ``threshold``: minimum joint confidence (0..1).
    ``detect_side``: frames with a longer side are shrunk to it for detection (>= 64). ``video_mode``:
    MediaPipe's video running mode (follows the previous frame's people), fed one frame every
    1/``frame_rate`` seconds. ``workers``: models detecting frames at once in :meth:`PeopleDetector.stream`
    (default :func:`default_workers`; OpenPose always one).
    Raises ValueError for bad settings, :class:`PoseDetectorUnavailableError` when no backend can run.
    """
    if isinstance(max_people, bool) or not isinstance(max_people, (int, np.integer)) or not (
            1 <= max_people <= MAX_PEOPLE):
        raise ValueError(f"max_people must be a whole number from 1 to {MAX_PEOPLE}, got {max_people!r}")
    threshold = _checked(threshold, "threshold", 0.0, 1.0)
    if isinstance(detect_side, bool) or not isinstance(detect_side, (int, np.integer)) or detect_side < 64:
        raise ValueError(f"detect_side must be a whole number of pixels >= 64, got {detect_side!r}")
    if not (isinstance(frame_rate, (int, float, np.integer, np.floating)) and 0 < float(frame_rate) < 1000):
        raise ValueError(f"frame_rate must be a positive number of frames per second, got {frame_rate!r}")
    workers = default_workers(frame_rate, video_mode) if workers is None else workers
    if isinstance(workers, bool) or not isinstance(workers, (int, np.integer)) or not 1 <= workers <= MAX_WORKERS:
        raise ValueError(f"workers must be a whole number from 1 to {MAX_WORKERS}, got {workers!r}")
    name = resolve_backend(backend, openpose_dirs)
    workers = 1 if name == "openpose" else int(workers)
    with contextlib.ExitStack() as stack:
        raws = [stack.enter_context(_raw_detector(name, int(max_people), openpose_dirs, allow_download, device,
                                                  video_mode, float(frame_rate))) for _ in range(workers)]
        yield PeopleDetector(name, raws, int(detect_side), threshold, int(max_people))
