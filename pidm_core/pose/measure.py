"""How big a person is and where their head and feet are, from COCO-18 joints (and a person mask).

Size: the stature (head top to sole, in pixels) is the larger of two measures: the extent from head top
to sole (read from the mask where one is given, else estimated from the joints; only when the feet are
seen and the person stands upright) and the longest body measure (torso, legs; arms and shoulders only
without those) divided by its share of the stature (:data:`BODY_SHARES`). Limbs only shorten in a 2-D
view, so the largest estimate is the least foreshortened one, and a crouching person keeps their size.
:mod:`pidm_core.framing` uses it to crop photos the way a model's training data framed people.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from .keypoints import Pose

# COCO-18 joint indices used here.
NOSE, NECK, R_SHOULDER, R_ELBOW, R_WRIST, L_SHOULDER, L_ELBOW, L_WRIST = 0, 1, 2, 3, 4, 5, 6, 7
R_HIP, R_KNEE, R_ANKLE, L_HIP, L_KNEE, L_ANKLE = 8, 9, 10, 11, 12, 13
R_EYE, L_EYE, R_EAR, L_EAR = 14, 15, 16, 17
HIPS, ANKLES, KNEES = (R_HIP, L_HIP), (R_ANKLE, L_ANKLE), (R_KNEE, L_KNEE)

# Body measures as a share of the stature (head top to sole), the 90th percentile over upright figures
# of the synthetic generator (pidm_core.data.synthetic; medians 0.30, 0.475, 0.243, 0.232, 0.318,
# 0.21), close to human anthropometry (Drillis & Contini: neck to hip ≈ 0.30, hip to ankle ≈ 0.49).
# The upper percentile: a 2-D view only shortens a measure, so the largest estimate should not overshoot.
BODY_SHARES = {
    "torso": 0.315,  # neck to the middle of the hips
    "leg": 0.495,  # hip → knee → ankle, one side
    "thigh": 0.255,
    "shin": 0.245,
    "arm": 0.34,  # shoulder → elbow → wrist, one side (used only without torso and legs)
    "shoulders": 0.255,  # between the shoulder joints (likewise)
}
HEAD_ABOVE_NECK = 0.19  # head top above the neck joint, share of the stature
SOLE_BELOW_ANKLE = 0.055  # sole below the ankle joint
UPRIGHT_EXTENT = 0.85  # head-to-sole extent ≥ this × the body-measure stature: the person stands upright

MIN_PERSON_PX = 8.0  # a person shorter than this (stature, photo pixels) cannot be framed usefully


@dataclass(frozen=True)
class BodyMeasure:
    """A person's size and anchors in one image's pixels; None where the pose cannot say."""

    stature: float  # head top to sole
    center_x: float  # the body's centre line
    head_top: Optional[float]  # y of the head top
    sole: Optional[float]  # y of the soles (None when no ankle is seen)
    from_extent: bool  # stature measured head to sole (upright, feet seen) rather than from body parts
    upside_down: bool = False  # ankles above the neck: placed by the topmost joint, no soles


def _point(pose: Pose, index: int) -> Optional[np.ndarray]:
    return pose.keypoints[index, :2].astype(np.float64) if pose.present[index] else None


def _mean_point(pose: Pose, indices: Sequence[int]) -> Optional[np.ndarray]:
    points = [pose.keypoints[i, :2].astype(np.float64) for i in indices if pose.present[i]]
    return np.mean(points, axis=0) if points else None


def _neck(pose: Pose) -> Optional[np.ndarray]:
    if pose.present[NECK]:
        return _point(pose, NECK)
    if pose.present[R_SHOULDER] and pose.present[L_SHOULDER]:
        return _mean_point(pose, (R_SHOULDER, L_SHOULDER))
    return None


def _distance(a, b) -> float:
    return float(np.hypot(*(np.asarray(a) - np.asarray(b))))


def body_part_stature(pose: Pose, image_stretch_x: float = 1.0) -> tuple[float, str]:
    """Stature estimated from the longest body measure over its share (see module doc), and which
    measure it was; (0, '') when no measure is present. ``image_stretch_x``: how much wider than true
    the image shows people (x is divided by it first)."""
    kp = pose.keypoints[:, :2].astype(np.float64) / np.array([image_stretch_x, 1.0])
    present = pose.present
    estimates: list[tuple[float, str]] = []

    def length(*chain: int) -> Optional[float]:
        if not all(present[i] for i in chain):
            return None
        return sum(_distance(kp[a], kp[b]) for a, b in zip(chain, chain[1:]))

    neck = kp[NECK] if present[NECK] else (kp[[R_SHOULDER, L_SHOULDER]].mean(0) if present[[R_SHOULDER, L_SHOULDER]].all() else None)
    hips = [kp[i] for i in HIPS if present[i]]
    if neck is not None and hips:
        estimates.append((_distance(neck, np.mean(hips, axis=0)) / BODY_SHARES["torso"], "torso"))
    for hip, knee, ankle in ((R_HIP, R_KNEE, R_ANKLE), (L_HIP, L_KNEE, L_ANKLE)):
        for chain, share in (((hip, knee, ankle), "leg"), ((hip, knee), "thigh"), ((knee, ankle), "shin")):
            value = length(*chain)
            if value is not None:
                estimates.append((value / BODY_SHARES[share], share))
    if estimates:
        return max(estimates)
    # Arms and shoulder width vary most between people and poses: only when torso and legs are unseen.
    for shoulder, elbow, wrist in ((R_SHOULDER, R_ELBOW, R_WRIST), (L_SHOULDER, L_ELBOW, L_WRIST)):
        value = length(shoulder, elbow, wrist)
        if value is not None:
            estimates.append((value / BODY_SHARES["arm"], "arm"))
    value = length(R_SHOULDER, L_SHOULDER)
    if value is not None:
        estimates.append((value / BODY_SHARES["shoulders"], "shoulders"))
    return max(estimates) if estimates else (0.0, "")


def _band_extent(mask: np.ndarray, x_center: float, half_width: float, top: bool) -> Optional[float]:
    """Top (or bottom) edge of the mask in the columns |x − x_center| ≤ half_width: where the columns'
    largest value crosses 0.5, to a fraction of a pixel (a warp moves that level line with the image)."""
    h, w = mask.shape
    x0, x1 = max(0, int(math.floor(x_center - half_width))), min(w, int(math.ceil(x_center + half_width)) + 1)
    if x1 <= x0:
        return None
    profile = mask[:, x0:x1].max(axis=1)
    rows = np.nonzero(profile >= 0.5)[0]
    if len(rows) == 0:
        return None
    if top:
        row = int(rows[0])
        outside = float(profile[row - 1]) if row > 0 else 0.0
        return row - (float(profile[row]) - 0.5) / max(float(profile[row]) - outside, 1e-6)
    row = int(rows[-1])
    outside = float(profile[row + 1]) if row + 1 < h else 0.0
    return row + (float(profile[row]) - 0.5) / max(float(profile[row]) - outside, 1e-6)


# What a pose that cannot be framed lacks, worded for a source photo (Encode Source Texture) and for a
# target pose (PIDM Sampler, Put Back Into Photo): a target has no photo, and fit 'pad' does not help it.
MISSING = {
    "photo": {
        "joints": "no person: the pose has no joints; detect the person first (Pose From Image) or give a photo "
                  "where a person is visible",
        "neck": "the person's neck and shoulders are not found (cut off, turned away or covered): framing needs "
                "them to place the person; use fit 'pad' for this photo",
        "hips": "the photo shows the person only down to the chest (no hips found): the model was trained on "
                "full-body people; give a photo showing the person at least down to the hips, or use fit 'pad'",
        "small": "the person is only about {stature:.1f} pixels tall: too small to frame; give a photo where the "
                 "person is larger, or use fit 'pad'",
    },
    "pose": {
        "joints": "the pose has no joints; give a pose with at least one limb",
        "neck": "the pose has no neck and no pair of shoulders: framing places the person by them; give a pose "
                "with the neck (or both shoulders), e.g. edit it in the PIDM Pose Editor",
        "hips": "the pose ends at the chest (no hips, knees or ankles): the model draws full-body people and "
                "framing sizes them by the torso and legs; give a target pose down to the hips at least",
        "small": "the pose is only about {stature:.1f} pixels tall on its canvas: too small to measure; draw it "
                 "larger, or give its keypoints in the canvas's pixels",
    },
}


def measure_person(pose: Pose, mask: Optional[np.ndarray] = None, stretch_x: float = 1.0,
                   subject: str = "photo") -> BodyMeasure:
    """Stature, centre line and head/sole anchors of the person in ``pose`` (and ``mask``, same pixels).

    Raises ValueError when the pose cannot be framed: no joints, no neck/shoulders, no hips (a
    head-and-shoulders picture), or a person only a few pixels tall; worded for ``subject`` "photo" (a
    source photo's person) or "pose" (a target pose), see :data:`MISSING`.
    """
    missing = MISSING[subject]
    present = pose.present
    if not present.any():
        raise ValueError(missing["joints"])
    neck = _neck(pose)
    hips = _mean_point(pose, HIPS)
    if neck is None:
        raise ValueError(missing["neck"])
    if hips is None and not present[list(KNEES + ANKLES)].any():
        raise ValueError(missing["hips"])
    parts, _which = body_part_stature(pose, stretch_x)
    center_x = float(neck[0] if hips is None else (neck[0] + hips[0]) / 2)
    ankles = [pose.keypoints[i, :2].astype(np.float64) for i in ANKLES if present[i]]
    if ankles and max(a[1] for a in ankles) <= neck[1]:
        # upside down (a handstand, a flip): no soles to stand on; the figure's top goes where a head would
        top = float(pose.keypoints[present, 1].min() - SOLE_BELOW_ANKLE * parts)
        return _checked(BodyMeasure(float(parts), center_x, top, None, False, upside_down=True), missing)
    head_top = sole = None
    if mask is not None:
        head = _mean_point(pose, (NOSE, R_EYE, L_EYE, R_EAR, L_EAR))
        head_x = float(head[0] if head is not None else neck[0])
        head_top = _band_extent(mask, head_x, max(2.0, 0.06 * parts * stretch_x), top=True)
        # a mask edge far from where the joints put the head top or the soles is not this person's (a mask
        # of the whole photo, a shadow or another person touching them): the joints' estimate is used there
        if head_top is not None and not neck[1] - 2 * HEAD_ABOVE_NECK * parts <= head_top <= neck[1]:
            head_top = None
        if ankles:
            feet_x = float(np.mean([a[0] for a in ankles]))
            lowest = max(a[1] for a in ankles)
            sole = _band_extent(mask, feet_x, max(2.0, 0.12 * parts * stretch_x), top=False)
            if sole is not None and not lowest <= sole <= lowest + 3 * SOLE_BELOW_ANKLE * parts:
                sole = None
    if head_top is None:
        head_top = float(neck[1] - HEAD_ABOVE_NECK * parts)
    if sole is None and ankles:
        sole = float(max(a[1] for a in ankles) + SOLE_BELOW_ANKLE * parts)
    stature, from_extent = parts, False
    if sole is not None and sole - head_top >= UPRIGHT_EXTENT * parts:
        stature, from_extent = sole - head_top, True
    return _checked(BodyMeasure(float(stature), center_x, head_top, sole, from_extent), missing)


def _checked(measure: BodyMeasure, missing: dict) -> BodyMeasure:
    if not measure.stature >= MIN_PERSON_PX:
        raise ValueError(missing["small"].format(stature=measure.stature))
    return measure
