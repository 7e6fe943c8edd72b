"""Procedural people in pose pairs: training data for the small embedded PIDM model.

PIDM learns to redraw the person of a source image in a target pose. Real pairs (DeepFashion) are
large and licensed, so the embedded model trains on procedural ones instead: :func:`make_pair` draws
one *identity* (body proportions, skin, hair, clothes with patterns, shoes and a low-frequency studio
background) and renders it in two *poses*. Everything follows from one integer seed through
``numpy.random.default_rng(seed)``; nothing touches a global random state. The random draws do not
depend on the canvas size, so ``make_pair(s, 64)`` and ``make_pair(s, 256)`` show the same scene.

Geometry. A figure is a 2.5-D puppet: joints are placed in a body frame (units: the standing figure
measures 1 from head top to sole), limbs are aimed by abduction/flexion angles, the body is turned
by a yaw angle (0 = facing the camera, ±90° = profile, 180° = back) and projected orthographically.
Depth decides the draw order (the far arm of a side view goes behind the torso). Body parts are
filled polygons (capsules for limbs, a tapered torso, ellipses for the head), clothes are textures
clipped to their part, and the whole figure is drawn at ``SUPERSAMPLE``× and shrunk with
``cv2.INTER_AREA``, which anti-aliases every edge.

Keypoints are COCO-18 ``(x_px, y_px, confidence)`` with (0, 0) at the centre of the top-left pixel
(the cv2 convention of :mod:`pidm_core.pose.keypoints`); every coordinate is the centre of the joint
as drawn. A joint is reported the way a detector would see it, confidence 1 or 0:

* the far shoulder and far hip of a side view (``|sin yaw| > SIDE_VIEW_SIN``) are missing;
* an elbow, wrist, knee or ankle covered by a part drawn over it that is not its own limb (the
  far leg behind the near one, a hand behind the back) is missing;
* nose, eyes and ears follow the head's yaw: a back view has no nose and eyes, a profile has
  only the near eye and ear;
* a joint outside the canvas stays present, with its outside coordinates, while it lies within
  ``OUT_OF_FRAME_MARGIN`` × the canvas side of the border (its limb still shows at the edge);
  further out it is missing.

About one pose in ten is deliberately framed too tight (feet below the bottom edge or a side
cut off); :attr:`FigurePose.out_of_frame` says so. Otherwise the whole figure fits the canvas and
its height (head top to sole, raised hands included) is about 70–95 % of the canvas height.

Speed, in CPU seconds of one thread (the 2-core machine it was measured on was shared and loaded,
so wall time there was 2–3× longer):
``python -c "import time,cv2,torch; cv2.setNumThreads(1); torch.set_num_threads(1);
from pidm_core.data.synthetic import SyntheticPairs, make_pair; d=SyntheticPairs(10**6);
[d[i] for i in range(20)]; t=time.process_time(); [d[i] for i in range(500)];
print((time.process_time()-t)/500*1e3, 'ms/item'); t=time.process_time();
[make_pair(i) for i in range(500)]; print((time.process_time()-t)/500*1e3, 'ms/make_pair')"``
gives 4.8 ms per 64×64 dataset item (both images, both 20-channel pose maps, tensors) and 2.7 ms
per ``make_pair`` (both images and keypoints); the two pose maps take about 1.3 ms. At 256×256 a
pair takes about 4 ms and an item about 18 ms, most of it the pose maps' distance transforms.
"""

from __future__ import annotations

import colorsys
import math
from dataclasses import dataclass, replace

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from ..pose.keypoints import JOINT_NAMES, NUM_JOINTS
from ..pose.render import render_pose_map

Colour = tuple[int, int, int]  # RGB, 0–255

TRAIN_SEED_OFFSET = 0
HELD_OUT_SEED_OFFSET = 10_000_000  # far above any training length, so the splits never share a seed

SUPERSAMPLE = 2
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
PATTERNS = ("solid", "stripes", "checks", "dots", "gradient", "logo")
_PATTERN_WEIGHTS = (0.40, 0.16, 0.10, 0.10, 0.10, 0.14)
BACKGROUND_KINDS = ("plain", "vertical_gradient", "horizontal_gradient", "two_tone")
HAIR_STYLES = ("short", "long", "bald")
SLEEVES = ("none", "short", "long")
BOTTOM_KINDS = ("trousers", "shorts", "skirt")

_J = {name: i for i, name in enumerate(JOINT_NAMES)}
NOSE, NECK = _J["nose"], _J["neck"]
# Per body side: -1 is the person's right (image left when they face the camera), +1 their left.
_SHOULDER = {-1: _J["right_shoulder"], 1: _J["left_shoulder"]}
_ELBOW = {-1: _J["right_elbow"], 1: _J["left_elbow"]}
_WRIST = {-1: _J["right_wrist"], 1: _J["left_wrist"]}
_HIP = {-1: _J["right_hip"], 1: _J["left_hip"]}
_KNEE = {-1: _J["right_knee"], 1: _J["left_knee"]}
_ANKLE = {-1: _J["right_ankle"], 1: _J["left_ankle"]}
_EYE = {-1: _J["right_eye"], 1: _J["left_eye"]}
_EAR = {-1: _J["right_ear"], 1: _J["left_ear"]}
_SIDES = (-1, 1)


# --------------------------------------------------------------------------------------------------
# Identity


@dataclass(frozen=True)
class Body:
    """Proportions in body units (the standing figure is 1 unit from head top to sole)."""

    stature: float  # standing height as a fraction of the canvas height
    head_height: float
    head_width: float
    neck_length: float  # chin to shoulder line
    torso_length: float  # shoulder line (COCO neck) to hip line
    shoulder_half_width: float
    hip_half_width: float
    torso_half_depth: float
    upper_arm: float
    forearm: float
    hand: float
    thigh: float
    shin: float
    foot_height: float  # ankle to sole
    foot_length: float
    arm_radius: float  # at the shoulder; limbs taper toward the hand
    leg_radius: float  # at the hip; tapers toward the ankle
    neck_radius: float


