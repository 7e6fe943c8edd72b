"""One procedural person moving through a pose sequence: the true frames of an animation.

:func:`make_sequence` draws an identity and two articulations of one pose kind, blends the joint
angles linearly over the frames, places the whole motion once on the canvas (so the figure does not
jump), and renders every frame. The keypoints of each frame are what a detector would report (hidden
joints missing), as in :func:`~pidm_core.data.synthetic.make_pair`; the images are the ground truth
that a pose-to-frames run should reproduce, which measures how steady its frames are.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from .figure import _visible_joints, figure_parts
from .identity import Identity, sample_identity
from .pose import _POSE_KIND_WEIGHTS, NUM_JOINTS, POSE_KINDS, SIDES, FigurePose, _articulation, _Articulation
from .pose import _extent, _placement, _skeleton
from .render import render_parts

MOVING_KINDS = ("standing", "walking", "arms_out", "one_arm_up", "arms_raised")  # no occluding hands behind


@dataclass(frozen=True)
class PersonSequence:
    """One identity through ``len(images)`` poses. Images uint8 RGB ``[H, W, 3]``; keypoints float32 ``[18, 3]`` px."""

    images: list[np.ndarray]
    keypoints: list[np.ndarray]
    identity: Identity
    kind: str


def _blend(a: _Articulation, b: _Articulation, t: float) -> _Articulation:
    mix = lambda x, y: (1 - t) * x + t * y  # noqa: E731
    limbs = lambda p, q: {s: tuple(mix(x, y) for x, y in zip(p[s], q[s])) for s in SIDES}  # noqa: E731
    return _Articulation(yaw=mix(a.yaw, b.yaw), head_turn=mix(a.head_turn, b.head_turn),
                         head_roll=mix(a.head_roll, b.head_roll), arms=limbs(a.arms, b.arms),
                         legs=limbs(a.legs, b.legs))


def make_sequence(seed: int, frames: int, size: int = 64, kind: str | None = None) -> PersonSequence:
    """The sequence for ``seed``: ``frames`` ≥ 2 poses blended from one articulation to another on a
    ``size`` × ``size`` canvas. Deterministic in ``seed``."""
    if frames < 2:
        raise ValueError(f"a sequence needs at least 2 frames, got {frames}")
    rng = np.random.default_rng(seed)
    identity = sample_identity(rng)
    if kind is None:
        weights = np.array([_POSE_KIND_WEIGHTS[POSE_KINDS.index(k)] for k in MOVING_KINDS])
        kind = MOVING_KINDS[rng.choice(len(MOVING_KINDS), p=weights / weights.sum())]
    first, last = _articulation(rng, kind), _articulation(rng, kind)
    body = identity.body
    skeletons = [_skeleton(body, _blend(first, last, k / (frames - 1))) for k in range(frames)]
    extents = [_extent(body, joints, extras) for joints, extras in skeletons]
    lo = np.min([e[0] for e in extents], axis=0)
    hi = np.max([e[1] for e in extents], axis=0)
    while True:  # one placement for the whole motion, never one framed too tight on purpose
        scale, offset, cropped = _placement(rng, body, lo, hi, size, size)
        if not cropped:
            break
    images, keypoints = [], []
    for (joints, extras), art in zip(skeletons, (_blend(first, last, k / (frames - 1)) for k in range(frames))):
        def to_px(point: np.ndarray) -> np.ndarray:
            return (point[..., :2] * scale + offset).astype(np.float32)

        joints_px = to_px(joints)
        pose = FigurePose(
            kind=kind, keypoints=np.concatenate([joints_px, np.ones((NUM_JOINTS, 1), np.float32)], axis=1),
            joints_px=joints_px, depth_px=(joints[:, 2] * scale).astype(np.float32),
            head_center_px=to_px(extras["head_center"]), toe_px=np.stack([to_px(extras["toe"][s]) for s in SIDES]),
            yaw=math.radians(art.yaw), head_yaw=extras["head_yaw"], head_roll=math.radians(art.head_roll),
            scale_px=float(scale), out_of_frame=False, height=size, width=size,
        )
        parts = figure_parts(identity, pose)
        visible = pose.keypoints.copy()
        visible[~_visible_joints(pose, parts), :] = 0.0
        pose = replace(pose, keypoints=visible)
        images.append(render_parts(identity.background, parts, pose))
        keypoints.append(visible)
    return PersonSequence(images, keypoints, identity, kind)
