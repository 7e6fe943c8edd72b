"""Framing: crop a photo around its person the way the model's training data framed people.

A PIDM model has only seen people framed one way: DeepFashion's studio shots (one full-body person,
centred, head near the top, feet near the bottom of a 176×256 photo stretched to 256×256) for the
official model, the synthetic generator's full-frame figures for the embedded one. A photo from the
wild (a footballer small in a stadium, a person at the side of a room) is cropped here so that the
person lands on the model canvas at the size and place the training data had them.

* :class:`Framing` is the model's framing: person height (head top to sole) as a fraction of the
  canvas height, where the soles sit, where the body's centre line sits, the training photos'
  aspect (DeepFashion's 176:256 is stretched to the square canvas: people look 256/176 wider) and
  what fills the background. It belongs to the model (:func:`framing_for`, stored in the weights'
  metadata as ``framing``; files without it get a default derived from their config).
* The crop is a :class:`~pidm_core.placement.Placement` of fit "person": one axis-aligned map between
  photo pixels and canvas pixels (``canvas = photo · scale + offset``, per axis), with the warps both ways.
* :func:`frame_person` finds the crop of a source photo from its pose (and person mask);
  :func:`frame_target` / :func:`frame_targets` put target poses on the canvas with the source
  person's size, feet (or head) where training put them.

Size of a person: :mod:`pidm_core.pose.measure` (stature, head top, soles, centre line).

Coordinates: pixel centres at whole numbers (the cv2 convention of :mod:`pidm_core.pose.keypoints`);
a framing's fractions are of the canvas side (``feet_y = 0.95`` on a 256 canvas puts soles at y = 243.2).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass
from typing import Literal, Optional, Sequence

import cv2
import numpy as np

from .checks import check_mask, check_pose_canvas, check_pose_in_photo, short_repr
from .config import json_object
from .placement import PERSON, Placement
from .pose.keypoints import Pose
from .pose.measure import BodyMeasure, body_part_stature, measure_person  # noqa: F401 (body_part_stature re-exported)

LOG = logging.getLogger(__name__)

BACKGROUNDS = ("keep", "white", "color")
Background = Literal["keep", "white", "color"]

# ---------------------------------------------------------------------------------------------
# The model's framing


@dataclass(frozen=True)
class Framing:
    """How the model's training data framed people, on a ``canvas_width`` × ``canvas_height`` canvas.

    person_height: stature (head top to sole) of a standing person, fraction of the canvas height.
    feet_y: where the soles sit, fraction of the canvas height (head top at ``head_y``).
    center_x: where the body's centre line (neck to mid-hip) sits, fraction of the canvas width.
    aspect: width / height of the training photos before they were resized to the canvas; the
      canvas is ``stretch_x`` times wider than that, and people on it are stretched as much.
    background: what fills the canvas outside the person: ``keep`` the photo (and repeat its border
      beyond it), ``white`` (DeepFashion's studio) or ``color`` (``background_color``, RGB 0-255);
      white and color need a person mask, and fill only outside the photo without one.
    """

    canvas_width: int
    canvas_height: int
    person_height: float
    feet_y: float
    center_x: float = 0.5
    aspect: float = 1.0
    background: Background = "keep"
    background_color: tuple[int, int, int] = (255, 255, 255)
    source: str = ""  # where the numbers come from, for people reading metadata

    def __post_init__(self) -> None:
        for name in ("canvas_width", "canvas_height"):
            value = getattr(self, name)
            if type(value) is not int or not 8 <= value <= 4096:
                raise ValueError(f"framing {name} must be a whole number of pixels from 8 to 4096, got {value!r}")
        for name, low, high in (("person_height", 0.05, 1.5), ("feet_y", 0.05, 1.5), ("center_x", 0.0, 1.0),
                                ("aspect", 0.2, 5.0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
                raise ValueError(f"framing {name} must be a number from {low} to {high}, got {short_repr(value)}")
        if self.background not in BACKGROUNDS:
            raise ValueError(f"framing background must be one of {BACKGROUNDS}, got {short_repr(self.background)}")
        colour = self.background_color
        if (not isinstance(colour, tuple) or len(colour) != 3
                or any(type(c) is not int or not 0 <= c <= 255 for c in colour)):
            raise ValueError(f"framing background_color must be 3 whole numbers 0-255 (RGB), got {short_repr(colour)}")
        if not isinstance(self.source, str) or len(self.source) > 200:
            raise ValueError("framing source must be a text of at most 200 characters")

    @property
    def head_y(self) -> float:
        """Where the head top sits, fraction of the canvas height."""
        return self.feet_y - self.person_height

    @property
    def stretch_x(self) -> float:
        """How much wider than true people look on the canvas (256/176 for DeepFashion)."""
        return self.canvas_width / self.canvas_height / self.aspect

    @property
    def output_size(self) -> tuple[int, int]:
        """(width, height) of a canvas image shown in the training photos' aspect (176×256 for DeepFashion)."""
        return max(1, int(round(self.canvas_height * self.aspect))), self.canvas_height

    def resized(self, width: int, height: int) -> "Framing":
        return dataclasses.replace(self, canvas_width=int(width), canvas_height=int(height))

    def to_json(self) -> str:
        """The metadata text (fractions only: the canvas size is the model's)."""
        fields = dataclasses.asdict(self)
        del fields["canvas_width"], fields["canvas_height"]
        fields["background_color"] = list(self.background_color)
        return json.dumps(fields, sort_keys=True)

    @classmethod
    def from_json(cls, text: str, canvas_width: int, canvas_height: int) -> "Framing":
        """Parse :meth:`to_json` text (from a weights file: hostile); ValueError naming the problem."""
        raw = json_object(text, "framing metadata", 2000,
                          {f.name for f in dataclasses.fields(cls)} - {"canvas_width", "canvas_height"})
        for name in ("person_height", "feet_y"):
            if name not in raw:
                raise ValueError(f"framing metadata has no {name!r}")
        if "background_color" in raw:
            if not isinstance(raw["background_color"], list):
                raise ValueError(f"framing background_color must be a list of 3 numbers, got {short_repr(raw['background_color'])}")
            raw["background_color"] = tuple(raw["background_color"])
        return cls(canvas_width=canvas_width, canvas_height=canvas_height, **raw)


# Measured with measure_person on 453 upright, uncropped poses of pidm_core.data.synthetic (seeds
# 0-249, 128 px): stature median 0.82 of the canvas height (p10 0.77, p90 0.90), soles 0.92, centre line
# 0.50; the studio backdrop is kept (the model was trained on it). tests/test_framing.py re-measures it.
SYNTHETIC_FRAMING = dict(person_height=0.82, feet_y=0.92, center_x=0.5, aspect=1.0, background="keep",
                         source="measured on the synthetic generator (pidm_core.data.synthetic)")
# DeepFashion In-shop, measured with MediaPipe (pose and mask) on the six DeepFashion photos of the
# official repository (data/deepfashion_256x256/target_edits, 176x256 before the stretch): the two
# full-body ones have the head top at 0.006-0.025 and the soles at 0.979-0.994 of the height (stature
# 0.95-0.99); the half-body ones have the head top at 0-0.014 too. Slightly inside those (a measured
# stature is a few % off): stature 0.93, soles at 0.965, head top at 0.035; centred; white studio.
DEEPFASHION_FRAMING = dict(person_height=0.93, feet_y=0.965, center_x=0.5, aspect=176 / 256, background="white",
                           source="DeepFashion In-shop layout (176x256 photos stretched to the canvas)")


def synthetic_framing(size: int) -> Framing:
    return Framing(size, size, **SYNTHETIC_FRAMING)


def deepfashion_framing(size: int) -> Framing:
    return Framing(size, size, **DEEPFASHION_FRAMING)


def framing_for(config_or_info) -> Framing:
    """The framing of a model: a ModelInfo's ``framing`` metadata, else a default derived from it.

    Accepts a PIDMConfig, a ModelInfo or anything with ``.info`` (a loaded model). Without metadata:
    the embedded model's config (synthetic_64), files our trainer wrote from synthetic data
    (``fit`` = pad, training data ``synthetic``) get the synthetic framing; everything else (the
    official model and its conversions) the DeepFashion one.
    """
    from .config import CONFIGS, PIDMConfig

    info = getattr(config_or_info, "info", config_or_info)
    config = info if isinstance(info, PIDMConfig) else getattr(info, "config", None)
    if not isinstance(config, PIDMConfig):
        raise ValueError(f"framing_for needs a PIDMConfig, ModelInfo or loaded model, got {type(config_or_info).__name__}")
    size = config.image_size
    extra = getattr(info, "extra", None) or {}
    if "framing" in extra:
        return Framing.from_json(extra["framing"], size, size)
    if config == CONFIGS["synthetic_64"] or _trained_on_synthetic(extra):
        return synthetic_framing(size)
    return deepfashion_framing(size)


def _trained_on_synthetic(extra: dict) -> bool:
    try:
        data = str(json.loads(extra.get("training", "{}")).get("data", ""))
    except (ValueError, AttributeError, RecursionError):
        data = ""
    if data:
        return data.startswith("synthetic")
    return extra.get("fit") == "pad"


# ---------------------------------------------------------------------------------------------
# Which photo a person was framed in


THUMBNAIL_SIDE = 16


def photo_thumbnail(photo: np.ndarray) -> np.ndarray:
    """A 16×16 float32 summary [16, 16, 3] of a photo (float [H, W, 3] in [0, 1]): which photo a person was
    framed in, to tell it from another photo of the same size later (Put Back Into Photo)."""
    side = THUMBNAIL_SIDE
    return cv2.resize(np.ascontiguousarray(photo, np.float32), (side, side), interpolation=cv2.INTER_AREA)


# ---------------------------------------------------------------------------------------------
# Framing a source photo and target poses


def _crop_for(measure: BodyMeasure, stature_on_canvas: float, framing: Framing, width: int, height: int,
              notes: tuple[str, ...]) -> Placement:
    scale_y = stature_on_canvas / measure.stature
    scale_x = scale_y * framing.stretch_x
    if measure.sole is not None:
        offset_y = framing.feet_y * framing.canvas_height - scale_y * measure.sole
    else:
        offset_y = framing.head_y * framing.canvas_height - scale_y * measure.head_top
    offset_x = framing.center_x * framing.canvas_width - scale_x * measure.center_x
    return Placement(PERSON, width, height, framing.canvas_width, framing.canvas_height, scale_x, scale_y, offset_x,
                     offset_y, framing, measure.stature, notes)


def frame_person(keypoints, mask: Optional[np.ndarray], photo_width: int, photo_height: int,
                 framing: Framing) -> Placement:
    """The crop that puts the person of ``keypoints`` (a Pose or [18, 3] array in photo pixels) where
    ``framing`` says: stature ``person_height`` × canvas height, soles at ``feet_y`` (head top at
    ``head_y`` when the feet are not seen), centre line at ``center_x``.

    ``mask`` [H, W] (optional; 1 = this person) sharpens head top and soles. Raises ValueError for
    no person, a head-and-shoulders picture, a tiny person, a mask of another aspect or an empty mask.
    Feet outside the photo give a crop that reaches past the photo (filled per the framing) and a note.
    """
    pose = keypoints if isinstance(keypoints, Pose) else Pose(np.asarray(keypoints), photo_width, photo_height)
    check_pose_canvas(pose, photo_width, photo_height, "source pose")
    check_pose_in_photo(pose)
    return frame_checked_person(pose, None if mask is None else check_mask(mask, photo_width, photo_height,
                                                                          "person mask"), framing)


def frame_checked_person(pose: Pose, mask: Optional[np.ndarray], framing: Framing) -> Placement:
    """:func:`frame_person` for a checked Pose in its photo's pixels (:func:`checks.check_pose_in_photo`) and a
    checked person mask (float32 [H, W] in [0, 1] of the photo's size, or None)."""
    photo_width, photo_height = pose.width, pose.height
    if mask is not None:
        if not (mask >= 0.5).any():
            raise ValueError("the person mask is empty (no pixel ≥ 0.5): connect the mask of this photo's person "
                             "or leave the mask unconnected")
        inside = pose.keypoints[pose.present, :2].round().astype(int)
        inside = inside[(inside[:, 0] >= 0) & (inside[:, 0] < photo_width) & (inside[:, 1] >= 0) & (inside[:, 1] < photo_height)]
        if len(inside) and not (mask[inside[:, 1], inside[:, 0]] >= 0.5).any():
            raise ValueError("the person mask does not cover any joint of the pose (the mask of another person, or "
                             "of another photo?): give the mask and the pose of the same person")
    measure = measure_person(pose, mask)
    notes = []
    if measure.upside_down:
        notes.append("the person is upside down (ankles above the neck): the crop is placed by their topmost joint "
                     "at the head top's place; the model was trained on upright people")
    elif measure.sole is None:
        notes.append("the person's feet are not in the photo: the crop is placed by the head and the model draws "
                     "the legs it cannot see")
    elif measure.sole > photo_height - 0.5 + 0.02 * measure.stature:
        notes.append("the person's feet are cut by the bottom of the photo")
    crop = _crop_for(measure, framing.person_height * framing.canvas_height, framing, photo_width, photo_height,
                     tuple(notes))
    body_half = 0.15 * measure.stature
    if measure.center_x - body_half < -0.5 or measure.center_x + body_half > photo_width - 0.5:
        crop = dataclasses.replace(crop, notes=crop.notes + ("the person is cut by the side of the photo: the part "
                                                             "outside is filled and the model invents it",))
    for note in crop.notes:
        LOG.warning("framing: %s", note)
    return crop


def target_crop(target_poses: Sequence[Pose], source_crop: Placement, framing: Optional[Framing] = None) -> Placement:
    """One crop for target poses (one pose or a sequence on one canvas): the source person's size on
    the canvas, soles at ``feet_y`` (the lowest sole of the sequence; head top at ``head_y`` when no
    frame shows the feet), the mean centre line at ``center_x``. Maps the targets' canvas to the model's."""
    framing = framing or source_crop.framing
    poses = list(target_poses)
    if not poses:
        raise ValueError("no target pose given: the pose input is empty")
    width, height = poses[0].width, poses[0].height
    measures = []
    for index, pose in enumerate(poses):
        if (pose.width, pose.height) != (width, height):
            raise ValueError(f"target pose {index + 1} of {len(poses)} is on a {pose.width}x{pose.height} canvas, "
                             f"the first on {width}x{height}: give the frames of a sequence on one canvas")
        try:
            measures.append(measure_person(pose, subject="pose"))
        except ValueError as err:
            where = "target pose" if len(poses) == 1 else f"target pose {index + 1} of {len(poses)}"
            raise ValueError(f"{where}: {err}") from None
    stature = float(np.median([m.stature for m in measures]))
    soles = [m.sole for m in measures if m.sole is not None]
    combined = BodyMeasure(stature, float(np.mean([m.center_x for m in measures])),
                           float(min(m.head_top for m in measures)), max(soles) if soles else None, False)
    on_canvas = source_crop.stature * source_crop.scale_y if source_crop.stature > 0 else (
        framing.person_height * framing.canvas_height)
    return _crop_for(combined, on_canvas, framing, width, height, ())


def targets_placement(target_poses: Sequence[Pose], source: Placement) -> Placement:
    """Where target poses (one pose, or a sequence on one canvas) go on the canvas when sampled from the source
    placed by ``source``: fit person frames them like the source person (:func:`target_crop`); pad and stretch
    put them where the source photo lies (a pose on another canvas fitted into it)."""
    return target_crop(target_poses, source) if source.fit == PERSON else source


def frame_targets(target_poses: Sequence[Pose], source_crop: Placement,
                  framing: Optional[Framing] = None) -> tuple[list[Pose], Placement]:
    """Target poses on the model canvas (one crop for the whole sequence, so a walk still walks) and that crop."""
    crop = target_crop(target_poses, source_crop, framing)
    return [crop.pose_to_canvas(p) for p in target_poses], crop


def frame_target(target_pose: Pose, source_crop: Placement, source_pose: Optional[Pose] = None,
                 framing: Optional[Framing] = None) -> Pose:
    """One target pose on the model canvas, framed like the source person (see :func:`target_crop`).
    ``source_pose`` is accepted for symmetry; the source's size travels in ``source_crop.stature``."""
    del source_pose
    return frame_targets([target_pose], source_crop, framing)[0][0]
