"""Retargeting: put a target pose on the source person's body proportions.

PIDM draws the source person in whatever skeleton it is given. A target pose taken from somebody
else carries that person's limb lengths, so a tall source would be squashed into a short target's
skeleton (and the texture stretched). Retargeting keeps the target's *limb directions* and uses the
source's *bone lengths*:

1. The target is first fitted onto the source's canvas (:func:`fit_to_canvas`, aspect kept) when the
   canvases differ; directions do not change.
2. Walk the kinematic tree from the neck along ``LIMBS`` (each limb is listed parent first). Each
   target bone's unit direction is multiplied by the source's length of the same bone.
3. A bone the source lacks (an end missing in the source) keeps the target's length times the
   overall ratio ``sum(source bone lengths) / sum(target bone lengths)`` over the bones both have
   (falling back to the ratio of bounding-box heights, then 1).
4. The new figure is translated onto the source figure (``anchor``): ``"neck"`` puts its neck on
   the source's neck (default), ``"center"`` its bounding-box centre on the source's, ``"target"``
   leaves it at the target's own neck.

The joints present in the result are exactly those present in the target, with the target's
confidences, on the source's canvas. A target joint whose chain to the neck is broken (e.g. eyes with
the nose missing) is carried rigidly: its offset from the neck is scaled by the overall ratio. When
a neck is missing, the midpoint of the shoulders stands in for it (the neck stays missing in the
result). A zero-length target bone has no direction: its child lands on its parent.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .geometry import fit_to_canvas
from .keypoints import LIMBS, NECK, Pose, root_xy

ANCHORS = ("neck", "center", "target")


def bone_lengths(pose: Pose) -> np.ndarray:
    """float64 ``[17]`` length in pixels of each limb of ``LIMBS``; NaN where an end is missing."""
    a, b = np.array(LIMBS).T
    lengths = np.linalg.norm(pose.xy[a].astype(np.float64) - pose.xy[b], axis=1)
    return np.where(pose.present[a] & pose.present[b], lengths, np.nan)


def _root(pose: Pose) -> np.ndarray | None:
    return root_xy(pose.xy, pose.present)


def _bbox_center(pose: Pose) -> np.ndarray | None:
    box = pose.bbox()
    return None if box is None else np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])


def overall_ratio(source: Pose, target: Pose) -> float:
    """How much larger the source figure is than the target: summed lengths of the bones both poses
    have, else bounding-box heights, else 1."""
    source_lengths, target_lengths = bone_lengths(source), bone_lengths(target)
    common = np.isfinite(source_lengths) & np.isfinite(target_lengths)
    if common.any() and target_lengths[common].sum() > 0:
        return float(source_lengths[common].sum() / target_lengths[common].sum())
    source_box, target_box = source.bbox(), target.bbox()
    if source_box and target_box and target_box[3] > target_box[1] and source_box[3] > source_box[1]:
        return (source_box[3] - source_box[1]) / (target_box[3] - target_box[1])
    return 1.0


def _rebuild(target: Pose, lengths: np.ndarray, ratio: float) -> np.ndarray:
    """float64 ``[18, 2]`` joint positions with the target's directions and the given bone lengths
    (NaN length = target length × ratio), the root at the target's root. Rows of joints missing in
    the target are meaningless."""
    target_xy = target.xy.astype(np.float64)
    present = target.present
    root = _root(target)
    if root is None:
        # No neck and no shoulders: nothing to walk from; scale rigidly about the joints' centre.
        center = target_xy[present].mean(axis=0) if present.any() else np.zeros(2)
        return center + (target_xy - center) * ratio

    # The root counts as placed even when the neck itself is missing (shoulder midpoint stand-in).
    reference_xy = target_xy.copy()
    reference_xy[NECK] = root
    new_xy = target_xy.copy()
    new_xy[NECK] = root
    placed = np.zeros(len(present), dtype=bool)
    placed[NECK] = True
    for limb, (parent, child) in enumerate(LIMBS):
        if not (present[child] and placed[parent]):
            continue
        offset = reference_xy[child] - reference_xy[parent]
        target_length = float(np.hypot(*offset))
        length = lengths[limb] if np.isfinite(lengths[limb]) else target_length * ratio
        direction = offset / target_length if target_length > 0 else np.zeros(2)
        new_xy[child] = new_xy[parent] + direction * length
        placed[child] = True

    stray = present & ~placed
    new_xy[stray] = root + (target_xy[stray] - root) * ratio
    return new_xy


def _anchor_offset(new_pose: Pose, source: Pose, target: Pose, anchor: str) -> np.ndarray:
    """Translation that puts the rebuilt figure onto the source figure."""
    if anchor not in ANCHORS:
        raise ValueError(f"anchor must be one of {ANCHORS}, got {anchor!r}")
    if anchor == "target":
        return np.zeros(2)
    if anchor == "neck":
        new_root, source_root = _root(new_pose), _root(source)
        if new_root is not None and source_root is not None:
            return source_root - new_root
    # "center", or a neck missing on either side
    new_center, source_center = _bbox_center(new_pose), _bbox_center(source)
    if new_center is None or source_center is None:
        return np.zeros(2)
    return source_center - new_center


def _on_source_canvas(target: Pose, source: Pose) -> Pose:
    if (target.width, target.height) == (source.width, source.height):
        return target
    return fit_to_canvas(target, source.width, source.height)


def _with_xy(pose: Pose, xy: np.ndarray, width: int, height: int) -> Pose:
    keypoints = pose.keypoints.astype(np.float64)
    keypoints[:, :2] = xy
    return Pose(keypoints, width, height)


def retarget_pose(target: Pose, source: Pose, anchor: str = "neck") -> Pose:
    """The target pose on the source's body proportions, on the source's canvas (see module doc).

    ``target``: the pose to reach (its limb directions are kept). ``source``: the person whose bone
    lengths and position are used. ``anchor``: ``"neck"`` | ``"center"`` | ``"target"``.
    """
    target = _on_source_canvas(target, source)
    ratio = overall_ratio(source, target)
    new_xy = _rebuild(target, bone_lengths(source), ratio)
    rebuilt = _with_xy(target, new_xy, source.width, source.height)
    return _with_xy(rebuilt, new_xy + _anchor_offset(rebuilt, source, target, anchor), source.width, source.height)


def retarget_sequence(targets: Sequence[Pose], source: Pose, anchor: str = "neck") -> list[Pose]:
    """Retarget every frame of a motion so that it keeps moving through the canvas.

    Aligning each frame separately would pin the neck in place and erase a walk or a jump; instead
    the first frame is anchored as :func:`retarget_pose` does, and later frames move with the target's
    root (neck, else bounding-box centre) scaled by the overall ratio. One ratio (the median over the
    frames) is used for the whole sequence, so bones the source lacks do not flicker in length.
    """
    if not targets:
        raise ValueError("retarget_sequence: no target frames")
    targets = [_on_source_canvas(t, source) for t in targets]
    ratio = float(np.median([overall_ratio(source, t) for t in targets]))
    lengths = bone_lengths(source)

    def root_of(pose: Pose) -> np.ndarray | None:
        root = _root(pose)
        return root if root is not None else _bbox_center(pose)

    first = _with_xy(targets[0], _rebuild(targets[0], lengths, ratio), source.width, source.height)
    first_offset = _anchor_offset(first, source, targets[0], anchor)
    first_target_root, first_new_root = root_of(targets[0]), root_of(first)
    frames = []
    for index, target in enumerate(targets):
        new_xy = _rebuild(target, lengths, ratio)
        rebuilt = _with_xy(target, new_xy, source.width, source.height)
        target_root, new_root = root_of(target), root_of(rebuilt)
        if anchor == "target":
            offset = np.zeros(2)  # every frame stays at its own target neck
        elif index == 0:
            offset = first_offset
        elif target_root is None or new_root is None or first_target_root is None or first_new_root is None:
            offset = _anchor_offset(rebuilt, source, target, anchor)
        else:
            # Where frame 0's root went, plus this frame's root motion scaled to the source's size.
            wanted_root = first_new_root + first_offset + (target_root - first_target_root) * ratio
            offset = wanted_root - new_root
        frames.append(_with_xy(rebuilt, new_xy + offset, source.width, source.height))
    return frames
