"""COCO-18 (OpenPose body) keypoint conventions shared by every pose module.

A pose is a float32 array ``[18, 3]`` of ``(x_px, y_px, confidence)`` on a canvas of known width and
height; :class:`Pose` carries the two together. A joint whose confidence is ``<= 0`` is missing: its
coordinates mean nothing and are never drawn, never treated as (0, 0).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..checks import short_repr

JOINT_NAMES = (
    "nose", "neck",
    "right_shoulder", "right_elbow", "right_wrist",
    "left_shoulder", "left_elbow", "left_wrist",
    "right_hip", "right_knee", "right_ankle",
    "left_hip", "left_knee", "left_ankle",
    "right_eye", "left_eye", "right_ear", "left_ear",
)  # fmt: skip
NUM_JOINTS = len(JOINT_NAMES)

# The 17 limbs the official pose map draws, as 0-based joint index pairs (OpenPose order).
LIMBS = (
    (1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10),
    (1, 11), (11, 12), (12, 13), (1, 0), (0, 14), (14, 16), (0, 15), (15, 17),
)  # fmt: skip

# OpenPose palette, one colour per joint and per limb (limb i uses colour i).
COLORS = (
    (255, 0, 0), (255, 85, 0), (255, 170, 0), (255, 255, 0), (170, 255, 0), (85, 255, 0),
    (0, 255, 0), (0, 255, 85), (0, 255, 170), (0, 255, 255), (0, 170, 255), (0, 85, 255),
    (0, 0, 255), (85, 0, 255), (170, 0, 255), (255, 0, 255), (255, 0, 170), (255, 0, 85),
)  # fmt: skip

# Left/right swap used by horizontal flips.
FLIP_PERMUTATION = (0, 1, 5, 6, 7, 2, 3, 4, 11, 12, 13, 8, 9, 10, 15, 14, 17, 16)


# Largest canvas side accepted anywhere (ComfyUI's own MAX_RESOLUTION): canvas sizes come from
# widgets, files and other packs' POSE_KEYPOINT, and a pose is drawn on its canvas.
MAX_CANVAS_SIDE = 16384


def canvas_side(value: object, name: str) -> int:
    """``value`` as a canvas side in pixels: a finite whole number in 1..MAX_CANVAS_SIDE (an int, or a
    float such as 512.0); ValueError naming ``name`` otherwise (NaN, 1e309, "64px", 0, 12.5, True)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name} must be a whole number of pixels, got {_shown(value)} ({type(value).__name__})")
    if isinstance(value, (float, np.floating)) and not (math.isfinite(value) and float(value).is_integer()):
        raise ValueError(f"{name} must be a finite whole number of pixels, got {_shown(value)}")
    if not 1 <= value <= MAX_CANVAS_SIDE:
        raise ValueError(f"{name} must be between 1 and {MAX_CANVAS_SIDE} pixels, got {_shown(value)}")
    return int(value)


def _shown(value: object, limit: int = 40) -> str:
    """A short repr for errors (a 5000-digit int or a long string stays short)."""
    if isinstance(value, int) and value.bit_length() > 64:
        return f"a {value.bit_length()}-bit integer"
    return short_repr(value, limit)


def empty_pose() -> np.ndarray:
    """A pose with every joint missing."""
    return np.zeros((NUM_JOINTS, 3), dtype=np.float32)


def visible(keypoints: np.ndarray) -> np.ndarray:
    """Boolean mask [18] of present joints."""
    return keypoints[:, 2] > 0


@dataclass(eq=False)
class Pose:
    """One person's COCO-18 pose on a canvas.

    ``keypoints``: float32 ``[18, 3]`` of ``(x_px, y_px, confidence)``; x grows to the right, y grows
    downwards, (0, 0) is the centre of the top-left pixel (cv2 drawing convention). ``width`` and
    ``height`` are the canvas size in pixels; joints may lie outside it (drawing clips them).

    A joint is present when its confidence is > 0. Construction normalises the array: a copy is
    taken, and missing joints, including any joint whose x, y or confidence is NaN or infinite, become
    ``(0, 0, 0)`` so that stale coordinates can never leak into drawing or maths.
    """

    keypoints: np.ndarray
    width: int
    height: int

    def __post_init__(self) -> None:
        keypoints = np.array(self.keypoints, dtype=np.float32)
        if keypoints.shape != (NUM_JOINTS, 3):
            raise ValueError(f"Pose keypoints must have shape (18, 3) (x_px, y_px, confidence), got {keypoints.shape}")
        width = canvas_side(self.width, "Pose canvas width")
        height = canvas_side(self.height, "Pose canvas height")
        # NaN/inf coordinates are treated as "not detected" rather than an error: detectors and
        # interpolation can produce them for a single joint, and the rest of the pose is still usable.
        missing = ~np.isfinite(keypoints).all(axis=1) | ~(keypoints[:, 2] > 0)
        keypoints[missing] = 0.0
        self.keypoints = keypoints
        self.width = width
        self.height = height

    @property
    def present(self) -> np.ndarray:
        """Boolean mask [18] of present joints."""
        return self.keypoints[:, 2] > 0

    @property
    def xy(self) -> np.ndarray:
        """float32 [18, 2] pixel coordinates (meaningless, and zero, where a joint is missing)."""
        return self.keypoints[:, :2]

    def with_keypoints(self, keypoints: np.ndarray) -> "Pose":
        """A new pose on the same canvas."""
        return Pose(keypoints, self.width, self.height)

    def bbox(self) -> tuple[float, float, float, float] | None:
        """``(x_min, y_min, x_max, y_max)`` of present joints in pixels, or None when none is present."""
        xy = self.keypoints[self.present, :2]
        if len(xy) == 0:
            return None
        (x0, y0), (x1, y1) = xy.min(axis=0), xy.max(axis=0)
        return float(x0), float(y0), float(x1), float(y1)

    def bbox_area(self) -> float:
        """Area of the bounding box of present joints in px² (0 with fewer than two joints)."""
        box = self.bbox()
        return 0.0 if box is None else (box[2] - box[0]) * (box[3] - box[1])


NECK = 1
SHOULDERS = (2, 5)


def root_xy(xy: np.ndarray, present: np.ndarray) -> np.ndarray | None:
    """Root of the kinematic tree: the neck, else the midpoint of both shoulders (the neck is placed
    there by every COCO-18 convention), else None. ``xy`` [18, 2], ``present`` bool [18]."""
    if present[NECK]:
        return np.asarray(xy[NECK], dtype=np.float64)
    if present[list(SHOULDERS)].all():
        return np.asarray(xy[list(SHOULDERS)], dtype=np.float64).mean(axis=0)
    return None
