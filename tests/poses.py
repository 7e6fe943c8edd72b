"""A plausible standing person, shared by tests that need a pose quickly."""

import numpy as np

from pidm_core.pose.keypoints import Pose


def standing_pose(width: int = 48, height: int = 64, dx: float = 0.0) -> Pose:
    """COCO-18 of a front-facing standing person filling a ``width`` × ``height`` canvas, every joint present,
    shifted ``dx`` pixels to the right."""
    u, v = width / 48, height / 64
    cx = width / 2 + dx
    joints = [(cx, 8), (cx, 16), (cx - 8 * u, 16), (cx - 10 * u, 26), (cx - 11 * u, 36), (cx + 8 * u, 16),
              (cx + 10 * u, 26), (cx + 11 * u, 36), (cx - 5 * u, 36), (cx - 5 * u, 48), (cx - 5 * u, 60),
              (cx + 5 * u, 36), (cx + 5 * u, 48), (cx + 5 * u, 60), (cx - 2 * u, 7), (cx + 2 * u, 7),
              (cx - 4 * u, 8), (cx + 4 * u, 8)]
    return Pose(np.array([(x, y * v, 1.0) for x, y in joints], np.float32), width, height)