@dataclass(frozen=True)
class Garment:
    """A fabric: ``colour`` is the main colour, ``colour_b`` the pattern's second colour."""

    pattern: str  # one of PATTERNS
    colour: Colour
    colour_b: Colour
    period: float  # pattern period (stripes, checks, dots) or logo size, body units
    orientation: str  # stripes: "horizontal", "vertical" or "diagonal"
    logo_shape: str  # logo: "circle", "diamond", "triangle" or "star"


@dataclass(frozen=True)
class Background:
    """A studio backdrop; low-frequency by construction (no edges but the soft two-tone seam)."""

    kind: str  # one of BACKGROUND_KINDS
    colour: Colour  # top / left / wall
    colour_b: Colour  # bottom / right / floor
    split: float  # two_tone: seam height as a fraction of the canvas height


@dataclass(frozen=True)
class Identity:
    """Everything that stays the same between the two images of a pair."""

    body: Body
    skin: Colour
    hair: Colour
    hair_style: str  # one of HAIR_STYLES
    top: Garment
    sleeves: str  # one of SLEEVES
    v_neck: bool
    top_drop: float  # how far the top reaches below the hip line, body units
    bottom: Garment  # a dress is a skirt cut from the top's garment
    bottom_kind: str  # one of BOTTOM_KINDS
    bottom_length: float  # shorts: fraction of the thigh; skirt: fraction of thigh + shin
    shoes: Colour
    background: Background


def _hsv(h: float, s: float, v: float) -> Colour:
    r, g, b = colorsys.hsv_to_rgb(h % 1.0, s, v)
    return int(r * 255), int(g * 255), int(b * 255)


def _distance(a: Colour, b: Colour) -> float:
    return math.dist(a, b)


def _sample_body(rng: np.random.Generator) -> Body:
    u = rng.uniform
    build = u(0.85, 1.25)  # slim to stocky: scales widths, not lengths
    broad = u(0.9, 1.15)  # shoulders against hips
    head_height = 0.13 * u(0.9, 1.12)
    neck_length = 0.045 * u(0.85, 1.15)
    torso_length = 0.30 * u(0.92, 1.08)
    thigh = 0.245 * u(0.92, 1.08)
    shin = 0.235 * u(0.92, 1.08)
    foot_height = 0.04
    total = head_height + neck_length + torso_length + thigh + shin + foot_height
    k = 1.0 / total  # the vertical chain defines the unit; everything else scales with it
    return Body(
        stature=u(0.76, 0.90),
        head_height=head_height * k,
        head_width=head_height * k * u(0.74, 0.84),
        neck_length=neck_length * k,
        torso_length=torso_length * k,
        shoulder_half_width=0.112 * k * broad * (0.5 + 0.5 * build),
        hip_half_width=0.072 * k / broad * (0.5 + 0.5 * build),
        torso_half_depth=0.06 * k * build,
        upper_arm=0.175 * k * u(0.93, 1.07),
        forearm=0.15 * k * u(0.93, 1.07),
        hand=0.07 * k,
        thigh=thigh * k,
        shin=shin * k,
        foot_height=foot_height * k,
        foot_length=0.13 * k * u(0.9, 1.1),
        arm_radius=0.031 * k * build,
        leg_radius=0.05 * k * build,
        neck_radius=0.027 * k * build,
    )


def _sample_skin(rng: np.random.Generator) -> Colour:
    light, medium, dark = np.array([242, 200, 172]), np.array([196, 134, 96]), np.array([96, 62, 42])
    t = rng.uniform(0.0, 1.0)
    base = light + (medium - light) * (t / 0.5) if t < 0.5 else medium + (dark - medium) * ((t - 0.5) / 0.5)
    jitter = rng.uniform(-10, 10, size=3)
    return tuple(int(c) for c in np.clip(base + jitter, 0, 255))


def _sample_hair_colour(rng: np.random.Generator) -> Colour:
    palette = ((28, 22, 20), (62, 42, 30), (112, 76, 46), (204, 170, 112), (146, 64, 32), (150, 150, 150))
    base = np.array(palette[rng.choice(len(palette), p=(0.3, 0.25, 0.18, 0.12, 0.08, 0.07))])
    return tuple(int(c) for c in np.clip(base + rng.uniform(-12, 12, size=3), 0, 255))


def _sample_fabric_colour(rng: np.random.Generator) -> Colour:
    if rng.uniform() < 0.22:  # the neutrals people actually wear a lot: white, black, grey, navy, beige
        neutrals = ((240, 240, 236), (30, 30, 34), (128, 128, 132), (36, 44, 84), (206, 190, 160))
        return neutrals[rng.integers(len(neutrals))]
    return _hsv(rng.uniform(), rng.uniform(0.25, 0.95), rng.uniform(0.25, 0.95))


def _contrasting(
    rng: np.random.Generator, sampler, avoid: tuple[Colour, ...], min_distance: float, tries: int = 8
) -> Colour:
    """A colour from ``sampler`` at least ``min_distance`` (RGB Euclidean) from every colour in
    ``avoid``; after ``tries`` failures, the best of the tries (the figure must stay visible)."""
    best, best_distance = None, -1.0
    for _ in range(tries):
        colour = sampler(rng)
        distance = min((_distance(colour, a) for a in avoid), default=math.inf)
        if distance >= min_distance:
            return colour
        if distance > best_distance:
            best, best_distance = colour, distance
    return best


def _sample_garment(rng: np.random.Generator, avoid: tuple[Colour, ...]) -> Garment:
    pattern = PATTERNS[rng.choice(len(PATTERNS), p=_PATTERN_WEIGHTS)]
    colour = _contrasting(rng, _sample_fabric_colour, avoid, 40.0)
    colour_b = _contrasting(rng, _sample_fabric_colour, (colour,), 90.0)
    if pattern == "gradient":  # a gradient between far-apart colours looks like two garments
        darker = np.array(colour) * rng.uniform(0.45, 0.7) + rng.uniform(0, 60)
        colour_b = tuple(int(c) for c in np.clip(darker, 0, 255))
    period = {"stripes": (0.035, 0.08), "checks": (0.05, 0.1), "dots": (0.04, 0.08), "logo": (0.045, 0.07)}
    low, high = period.get(pattern, (0.05, 0.05))
    return Garment(
        pattern=pattern,
        colour=colour,
        colour_b=colour_b,
        period=rng.uniform(low, high),
        orientation=("horizontal", "vertical", "diagonal")[rng.choice(3, p=(0.55, 0.3, 0.15))],
        logo_shape=("circle", "diamond", "triangle", "star")[rng.integers(4)],
    )


