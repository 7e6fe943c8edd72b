"""Rigid and canvas transforms of a :class:`Pose`: flip, scale, translate, resize, fit.

Every function returns a new pose and leaves missing joints missing. Coordinates follow the cv2
convention of :class:`Pose` (pixel centres at integers). Joints may leave the canvas; nothing is
clipped here, drawing clips.
"""

from __future__ import annotations

import numpy as np

from .keypoints import FLIP_PERMUTATION, Pose


def _map_present(pose: Pose, xy_new: np.ndarray, width: int | None = None, height: int | None = None) -> Pose:
    """Pose with new coordinates for the present joints (confidences kept) on an optional new canvas."""
    keypoints = pose.keypoints.copy()
    present = pose.present
    keypoints[present, :2] = xy_new[present]
    return Pose(keypoints, pose.width if width is None else width, pose.height if height is None else height)


def flip_horizontal(pose: Pose) -> Pose:
    """Mirror left↔right as ``np.fliplr`` mirrors the image: ``x → width − 1 − x``, and swap every
    left joint with its right twin (FLIP_PERMUTATION), so a flipped right arm is still called right
    from the person's point of view. Flipping twice gives the same pose back."""
    flipped = pose.keypoints[list(FLIP_PERMUTATION)].copy()
    present = flipped[:, 2] > 0
    flipped[present, 0] = (pose.width - 1) - flipped[present, 0]
    return Pose(flipped, pose.width, pose.height)


def translate_pose(pose: Pose, dx_px: float, dy_px: float) -> Pose:
    """Shift every present joint by ``(dx_px, dy_px)``; the canvas stays."""
    return _map_present(pose, pose.xy + np.float32([dx_px, dy_px]))


def scale_pose(pose: Pose, factor: float, center_px: tuple[float, float] | None = None) -> Pose:
    """Scale the figure by ``factor`` about ``center_px`` (default: the centre of its joints' bounding
    box), on the same canvas."""
    if not factor > 0:
        raise ValueError(f"scale factor must be > 0, got {factor}")
    if center_px is None:
        box = pose.bbox()
        if box is None:
            return pose.with_keypoints(pose.keypoints)
        center_px = ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)
    center = np.float32(center_px)
    return _map_present(pose, (pose.xy - center) * np.float32(factor) + center)


def resize_canvas(pose: Pose, width: int, height: int) -> Pose:
    """Stretch the pose with its canvas to ``width × height`` (x and y scaled independently, the
    aspect ratio is NOT kept). This is what the official loader does when it maps DeepFashion
    keypoints from the 176×256 image to the 256×256 network canvas: ``x·W/w``, ``y·H/h``."""
    scale = np.float32([width / pose.width, height / pose.height])
    return _map_present(pose, pose.xy * scale, width, height)


def fit_to_canvas(pose: Pose, width: int, height: int) -> Pose:
    """Place the pose's whole canvas inside a ``width × height`` canvas, keeping the aspect ratio and
    centring it (letterbox): the same mapping as resizing the photo to fit and padding the borders.

    scale ``s = min(width / w, height / h)``; ``x' = x·s + (width − w·s)/2``, likewise for y.
    """
    scale = min(width / pose.width, height / pose.height)
    offset = np.float32([(width - pose.width * scale) / 2, (height - pose.height * scale) / 2])
    return _map_present(pose, pose.xy * np.float32(scale) + offset, width, height)
