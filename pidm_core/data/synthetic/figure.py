"""The figure as filled polygons in draw order, and which joints a detector would see."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import cv2
import numpy as np

from ...pose.keypoints import NUM_JOINTS
from .identity import Garment, Identity
from .pose import (
    ANKLE,
    EAR,
    ELBOW,
    EYE,
    HIP,
    KNEE,
    NECK,
    NOSE,
    OUT_OF_FRAME_MARGIN,
    SHOULDER,
    SIDE_VIEW_SIN,
    SIDES,
    WRIST,
    FigurePose,
    face_normals_z,
    place_figure,
)


@dataclass(frozen=True)
class TextureFill:
    """A garment mapped onto a part: ``origin`` (px) is where the garment's vertical texture axis
    starts, ``axis`` the unit direction of that axis on the canvas, ``v0`` (px) how far down the
    garment the origin lies (so a sleeve continues the torso's gradient)."""

    garment: Garment
    length_px: float  # gradient length
    origin: np.ndarray
    axis: np.ndarray
    v0: float


@dataclass(frozen=True)
class Part:
    name: str
    side: int  # -1 right, +1 left, 0 centre
    polygon: np.ndarray  # [N, 2] float32 canvas px
    fill: object  # Colour or TextureFill
    key: float  # draw order, smaller first


_CAP = np.linspace(-math.pi / 2, math.pi / 2, 7)
_CAP_COS, _CAP_SIN = np.cos(_CAP), np.sin(_CAP)
_RING = np.linspace(0, 2 * math.pi, 20, endpoint=False)
_RING_COS, _RING_SIN = np.cos(_RING), np.sin(_RING)


def _unit(v: np.ndarray) -> np.ndarray:
    n = math.hypot(v[0], v[1])
    return v / n if n > 1e-9 else np.array([0.0, 1.0])


def _capsules(specs: np.ndarray) -> np.ndarray:
    """Polygons ``[n, 14, 2]`` of rounded limbs, one per row ``(ax, ay, bx, by, radius_a, radius_b)``
    of ``specs``: a segment from a to b with half-discs at its ends, tapering between the radii.
    Built all at once because per-limb numpy calls would dominate the render time."""
    a, b = specs[:, 0:2], specs[:, 2:4]
    d = b - a
    length = np.hypot(d[:, 0], d[:, 1])[:, None]
    u = np.where(length > 1e-9, d / np.maximum(length, 1e-9), np.array([0.0, 1.0]))
    v = np.stack([-u[:, 1], u[:, 0]], axis=1)
    ring = _CAP_COS[None, :, None] * u[:, None, :] + _CAP_SIN[None, :, None] * v[:, None, :]
    cap_b = b[:, None] + specs[:, 5, None, None] * ring
    cap_a = a[:, None] - specs[:, 4, None, None] * ring
    return np.concatenate([cap_b, cap_a], axis=1)


def _ellipse(center: np.ndarray, rx: float, ry: float, angle: float = 0.0) -> np.ndarray:
    """Polygon [20, 2] of an ellipse with radii ``rx``, ``ry`` turned by ``angle`` radians."""
    c, s = math.cos(angle), math.sin(angle)
    x, y = rx * _RING_COS, ry * _RING_SIN
    return np.stack([center[0] + x * c - y * s, center[1] + x * s + y * c], axis=1)


def _hull(points: list) -> np.ndarray:
    return cv2.convexHull(np.array(points, dtype=np.float32))[:, 0, :].astype(np.float64)


_LOGO_SHAPES = {
    "circle": np.stack([_RING_COS, _RING_SIN], axis=1),
    "diamond": np.array([[0, -1], [0.8, 0], [0, 1], [-0.8, 0]], dtype=np.float64),
    "triangle": np.array([[0, -1], [0.95, 0.7], [-0.95, 0.7]], dtype=np.float64),
    "star": np.array(
        [[math.sin(k * math.pi / 5) * r, -math.cos(k * math.pi / 5) * r] for k, r in enumerate([1.0, 0.45] * 5)]
    ),
}


class _Draft:
    """The figure being assembled: its pose in canvas pixels (float64), and the parts added so far in
    insertion order, which breaks ties of draw order. Limb capsules are kept as specs and built in one
    batch by :meth:`parts`, because per-limb numpy calls would dominate the render time."""

    def __init__(self, identity: Identity, pose: FigurePose):
        self.identity, self.body, self.pose = identity, identity.body, pose
        self.unit = pose.scale_px
        self.joints = pose.joints_px.astype(np.float64)
        self.depth = (pose.depth_px / pose.scale_px).tolist()  # body units, toward the viewer
        self.head_center = pose.head_center_px.astype(np.float64)
        self.toes = pose.toe_px.astype(np.float64)
        self.cos_yaw, self.sin_yaw = abs(math.cos(pose.yaw)), abs(math.sin(pose.yaw))
        self.top_len = self.body.torso_length * 1.1  # gradient lengths of the garments, body units
        self.bottom_len = self.body.thigh + self.body.shin
        self._pending: list[tuple] = []  # (name, side, polygon or capsule index, fill, key)
        self._capsule_specs: list[tuple] = []

    def add(self, name: str, side: int, shape: np.ndarray | int, fill: object, key: float) -> None:
        self._pending.append((name, side, shape, fill, key))

    def capsule(self, a: np.ndarray, b: np.ndarray, radius_a: float, radius_b: float) -> int:
        self._capsule_specs.append((a[0], a[1], b[0], b[1], radius_a, radius_b))
        return len(self._capsule_specs) - 1

    def fabric(self, garment: Garment, length_units: float, origin: np.ndarray, axis: np.ndarray, v0: float):
        if garment.pattern in ("solid", "logo"):
            return garment.colour
        return TextureFill(garment, length_units * self.unit, origin, axis, v0)

    def top_fabric(self, origin: np.ndarray, axis: np.ndarray, v0: float):
        return self.fabric(self.identity.top, self.top_len, origin, axis, v0)

    def bottom_fabric(self, origin: np.ndarray, axis: np.ndarray, v0: float):
        return self.fabric(self.identity.bottom, self.bottom_len, origin, axis, v0)

    def projected_half_width(self, width_3d: float, depth_3d: float) -> float:
        return (width_3d * self.cos_yaw + depth_3d * self.sin_yaw) * self.unit

    def parts(self) -> list[Part]:
        """The parts in draw order (sorted by key; stable, so equal keys keep their insertion order)."""
        capsules = _capsules(np.array(self._capsule_specs)).astype(np.float32)
        parts = [Part(name, side, capsules[shape] if isinstance(shape, int) else shape.astype(np.float32), fill, key)
                 for name, side, shape, fill, key in self._pending]  # fmt: skip
        parts.sort(key=lambda part: part.key)
        return parts


@dataclass(frozen=True)
class _TorsoFrame:
    """The torso's axis from the neck (shoulder line) down to the hip centre, in px, and its projected
    half widths at the shoulders, chest, waist and hips."""

    neck: np.ndarray
    hip_mid: np.ndarray
    axis: np.ndarray  # unit, neck to hips
    across: np.ndarray  # unit, at right angles to the axis
    length_px: float
    w_shoulder: float
    w_chest: float
    w_waist: float
    w_hip: float

    def at(self, t: float, w: float) -> np.ndarray:
        """The point ``t`` px down the axis and ``w`` px across it."""
        return self.neck + self.axis * t + self.across * w


def _torso_frame(draft: _Draft) -> _TorsoFrame:
    body, joints = draft.body, draft.joints
    neck = joints[NECK]
    hip_mid = (joints[HIP[-1]] + joints[HIP[1]]) / 2
    axis = _unit(hip_mid - neck)
    d = body.torso_half_depth
    waist = 0.6 * body.shoulder_half_width + 0.3 * (body.hip_half_width + body.leg_radius)
    return _TorsoFrame(
        neck=neck, hip_mid=hip_mid, axis=axis, across=np.array([axis[1], -axis[0]]),
        length_px=float(np.hypot(*(hip_mid - neck))),
        w_shoulder=draft.projected_half_width(body.shoulder_half_width + 0.35 * body.arm_radius, d),
        w_chest=draft.projected_half_width(0.92 * body.shoulder_half_width + 0.2 * body.arm_radius, 1.05 * d),
        w_waist=draft.projected_half_width(waist, 0.9 * d),
        w_hip=draft.projected_half_width(body.hip_half_width + 0.9 * body.leg_radius, d),
    )


def _add_leg(draft: _Draft, side_index: int, side: int) -> None:
    """Thigh, shin, shorts leg and shoe of one side. Legs always go behind the pelvis and torso, the
    nearer leg over the farther one; a far arm of a side view (deeper still) goes behind both."""
    identity, body, joints, depth, unit = draft.identity, draft.body, draft.joints, draft.depth, draft.unit
    leg_r = body.leg_radius * unit
    trousers = identity.bottom_kind == "trousers"
    hip, knee, ankle = joints[HIP[side]], joints[KNEE[side]], joints[ANKLE[side]]
    key = min((depth[HIP[side]] + depth[KNEE[side]] + depth[ANKLE[side]]) / 3, -0.045)
    widen = 1.1 if trousers else 1.0
    hem_widen = 1.25 if trousers else 1.0  # trouser legs stay wide down to the ankle
    thigh_fill, shin_fill = identity.skin, identity.skin
    if trousers:
        thigh_fill = draft.bottom_fabric(hip, _unit(knee - hip), 0.0)
        shin_fill = draft.bottom_fabric(knee, _unit(ankle - knee), body.thigh * unit)
    draft.add("thigh", side, draft.capsule(hip, knee, leg_r * widen, 0.7 * leg_r * widen), thigh_fill, key)
    draft.add("shin", side, draft.capsule(knee, ankle, 0.7 * leg_r * widen, 0.46 * leg_r * hem_widen), shin_fill, key)
    if identity.bottom_kind == "shorts":
        hem = hip + (knee - hip) * identity.bottom_length
        fill = draft.bottom_fabric(hip, _unit(knee - hip), 0.0)
        hem_r = 1.1 * leg_r * (1 - 0.3 * identity.bottom_length)
        draft.add("shorts_leg", side, draft.capsule(hip, hem, 1.1 * leg_r, hem_r), fill, key)
    heel = ankle + _unit(ankle - knee) * 0.45 * body.foot_height * unit
    foot_r = body.foot_height * unit
    draft.add("shoe", side, draft.capsule(heel, draft.toes[side_index], 0.62 * foot_r, 0.55 * foot_r), identity.shoes, key)


def _add_skirt(draft: _Draft, frame: _TorsoFrame) -> None:
    """One hull from the waist to the hem around both legs, flaring more the longer it is."""
    identity, body, joints, at = draft.identity, draft.body, draft.joints, frame.at
    leg_r = body.leg_radius * draft.unit
    length = identity.bottom_length * draft.bottom_len / body.thigh  # in thigh lengths
    flare = (0.02 + 0.05 * identity.bottom_length) * draft.unit
    points = [at(0.72 * frame.length_px, -frame.w_waist), at(0.72 * frame.length_px, frame.w_waist)]
    points += [at(frame.length_px, -1.05 * frame.w_hip), at(frame.length_px, 1.05 * frame.w_hip)]
    for side in SIDES:
        hip, knee, ankle = joints[HIP[side]], joints[KNEE[side]], joints[ANKLE[side]]
        if length <= 1:
            hem = hip + (knee - hip) * length
        else:
            hem = knee + (ankle - knee) * (length - 1) * body.thigh / body.shin
        points += [hem + frame.across * (leg_r + flare), hem - frame.across * (leg_r + flare)]
    fill = draft.bottom_fabric(at(0.72 * frame.length_px, 0), frame.axis, 0.0)
    draft.add("skirt", 0, _hull(points), fill, -0.035)


def _add_pelvis(draft: _Draft, frame: _TorsoFrame) -> None:
    """The seat of trousers or shorts: a hull from the waist to just below the hip joints."""
    leg_r = draft.body.leg_radius * draft.unit
    t, at = frame.length_px, frame.at
    points = [at(0.7 * t, -frame.w_waist), at(0.7 * t, frame.w_waist), at(t, -frame.w_hip), at(t, frame.w_hip)]
    for side in SIDES:
        below_hip = draft.joints[HIP[side]] + frame.axis * 0.6 * leg_r
        points += [below_hip + frame.across * leg_r, below_hip - frame.across * leg_r]
    points.append(frame.hip_mid + frame.axis * leg_r)
    draft.add("pelvis", 0, _hull(points), draft.bottom_fabric(at(0.7 * t, 0), frame.axis, 0.0), -0.04)


def _add_top(draft: _Draft, frame: _TorsoFrame) -> None:
    """Torso (the top's outline), neck, and the V of a neckline and a logo when seen from the front."""
    identity, body, pose, unit, at = draft.identity, draft.body, draft.pose, draft.unit, frame.at
    neck, cos_yaw = frame.neck, draft.cos_yaw
    bottom_t = frame.length_px + identity.top_drop * unit
    collar = -0.03 * unit  # the collar hugs the neck a little above the shoulder line (COCO neck)
    profile = ((collar, 0.42 * frame.w_shoulder), (0.015 * unit, frame.w_shoulder), (0.08 * unit, frame.w_chest),
               (0.6 * frame.length_px, frame.w_waist), (bottom_t, frame.w_hip))  # fmt: skip
    t, w = np.array(profile).T
    t, w = np.concatenate([t, t[::-1]]), np.concatenate([w, -w[::-1]])
    torso = neck + t[:, None] * frame.axis + w[:, None] * frame.across
    draft.add("torso", 0, torso, draft.top_fabric(neck, frame.axis, 0.0), -0.03)
    neck_r = body.neck_radius * unit
    draft.add("neck", 0, draft.capsule(neck, draft.head_center, neck_r, neck_r), identity.skin, -0.031)
    if identity.v_neck and cos_yaw > 0.35 and math.cos(pose.yaw) > 0:
        half = 0.035 * unit * cos_yaw
        draft.add("neckline", 0, np.array([at(collar, -half), at(collar, half), at(0.075 * unit, 0)]), identity.skin,
                  -0.0299)
    if identity.top.pattern == "logo" and math.cos(pose.yaw) > 0.3:
        centre = at(0.38 * frame.length_px, math.sin(pose.yaw) * 0.3 * body.torso_half_depth * unit)
        shape = _LOGO_SHAPES[identity.top.logo_shape] * identity.top.period * unit
        logo = centre + shape[:, :1] * frame.across * math.cos(pose.yaw) + shape[:, 1:] * frame.axis
        draft.add("logo", 0, logo, identity.top.colour_b, -0.0298)


def _add_arm(draft: _Draft, side: int) -> None:
    """Upper arm, sleeve, forearm and hand of one side: in front of the torso unless their depth puts
    them behind it. One depth per segment, so a forearm reaching behind the back goes behind the torso
    even when its upper arm is in front; sleeve and hand come just after the segment they sit on."""
    identity, body, joints, depth, unit = draft.identity, draft.body, draft.joints, draft.depth, draft.unit
    arm_r = body.arm_radius * unit
    shoulder, elbow, wrist = joints[SHOULDER[side]], joints[ELBOW[side]], joints[WRIST[side]]
    upper_key = (depth[SHOULDER[side]] + depth[ELBOW[side]]) / 2
    lower_key = (depth[ELBOW[side]] + depth[WRIST[side]]) / 2
    tip = wrist + _unit(wrist - elbow) * 0.7 * body.hand * unit
    sleeve_fill = draft.top_fabric(shoulder, _unit(elbow - shoulder), 0.0)
    if identity.sleeves == "long":
        forearm_fill = draft.top_fabric(elbow, _unit(wrist - elbow), body.upper_arm * unit)
        draft.add("upper_arm", side, draft.capsule(shoulder, elbow, 1.12 * arm_r, 0.9 * arm_r), sleeve_fill, upper_key)
        draft.add("forearm", side, draft.capsule(elbow, wrist, 0.9 * arm_r, 0.72 * arm_r), forearm_fill, lower_key)
    else:
        draft.add("upper_arm", side, draft.capsule(shoulder, elbow, arm_r, 0.78 * arm_r), identity.skin, upper_key)
        if identity.sleeves == "short":
            end = shoulder + (elbow - shoulder) * 0.5
            sleeve = draft.capsule(shoulder, end, 1.15 * arm_r, 1.05 * arm_r)
            draft.add("sleeve", side, sleeve, sleeve_fill, upper_key + 1e-6)
        draft.add("forearm", side, draft.capsule(elbow, wrist, 0.78 * arm_r, 0.6 * arm_r), identity.skin, lower_key)
    draft.add("hand", side, draft.capsule(wrist, tip, 0.62 * arm_r, 0.72 * arm_r), identity.skin, lower_key + 1e-6)


def _add_head(draft: _Draft) -> None:
    """Hair volume, face, fringe and eyes. Long hair hangs behind the shoulders unless seen from behind."""
    identity, body, pose, unit, head_center = draft.identity, draft.body, draft.pose, draft.unit, draft.head_center
    hx = body.head_width / 2 * unit
    hy = body.head_height / 2 * unit
    facing_x, facing_z = math.sin(pose.head_yaw), math.cos(pose.head_yaw)
    hx_seen = hx * abs(facing_z) + 0.85 * hy * abs(facing_x)  # the head is about as deep as it is tall
    roll = pose.head_roll
    down = np.array([-math.sin(roll), math.cos(roll)])
    right = np.array([math.cos(roll), math.sin(roll)])
    head_key = 0.0
    if identity.hair_style == "long":
        crown = head_center - right * facing_x * 0.25 * hx
        ends = crown + down * 2.3 * hy - right * facing_x * 0.2 * hx
        key = -0.0295 if facing_z < 0 else -2.0  # over the back when seen from behind, else behind all
        draft.add("hair_back", 0, draft.capsule(crown, ends, 1.0 * hx_seen, 0.85 * hx_seen), identity.hair, key)
    if identity.hair_style == "bald":
        draft.add("face", 0, _ellipse(head_center, hx_seen, hy, roll), identity.skin, head_key)
    else:
        centre = head_center - right * facing_x * 0.08 * hx - down * 0.05 * hy
        draft.add("hair", 0, _ellipse(centre, 1.08 * hx_seen, 1.06 * hy, roll), identity.hair, head_key)
        if facing_z > -0.3:
            centre = head_center + right * facing_x * 0.12 * hx + down * 0.06 * hy
            draft.add("face", 0, _ellipse(centre, 0.92 * hx_seen, 0.9 * hy, roll), identity.skin, head_key)
        centre = head_center - right * facing_x * 0.1 * hx - down * 0.5 * hy
        draft.add("fringe", 0, _ellipse(centre, 0.98 * hx_seen, 0.5 * hy, roll), identity.hair, head_key)
    if hx >= 1.5:  # eyes smaller than a supersampled pixel only add noise
        normals = face_normals_z(pose.head_yaw)
        for side in SIDES:
            if normals[("eye", side)] > 0.1:
                eye = draft.joints[EYE[side]]
                draft.add("eye", side, _ellipse(eye, 0.13 * hx, 0.1 * hx, roll), (40, 30, 30), head_key)


def figure_parts(identity: Identity, pose: FigurePose) -> list[Part]:
    """Every filled shape of the figure in draw order, in the pose's canvas pixels."""
    draft = _Draft(identity, pose)
    frame = _torso_frame(draft)
    # Insertion order matters twice: it numbers the batched capsules and breaks ties of draw order.
    for side_index, side in enumerate(SIDES):
        _add_leg(draft, side_index, side)
    if identity.bottom_kind == "skirt":
        _add_skirt(draft, frame)
    else:
        _add_pelvis(draft, frame)
    _add_top(draft, frame)
    for side in SIDES:
        _add_arm(draft, side)
    _add_head(draft)
    return draft.parts()


# Which parts an elbow, wrist, knee or ankle belongs to; any other part drawn over it hides it.
_OWNERS = {}
for _side in SIDES:
    _arm = {("upper_arm", _side), ("sleeve", _side), ("forearm", _side)}
    _OWNERS[ELBOW[_side]] = _arm
    _OWNERS[WRIST[_side]] = {("forearm", _side), ("hand", _side)}
    _OWNERS[KNEE[_side]] = {("thigh", _side), ("shin", _side), ("shorts_leg", _side), ("skirt", 0)}
    _OWNERS[ANKLE[_side]] = {("shin", _side), ("shoe", _side), ("skirt", 0)}


def _visible_joints(pose: FigurePose, parts: list[Part]) -> np.ndarray:
    """Boolean [18]: which joints a detector would find (rules in the package docstring), given the
    figure's ``parts`` in draw order."""
    visible = np.ones(NUM_JOINTS, dtype=bool)
    if abs(math.sin(pose.yaw)) > SIDE_VIEW_SIN:
        far = -1 if pose.depth_px[SHOULDER[-1]] < pose.depth_px[SHOULDER[1]] else 1
        visible[[SHOULDER[far], HIP[far]]] = False
    normals = face_normals_z(pose.head_yaw)
    visible[NOSE] = normals["nose"] > -0.2
    for side in SIDES:
        visible[EYE[side]] = normals[("eye", side)] > 0.1
        visible[EAR[side]] = normals[("ear", side)] > -0.35

    labels = [(part.name, part.side) for part in parts]
    for joint, owners in _OWNERS.items():
        first = min(i for i, label in enumerate(labels) if label in owners)
        point = (float(pose.joints_px[joint, 0]), float(pose.joints_px[joint, 1]))
        for part, label in zip(parts[first + 1 :], labels[first + 1 :]):
            if label in owners:
                continue
            if cv2.pointPolygonTest(part.polygon, point, False) > 0:
                visible[joint] = False
                break

    margin = OUT_OF_FRAME_MARGIN * np.array([pose.width, pose.height])
    limit = np.array([pose.width - 1, pose.height - 1]) + margin
    inside = ((pose.joints_px >= -margin) & (pose.joints_px <= limit)).all(axis=1)
    return visible & inside


def sample_pose(
    rng: np.random.Generator, identity: Identity, height: int, width: int, kind: str | None = None
) -> FigurePose:
    """A random plausible pose of ``identity`` on a ``height`` × ``width`` canvas.

    ``kind`` is one of :data:`POSE_KINDS`, or None to draw one (standing and walking most often).
    The returned keypoints already mark hidden and far-off-canvas joints missing (package docstring).
    """
    return sample_pose_and_parts(rng, identity, height, width, kind)[0]


def sample_pose_and_parts(
    rng: np.random.Generator, identity: Identity, height: int, width: int, kind: str | None
) -> tuple[FigurePose, list[Part]]:
    """:func:`sample_pose` plus the figure's parts, which decide occlusion and are reused to draw."""
    pose = place_figure(rng, identity.body, height, width, kind)
    parts = figure_parts(identity, pose)
    keypoints = pose.keypoints.copy()
    keypoints[~_visible_joints(pose, parts), :] = 0.0
    return replace(pose, keypoints=keypoints), parts
