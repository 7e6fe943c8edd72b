"""A plausible standing person, shared by tests that need a pose quickly."""

import numpy as np

from pidm_core.pose.keypoints import Pose


def standing_pose(width: int = 48, height: int = 64) -> Pose:
    """COCO-18 of a standing person filling a ``width`` × ``height`` canvas, every joint present."""
    u, v = width / 48, height / 64
    cx = width / 2
    joints = [(cx, 8), (cx, 16), (cx - 8 * u, 16), (cx - 10 * u, 26), (cx - 11 * u, 36), (cx + 8 * u, 16),
              (cx + 10 * u, 26), (cx + 11 * u, 36), (cx - 5 * u, 36), (cx - 5 * u, 48), (cx - 5 * u, 60),
              (cx + 5 * u, 36), (cx + 5 * u, 48), (cx + 5 * u, 60), (cx - 2 * u, 7), (cx + 2 * u, 7),
              (cx - 4 * u, 8), (cx + 4 * u, 8)]
    return Pose(np.array([(x, y * v, 1.0) for x, y in joints], np.float32), width, height)
