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

A driving video is retargeted as one motion by :func:`retarget_motion` (anchor ``"motion"``): one
scale for the whole sequence, the driving actor's ground line on the source's ground line, and the
driving actor's path across the frame kept, scaled by that one scale.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .geometry import fit_to_canvas
from .keypoints import LIMBS, NECK, Pose, root_xy

# "motion" (appended: saved workflows store the others by name) places the figure as retarget_motion does.
ANCHORS = ("neck", "center", "target", "motion")
ANKLES = (10, 13)
# Per bone, the driving actor's length is this percentile over the frames that show the bone: a limb
# pointing at the camera looks shorter (never longer), so a high percentile is near its true length,
# while a quarter of the frames may still hold a wrong, too-long detection.
TYPICAL_LENGTH_PERCENTILE = 75.0
# The driving ground line is this percentile of the lower ankle's y over the frames: feet are on the
# ground in most frames and a jump lifts them (smaller y), while a fifth of the frames may hold a
# wrong, too-low ankle.
GROUND_PERCENTILE = 80.0


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
    lengths and position are used. ``anchor``: ``"neck"`` | ``"center"`` | ``"target"`` | ``"motion"``
    (feet on the source's ground, neck above the source's neck: :func:`retarget_motion` of one frame).
    """
    if anchor == "motion":
        return retarget_motion([target], source)[0]
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
    if anchor == "motion":
        return retarget_motion(targets, source)
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


# --------------------------------------------------------------------------------------------------
# a whole driving sequence as one motion


def typical_bone_lengths(poses: Sequence[Pose]) -> np.ndarray:
    """float64 ``[17]``: each limb's length over a sequence, the TYPICAL_LENGTH_PERCENTILE of the frames
    that show it (robust to foreshortened limbs and to frames without it); NaN for a limb no frame shows."""
    lengths = np.stack([bone_lengths(pose) for pose in poses]) if poses else np.full((1, len(LIMBS)), np.nan)
    typical = np.full(len(LIMBS), np.nan)
    for limb in range(len(LIMBS)):
        seen = lengths[:, limb][np.isfinite(lengths[:, limb])]
        if len(seen):
            typical[limb] = np.percentile(seen, TYPICAL_LENGTH_PERCENTILE)
    return typical


def motion_scale(targets: Sequence[Pose], source: Pose) -> float:
    """How much larger the source person is than the driving actor, one number for a whole sequence:
    summed source lengths over summed typical driving lengths (:func:`typical_bone_lengths`) of the
    limbs both show; else the ratio of bounding-box heights (the driving one the median over frames);
    else 1. ``targets`` must already be on the source's canvas."""
    source_lengths, driving_lengths = bone_lengths(source), typical_bone_lengths(targets)
    common = np.isfinite(source_lengths) & np.isfinite(driving_lengths)
    if common.any() and driving_lengths[common].sum() > 0:
        return float(source_lengths[common].sum() / driving_lengths[common].sum())
    heights = [box[3] - box[1] for box in (t.bbox() for t in targets) if box is not None and box[3] > box[1]]
    source_box = source.bbox()
    if heights and source_box is not None and source_box[3] > source_box[1]:
        return float((source_box[3] - source_box[1]) / np.median(heights))
    return 1.0


def _lowest_foot_y(xy: np.ndarray, present: np.ndarray) -> float | None:
    """y of the lower of the present ankles (y grows downwards), or None without ankles."""
    ankles = [a for a in ANKLES if present[a]]
    return float(max(xy[a, 1] for a in ankles)) if ankles else None


def _motion_point(pose: Pose) -> np.ndarray | None:
    """The point a figure is carried by: its root (neck, else shoulder midpoint), else the mean of its
    joints (the point :func:`_rebuild` keeps when it has to scale a root-less figure rigidly)."""
    root = _root(pose)
    if root is not None:
        return root
    return pose.xy[pose.present].astype(np.float64).mean(axis=0) if pose.present.any() else None


def retarget_motion(targets: Sequence[Pose], source: Pose) -> list[Pose]:
    """A driving motion (one pose per frame, e.g. from a video) on the source person's proportions.

    - every frame gets the source's bone lengths and the driving frame's limb directions (as
      :func:`retarget_pose`); bones the source lacks take the driving length times the scale below;
    - one scale for the whole sequence (:func:`motion_scale`), so nothing breathes from frame to frame;
    - root motion kept: the driving person's path across the frame, times that scale, starting at the
      source person's position (the first frame with joints puts its neck on the source's neck in x);
    - feet on the ground: the driving ground line (GROUND_PERCENTILE of the lower ankle's y) maps
      onto the source's (its lower ankle's y), and in each frame the figure's lower ankle goes where
      the driving lower ankle's height above its ground line, times the scale, puts it. Frames without
      ankles are placed like their neighbours that have them. When the source or the whole sequence has
      no ankle, the figure follows the driving root instead.

    A frame without joints (a video frame where the person was not found) comes back without joints;
    every frame comes back on the source's canvas with the driving frame's confidences.
    """
    if not targets:
        raise ValueError("retarget_motion: no target frames; connect a pose sequence")
    if not source.present.any():
        raise ValueError("retarget_motion: the source pose has no joint; use a pose in which the source person "
                         "was found")
    targets = [_on_source_canvas(t, source) for t in targets]
    shown = [i for i, t in enumerate(targets) if t.present.any()]
    frames = [Pose(np.zeros_like(t.keypoints), source.width, source.height) for t in targets]
    if not shown:
        return frames
    scale = motion_scale([targets[i] for i in shown], source)
    lengths = bone_lengths(source)

    # The plane map p -> anchor + (p - reference) * scale carries the driving motion onto the source.
    reference, anchor = _motion_point(targets[shown[0]]), _motion_point(source)
    placed = {}
    for i in shown:
        point = _motion_point(targets[i])
        placed[i] = _rebuild(targets[i], lengths, scale) + (anchor + (point - reference) * scale - point)

    # Vertical correction that puts the lower ankle on the mapped ground, where the frame shows one.
    source_ground = _lowest_foot_y(source.xy, source.present)
    feet = {i: _lowest_foot_y(targets[i].xy, targets[i].present) for i in shown}
    with_feet = [i for i in shown if feet[i] is not None]
    if source_ground is not None and with_feet:
        driving_ground = float(np.percentile([feet[i] for i in with_feet], GROUND_PERCENTILE))
        lift = [source_ground + (feet[i] - driving_ground) * scale
                - _lowest_foot_y(placed[i], targets[i].present) for i in with_feet]
        for i, dy in zip(shown, np.interp(shown, with_feet, lift)):
            placed[i][:, 1] += dy
    for i in shown:
        frames[i] = _with_xy(targets[i], placed[i], source.width, source.height)
    return frames
