"""COCO-18 (OpenPose body) keypoint conventions shared by every pose module.

A pose is a float32 array ``[18, 3]`` of ``(x_px, y_px, confidence)`` on a canvas of known width and
height. A joint whose confidence is ``<= 0`` is missing: its coordinates mean nothing and are never
drawn, never treated as (0, 0).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

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


def empty_pose() -> np.ndarray:
    """A pose with every joint missing."""
    return np.zeros((NUM_JOINTS, 3), dtype=np.float32)


def visible(keypoints: np.ndarray) -> np.ndarray:
    """Boolean mask [18] of present joints."""
    return keypoints[:, 2] > 0


@dataclass
class Pose:
    """One person's COCO-18 keypoints on a canvas: ``keypoints`` float32 [18, 3] = (x_px, y_px,
    confidence), confidence <= 0 meaning missing; ``width`` × ``height`` is the canvas in pixels."""

    keypoints: np.ndarray
    width: int
    height: int

    def __post_init__(self) -> None:
        self.keypoints = np.asarray(self.keypoints, dtype=np.float32)
        if self.keypoints.shape != (NUM_JOINTS, 3):
            raise ValueError(f"pose keypoints must have shape (18, 3), got {self.keypoints.shape}")
        if self.width < 1 or self.height < 1:
            raise ValueError(f"pose canvas must be at least 1x1 pixels, got {self.width}x{self.height}")
