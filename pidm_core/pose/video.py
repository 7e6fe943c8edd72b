"""Poses from the frames of a video: one person, followed, with gaps filled and the motion smoothed.

:func:`poses_from_frames` runs the people detector (:mod:`.people`) on each frame as it comes, hands
the people to the tracker (:mod:`.track`), and keeps only the followed person's joints: the frames
themselves are dropped as soon as they are seen, so memory does not grow with the frame size and grows
with the length only by 216 bytes per frame. After the last frame the gaps are filled and the joints
smoothed (:mod:`.smooth`).
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from .keypoints import Pose
from .people import (
    DEFAULT_DETECT_SIDE,
    DEFAULT_MAX_PEOPLE,
    DEFAULT_THRESHOLD,
    DEFAULT_VIDEO_MODE,
    open_people_detector,
)
from .smooth import DEFAULT_METHOD, DEFAULT_STRENGTH, smooth_keypoints
from .track import LONG_GAPS, PersonTracker

DEFAULT_MAX_GAP_S = 1.0  # longest gap interpolated, in seconds of the frames given (25 frames at 25 fps)


@dataclass(frozen=True)
class VideoPoses:
    """The followed person's pose in every frame given.

    ``poses``: one :class:`Pose` per frame (canvas = frame size); ``frame_indices``: each pose's frame
    index in the video; ``filled``: positions in ``poses`` where the person was not found and the pose
    was interpolated from its neighbours; ``held``: positions of longer gaps given the nearest pose
    seen; ``empty``: positions left with no joints (``long_gaps="empty"``); ``found``: positions where
    the person was detected; ``frame_rate``: frames per second of ``poses``; ``backend``: the detector
    that ran; ``chosen_at``: position where the person was chosen."""

    poses: list[Pose]
    frame_indices: list[int]
    filled: list[int]
    held: list[int]
    empty: list[int]
    found: list[int]
    frame_rate: Fraction | float
    backend: str
    chosen_at: int

    def summary(self) -> str:
        """One line for a log or a node's text output."""
        total = len(self.poses)
        parts = [f"{total} frame(s), person found in {len(self.found)}, chosen at frame {self.frame_indices[self.chosen_at]}"]
        for label, positions in (("filled", self.filled), ("held (long gaps)", self.held), ("empty", self.empty)):
            if positions:
                parts.append(f"{label}: {_ranges(positions, self.frame_indices)}")
        return "; ".join(parts)


def _ranges(positions: Sequence[int], indices: Sequence[int]) -> str:
    """Runs of consecutive positions as video frame indices: ``"12-28, 70"`` (at most 12 runs shown)."""
    runs: list[list[int]] = []
    for p in positions:
        if runs and p == runs[-1][1] + 1:
            runs[-1][1] = p
        else:
            runs.append([p, p])
    shown = [f"{indices[a]}-{indices[b]}" if b > a else f"{indices[a]}" for a, b in runs[:12]]
    return ", ".join(shown) + (f" and {len(runs) - 12} more" if len(runs) > 12 else "")


def default_max_gap(frame_rate: float) -> int:
    """Frames in :data:`DEFAULT_MAX_GAP_S` at ``frame_rate``."""
    return max(1, int(round(DEFAULT_MAX_GAP_S * float(frame_rate))))


