"""How the figure stands: joint angles by pose kind, the 2.5-D skeleton, and its placement on the canvas."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ...pose.keypoints import JOINT_NAMES, NUM_JOINTS
from .identity import Body

OUT_OF_FRAME_MARGIN = 0.05  # fraction of the canvas side a joint may lie outside and stay present
SIDE_VIEW_SIN = 0.8  # |sin yaw| above which the far shoulder and hip count as hidden

POSE_KINDS = (
    "standing",  # arms hanging or hands on hips, frontal to three-quarter view
    "walking",  # one leg forward, opposite arm swinging
    "arms_raised",  # both hands above the head
    "arms_out",  # arms held out sideways
    "one_arm_up",  # one hand above the head, the other down or on the hip
    "side",  # profile view, standing or walking; the far side is partly hidden
    "back",  # seen from behind: no face
    "hands_behind",  # one or both hands behind the back (occluded wrists)
)
_POSE_KIND_WEIGHTS = (0.22, 0.18, 0.08, 0.08, 0.10, 0.16, 0.08, 0.10)

_J = {name: i for i, name in enumerate(JOINT_NAMES)}
NOSE, NECK = _J["nose"], _J["neck"]
# Per body side: -1 is the person's right (image left when they face the camera), +1 their left.
SHOULDER = {-1: _J["right_shoulder"], 1: _J["left_shoulder"]}
ELBOW = {-1: _J["right_elbow"], 1: _J["left_elbow"]}
WRIST = {-1: _J["right_wrist"], 1: _J["left_wrist"]}
HIP = {-1: _J["right_hip"], 1: _J["left_hip"]}
KNEE = {-1: _J["right_knee"], 1: _J["left_knee"]}
ANKLE = {-1: _J["right_ankle"], 1: _J["left_ankle"]}
EYE = {-1: _J["right_eye"], 1: _J["left_eye"]}
EAR = {-1: _J["right_ear"], 1: _J["left_ear"]}
SIDES = (-1, 1)


@dataclass(frozen=True)
class FigurePose:
    """One drawn pose of a figure on a ``height`` × ``width`` canvas.

    ``keypoints`` (float32 ``[18, 3]``, px) is what a detector would report: hidden joints have
    confidence 0. ``joints_px`` (float32 ``[18, 2]``) holds every joint's drawn centre, hidden ones
    included, and ``depth_px`` (float32 ``[18]``) its depth toward the viewer; the renderer needs
    both, which is why :func:`render_person` takes a ``FigurePose`` rather than bare keypoints.
    """

    kind: str
    keypoints: np.ndarray
    joints_px: np.ndarray
    depth_px: np.ndarray
    head_center_px: np.ndarray  # [2]
    toe_px: np.ndarray  # [2, 2]: right then left foot tip
    yaw: float  # radians; 0 faces the camera, +pi/2 faces image right
    head_yaw: float  # radians, yaw plus the head's own turn
    head_roll: float  # radians, tilt in the image plane
    scale_px: float  # pixels per body unit
    out_of_frame: bool  # framed so tightly that part of the figure leaves the canvas
    height: int
    width: int


@dataclass(frozen=True)
class _Articulation:
    """Joint angles in degrees. A limb is (abduction, flexion) of its upper then its lower segment:
    abduction swings it out sideways from hanging straight down (180 = straight up), flexion swings
    it forward (toward where the person faces)."""

    yaw: float
    head_turn: float
    head_roll: float
    arms: dict  # side -> (abduction_1, flexion_1, abduction_2, flexion_2)
    legs: dict


# Limb articulations, each (abduction_1, flexion_1, abduction_2, flexion_2) in degrees, drawn with
# ``u`` (the generator's ``rng.uniform``). Every helper draws its values in a fixed order: the seeds of
# the training data depend on it.


def _hanging_arm(u) -> tuple:
    a1, f1 = u(4, 16), u(-10, 14)
    return a1, f1, a1 + u(-6, 6), f1 + u(0, 35)


def _arm_on_hip(u) -> tuple:  # elbow out, forearm back in and down to the waist
    return u(30, 45), u(-15, 5), u(-65, -35), u(-15, 5)


def _raised_arm(u) -> tuple:
    a1, f1 = u(140, 172), u(-10, 10)
    return a1, f1, min(a1 + u(-5, 20), 190.0), f1 + u(-5, 10)


def _held_out_arm(u) -> tuple:
    a1, f1 = u(75, 100), u(-10, 15)
    return a1, f1, a1 + u(-25, 15), f1 + u(0, 20)


def _arm_behind(u) -> tuple:  # upper arm back, forearm inward behind the back
    return u(5, 15), u(-35, -15), u(-95, -60), u(-60, -30)


def _swinging_arm(u, forward: bool) -> tuple:
    a1, f1 = u(4, 10), (u(12, 30) if forward else u(-28, -10))
    return a1, f1, a1 + u(-4, 4), f1 + u(10, 35)


def _standing_leg(u) -> tuple:
    a, f = u(1, 8), u(-4, 6)
    return a, f, a, f - u(0, 12)  # knees only bend backward: the shin flexes less than the thigh


def _striding_leg(u, forward: bool) -> tuple:
    a, f = u(0, 4), (u(16, 30) if forward else u(-24, -10))
    return a, f, a, f - (u(0, 12) if forward else u(20, 45))


def _casual_arm(u) -> tuple:
    return _arm_on_hip(u) if u() < 0.25 else _hanging_arm(u)


def _both(u, limb) -> dict:
    return {s: limb(u) for s in SIDES}


def _stride(u, lead: int) -> tuple[dict, dict]:
    """Legs and arms of a step: the ``lead`` leg forward, the opposite arm swinging forward."""
    legs = {lead: _striding_leg(u, True), -lead: _striding_leg(u, False)}
    arms = {lead: _swinging_arm(u, False), -lead: _swinging_arm(u, True)}
    return legs, arms


# One function per pose kind: ``(u, lead, yaw)`` -> ``(yaw, arms, legs)``, where ``lead`` is the side
# that steps forward / raises / goes behind and ``yaw`` (degrees) the frontal yaw already drawn for
# every kind (kept so the draws stay in order), which a kind may replace by its own.


def _standing(u, lead: int, yaw: float) -> tuple:
    arms = _both(u, _casual_arm)
    return yaw, arms, _both(u, _standing_leg)


def _back(u, lead: int, yaw: float) -> tuple:
    _, arms, legs = _standing(u, lead, yaw)
    return 180 + u(-30, 30), arms, legs


def _walking(u, lead: int, yaw: float) -> tuple:
    yaw = u(-45, 45)
    legs, arms = _stride(u, lead)
    return yaw, arms, legs


def _arms_raised(u, lead: int, yaw: float) -> tuple:
    yaw = u(-25, 25)
    arms = _both(u, _raised_arm)
    return yaw, arms, _both(u, _standing_leg)


def _arms_out(u, lead: int, yaw: float) -> tuple:
    yaw = u(-25, 25)
    arms = _both(u, _held_out_arm)
    return yaw, arms, _both(u, _standing_leg)


def _one_arm_up(u, lead: int, yaw: float) -> tuple:
    yaw = u(-30, 30)
    arms = {lead: _raised_arm(u), -lead: _casual_arm(u)}
    return yaw, arms, _both(u, _standing_leg)


def _side(u, lead: int, yaw: float) -> tuple:
    yaw = (1 if u() < 0.5 else -1) * u(65, 100)
    if u() < 0.5:  # walking past the camera
        legs, arms = _stride(u, lead)
        return yaw, arms, legs
    legs = _both(u, _standing_leg)
    return yaw, _both(u, _hanging_arm), legs


def _hands_behind(u, lead: int, yaw: float) -> tuple:
    yaw = u(-40, 40)
    arms = {lead: _arm_behind(u), -lead: _arm_behind(u) if u() < 0.5 else _hanging_arm(u)}
    return yaw, arms, _both(u, _standing_leg)


_KIND_LIMBS = {
    "standing": _standing,
    "walking": _walking,
    "arms_raised": _arms_raised,
    "arms_out": _arms_out,
    "one_arm_up": _one_arm_up,
    "side": _side,
    "back": _back,
    "hands_behind": _hands_behind,
}


def _articulation(rng: np.random.Generator, kind: str) -> _Articulation:
    u = rng.uniform
    lead = -1 if u() < 0.5 else 1  # the side that steps forward / raises / goes behind
    yaw = u(-35, 35)
    if kind not in _KIND_LIMBS:
        raise ValueError(f"unknown pose kind {kind!r}; expected one of {POSE_KINDS}")
    yaw, arms, legs = _KIND_LIMBS[kind](u, lead, yaw)
    return _Articulation(yaw=yaw, head_turn=u(-20, 20), head_roll=u(-8, 8), arms=arms, legs=legs)


def _direction(abduction_deg: float, flexion_deg: float, side: int) -> np.ndarray:
    """Unit vector (x right, y down, z toward the viewer) of a limb segment in the body frame of a
    person facing the camera; ``side`` -1 (right) abducts toward image left."""
    a, f = math.radians(abduction_deg), math.radians(flexion_deg)
    return np.array([side * math.sin(a) * math.cos(f), math.cos(a) * math.cos(f), math.sin(f)])


def _yaw_rotate(points: np.ndarray, yaw: float) -> np.ndarray:
    """Turn ``[..., 3]`` points about the vertical axis: yaw +90° makes the front face image right."""
    c, s = math.cos(yaw), math.sin(yaw)
    x, y, z = points[..., 0], points[..., 1], points[..., 2]
    return np.stack([x * c + z * s, y, -x * s + z * c], axis=-1)


def face_normals_z(head_yaw: float) -> dict:
    """How much each facial landmark faces the viewer (z of its surface normal): nose and eyes look
    forward and slightly outward, ears sideways. Positive means turned toward the camera."""
    c, s = math.cos(head_yaw), math.sin(head_yaw)
    normals = {"nose": (0.0, 1.0)}
    for side in SIDES:
        normals[("eye", side)] = (side * 0.5, 0.87)
        normals[("ear", side)] = (side * 1.0, -0.1)
    return {key: -x * s + z * c for key, (x, z) in normals.items()}


def _skeleton(body: Body, art: _Articulation) -> tuple[np.ndarray, dict]:
    """Camera-frame joints ``[18, 3]`` in body units (after yaw) and extra drawing anchors."""
    joints = np.zeros((NUM_JOINTS, 3))
    neck_y = body.head_height + body.neck_length
    hip_y = neck_y + body.torso_length
    joints[NECK] = (0.0, neck_y, 0.0)
    extras: dict = {"hand_tip": {}, "toe": {}}
    for side in SIDES:
        a1, f1, a2, f2 = art.arms[side]
        shoulder = np.array([side * body.shoulder_half_width, neck_y + 0.08 * body.shoulder_half_width, 0.0])
        forearm = _direction(a2, f2, side)
        elbow = shoulder + body.upper_arm * _direction(a1, f1, side)
        wrist = elbow + body.forearm * forearm
        joints[SHOULDER[side]], joints[ELBOW[side]], joints[WRIST[side]] = shoulder, elbow, wrist
        extras["hand_tip"][side] = wrist + body.hand * forearm
        a1, f1, a2, f2 = art.legs[side]
        hip = np.array([side * body.hip_half_width, hip_y, 0.0])
        shin = _direction(a2, f2, side)
        knee = hip + body.thigh * _direction(a1, f1, side)
        ankle = knee + body.shin * shin
        joints[HIP[side]], joints[KNEE[side]], joints[ANKLE[side]] = hip, knee, ankle
        # The foot is at right angles to the shin in the sagittal plane (a raised heel tips the toe down).
        foot = np.array([0.0, -math.sin(math.radians(f2)), math.cos(math.radians(f2))])
        extras["toe"][side] = ankle + 0.5 * body.foot_height * shin + 0.75 * body.foot_length * foot

    yaw = math.radians(art.yaw)
    anchors = [extras[key][side] for key in ("hand_tip", "toe") for side in SIDES]
    rotated = _yaw_rotate(np.concatenate([joints, anchors]), yaw)
    joints = rotated[:NUM_JOINTS]
    extras = {
        "hand_tip": dict(zip(SIDES, rotated[NUM_JOINTS : NUM_JOINTS + 2])),
        "toe": dict(zip(SIDES, rotated[NUM_JOINTS + 2 :])),
    }

    roll = math.radians(art.head_roll)
    up = np.array([math.sin(roll), -math.cos(roll), 0.0])
    head_center = joints[NECK] + (body.neck_length + body.head_height / 2) * up
    hw, hh = body.head_width, body.head_height
    face_local = {NOSE: (0.0, 0.1 * hh, 0.5 * hw)}
    for side in SIDES:
        face_local[EYE[side]] = (side * 0.2 * hw, -0.04 * hh, 0.42 * hw)
        face_local[EAR[side]] = (side * 0.5 * hw, 0.03 * hh, -0.02 * hw)
    head_yaw = yaw + math.radians(art.head_turn)
    cr, sr = math.cos(roll), math.sin(roll)
    indices = list(face_local)
    x, y, z = _yaw_rotate(np.array([face_local[i] for i in indices]), head_yaw).T
    joints[indices] = head_center + np.stack([x * cr - y * sr, x * sr + y * cr, z], axis=1)
    extras["head_center"] = head_center
    extras["head_yaw"] = head_yaw
    return joints, extras


def _extent(body: Body, joints: np.ndarray, extras: dict) -> tuple[np.ndarray, np.ndarray]:
    """Bounding box (min xy, max xy) in body units of everything drawn, hair and shoes included."""
    points, radii = [], []
    for side in SIDES:
        for index, radius in ((SHOULDER[side], body.arm_radius), (ELBOW[side], body.arm_radius),
                              (HIP[side], body.leg_radius), (KNEE[side], body.leg_radius * 0.75)):  # fmt: skip
            points.append(joints[index, :2])
            radii.append(radius)
        points += [extras["hand_tip"][side][:2], extras["toe"][side][:2]]
        radii += [body.arm_radius, body.foot_height]
    points.append(extras["head_center"][:2])
    radii.append(0.55 * max(body.head_width, body.head_height) * 1.08)
    points, radii = np.array(points), np.array(radii)[:, None]
    return (points - radii).min(axis=0), (points + radii).max(axis=0)


def _placement(
    rng: np.random.Generator, body: Body, lo: np.ndarray, hi: np.ndarray, height: int, width: int
) -> tuple[float, np.ndarray, bool]:
    """Scale (px per unit) and offset (px) that put the figure's box on the canvas.

    The standing figure gets ``stature`` × the canvas height; a box that would not fit (raised
    arms, arms out on a narrow canvas) shrinks to 96 %. About one pose in ten is framed too tight
    on purpose. All random draws happen whatever the canvas size, so sizes show the same scene.
    """
    jitter_scale, jitter_x, jitter_y = rng.uniform(0.97, 1.03), rng.uniform(0.3, 0.7), rng.uniform(0.35, 0.65)
    crop, crop_mode, crop_amount = rng.uniform() < 0.1, rng.integers(3), rng.uniform(0.1, 0.3)
    size = hi - lo
    scale = body.stature * height * jitter_scale
    scale *= min(1.0, 0.96 * height / (size[1] * scale), 0.96 * width / (size[0] * scale))
    free = np.array([width - 1, height - 1]) - size * scale
    offset = np.array([jitter_x, jitter_y]) * free - lo * scale
    if crop:
        if crop_mode == 0:  # closer camera: head near the top, feet below the bottom edge
            scale *= 1.1 + crop_amount
            offset = np.array([(width - 1) / 2 - (lo[0] + hi[0]) / 2 * scale, 0.03 * height - lo[1] * scale])
        else:  # shifted sideways: a side of the figure leaves the canvas
            shift = crop_amount * size[0] * scale
            offset[0] = -lo[0] * scale - shift if crop_mode == 1 else width - 1 - hi[0] * scale + shift
    return scale, offset, bool(crop)


def place_figure(rng: np.random.Generator, body: Body, height: int, width: int, kind: str | None) -> FigurePose:
    """A random pose of ``kind`` (None: drawn, standing and walking most often) placed on the canvas.

    Every joint is present in ``keypoints``; :func:`~.figure.sample_pose` then marks the ones a
    detector would miss.
    """
    if kind is None:
        kind = POSE_KINDS[rng.choice(len(POSE_KINDS), p=_POSE_KIND_WEIGHTS)]
    elif kind not in POSE_KINDS:
        raise ValueError(f"unknown pose kind {kind!r}; expected one of {POSE_KINDS}")
    if height < 8 or width < 8:
        raise ValueError(f"canvas must be at least 8x8 pixels, got {height}x{width}")
    art = _articulation(rng, kind)
    joints, extras = _skeleton(body, art)
    lo, hi = _extent(body, joints, extras)
    scale, offset, out_of_frame = _placement(rng, body, lo, hi, height, width)

    def to_px(point: np.ndarray) -> np.ndarray:
        return (point[..., :2] * scale + offset).astype(np.float32)

    joints_px = to_px(joints)
    return FigurePose(
        kind=kind,
        keypoints=np.concatenate([joints_px, np.ones((NUM_JOINTS, 1), np.float32)], axis=1),
        joints_px=joints_px,
        depth_px=(joints[:, 2] * scale).astype(np.float32),
        head_center_px=to_px(extras["head_center"]),
        toe_px=np.stack([to_px(extras["toe"][s]) for s in SIDES]),
        yaw=math.radians(art.yaw),
        head_yaw=extras["head_yaw"],
        head_roll=math.radians(art.head_roll),
        scale_px=float(scale),
        out_of_frame=out_of_frame,
        height=int(height),
        width=int(width),
    )
