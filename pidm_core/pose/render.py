"""The official 20-channel PIDM pose map.

Reproduces the DeepFashion loader of ankanbhunia/PIDM (``data/fashion_data.py``,
``get_label_tensor``): channels 0–2 are the OpenPose skeleton drawn with cv2 on black (joint
circles, then limbs as filled ellipses blended 40/60 into the canvas), stored BGR→RGB swapped as the
official code does; channels 3–19 are, per limb, the L1 distance (cv2, 3×3 mask) to the filled limb
ellipse, divided by 3, clipped to 255, stored as uint8 and scaled to [0, 1]; a limb with a missing
end is 1.0 everywhere.

At 256 pixels of height every number equals the official code's. At other sizes, lengths scale with
``height / 256``: the joint radius and the stick width (rounded, at least 1 pixel) and the distance
divisor (3·height/256), so a pose map at 64×64 looks like a 256×256 map downsampled.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from .keypoints import COLORS, LIMBS, NUM_JOINTS

REFERENCE_HEIGHT = 256
JOINT_RADIUS = 4
STICK_WIDTH = 4
DISTANCE_DIVISOR = 3.0


def _scaled(length: float, height: int) -> int:
    return max(1, int(round(length * height / REFERENCE_HEIGHT)))


def render_pose_map(keypoints: np.ndarray, height: int, width: int) -> np.ndarray:
    """Pose map ``[20, height, width]`` float32 in [0, 1] from keypoints ``[18, 3]`` (x_px, y_px, conf).

    Joints with confidence <= 0 are missing. Coordinates are truncated to integers as the official
    code does; joints outside the canvas are drawn clipped by cv2.
    """
    keypoints = np.asarray(keypoints, dtype=np.float64)
    if keypoints.shape != (NUM_JOINTS, 3):
        raise ValueError(f"keypoints must have shape (18, 3) (x, y, confidence), got {keypoints.shape}")
    present = keypoints[:, 2] > 0
    if not np.isfinite(keypoints[present, :2]).all():
        raise ValueError("keypoints contain NaN or infinite coordinates for present joints")
    radius = _scaled(JOINT_RADIUS, height)
    stick = _scaled(STICK_WIDTH, height)
    divisor = DISTANCE_DIVISOR * height / REFERENCE_HEIGHT

    canvas = np.zeros((height, width, 3), dtype=np.uint8)
    for i in range(NUM_JOINTS):
        if present[i]:
            x, y = keypoints[i, :2]
            cv2.circle(canvas, (int(x), int(y)), radius, COLORS[i], thickness=-1)

    distance_maps = np.ones((len(LIMBS), height, width), dtype=np.float32)
    for i, (a, b) in enumerate(LIMBS):
        if not (present[a] and present[b]):
            continue
        (xa, ya), (xb, yb) = keypoints[a, :2], keypoints[b, :2]
        length = math.hypot(xa - xb, ya - yb)
        angle = math.degrees(math.atan2(ya - yb, xa - xb))
        polygon = cv2.ellipse2Poly(
            (int((xa + xb) / 2), int((ya + yb) / 2)), (int(length / 2), stick), int(angle), 0, 360, 1
        )
        limb_canvas = canvas.copy()
        cv2.fillConvexPoly(limb_canvas, polygon, COLORS[i])
        canvas = cv2.addWeighted(canvas, 0.4, limb_canvas, 0.6, 0)

        limb_mask = np.zeros((height, width), dtype=np.uint8)
        cv2.fillConvexPoly(limb_mask, polygon, 255)
        distance = cv2.distanceTransform(255 - limb_mask, cv2.DIST_L1, 3)
        # cv2 returns FLT_MAX where the limb lies off the canvas; clip before dividing to stay finite.
        distance_maps[i] = (np.minimum(distance, 255 * divisor) / divisor).astype(np.uint8) / np.float32(255.0)

    # The official loader draws RGB colours into a canvas it then converts BGR→RGB.
    skeleton = canvas[:, :, ::-1].transpose(2, 0, 1).astype(np.float32) / 255.0
    return np.concatenate([skeleton, distance_maps], axis=0)


def render_skeleton_image(keypoints: np.ndarray, height: int, width: int) -> np.ndarray:
    """RGB uint8 image ``[H, W, 3]`` of the skeleton in the usual OpenPose colours (for previews)."""
    skeleton = render_pose_map(keypoints, height, width)[:3]
    return (skeleton[::-1].transpose(1, 2, 0) * 255.0 + 0.5).astype(np.uint8)
