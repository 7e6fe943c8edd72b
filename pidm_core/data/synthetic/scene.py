"""Synthetic scenes: the generator's people, small, somewhere in larger photos with busy backgrounds.

The pairs of :func:`~pidm_core.data.synthetic.make_pair` are framed like the embedded model's training
data (one person filling 70–95 % of the canvas height). Photos from the wild are not: the person is a
fraction of the frame, anywhere in it, in front of walls, furniture and floors. A :class:`Scene` is one
identity in two poses in the same larger photo, with everything a benchmark of framing and pasting
needs: both photos (the target one is the truth), the empty backdrop, keypoints in scene pixels, and
each person's soft coverage mask and box.

Drawing follows :mod:`.render` (the figure painted at ``SUPERSAMPLE``× and shrunk with INTER_AREA).
Every random draw comes from ``numpy.random.default_rng(seed)`` and none depends on ``height``, so
``make_scene(s, 128)`` and ``make_scene(s, 512)`` show the same scene.

Geometry. ``person_scale`` is the person's standing height (head top to sole, the generator's body
unit) over the scene height, drawn from :data:`PERSON_SCALE_RANGE`; both poses keep it (one person at
one distance from the camera). The source figure's box lies wholly inside the scene, its feet on the
floor where the scene allows; the target stands up to :data:`MAX_STEP` person heights to the side
and a little forward or back, also wholly inside, so part of what the source person covered is bare
in the target photo.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import cv2
import numpy as np

from .figure import Part, _visible_joints, figure_parts
from .identity import Colour, Identity, sample_identity
from .pose import FigurePose, place_figure
from .render import SUPERSAMPLE, paint_parts

SCENE_ASPECTS = (3 / 4, 1.0, 4 / 3, 3 / 2, 16 / 9)  # width / height: portrait, square, photo, 35 mm, video
PERSON_SCALE_RANGE = (0.25, 0.60)  # standing height / scene height
MAX_STEP = 0.6  # the target stands at most this many person heights to the side of the source
SCENE_MARGIN = 0.02  # each figure box keeps this fraction of the scene height from every border
SCENE_SEED_OFFSET = 20_000_000  # benchmark scenes: above the training and held-out pair seeds


@dataclass(frozen=True)
class Scene:
    """One identity in two poses in the same scene. Images uint8 RGB ``[H, W, 3]``; keypoints float32
    ``[18, 3]`` (x_px, y_px, confidence) in scene pixels; masks float32 ``[H, W]`` in [0, 1], the
    fraction of each pixel the figure covers; boxes ``(x0, y0, x1, y1)`` int, x1/y1 exclusive, around
    the pixels a figure covers."""

    source_image: np.ndarray
    target_image: np.ndarray  # the truth: the same scene with the person in the target pose
    background: np.ndarray  # the scene with nobody in it
    source_keypoints: np.ndarray
    target_keypoints: np.ndarray
    source_mask: np.ndarray
    target_mask: np.ndarray
    source_box: tuple[int, int, int, int]
    target_box: tuple[int, int, int, int]
    person_scale: float
    identity: Identity
    source_pose: FigurePose
    target_pose: FigurePose

    @property
    def height(self) -> int:
        return int(self.source_image.shape[0])

    @property
    def width(self) -> int:
        return int(self.source_image.shape[1])


@dataclass(frozen=True)
class _Backdrop:
    """A room or street-like backdrop: wall and floor meeting at ``horizon`` (fraction of the height),
    soft-edged shapes on the wall (windows, furniture, posters), brightness noise over it all."""

    wall: Colour
    floor: Colour
    horizon: float
    shapes: tuple  # (kind, cx, cy, half_w, half_h, colour, edge_softness); positions/sizes in fractions of the height
    noise: np.ndarray  # [6, 6] low-frequency brightness factors around 1


def _jitter(colour: Colour, rng: np.random.Generator, spread: float) -> Colour:
    return tuple(int(c) for c in np.clip(np.array(colour) + rng.uniform(-spread, spread, size=3), 0, 255))


def _sample_backdrop(rng: np.random.Generator, identity: Identity, aspect: float) -> _Backdrop:
    # The identity's studio colours were chosen to stand out from its clothes; the wall and floor start
    # from them, and the shapes on the wall may take any colour, as in a real photo.
    wall = _jitter(identity.background.colour, rng, 25)
    floor = _jitter(tuple(int(c * rng.uniform(0.55, 0.9)) for c in identity.background.colour_b), rng, 20)
    horizon = rng.uniform(0.5, 0.8)
    shapes = []
    for _ in range(int(rng.integers(4, 10))):
        kind = ("rect", "ellipse")[int(rng.integers(2))]
        cx, cy = rng.uniform(0, aspect), rng.uniform(0, horizon + 0.1)
        half_w, half_h = rng.uniform(0.03, 0.25), rng.uniform(0.03, 0.3)
        colour = tuple(int(c) for c in rng.integers(20, 236, size=3))
        shapes.append((kind, cx, cy, half_w, half_h, colour, rng.uniform(0.0, 0.02)))
    noise = rng.uniform(0.85, 1.15, size=(6, 6))
    return _Backdrop(wall, floor, horizon, tuple(shapes), noise)


def _render_backdrop(backdrop: _Backdrop, height: int, width: int) -> np.ndarray:
    """uint8 RGB ``[height, width, 3]``; every length scales with ``height``."""
    y = np.linspace(0, 1, height, dtype=np.float32)[:, None, None]
    t = np.clip((y - backdrop.horizon) / 0.02 + 0.5, 0, 1)
    floor_shade = 1.0 - 0.25 * np.clip((y - backdrop.horizon) / (1 - backdrop.horizon + 1e-6), 0, 1)
    image = (np.array(backdrop.wall, np.float32) * (1 - t) + np.array(backdrop.floor, np.float32) * t * floor_shade)
    image = np.broadcast_to(image, (height, width, 3)).copy()
    for kind, cx, cy, half_w, half_h, colour, softness in backdrop.shapes:
        layer = np.zeros((height, width), np.float32)
        centre = (int(round(cx * height)), int(round(cy * height)))
        axes = (max(1, int(round(half_w * height))), max(1, int(round(half_h * height))))
        if kind == "rect":
            cv2.rectangle(layer, (centre[0] - axes[0], centre[1] - axes[1]), (centre[0] + axes[0], centre[1] + axes[1]),
                          1.0, thickness=-1)
        else:
            cv2.ellipse(layer, centre, axes, 0, 0, 360, 1.0, thickness=-1)
        sigma = softness * height
        if sigma >= 0.5:
            layer = cv2.GaussianBlur(layer, (0, 0), sigma)
        image += layer[:, :, None] * (np.array(colour, np.float32) - image)
    noise = cv2.resize(backdrop.noise.astype(np.float32), (width, height), interpolation=cv2.INTER_CUBIC)
    return np.clip(image * noise[:, :, None] + 0.5, 0, 255).astype(np.uint8)


def _figure_box(parts: list[Part]) -> tuple[np.ndarray, np.ndarray]:
    points = np.concatenate([part.polygon for part in parts])
    return points.min(axis=0), points.max(axis=0)


def _moved(pose: FigurePose, factor: float, shift: np.ndarray, height: int, width: int) -> FigurePose:
    """``pose`` scaled by ``factor`` about the origin, then shifted by ``shift`` px, on a new canvas."""
    def move(points: np.ndarray) -> np.ndarray:
        return (points * factor + shift).astype(np.float32)

    keypoints = pose.keypoints.copy()
    keypoints[:, :2] = move(pose.keypoints[:, :2])
    return replace(pose, keypoints=keypoints, joints_px=move(pose.joints_px), depth_px=pose.depth_px * factor,
                   head_center_px=move(pose.head_center_px), toe_px=move(pose.toe_px),
                   scale_px=pose.scale_px * factor, out_of_frame=False, height=height, width=width)


def _posed(rng: np.random.Generator, identity: Identity, scale_px: float) -> FigurePose:
    """A random pose of ``identity`` whose standing height is ``scale_px`` pixels, at the origin's
    placement (moved into the scene afterwards). Draws the figure on a square canvas of the
    generator's own framing, then rescales it, so the pose kinds keep their proportions."""
    side = 256  # only a drawing frame: the pose is rescaled to ``scale_px`` exactly
    pose = place_figure(rng, identity.body, side, side, None)
    return _moved(pose, scale_px / pose.scale_px, np.zeros(2), side, side)


