"""In-between poses, so that a graph can animate a person from a few key poses.

Two ways to blend pose ``a`` into pose ``b`` at ``t`` in (0, 1):

* ``"angular"`` (default): walk the kinematic tree from the neck (``LIMBS``, parent first); each
  bone's angle turns along the shorter arc and its length changes linearly, the neck moves in a
  straight line. An arm swinging from up to down sweeps round instead of shrinking through the
  shoulder, and a bone that has the same length at both ends keeps it in every frame.
* ``"linear"``: every joint moves in a straight line (can shorten limbs mid-way).

Missing joints: a joint missing in either end is missing in every in-between frame (nothing to
blend it from); the end frames themselves are the inputs, unchanged. Joints whose chain to the neck
is broken in either pose move linearly. Confidences blend linearly.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from .keypoints import LIMBS, NECK, Pose, root_xy

MODES = ("angular", "linear")


def _check_pair(a: Pose, b: Pose) -> None:
    if (a.width, a.height) != (b.width, b.height):
        raise ValueError(
            f"poses to interpolate must share a canvas, got {a.width}x{a.height} and {b.width}x{b.height}; "
            "bring one onto the other's canvas first (fit_to_canvas or resize_canvas)"
        )


def _angular_xy(xy_a: np.ndarray, xy_b: np.ndarray, present_a: np.ndarray, present_b: np.ndarray, t: float):
    """Positions and a 'placed' mask for the joints reachable from the root in both poses."""
    placed = np.zeros(len(xy_a), dtype=bool)
    new_xy = (1 - t) * xy_a + t * xy_b
    root_a, root_b = root_xy(xy_a, present_a), root_xy(xy_b, present_b)
    if root_a is None or root_b is None:
        return new_xy, placed
    # Parents are looked up with the neck replaced by the root, which may be the shoulder midpoint.
    ref_a, ref_b = xy_a.copy(), xy_b.copy()
    ref_a[NECK], ref_b[NECK] = root_a, root_b
    new_xy[NECK] = (1 - t) * root_a + t * root_b
    placed[NECK] = True
    both = present_a & present_b
    for parent, child in LIMBS:
        if not (both[child] and placed[parent]):
            continue
        offset_a, offset_b = ref_a[child] - ref_a[parent], ref_b[child] - ref_b[parent]
        angle_a, angle_b = math.atan2(offset_a[1], offset_a[0]), math.atan2(offset_b[1], offset_b[0])
        turn = (angle_b - angle_a + math.pi) % (2 * math.pi) - math.pi  # shorter arc, in [-π, π)
        angle = angle_a + t * turn
        length = (1 - t) * math.hypot(*offset_a) + t * math.hypot(*offset_b)
        new_xy[child] = new_xy[parent] + length * np.array([math.cos(angle), math.sin(angle)])
        placed[child] = True
    return new_xy, placed


def blend_poses(a: Pose, b: Pose, t: float, mode: str = "angular") -> Pose:
    """Pose between ``a`` (t = 0) and ``b`` (t = 1); ``t <= 0`` returns ``a``, ``t >= 1`` returns ``b``
    unchanged, otherwise only the joints present in both are present (see module doc)."""
    if mode not in MODES:
        raise ValueError(f"interpolation mode must be one of {MODES}, got {mode!r}")
    _check_pair(a, b)
    if t <= 0:
        return a.with_keypoints(a.keypoints)
    if t >= 1:
        return b.with_keypoints(b.keypoints)
    kp_a, kp_b = a.keypoints.astype(np.float64), b.keypoints.astype(np.float64)
    both = a.present & b.present
    keypoints = (1 - t) * kp_a + t * kp_b
    if mode == "angular":
        xy, placed = _angular_xy(kp_a[:, :2], kp_b[:, :2], a.present, b.present, t)
        keypoints[placed, :2] = xy[placed]
    keypoints[~both] = 0.0
    return a.with_keypoints(keypoints)


def interpolate_poses(a: Pose, b: Pose, n_frames: int, mode: str = "angular") -> list[Pose]:
    """``n_frames`` (>= 2) poses evenly spaced from ``a`` to ``b``, both ends included and equal to the
    inputs."""
    if n_frames < 2:
        raise ValueError(f"n_frames must be >= 2 (both end poses are included), got {n_frames}")
    return [blend_poses(a, b, float(t), mode) for t in np.linspace(0.0, 1.0, n_frames)]


def interpolate_sequence(keyframes: Sequence[Pose], frames_between: int, mode: str = "angular") -> list[Pose]:
    """Key poses with ``frames_between`` in-between frames inserted after each one but the last:
    ``(len(keyframes) − 1)·(frames_between + 1) + 1`` poses; the key poses appear unchanged."""
    if not keyframes:
        raise ValueError("interpolate_sequence: no key poses")
    if frames_between < 0:
        raise ValueError(f"frames_between must be >= 0, got {frames_between}")
    frames = [keyframes[0].with_keypoints(keyframes[0].keypoints)]
    for a, b in zip(keyframes[:-1], keyframes[1:]):
        frames.extend(interpolate_poses(a, b, frames_between + 2, mode)[1:])
    return frames


def resample_sequence(poses: Sequence[Pose], n_frames: int, mode: str = "angular") -> list[Pose]:
    """Retime a pose sequence to ``n_frames`` frames spanning the same motion (first and last frames
    kept); frames landing between two source frames are blended from them."""
    if not poses:
        raise ValueError("resample_sequence: no poses")
    if n_frames < 1:
        raise ValueError(f"n_frames must be >= 1, got {n_frames}")
    if n_frames == 1 or len(poses) == 1:
        return [poses[0].with_keypoints(poses[0].keypoints) for _ in range(n_frames)]
    frames = []
    for position in np.linspace(0.0, len(poses) - 1, n_frames):
        index = min(int(math.floor(position)), len(poses) - 2)
        frames.append(blend_poses(poses[index], poses[index + 1], float(position - index), mode))
    return frames