# Plain backdrops to fall back on when no sampled one stands out from the clothes.
_FALLBACK_BACKDROPS = (
    (236, 236, 236), (196, 196, 196), (140, 140, 140), (72, 72, 72), (24, 24, 24), (198, 218, 240),
    (58, 78, 118), (218, 234, 206), (70, 108, 80), (240, 224, 198), (128, 88, 70), (240, 208, 220),
)  # fmt: skip


def _sample_background(rng: np.random.Generator, avoid: tuple[Colour, ...]) -> Background:
    """A backdrop whose colours lie at least 70 (RGB distance) from every colour in ``avoid`` when
    16 tries or the fallback list allow; otherwise the one that stands out most."""
    kind = BACKGROUND_KINDS[rng.choice(len(BACKGROUND_KINDS), p=(0.35, 0.25, 0.15, 0.25))]
    split = rng.uniform(0.6, 0.9)

    def backdrop() -> Colour:
        if rng.uniform() < 0.55:  # DeepFashion's studios are mostly light and neutral
            level = rng.uniform(170, 250)
            return tuple(int(c) for c in np.clip(level + rng.uniform(-8, 8, size=3), 0, 255))
        return _hsv(rng.uniform(), rng.uniform(0.08, 0.5), rng.uniform(0.3, 0.95))

    def contrast(*colours: Colour) -> float:
        return min(_distance(c, a) for c in colours for a in avoid)

    best = (-1.0, None, None, kind)
    for _ in range(16):
        colour = backdrop()
        shade, tint = rng.uniform(0.65, 1.1), rng.uniform(-15, 15, size=3)
        colour_b = tuple(int(c) for c in np.clip(np.array(colour) * shade + tint, 0, 255))
        if kind == "plain":
            colour_b = colour
        distance = contrast(colour, colour_b)
        if distance >= 70.0:
            return Background(kind=kind, colour=colour, colour_b=colour_b, split=split)
        if distance > best[0]:
            best = (distance, colour, colour_b, kind)
    for colour in _FALLBACK_BACKDROPS:
        if (distance := contrast(colour)) > best[0]:
            best = (distance, colour, colour, "plain")
    _, colour, colour_b, kind = best
    return Background(kind=kind, colour=colour, colour_b=colour_b, split=split)