def poses_from_frames(
    frames: Iterable[tuple[int, np.ndarray]],
    *,
    width: int,
    height: int,
    frame_rate: Fraction | float,
    backend: str = "auto",
    person: int | str = "largest",
    smoothing: float = DEFAULT_STRENGTH,
    smoothing_method: str = DEFAULT_METHOD,
    max_gap: int | None = None,
    long_gaps: str = "hold",
    threshold: float = DEFAULT_THRESHOLD,
    max_people: int = DEFAULT_MAX_PEOPLE,
    detect_side: int = DEFAULT_DETECT_SIDE,
    video_mode: bool = DEFAULT_VIDEO_MODE,
    workers: int | None = None,
    callback: Callable[[int, int | None], None] | None = None,
    total: int | None = None,
    name: str = "video",
    openpose_dirs: Sequence[str | Path] = (),
    allow_download: bool = False,
    detector: Callable[[np.ndarray], list] | None = None,
) -> VideoPoses:
    """The followed person's poses in ``frames``: ``(index in the video, RGB uint8 [height, width, 3])``
    pairs, as :func:`pidm_core.video.read.read_frames` yields them.

    ``frame_rate``: frames per second of the frames as given (the video's rate over any frame step).
    ``backend``: ``"auto"`` | ``"mediapipe"`` | ``"openpose"``. ``person``: ``"largest"`` or a 0-based
    index counted left to right, chosen once at the first frame showing people (:mod:`.track`).
    ``smoothing``: strength 0 (off) .. 1 of ``smoothing_method`` (``"savgol"`` | ``"one_euro"``).
    ``max_gap``: longest run of frames without the person that is interpolated (default
    :data:`DEFAULT_MAX_GAP_S` seconds); longer gaps are held at the nearest pose seen
    (``long_gaps="hold"``) or left empty (``"empty"``). ``threshold``: minimum joint confidence.
    ``max_people``: people detected per frame (the person and whoever may cross them).
    ``detect_side``: frames are shrunk to this longest side for detection. ``video_mode``: MediaPipe's
    video running mode and ``workers``, the frames detected at once (:func:`~.people.open_people_detector`;
    at most ``workers`` frames are held). ``callback(done, total)``
    after each frame; an exception raised there stops the run and propagates. ``name``: the video's
    name in error messages. ``detector``: a people detector to use instead of opening one (a callable
    like :func:`~.people.open_people_detector` gives; ``backend`` and the detection settings are unused).

    Raises ValueError naming the video when a frame is not ``height × width`` RGB uint8, when there are
    no frames, or when nobody (or not the requested person) is ever found.
    """
    width, height = _side(width, "width", name), _side(height, "height", name)
    rate = _rate(frame_rate, name)
    if max_gap is None:
        max_gap = default_max_gap(rate)
    # every setting is checked before the first frame is decoded
    if isinstance(max_gap, bool) or not isinstance(max_gap, (int, np.integer)) or max_gap < 0:
        raise ValueError(f"{name}: max_gap must be a whole number of frames >= 0, got {max_gap!r}")
    if long_gaps not in LONG_GAPS:
        raise ValueError(f"{name}: long_gaps must be one of {LONG_GAPS}, got {long_gaps!r}")
    smooth_keypoints(np.zeros((1, 18, 3)), rate, smoothing, smoothing_method)
    tracker = PersonTracker(width, height, rate, person)
    indices: list[int] = []
    opened = contextlib.nullcontext(detector) if detector is not None else open_people_detector(
        backend, max_people, threshold, detect_side=detect_side, openpose_dirs=openpose_dirs,
        allow_download=allow_download, video_mode=video_mode, frame_rate=rate, workers=workers)
    with opened as detect:
        checked = _checked_frames(frames, width, height, name)
        stream = detect.stream(checked) if hasattr(detect, "stream") else (
            (index, rgb, detect(rgb)) for index, rgb in checked)
        for index, rgb, people in stream:
            tracker.update(people, rgb)
            indices.append(int(index))
            if callback is not None:
                callback(len(indices), total)
    if not indices:
        raise ValueError(f"{name} has no frames to take poses from (check its start, length and frame step)")
    try:
        track = tracker.finish(max_gap, long_gaps)
    except ValueError as error:
        if "no person to follow" in str(error):
            raise ValueError(f"no person found in {name}: {str(error).split(': ', 1)[1]}; "
                             "use a video where the person is in view, a lower threshold, "
                             "or person 'largest'") from None
        raise
    keypoints = smooth_keypoints(track.keypoints, rate, smoothing, smoothing_method)
    poses = [Pose(k, width, height) for k in keypoints]
    return VideoPoses(poses, indices, track.filled, track.held, track.empty,
                      [int(i) for i in np.nonzero(track.found)[0]], frame_rate, getattr(detect, "backend", "custom"),
                      track.chosen_at)


def _checked_frames(frames: Iterable[tuple[int, np.ndarray]], width: int, height: int, name: str):
    for index, rgb in frames:
        rgb = np.asarray(rgb)
        if rgb.dtype != np.uint8 or rgb.shape != (height, width, 3):
            raise ValueError(f"{name}: frame {index} is {rgb.dtype} {rgb.shape}, expected RGB uint8 "
                             f"[{height}, {width}, 3] like the video's other frames")
        yield index, rgb


def _side(value: object, label: str, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name}: frame {label} must be a whole number of pixels >= 1, got {value!r}")
    return int(value)


def _rate(value: object, name: str) -> float:
    try:
        rate = float(value)  # Fraction, int or float
    except (TypeError, ValueError):
        rate = float("nan")
    if isinstance(value, bool) or not math.isfinite(rate) or rate <= 0:
        raise ValueError(f"{name}: frame rate must be a positive number of frames per second, got {value!r}")
    return rate