def _place(pose: FigurePose, identity: Identity, x0: float, y1: float, height: int, width: int
           ) -> tuple[FigurePose, list[Part]]:
    """``pose`` moved so that its figure box's left edge is at ``x0`` and its bottom at ``y1`` (px)."""
    lo, hi = _figure_box(figure_parts(identity, pose))
    moved = _moved(pose, 1.0, np.array([x0 - lo[0], y1 - hi[1]]), height, width)
    return moved, figure_parts(identity, moved)


def _coverage(parts: list[Part], pose: FigurePose, outline_px: int) -> np.ndarray:
    """Fraction of each pixel the figure covers (float32 [H, W]), drawn like :func:`.render.paint_parts`."""
    s = SUPERSAMPLE
    canvas = np.zeros((pose.height * s, pose.width * s), np.uint8)
    offset = (s - 1) / 2
    for part in parts:
        points = np.round((part.polygon * s + offset) * 16).astype(np.int32)
        cv2.fillPoly(canvas, [points], 255, shift=4)
        if part.name != "eye":
            cv2.polylines(canvas, [points], True, 255, outline_px, shift=4)
    return cv2.resize(canvas, (pose.width, pose.height), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0


def _box(mask: np.ndarray) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(mask > 0)
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def _scene_aspect(rng: np.random.Generator, aspect: float | None) -> float:
    """``aspect`` (width / height) checked, or a drawn one when None. The draw happens even when
    ``aspect`` is given, so the rest of the scene does not depend on it."""
    drawn_aspect = SCENE_ASPECTS[int(rng.integers(len(SCENE_ASPECTS)))]
    aspect = drawn_aspect if aspect is None else float(aspect)
    if not 0.25 <= aspect <= 4.0:
        raise ValueError(f"scene aspect (width / height) must be within 0.25..4, got {aspect}")
    return aspect


@dataclass(frozen=True)
class _Stage:
    """Where figures may stand in a scene (px): every box ``margin`` inside the borders, feet below
    the floor line ``floor_y`` where the box's height allows."""

    height: int
    width: int
    margin: float
    floor_y: float

    def feet_range(self, box_height: float) -> tuple[float, float]:
        """Lowest and highest bottom edge of a figure box ``box_height`` px tall."""
        low, high = max(self.margin + box_height, self.floor_y), self.height - 1 - self.margin
        return (min(low, high), high)

    def place(self, pose: FigurePose, identity: Identity, x0: float, y1: float) -> tuple[FigurePose, list[Part]]:
        return _place(pose, identity, x0, y1, self.height, self.width)


def _place_source(stage: _Stage, identity: Identity, pose: FigurePose, u_source: np.ndarray
                  ) -> tuple[tuple[FigurePose, list[Part]], float, float]:
    """``(pose, parts)`` of the source figure moved to ``u_source`` (fractions of the free room across
    and of the feet range), then the centre x of its box and its bottom y (px), where the target steps from."""
    lo, hi = _figure_box(figure_parts(identity, pose))
    size = hi - lo
    x_free = max(0.0, stage.width - 1 - 2 * stage.margin - size[0])
    low, high = stage.feet_range(size[1])
    x0, y1 = stage.margin + u_source[0] * x_free, low + u_source[1] * (high - low)
    return stage.place(pose, identity, x0, y1), x0 + size[0] / 2, y1


def _place_target(stage: _Stage, identity: Identity, pose: FigurePose, centre_x: float, y1: float
                  ) -> tuple[FigurePose, list[Part]]:
    """The target figure centred on ``centre_x`` with its bottom at ``y1`` (px), both clipped so its
    box stays inside the scene and its feet on the floor."""
    lo, hi = _figure_box(figure_parts(identity, pose))
    size = hi - lo
    margin = stage.margin
    x0 = float(np.clip(centre_x - size[0] / 2, margin, max(margin, stage.width - 1 - margin - size[0])))
    low, high = stage.feet_range(size[1])
    return stage.place(pose, identity, x0, float(np.clip(y1, low, high)))


def _photograph(backdrop: _Backdrop, figures: list, person_scale: float, height: int, width: int
                ) -> tuple[np.ndarray, list[tuple]]:
    """The empty background and, per ``(pose, parts)`` of ``figures``, its photo, coverage mask, and
    pose with the keypoints a detector would see."""
    s = SUPERSAMPLE
    backdrop_big = _render_backdrop(backdrop, height * s, width * s)
    background = cv2.resize(backdrop_big, (width, height), interpolation=cv2.INTER_AREA)
    outline_px = max(1, int(round(person_scale * height * s / 250)))  # as thick, per person, as in training pairs
    shots = []
    for pose, parts in figures:
        visible_pose = pose.keypoints.copy()
        visible_pose[~_visible_joints(pose, parts), :] = 0.0
        image = paint_parts(backdrop_big.copy(), parts, pose, outline_px)
        shots.append((image, _coverage(parts, pose, outline_px), replace(pose, keypoints=visible_pose)))
    return background, shots


def make_scene(seed: int, height: int = 256, aspect: float | None = None) -> Scene:
    """The scene of ``seed``: one identity in two poses in one larger photo, ``height`` pixels tall.

    ``aspect`` (width / height) is drawn from :data:`SCENE_ASPECTS` when None. Deterministic in
    ``seed``; the same scene at every ``height``.
    """
    if not isinstance(height, (int, np.integer)) or height < 32:
        raise ValueError(f"scene height must be an integer of at least 32 pixels, got {height!r}")
    rng = np.random.default_rng(seed)
    identity = sample_identity(rng)
    aspect = _scene_aspect(rng, aspect)
    width = max(32, int(round(height * aspect)))
    person_scale = float(rng.uniform(*PERSON_SCALE_RANGE))
    backdrop = _sample_backdrop(rng, identity, aspect)
    source_pose = _posed(rng, identity, person_scale * height)
    target_pose = _posed(rng, identity, person_scale * height)
    u_source = rng.uniform(size=2)  # where the source stands, as fractions of the free room
    step, forward = rng.uniform(-MAX_STEP, MAX_STEP), rng.uniform(-0.05, 0.05)

    stage = _Stage(height, width, SCENE_MARGIN * height, backdrop.horizon * height)
    source, source_centre_x, source_y1 = _place_source(stage, identity, source_pose, u_source)
    target_centre_x = source_centre_x + step * person_scale * height
    target = _place_target(stage, identity, target_pose, target_centre_x, source_y1 + forward * height)
    background, shots = _photograph(backdrop, [source, target], person_scale, height, width)
    (source_image, source_mask, source_pose), (target_image, target_mask, target_pose) = shots
    return Scene(
        source_image=source_image, target_image=target_image, background=background,
        source_keypoints=source_pose.keypoints, target_keypoints=target_pose.keypoints,
        source_mask=source_mask, target_mask=target_mask,
        source_box=_box(source_mask), target_box=_box(target_mask),
        person_scale=person_scale, identity=identity, source_pose=source_pose, target_pose=target_pose,
    )
