"""Joint sets and raw keypoint arrays: other skeletons remapped to COCO-18, and ``[18, 2|3]`` arrays
to and from :class:`~pidm_core.pose.keypoints.Pose`.

Joint sets other than COCO-18 are converted: OpenPose BODY_25, COCO-17 (MS-COCO, MMPose, YOLO) and
MediaPipe's 33 landmarks. Raw arrays are ``[N, 3]`` of ``(x, y, confidence)``; confidence <= 0 = missing.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .keypoints import NUM_JOINTS, Pose

# COCO-18 joint i is taken from joint BODY25_TO_COCO18[i] of BODY_25 (which adds mid-hip at 8, feet 19-24).
BODY25_TO_COCO18 = (0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18)
# COCO-17 has no neck (synthesised from the shoulders) and lists left before right.
COCO17_TO_COCO18 = (0, None, 6, 8, 10, 5, 7, 9, 12, 14, 16, 11, 13, 15, 2, 1, 4, 3)
COCO17_SHOULDERS = (5, 6)
COCO18_TO_COCO17 = tuple(COCO17_TO_COCO18.index(j) for j in range(17))  # the way back (the neck is dropped)
COCO17_VALUES = 51  # 17 joints of (x, y, visibility)
MEDIAPIPE33_TO_COCO18 = (0, None, 12, 14, 16, 11, 13, 15, 24, 26, 28, 23, 25, 27, 5, 2, 8, 7)
MEDIAPIPE33_SHOULDERS = (11, 12)


# --------------------------------------------------------------------------------------------------
# joint-set conversions on raw arrays [N, 3] of (x, y, confidence); confidence <= 0 = missing


def _remap(joints: np.ndarray, table: Sequence[int | None], shoulders: tuple[int, int] | None) -> np.ndarray:
    """COCO-18 ``[18, 3]`` from another joint set via an index table; the neck (None) is the midpoint
    of the two shoulders with the lower of their confidences, and missing unless both are present."""
    joints = np.asarray(joints, dtype=np.float64)
    out = np.zeros((NUM_JOINTS, 3), dtype=np.float64)
    for i, j in enumerate(table):
        if j is not None:
            out[i] = joints[j]
    if shoulders is not None:
        a, b = joints[list(shoulders)]
        if a[2] > 0 and b[2] > 0:
            out[1] = ((a[0] + b[0]) / 2, (a[1] + b[1]) / 2, min(a[2], b[2]))
    return out


def coco18_from_body25(joints: np.ndarray) -> np.ndarray:
    """OpenPose BODY_25 ``[25, 3]`` → COCO-18 ``[18, 3]`` (drops mid-hip and the six foot points)."""
    return _remap(_check_joints(joints, 25, "BODY_25 keypoints"), BODY25_TO_COCO18, None)


def coco18_from_coco17(joints: np.ndarray) -> np.ndarray:
    """MS-COCO 17 ``[17, 3]`` → COCO-18 ``[18, 3]``; neck = midpoint of the shoulders when both are present."""
    return _remap(_check_joints(joints, 17, "COCO-17 keypoints"), COCO17_TO_COCO18, COCO17_SHOULDERS)


def coco18_from_mediapipe33(landmarks: np.ndarray) -> np.ndarray:
    """MediaPipe Pose ``[33, 3]`` of ``(x, y, visibility)`` → COCO-18 ``[18, 3]``; neck = shoulder midpoint.

    Coordinates pass through unchanged: scale MediaPipe's normalised landmarks to pixels first.
    """
    return _remap(_check_joints(landmarks, 33, "MediaPipe landmarks"), MEDIAPIPE33_TO_COCO18, MEDIAPIPE33_SHOULDERS)


def _check_joints(joints: np.ndarray, count: int, name: str) -> np.ndarray:
    joints = np.asarray(joints, dtype=np.float64)
    if joints.ndim != 2 or joints.shape[0] != count or joints.shape[1] < 3:
        raise ValueError(f"{name} must have shape ({count}, 3) (x, y, confidence), got {joints.shape}")
    return joints[:, :3]


# --------------------------------------------------------------------------------------------------
# numpy arrays


def apply_threshold(joints: np.ndarray, threshold: float) -> np.ndarray:
    joints = np.array(joints, dtype=np.float64)
    marker = (joints[:, 0] == -1) & (joints[:, 1] == -1)
    joints[marker | (joints[:, 2] < threshold)] = 0.0
    return joints


def pose_from_array(
    keypoints: np.ndarray, width: int, height: int, threshold: float = 0.0, name: str = "keypoint array"
) -> Pose:
    """Pose from ``[18, 2]`` pixel ``(x, y)`` with ``-1`` = missing (official layout; either coordinate
    at -1 marks the joint missing) or ``[18, 3]`` ``(x, y, confidence)``, on a ``width × height`` canvas."""
    keypoints = np.asarray(keypoints, dtype=np.float64)
    if keypoints.shape == (NUM_JOINTS, 2):
        missing = (keypoints == -1).any(axis=1)
        keypoints = np.concatenate([keypoints, (~missing)[:, None].astype(np.float64)], axis=1)
    elif keypoints.shape != (NUM_JOINTS, 3):
        raise ValueError(f"{name}: expected shape (18, 2) with -1 = missing or (18, 3) (x, y, confidence), got {keypoints.shape}")
    return Pose(apply_threshold(keypoints, threshold), width, height)


def pose_to_array(pose: Pose, with_confidence: bool = False) -> np.ndarray:
    """float32 ``[18, 2]`` with ``-1`` for missing joints (official layout), or ``[18, 3]`` with
    confidence 0 for missing joints when ``with_confidence``."""
    if with_confidence:
        return pose.keypoints.copy()
    xy = pose.keypoints[:, :2].copy()
    xy[~pose.present] = -1.0
    return xy