def sample_identity(rng: np.random.Generator) -> Identity:
    """A random person: body proportions, skin, hair, clothes, shoes and the studio background.

    Skin, hair, garments and shoes are drawn first; the background is then chosen to contrast with them and
    with the average of each pattern's two colours (RGB distance >= 70 when possible) so the figure
    never dissolves into the backdrop.
    """
    body = _sample_body(rng)
    skin = _sample_skin(rng)
    hair = _sample_hair_colour(rng)
    hair_style = HAIR_STYLES[rng.choice(3, p=(0.5, 0.44, 0.06))]
    top = _sample_garment(rng, (skin,))
    sleeves = SLEEVES[rng.choice(3, p=(0.15, 0.45, 0.4))]
    v_neck = bool(rng.uniform() < 0.4)
    top_drop = rng.uniform(-0.01, 0.06)
    bottom_kind = BOTTOM_KINDS[rng.choice(3, p=(0.55, 0.15, 0.3))]
    bottom = _sample_garment(rng, (top.colour, skin))
    if bottom_kind == "skirt" and rng.uniform() < 0.35:
        bottom = top  # a dress
    bottom_length = rng.uniform(0.45, 0.8) if bottom_kind == "shorts" else rng.uniform(0.35, 0.8)
    shoes = _sample_fabric_colour(rng) if rng.uniform() < 0.3 else _hsv(rng.uniform(), 0.3, rng.uniform(0.1, 0.3))
    colours = [skin, hair, shoes]
    for garment in (top, bottom):
        # A fine pattern averages to the mean of its colours once shrunk: that must stand out too.
        mean = tuple((a + b) // 2 for a, b in zip(garment.colour, garment.colour_b))
        colours += [garment.colour, garment.colour_b, mean]
    background = _sample_background(rng, tuple(colours))
    return Identity(
        body=body,
        skin=skin,
        hair=hair,
        hair_style=hair_style,
        top=top,
        sleeves=sleeves,
        v_neck=v_neck,
        top_drop=top_drop,
        bottom=bottom,
        bottom_kind=bottom_kind,
        bottom_length=bottom_length,
        shoes=shoes,
        background=background,
    )


# --------------------------------------------------------------------------------------------------
# Pose


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


def _articulation(rng: np.random.Generator, kind: str) -> _Articulation:
    u = rng.uniform

    def hanging() -> tuple:
        a1, f1 = u(4, 16), u(-10, 14)
        return a1, f1, a1 + u(-6, 6), f1 + u(0, 35)

    def on_hip() -> tuple:  # elbow out, forearm back in and down to the waist
        return u(30, 45), u(-15, 5), u(-65, -35), u(-15, 5)

    def raised() -> tuple:
        a1, f1 = u(140, 172), u(-10, 10)
        return a1, f1, min(a1 + u(-5, 20), 190.0), f1 + u(-5, 10)

    def held_out() -> tuple:
        a1, f1 = u(75, 100), u(-10, 15)
        return a1, f1, a1 + u(-25, 15), f1 + u(0, 20)

    def behind() -> tuple:  # upper arm back, forearm inward behind the back
        return u(5, 15), u(-35, -15), u(-95, -60), u(-60, -30)

    def swing(forward: bool) -> tuple:
        a1, f1 = u(4, 10), (u(12, 30) if forward else u(-28, -10))
        return a1, f1, a1 + u(-4, 4), f1 + u(10, 35)

    def leg_stand() -> tuple:
        a, f = u(1, 8), u(-4, 6)
        return a, f, a, f - u(0, 12)  # knees only bend backward: the shin flexes less than the thigh

    def leg_stride(forward: bool) -> tuple:
        a, f = u(0, 4), (u(16, 30) if forward else u(-24, -10))
        return a, f, a, f - (u(0, 12) if forward else u(20, 45))

    def casual_arm() -> tuple:
        return on_hip() if u() < 0.25 else hanging()

    lead = -1 if u() < 0.5 else 1  # the side that steps forward / raises / goes behind
    arms: dict = {}
    legs: dict = {}
    yaw = u(-35, 35)
    if kind in ("standing", "back"):
        arms = {s: casual_arm() for s in _SIDES}
        legs = {s: leg_stand() for s in _SIDES}
        if kind == "back":
            yaw = 180 + u(-30, 30)
    elif kind == "walking":
        yaw = u(-45, 45)
        legs = {lead: leg_stride(True), -lead: leg_stride(False)}
        arms = {lead: swing(False), -lead: swing(True)}
    elif kind == "arms_raised":
        yaw = u(-25, 25)
        arms = {s: raised() for s in _SIDES}
        legs = {s: leg_stand() for s in _SIDES}
    elif kind == "arms_out":
        yaw = u(-25, 25)
        arms = {s: held_out() for s in _SIDES}
        legs = {s: leg_stand() for s in _SIDES}
    elif kind == "one_arm_up":
        yaw = u(-30, 30)
        arms = {lead: raised(), -lead: casual_arm()}
        legs = {s: leg_stand() for s in _SIDES}
    elif kind == "side":
        yaw = (1 if u() < 0.5 else -1) * u(65, 100)
        if u() < 0.5:
            legs = {lead: leg_stride(True), -lead: leg_stride(False)}
            arms = {lead: swing(False), -lead: swing(True)}
        else:
            legs = {s: leg_stand() for s in _SIDES}
            arms = {s: hanging() for s in _SIDES}
    elif kind == "hands_behind":
        yaw = u(-40, 40)
        arms = {lead: behind(), -lead: behind() if u() < 0.5 else hanging()}
        legs = {s: leg_stand() for s in _SIDES}
    else:
        raise ValueError(f"unknown pose kind {kind!r}; expected one of {POSE_KINDS}")
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


def _face_normals_z(head_yaw: float) -> dict:
    """How much each facial landmark faces the viewer (z of its surface normal): nose and eyes look
    forward and slightly outward, ears sideways. Positive means turned toward the camera."""
    c, s = math.cos(head_yaw), math.sin(head_yaw)
    normals = {"nose": (0.0, 1.0)}
    for side in _SIDES:
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
    for side in _SIDES:
        a1, f1, a2, f2 = art.arms[side]
        shoulder = np.array([side * body.shoulder_half_width, neck_y + 0.08 * body.shoulder_half_width, 0.0])
        forearm = _direction(a2, f2, side)
        elbow = shoulder + body.upper_arm * _direction(a1, f1, side)
        wrist = elbow + body.forearm * forearm
        joints[_SHOULDER[side]], joints[_ELBOW[side]], joints[_WRIST[side]] = shoulder, elbow, wrist
        extras["hand_tip"][side] = wrist + body.hand * forearm
        a1, f1, a2, f2 = art.legs[side]
        hip = np.array([side * body.hip_half_width, hip_y, 0.0])
        shin = _direction(a2, f2, side)
        knee = hip + body.thigh * _direction(a1, f1, side)
        ankle = knee + body.shin * shin
        joints[_HIP[side]], joints[_KNEE[side]], joints[_ANKLE[side]] = hip, knee, ankle
        # The foot is at right angles to the shin in the sagittal plane (a raised heel tips the toe down).
        foot = np.array([0.0, -math.sin(math.radians(f2)), math.cos(math.radians(f2))])
        extras["toe"][side] = ankle + 0.5 * body.foot_height * shin + 0.75 * body.foot_length * foot

    yaw = math.radians(art.yaw)
    anchors = [extras[key][side] for key in ("hand_tip", "toe") for side in _SIDES]
    rotated = _yaw_rotate(np.concatenate([joints, anchors]), yaw)
    joints = rotated[:NUM_JOINTS]
    extras = {
        "hand_tip": dict(zip(_SIDES, rotated[NUM_JOINTS : NUM_JOINTS + 2])),
        "toe": dict(zip(_SIDES, rotated[NUM_JOINTS + 2 :])),
    }

    roll = math.radians(art.head_roll)
    up = np.array([math.sin(roll), -math.cos(roll), 0.0])
    head_center = joints[NECK] + (body.neck_length + body.head_height / 2) * up
    hw, hh = body.head_width, body.head_height
    face_local = {NOSE: (0.0, 0.1 * hh, 0.5 * hw)}
    for side in _SIDES:
        face_local[_EYE[side]] = (side * 0.2 * hw, -0.04 * hh, 0.42 * hw)
        face_local[_EAR[side]] = (side * 0.5 * hw, 0.03 * hh, -0.02 * hw)
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
    for side in _SIDES:
        for index, radius in ((_SHOULDER[side], body.arm_radius), (_ELBOW[side], body.arm_radius),
                              (_HIP[side], body.leg_radius), (_KNEE[side], body.leg_radius * 0.75)):  # fmt: skip
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


def sample_pose(
    rng: np.random.Generator, identity: Identity, height: int, width: int, kind: str | None = None
) -> FigurePose:
    """A random plausible pose of ``identity`` on a ``height`` × ``width`` canvas.

    ``kind`` is one of :data:`POSE_KINDS`, or None to draw one (standing and walking most often).
    The returned keypoints already mark hidden and far-off-canvas joints missing (module docstring).
    """
    return _sample_pose_and_parts(rng, identity, height, width, kind)[0]


def _sample_pose_and_parts(
    rng: np.random.Generator, identity: Identity, height: int, width: int, kind: str | None
) -> tuple[FigurePose, list]:
    """:func:`sample_pose` plus the figure's parts, which decide occlusion and are reused to draw."""
    if kind is None:
        kind = POSE_KINDS[rng.choice(len(POSE_KINDS), p=_POSE_KIND_WEIGHTS)]
    elif kind not in POSE_KINDS:
        raise ValueError(f"unknown pose kind {kind!r}; expected one of {POSE_KINDS}")
    if height < 8 or width < 8:
        raise ValueError(f"canvas must be at least 8x8 pixels, got {height}x{width}")
    body = identity.body
    art = _articulation(rng, kind)
    joints, extras = _skeleton(body, art)
    lo, hi = _extent(body, joints, extras)
    scale, offset, out_of_frame = _placement(rng, body, lo, hi, height, width)

    def to_px(point: np.ndarray) -> np.ndarray:
        return (point[..., :2] * scale + offset).astype(np.float32)

    joints_px = to_px(joints)
    pose = FigurePose(
        kind=kind,
        keypoints=np.concatenate([joints_px, np.ones((NUM_JOINTS, 1), np.float32)], axis=1),
        joints_px=joints_px,
        depth_px=(joints[:, 2] * scale).astype(np.float32),
        head_center_px=to_px(extras["head_center"]),
        toe_px=np.stack([to_px(extras["toe"][s]) for s in _SIDES]),
        yaw=math.radians(art.yaw),
        head_yaw=extras["head_yaw"],
        head_roll=math.radians(art.head_roll),
        scale_px=float(scale),
        out_of_frame=out_of_frame,
        height=int(height),
        width=int(width),
    )
    parts = _figure_parts(identity, pose)
    keypoints = pose.keypoints.copy()
    keypoints[~_visible_joints(pose, parts), :] = 0.0
    return replace(pose, keypoints=keypoints), parts


# --------------------------------------------------------------------------------------------------
# Figure layout: the polygons drawn, in draw order


@dataclass(frozen=True)
class _TextureFill:
    """A garment mapped onto a part: ``origin`` (px) is where the garment's vertical texture axis
    starts, ``axis`` the unit direction of that axis on the canvas, ``v0`` (px) how far down the
    garment the origin lies (so a sleeve continues the torso's gradient)."""

    garment: Garment
    length_px: float  # gradient length
    origin: np.ndarray
    axis: np.ndarray
    v0: float


@dataclass(frozen=True)
class _Part:
    name: str
    side: int  # -1 right, +1 left, 0 centre
    polygon: np.ndarray  # [N, 2] float32 canvas px
    fill: object  # Colour or _TextureFill
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


def _figure_parts(identity: Identity, pose: FigurePose) -> list[_Part]:
    """Every filled shape of the figure in draw order, in the pose's canvas pixels."""
    body = identity.body
    unit = pose.scale_px
    joints = pose.joints_px.astype(np.float64)
    depth = (pose.depth_px / pose.scale_px).tolist()  # body units, toward the viewer
    head_center = pose.head_center_px.astype(np.float64)
    toes = pose.toe_px.astype(np.float64)
    cos_yaw, sin_yaw = abs(math.cos(pose.yaw)), abs(math.sin(pose.yaw))
    pending: list[tuple] = []  # (name, side, polygon or capsule index, fill, key)
    capsule_specs: list[tuple] = []

    def add(name: str, side: int, shape: np.ndarray | int, fill: object, key: float) -> None:
        pending.append((name, side, shape, fill, key))

    def capsule(a: np.ndarray, b: np.ndarray, radius_a: float, radius_b: float) -> int:
        capsule_specs.append((a[0], a[1], b[0], b[1], radius_a, radius_b))
        return len(capsule_specs) - 1

    def fabric(garment: Garment, length_units: float, origin: np.ndarray, axis: np.ndarray, v0: float):
        if garment.pattern in ("solid", "logo"):
            return garment.colour
        return _TextureFill(garment, length_units * unit, origin, axis, v0)

    def projected_half_width(width_3d: float, depth_3d: float) -> float:
        return (width_3d * cos_yaw + depth_3d * sin_yaw) * unit

    # Torso frame: from the neck (shoulder line) down to the hip centre.
    neck = joints[NECK]
    hip_mid = (joints[_HIP[-1]] + joints[_HIP[1]]) / 2
    axis = _unit(hip_mid - neck)
    across = np.array([axis[1], -axis[0]])
    torso_px = float(np.hypot(*(hip_mid - neck)))
    d = body.torso_half_depth
    w_shoulder = projected_half_width(body.shoulder_half_width + 0.35 * body.arm_radius, d)
    w_chest = projected_half_width(0.92 * body.shoulder_half_width + 0.2 * body.arm_radius, 1.05 * d)
    waist = 0.6 * body.shoulder_half_width + 0.3 * (body.hip_half_width + body.leg_radius)
    w_waist = projected_half_width(waist, 0.9 * d)
    w_hip = projected_half_width(body.hip_half_width + 0.9 * body.leg_radius, d)

    def at(t: float, w: float) -> np.ndarray:
        return neck + axis * t + across * w

    # Legs: always behind the pelvis and torso, the nearer leg over the farther one; a far arm of a
    # side view (deeper still) goes behind both.
    leg_r = body.leg_radius * unit
    trousers = identity.bottom_kind == "trousers"
    bottom_len = body.thigh + body.shin
    for side_index, side in enumerate(_SIDES):
        hip, knee, ankle = joints[_HIP[side]], joints[_KNEE[side]], joints[_ANKLE[side]]
        key = min((depth[_HIP[side]] + depth[_KNEE[side]] + depth[_ANKLE[side]]) / 3, -0.045)
        widen = 1.1 if trousers else 1.0
        hem_widen = 1.25 if trousers else 1.0  # trouser legs stay wide down to the ankle
        thigh_fill, shin_fill = identity.skin, identity.skin
        if trousers:
            thigh_fill = fabric(identity.bottom, bottom_len, hip, _unit(knee - hip), 0.0)
            shin_fill = fabric(identity.bottom, bottom_len, knee, _unit(ankle - knee), body.thigh * unit)
        add("thigh", side, capsule(hip, knee, leg_r * widen, 0.7 * leg_r * widen), thigh_fill, key)
        add("shin", side, capsule(knee, ankle, 0.7 * leg_r * widen, 0.46 * leg_r * hem_widen), shin_fill, key)
        if identity.bottom_kind == "shorts":
            hem = hip + (knee - hip) * identity.bottom_length
            fill = fabric(identity.bottom, bottom_len, hip, _unit(knee - hip), 0.0)
            hem_r = 1.1 * leg_r * (1 - 0.3 * identity.bottom_length)
            add("shorts_leg", side, capsule(hip, hem, 1.1 * leg_r, hem_r), fill, key)
        heel = ankle + _unit(ankle - knee) * 0.45 * body.foot_height * unit
        foot_r = body.foot_height * unit
        add("shoe", side, capsule(heel, toes[side_index], 0.62 * foot_r, 0.55 * foot_r), identity.shoes, key)

    # Pelvis (trousers and shorts) or skirt, then the top.
    if identity.bottom_kind == "skirt":
        length = identity.bottom_length * bottom_len / body.thigh  # in thigh lengths
        flare = (0.02 + 0.05 * identity.bottom_length) * unit
        points = [at(0.72 * torso_px, -w_waist), at(0.72 * torso_px, w_waist)]
        points += [at(torso_px, -1.05 * w_hip), at(torso_px, 1.05 * w_hip)]
        for side in _SIDES:
            hip, knee, ankle = joints[_HIP[side]], joints[_KNEE[side]], joints[_ANKLE[side]]
            if length <= 1:
                hem = hip + (knee - hip) * length
            else:
                hem = knee + (ankle - knee) * (length - 1) * body.thigh / body.shin
            points += [hem + across * (leg_r + flare), hem - across * (leg_r + flare)]
        fill = fabric(identity.bottom, bottom_len, at(0.72 * torso_px, 0), axis, 0.0)
        add("skirt", 0, _hull(points), fill, -0.035)
    else:
        points = [at(0.7 * torso_px, -w_waist), at(0.7 * torso_px, w_waist), at(torso_px, -w_hip), at(torso_px, w_hip)]
        for side in _SIDES:
            below_hip = joints[_HIP[side]] + axis * 0.6 * leg_r
            points += [below_hip + across * leg_r, below_hip - across * leg_r]
        points.append(hip_mid + axis * leg_r)
        add("pelvis", 0, _hull(points), fabric(identity.bottom, bottom_len, at(0.7 * torso_px, 0), axis, 0.0), -0.04)

    top_len = body.torso_length * 1.1
    bottom_t = torso_px + identity.top_drop * unit
    collar = -0.03 * unit  # the collar hugs the neck a little above the shoulder line (COCO neck)
    profile = ((collar, 0.42 * w_shoulder), (0.015 * unit, w_shoulder), (0.08 * unit, w_chest),
               (0.6 * torso_px, w_waist), (bottom_t, w_hip))  # fmt: skip
    t, w = np.array(profile).T
    t, w = np.concatenate([t, t[::-1]]), np.concatenate([w, -w[::-1]])
    torso = neck + t[:, None] * axis + w[:, None] * across
    add("torso", 0, torso, fabric(identity.top, top_len, neck, axis, 0.0), -0.03)
    add("neck", 0, capsule(neck, head_center, body.neck_radius * unit, body.neck_radius * unit), identity.skin, -0.031)
    if identity.v_neck and cos_yaw > 0.35 and math.cos(pose.yaw) > 0:
        half = 0.035 * unit * cos_yaw
        add("neckline", 0, np.array([at(collar, -half), at(collar, half), at(0.075 * unit, 0)]), identity.skin, -0.0299)
    if identity.top.pattern == "logo" and math.cos(pose.yaw) > 0.3:
        centre = at(0.38 * torso_px, math.sin(pose.yaw) * 0.3 * body.torso_half_depth * unit)
        shape = _LOGO_SHAPES[identity.top.logo_shape] * identity.top.period * unit
        logo = centre + shape[:, :1] * across * math.cos(pose.yaw) + shape[:, 1:] * axis
        add("logo", 0, logo, identity.top.colour_b, -0.0298)

    # Arms: in front of the torso unless their depth puts them behind it.
    arm_r = body.arm_radius * unit
    for side in _SIDES:
        shoulder, elbow, wrist = joints[_SHOULDER[side]], joints[_ELBOW[side]], joints[_WRIST[side]]
        # One depth per segment, so a forearm reaching behind the back goes behind the torso even
        # when its upper arm is in front; sleeve and hand come just after the segment they sit on.
        upper_key = (depth[_SHOULDER[side]] + depth[_ELBOW[side]]) / 2
        lower_key = (depth[_ELBOW[side]] + depth[_WRIST[side]]) / 2
        tip = wrist + _unit(wrist - elbow) * 0.7 * body.hand * unit
        sleeve_fill = fabric(identity.top, top_len, shoulder, _unit(elbow - shoulder), 0.0)
        if identity.sleeves == "long":
            forearm_fill = fabric(identity.top, top_len, elbow, _unit(wrist - elbow), body.upper_arm * unit)
            add("upper_arm", side, capsule(shoulder, elbow, 1.12 * arm_r, 0.9 * arm_r), sleeve_fill, upper_key)
            add("forearm", side, capsule(elbow, wrist, 0.9 * arm_r, 0.72 * arm_r), forearm_fill, lower_key)
        else:
            add("upper_arm", side, capsule(shoulder, elbow, arm_r, 0.78 * arm_r), identity.skin, upper_key)
            if identity.sleeves == "short":
                end = shoulder + (elbow - shoulder) * 0.5
                add("sleeve", side, capsule(shoulder, end, 1.15 * arm_r, 1.05 * arm_r), sleeve_fill, upper_key + 1e-6)
            add("forearm", side, capsule(elbow, wrist, 0.78 * arm_r, 0.6 * arm_r), identity.skin, lower_key)
        add("hand", side, capsule(wrist, tip, 0.62 * arm_r, 0.72 * arm_r), identity.skin, lower_key + 1e-6)

    # Head: hair volume, face, fringe, eyes. Long hair hangs behind the shoulders unless seen from behind.
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
        add("hair_back", 0, capsule(crown, ends, 1.0 * hx_seen, 0.85 * hx_seen), identity.hair, key)
    if identity.hair_style == "bald":
        add("face", 0, _ellipse(head_center, hx_seen, hy, roll), identity.skin, head_key)
    else:
        centre = head_center - right * facing_x * 0.08 * hx - down * 0.05 * hy
        add("hair", 0, _ellipse(centre, 1.08 * hx_seen, 1.06 * hy, roll), identity.hair, head_key)
        if facing_z > -0.3:
            centre = head_center + right * facing_x * 0.12 * hx + down * 0.06 * hy
            add("face", 0, _ellipse(centre, 0.92 * hx_seen, 0.9 * hy, roll), identity.skin, head_key)
        centre = head_center - right * facing_x * 0.1 * hx - down * 0.5 * hy
        add("fringe", 0, _ellipse(centre, 0.98 * hx_seen, 0.5 * hy, roll), identity.hair, head_key)
    if hx >= 1.5:  # eyes smaller than a supersampled pixel only add noise
        normals = _face_normals_z(pose.head_yaw)
        for side in _SIDES:
            if normals[("eye", side)] > 0.1:
                eye = joints[_EYE[side]]
                add("eye", side, _ellipse(eye, 0.13 * hx, 0.1 * hx, roll), (40, 30, 30), head_key)

    capsules = _capsules(np.array(capsule_specs)).astype(np.float32)
    parts = [_Part(name, side, capsules[shape] if isinstance(shape, int) else shape.astype(np.float32), fill, key)
             for name, side, shape, fill, key in pending]  # fmt: skip
    parts.sort(key=lambda part: part.key)  # stable: parts of equal key keep their insertion order
    return parts


# Which parts an elbow, wrist, knee or ankle belongs to; any other part drawn over it hides it.
_OWNERS = {}
for _side in _SIDES:
    _arm = {("upper_arm", _side), ("sleeve", _side), ("forearm", _side)}
    _OWNERS[_ELBOW[_side]] = _arm
    _OWNERS[_WRIST[_side]] = {("forearm", _side), ("hand", _side)}
    _OWNERS[_KNEE[_side]] = {("thigh", _side), ("shin", _side), ("shorts_leg", _side), ("skirt", 0)}
    _OWNERS[_ANKLE[_side]] = {("shin", _side), ("shoe", _side), ("skirt", 0)}


def _visible_joints(pose: FigurePose, parts: list[_Part]) -> np.ndarray:
    """Boolean [18]: which joints a detector would find (rules in the module docstring), given the
    figure's ``parts`` in draw order."""
    visible = np.ones(NUM_JOINTS, dtype=bool)
    if abs(math.sin(pose.yaw)) > SIDE_VIEW_SIN:
        far = -1 if pose.depth_px[_SHOULDER[-1]] < pose.depth_px[_SHOULDER[1]] else 1
        visible[[_SHOULDER[far], _HIP[far]]] = False
    normals = _face_normals_z(pose.head_yaw)
    visible[NOSE] = normals["nose"] > -0.2
    for side in _SIDES:
        visible[_EYE[side]] = normals[("eye", side)] > 0.1
        visible[_EAR[side]] = normals[("ear", side)] > -0.35

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


# --------------------------------------------------------------------------------------------------
# Rendering


def render_background(background: Background, height: int, width: int) -> np.ndarray:
    """The backdrop alone: uint8 RGB ``[height, width, 3]``."""
    a = np.array(background.colour, np.float32)
    b = np.array(background.colour_b, np.float32)
    if background.kind == "plain":
        t = np.zeros((1, 1, 1), np.float32)
    elif background.kind == "vertical_gradient":
        t = np.linspace(0, 1, height, dtype=np.float32)[:, None, None]
    elif background.kind == "horizontal_gradient":
        t = np.linspace(0, 1, width, dtype=np.float32)[None, :, None]
    elif background.kind == "two_tone":  # wall and floor meeting in a soft seam
        y = np.linspace(0, 1, height, dtype=np.float32)
        t = np.clip((y - background.split) / 0.08 + 0.5, 0, 1)
        t = (t * t * (3 - 2 * t))[:, None, None]
    else:
        raise ValueError(f"unknown background kind {background.kind!r}; expected one of {BACKGROUND_KINDS}")
    ramp = (a + (b - a) * t + 0.5).astype(np.uint8)  # [H, 1, 3], [1, W, 3] or [1, 1, 3]
    # Stretching the one-pixel ramp with cv2 is several times faster than numpy's broadcast copies.
    return cv2.resize(ramp, (width, height), interpolation=cv2.INTER_NEAREST)


def _texture(garment: Garment, length_px: float, unit_px: float) -> tuple[np.ndarray, int]:
    """A garment's texture tile (uint8 RGB) and the cv2 border mode that extends it: patterns
    repeat (wrap), a gradient runs once down the garment and then holds its end colour."""
    a = np.array(garment.colour, np.uint8)
    b = np.array(garment.colour_b, np.uint8)
    if garment.pattern == "gradient":
        n = max(2, int(round(length_px)))
        t = np.linspace(0, 1, n, dtype=np.float32)[:, None, None]
        return (a + (b.astype(np.float32) - a) * t + 0.5).astype(np.uint8), cv2.BORDER_REPLICATE
    period = max(2, int(round(garment.period * unit_px)))
    y, x = np.mgrid[0:period, 0:period]
    if garment.pattern == "stripes":
        coordinate = {"horizontal": y, "vertical": x, "diagonal": (x + y) % period}[garment.orientation]
        mask = coordinate < period / 2
    elif garment.pattern == "checks":
        mask = (x < period / 2) ^ (y < period / 2)
    elif garment.pattern == "dots":
        c = (period - 1) / 2
        mask = (x - c) ** 2 + (y - c) ** 2 <= (0.25 * period) ** 2
    else:
        raise ValueError(f"pattern {garment.pattern!r} has no texture; expected one of {PATTERNS}")
    return np.where(mask[:, :, None], b, a), cv2.BORDER_WRAP


def _darker(colour: Colour) -> Colour:
    r, g, b = colour
    return int(r * 0.62), int(g * 0.62), int(b * 0.62)


def _paint(
    canvas: np.ndarray, part: _Part, points: np.ndarray, unit_px: float, outline_px: int, textures: dict
) -> None:
    """Fill one part into ``canvas`` (in place) and trace its edge in a darker shade, which keeps
    an arm visible in front of a torso of the same fabric. ``points`` is the part's polygon in
    cv2 fixed point (int32, 4 fractional bits)."""
    fill = part.fill
    if isinstance(fill, _TextureFill):
        height, width = canvas.shape[:2]
        x0, y0 = np.floor(part.polygon.min(axis=0)).astype(int)
        x1, y1 = np.ceil(part.polygon.max(axis=0)).astype(int) + 1
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
        if x1 > x0 and y1 > y0:
            key = (fill.garment, round(fill.length_px))
            if key not in textures:
                textures[key] = _texture(fill.garment, fill.length_px, unit_px)
            tile, border = textures[key]
            across = np.array([fill.axis[1], -fill.axis[0]])
            matrix = np.array([[*across, -fill.origin @ across], [*fill.axis, -fill.origin @ fill.axis + fill.v0]])
            matrix[:, 2] += matrix[:, :2] @ np.array([x0, y0])  # the warp fills the ROI, not the canvas
            flags = cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP  # matrix maps canvas to texture
            warped = cv2.warpAffine(tile, matrix, (x1 - x0, y1 - y0), flags=flags, borderMode=border)
            mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
            cv2.fillPoly(mask, [points - np.array([x0, y0]) * 16], 1, shift=4)
            np.copyto(canvas[y0:y1, x0:x1], warped, where=mask[:, :, None].astype(bool))
        base = fill.garment.colour
    else:
        cv2.fillPoly(canvas, [points], fill, shift=4)
        base = fill
    if part.name != "eye":
        cv2.polylines(canvas, [points], True, _darker(base), outline_px, shift=4)


def render_person(identity: Identity, pose: FigurePose) -> np.ndarray:
    """The figure in ``pose`` over its background: uint8 RGB ``[pose.height, pose.width, 3]``.

    Drawn at ``SUPERSAMPLE``× and shrunk with INTER_AREA, so edges are anti-aliased.
    """
    return _render_parts(identity.background, _figure_parts(identity, pose), pose)


def _render_parts(background: Background, parts: list[_Part], pose: FigurePose) -> np.ndarray:
    s = SUPERSAMPLE
    canvas = render_background(background, pose.height * s, pose.width * s)
    unit_px = pose.scale_px * s
    outline_px = max(1, int(round(pose.height * s / 300)))
    textures: dict = {}
    # Output pixel i covers supersampled pixels i*s .. i*s+s-1, whose centre is i*s + (s-1)/2.
    offset = (s - 1) / 2
    polygons = np.concatenate([part.polygon for part in parts]) * s + offset
    fixed_point = np.round(polygons * 16).astype(np.int32)  # cv2 shift=4
    ends = np.cumsum([len(part.polygon) for part in parts])
    for part, points in zip(parts, np.split(fixed_point, ends[:-1])):
        if isinstance(part.fill, _TextureFill):  # texture frames move to supersampled pixels too
            f = part.fill
            fill = replace(f, length_px=f.length_px * s, origin=f.origin * s + offset, v0=f.v0 * s)
            part = replace(part, polygon=part.polygon * s + offset, fill=fill)
        _paint(canvas, part, points, unit_px, outline_px, textures)
    return cv2.resize(canvas, (pose.width, pose.height), interpolation=cv2.INTER_AREA)


# --------------------------------------------------------------------------------------------------
# Pairs and the dataset


@dataclass(frozen=True)
class PersonPair:
    """One identity in two poses. Images uint8 RGB ``[H, W, 3]``, keypoints float32 ``[18, 3]`` px."""

    source_image: np.ndarray
    source_keypoints: np.ndarray
    target_image: np.ndarray
    target_keypoints: np.ndarray
    identity: Identity
    source_pose: FigurePose
    target_pose: FigurePose


def _canvas_size(size: int | tuple[int, int]) -> tuple[int, int]:
    height, width = (size, size) if isinstance(size, (int, np.integer)) else size
    if height < 8 or width < 8:
        raise ValueError(f"size must be at least 8 pixels (an int or (height, width)), got {size!r}")
    return int(height), int(width)


def make_pair(seed: int, size: int | tuple[int, int] = 64) -> PersonPair:
    """The pair for ``seed``: one identity and background, two independently drawn poses.

    ``size`` is the side of a square canvas or ``(height, width)``. Deterministic in ``seed``.
    """
    height, width = _canvas_size(size)
    rng = np.random.default_rng(seed)
    identity = sample_identity(rng)
    source, source_parts = _sample_pose_and_parts(rng, identity, height, width, None)
    target, target_parts = _sample_pose_and_parts(rng, identity, height, width, None)
    return PersonPair(
        source_image=_render_parts(identity.background, source_parts, source),
        source_keypoints=source.keypoints,
        target_image=_render_parts(identity.background, target_parts, target),
        target_keypoints=target.keypoints,
        identity=identity,
        source_pose=source,
        target_pose=target,
    )


def _image_tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(image).permute(2, 0, 1).float() / 127.5 - 1.0


class SyntheticPairs(Dataset):
    """``length`` procedural pairs; item ``i`` is :func:`make_pair` of seed ``seed_offset + i``.

    Use ``seed_offset=TRAIN_SEED_OFFSET`` for training and ``HELD_OUT_SEED_OFFSET`` for evaluation.
    Each item is a dict of float32 tensors: ``source_image`` / ``target_image`` ``[3, H, W]`` in
    [-1, 1], ``source_pose`` / ``target_pose`` ``[20, H, W]`` in [0, 1] (official pose map), and
    ``source_keypoints`` / ``target_keypoints`` ``[18, 3]`` (x_px, y_px, confidence).
    """

    def __init__(self, length: int, size: int | tuple[int, int] = 64, seed_offset: int = TRAIN_SEED_OFFSET):
        if length < 0:
            raise ValueError(f"length must be >= 0, got {length}")
        self.length = int(length)
        self.height, self.width = _canvas_size(size)
        self.seed_offset = int(seed_offset)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if not -self.length <= index < self.length:
            raise IndexError(f"index {index} out of range for {self.length} pairs")
        pair = make_pair(self.seed_offset + index % self.length, (self.height, self.width))
        return {
            "source_image": _image_tensor(pair.source_image),
            "target_image": _image_tensor(pair.target_image),
            "source_pose": torch.from_numpy(render_pose_map(pair.source_keypoints, self.height, self.width)),
            "target_pose": torch.from_numpy(render_pose_map(pair.target_keypoints, self.height, self.width)),
            "source_keypoints": torch.from_numpy(pair.source_keypoints.copy()),
            "target_keypoints": torch.from_numpy(pair.target_keypoints.copy()),
        }
