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
* :class:`Crop` is one axis-aligned map between photo pixels and canvas pixels
  (``canvas = photo · scale + offset``, per axis), with the image warps both ways.
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
import math
from dataclasses import dataclass, field
from typing import Literal, Optional, Sequence

import cv2
import numpy as np

from .config import json_object, short_repr
from .pixels import pixel_scale
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
# Photo ↔ canvas


@dataclass(frozen=True)
class PasteRegion:
    """The photo pixels a canvas covers: columns x0..x1-1, rows y0..y1-1 (clipped to the photo)."""

    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def empty(self) -> bool:
        return self.x1 <= self.x0 or self.y1 <= self.y0

    @property
    def width(self) -> int:
        return max(0, self.x1 - self.x0)

    @property
    def height(self) -> int:
        return max(0, self.y1 - self.y0)


@dataclass(frozen=True)
class Crop:
    """``canvas = photo · scale + offset`` per axis, between a ``photo_width`` × ``photo_height`` photo
    and the model canvas; ``framing`` says how the canvas is filled, ``stature`` is the framed person's
    height (head top to sole) in photo pixels, ``notes`` what the artist should know (cut-off feet)."""

    scale_x: float
    scale_y: float
    offset_x: float
    offset_y: float
    photo_width: int
    photo_height: int
    framing: Framing
    stature: float = 0.0
    notes: tuple[str, ...] = field(default=())

    @property
    def canvas_width(self) -> int:
        return self.framing.canvas_width

    @property
    def canvas_height(self) -> int:
        return self.framing.canvas_height

    @property
    def scale(self) -> float:
        """Canvas pixels per photo pixel, vertically (horizontally it is ``scale_x``)."""
        return self.scale_y

    @property
    def matrix(self) -> np.ndarray:
        """2×3 affine matrix photo → canvas."""
        return np.array([[self.scale_x, 0.0, self.offset_x], [0.0, self.scale_y, self.offset_y]])

    @property
    def inverse_matrix(self) -> np.ndarray:
        """2×3 affine matrix canvas → photo."""
        return np.array([[1 / self.scale_x, 0.0, -self.offset_x / self.scale_x],
                         [0.0, 1 / self.scale_y, -self.offset_y / self.scale_y]])

    def to_canvas(self, points: np.ndarray) -> np.ndarray:
        """Points [..., 2] (or keypoints [..., 3]: the third column is kept) from photo to canvas pixels."""
        out = np.array(points, dtype=np.float64)
        out[..., 0] = out[..., 0] * self.scale_x + self.offset_x
        out[..., 1] = out[..., 1] * self.scale_y + self.offset_y
        return out

    def to_photo(self, points: np.ndarray) -> np.ndarray:
        """Points [..., 2] (or [..., 3]) from canvas to photo pixels: the inverse of :meth:`to_canvas`."""
        out = np.array(points, dtype=np.float64)
        out[..., 0] = (out[..., 0] - self.offset_x) / self.scale_x
        out[..., 1] = (out[..., 1] - self.offset_y) / self.scale_y
        return out

    def pose_to_canvas(self, pose: Pose) -> Pose:
        """``pose`` (in this photo's pixels) on the canvas; missing joints stay missing."""
        _check_pose_canvas(pose, self.photo_width, self.photo_height, "pose")
        kp = pose.keypoints.astype(np.float64)
        kp[pose.present] = self.to_canvas(kp[pose.present])
        return Pose(kp, self.canvas_width, self.canvas_height)

    def pose_to_photo(self, pose: Pose) -> Pose:
        kp = pose.keypoints.astype(np.float64)
        kp[pose.present] = self.to_photo(kp[pose.present])
        return Pose(kp, self.photo_width, self.photo_height)

    def canvas_box_in_photo(self) -> tuple[float, float, float, float]:
        """(x0, y0, x1, y1) of the canvas's outer pixel edges in photo pixel coordinates (not clipped)."""
        (x0, y0), (x1, y1) = self.to_photo(np.array([[-0.5, -0.5], [self.canvas_width - 0.5, self.canvas_height - 0.5]]))
        return float(x0 + 0.5), float(y0 + 0.5), float(x1 + 0.5), float(y1 + 0.5)

    def paste_region(self) -> PasteRegion:
        """The photo pixels whose centres the canvas covers, clipped to the photo (maybe empty)."""
        x0, y0, x1, y1 = self.canvas_box_in_photo()
        return PasteRegion(max(0, math.ceil(x0 - 0.5)), max(0, math.ceil(y0 - 0.5)),
                           min(self.photo_width, math.floor(x1 - 0.5) + 1), min(self.photo_height, math.floor(y1 - 0.5) + 1))

    def image_to_photo_matrix(self, image_width: int, image_height: int) -> np.ndarray:
        """2×3 matrix from the pixels of an image of the whole canvas at any size (an upscaled sampler
        output, a 176×256 un-stretched one) to photo pixels."""
        sx, sy = self.canvas_width / image_width, self.canvas_height / image_height
        # image pixel centre i covers canvas (i + 0.5)·s − 0.5
        to_canvas = np.array([[sx, 0.0, 0.5 * sx - 0.5], [0.0, sy, 0.5 * sy - 0.5], [0.0, 0.0, 1.0]])
        return self.inverse_matrix @ to_canvas

    # -- images ---------------------------------------------------------------------------------

    def crop_image(self, image: np.ndarray, mask: Optional[np.ndarray] = None) -> np.ndarray:
        """The photo [H, W, 3] (uint8, or float in [0, 1]) on the canvas, float32 [h, w, 3] in [0, 1].

        Outside the photo: its border repeated (``keep``) or the framing's colour. With a person mask
        [H, W] in [0, 1] and a white/color framing, the background around the person is that colour too.
        """
        photo = _as_float_image(image, self.photo_width, self.photo_height, "photo")
        background = self.framing.background
        colour = np.array(self.framing.background_color, np.float32) / 255
        if background == "keep":
            canvas = self._warp(photo, cv2.BORDER_REPLICATE, 0.0)
        else:
            canvas = self._warp(photo, cv2.BORDER_CONSTANT, tuple(float(c) for c in colour))
            if mask is not None:
                alpha = self.crop_mask(mask)[..., None]
                canvas = canvas * alpha + colour * (1 - alpha)
        return np.clip(canvas, 0, 1).astype(np.float32)

    def crop_mask(self, mask: np.ndarray) -> np.ndarray:
        """A photo mask [H, W] (any size of the photo's aspect) on the canvas, float32 [h, w]; 0 outside the photo."""
        m = check_mask(mask, self.photo_width, self.photo_height, "mask")
        return np.clip(self._warp(m, cv2.BORDER_CONSTANT, 0.0), 0, 1).astype(np.float32)

    def _warp(self, image: np.ndarray, border: int, value) -> np.ndarray:
        matrix = self.matrix
        # Shrinking by warpAffine alone aliases: shrink with INTER_AREA first, then warp what is left.
        shrink_x, shrink_y = min(1.0, self.scale_x), min(1.0, self.scale_y)
        if shrink_x < 0.8 or shrink_y < 0.8:
            w = max(1, int(round(image.shape[1] * shrink_x)))
            h = max(1, int(round(image.shape[0] * shrink_y)))
            fx, fy = w / image.shape[1], h / image.shape[0]
            image = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)
            # small-image pixel j has centre (j + 0.5)/f − 0.5 in the photo
            matrix = matrix @ np.array([[1 / fx, 0, 0.5 / fx - 0.5], [0, 1 / fy, 0.5 / fy - 0.5], [0, 0, 1]])
        return cv2.warpAffine(image, matrix, (self.canvas_width, self.canvas_height), flags=cv2.INTER_LINEAR,
                              borderMode=border, borderValue=value if isinstance(value, tuple) else (value,) * 4)

    def uncrop_image(self, canvas_image: np.ndarray) -> tuple[PasteRegion, np.ndarray, np.ndarray]:
        """A canvas image (float [h, w, 3] in [0, 1], any size of the whole canvas) back in the photo:
        the photo region it covers, the image there [rh, rw, 3] and its coverage [rh, rw] (1 inside)."""
        image = _as_float_image(canvas_image, None, None, "canvas image")
        region = self.paste_region()
        if region.empty:
            return region, np.zeros((0, 0, 3), np.float32), np.zeros((0, 0), np.float32)
        matrix = self.image_to_photo_matrix(image.shape[1], image.shape[0])
        matrix = np.vstack([matrix, [0, 0, 1]])
        shift = np.array([[1, 0, -region.x0], [0, 1, -region.y0], [0, 0, 1]], np.float64)
        to_region = (shift @ matrix)[:2]
        size = (region.width, region.height)
        out = cv2.warpAffine(image, to_region, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        ones = np.ones(image.shape[:2], np.float32)
        coverage = cv2.warpAffine(ones, to_region, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                                  borderValue=0.0)
        return region, np.clip(out, 0, 1).astype(np.float32), np.clip(coverage, 0, 1).astype(np.float32)


def _as_float_image(image, width: Optional[int], height: Optional[int], name: str) -> np.ndarray:
    if hasattr(image, "detach"):
        image = image.detach().cpu().numpy()
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] not in (1, 3, 4) or min(image.shape[:2]) < 1:
        raise ValueError(f"{name} must be an image [H, W, 3], got shape {image.shape}")
    if width is not None and (image.shape[1], image.shape[0]) != (width, height):
        raise ValueError(f"{name} is {image.shape[1]}x{image.shape[0]} pixels but the crop was made for a "
                         f"{width}x{height} photo: frame this photo's own person")
    if image.dtype == np.uint8:
        out = image.astype(np.float32) / 255
    else:
        out = image.astype(np.float32, copy=False)  # an 8000x8000 photo is 768 MB: no copy when it is float32
        if not (np.isfinite(out.min()) and np.isfinite(out.max())):  # NaN spreads into min/max: two cheap passes
            raise ValueError(f"{name} contains NaN or infinite values")
    out = out[..., :3]
    return np.repeat(out, 3, axis=2) if out.shape[2] == 1 else np.ascontiguousarray(out)


ASPECT_TOLERANCE = 0.02


def check_mask(mask, width: int, height: int, name: str = "mask") -> np.ndarray:
    """A person mask as float32 [height, width] in [0, 1]: another size of the same aspect is resized and a
    1×1 mask is one value for every pixel (the Masks rules of docs/robustness.md); another aspect, NaN, or a
    shape that is not [H, W] is a ValueError naming ``name``."""
    if hasattr(mask, "detach"):
        mask = mask.detach().cpu().float().numpy()
    mask = np.asarray(mask)
    if mask.ndim == 3 and mask.shape[0] == 1:
        mask = mask[0]
    if mask.ndim != 2 or 0 in mask.shape:
        raise ValueError(f"{name} must be one mask [H, W] with values in [0, 1], got shape {mask.shape}")
    integer = mask.dtype.kind in "ui"
    mask = mask.astype(np.float32, copy=False)
    low, high = float(mask.min()), float(mask.max())  # NaN spreads into min/max: no full-size temporaries
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ValueError(f"{name} contains NaN or infinite values")
    scale = pixel_scale(mask, name, "mask", integer, integer_is_255=False)  # decided by the whole mask
    if scale != 1:
        mask, low, high = mask / scale, low / scale, high / scale
    if (mask.shape[1], mask.shape[0]) != (width, height):
        if mask.shape != (1, 1) and abs(math.log(mask.shape[1] * height / (mask.shape[0] * width))) > ASPECT_TOLERANCE:
            raise ValueError(f"{name} is {mask.shape[1]}x{mask.shape[0]} pixels but the photo is {width}x{height}: "
                             "give the mask of this photo (another size of the same aspect ratio is resized)")
        mask = cv2.resize(mask, (width, height), interpolation=cv2.INTER_LINEAR)
    return np.clip(mask, 0, 1) if low < 0 or high > 1 else mask


THUMBNAIL_SIDE = 16


def photo_thumbnail(photo: np.ndarray) -> np.ndarray:
    """A 16×16 float32 summary [16, 16, 3] of a photo (float [H, W, 3] in [0, 1]): which photo a person was
    framed in, to tell it from another photo of the same size later (Put Back Into Photo)."""
    side = THUMBNAIL_SIDE
    return cv2.resize(np.ascontiguousarray(photo, np.float32), (side, side), interpolation=cv2.INTER_AREA)


def _check_pose_canvas(pose, width: int, height: int, name: str) -> None:
    if not isinstance(pose, Pose):
        raise ValueError(f"{name} must be a Pose, got {type(pose).__name__}")
    if (pose.width, pose.height) != (width, height):
        raise ValueError(f"{name} is on a {pose.width}x{pose.height} canvas but the photo is {width}x{height}: "
                         "detect the pose on this photo")


# ---------------------------------------------------------------------------------------------
# Framing a source photo and target poses


def _crop_for(measure: BodyMeasure, stature_on_canvas: float, framing: Framing, width: int, height: int,
              notes: tuple[str, ...]) -> Crop:
    scale_y = stature_on_canvas / measure.stature
    scale_x = scale_y * framing.stretch_x
    if measure.sole is not None:
        offset_y = framing.feet_y * framing.canvas_height - scale_y * measure.sole
    else:
        offset_y = framing.head_y * framing.canvas_height - scale_y * measure.head_top
    offset_x = framing.center_x * framing.canvas_width - scale_x * measure.center_x
    return Crop(scale_x, scale_y, offset_x, offset_y, width, height, framing, measure.stature, notes)


def _check_pose_in_photo(pose: Pose) -> None:
    """A source pose with joints but none inside its photo would crop a canvas of the photo's repeated
    border: the model would encode a blank texture."""
    if not pose.present.any():
        return  # measure_person says there is no person
    x, y = pose.xy[pose.present].T
    if not ((x >= -0.5) & (x <= pose.width - 0.5) & (y >= -0.5) & (y <= pose.height - 0.5)).any():
        raise ValueError(f"the source pose has no joint inside its {pose.width}x{pose.height} photo (x {x.min():.4g}.."
                         f"{x.max():.4g}, y {y.min():.4g}..{y.max():.4g}): the crop would hold no person; give the pose "
                         "of this photo's person (Pose From Image on the same image)")


def frame_person(keypoints, mask: Optional[np.ndarray], photo_width: int, photo_height: int,
                 framing: Framing) -> Crop:
    """The crop that puts the person of ``keypoints`` (a Pose or [18, 3] array in photo pixels) where
    ``framing`` says: stature ``person_height`` × canvas height, soles at ``feet_y`` (head top at
    ``head_y`` when the feet are not seen), centre line at ``center_x``.

    ``mask`` [H, W] (optional; 1 = this person) sharpens head top and soles. Raises ValueError for
    no person, a head-and-shoulders picture, a tiny person, a mask of another aspect or an empty mask.
    Feet outside the photo give a crop that reaches past the photo (filled per the framing) and a note.
    """
    pose = keypoints if isinstance(keypoints, Pose) else Pose(np.asarray(keypoints), photo_width, photo_height)
    _check_pose_canvas(pose, photo_width, photo_height, "source pose")
    _check_pose_in_photo(pose)
    if mask is not None:
        mask = check_mask(mask, photo_width, photo_height, "person mask")
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


def target_crop(target_poses: Sequence[Pose], source_crop: Crop, framing: Optional[Framing] = None) -> Crop:
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


def frame_targets(target_poses: Sequence[Pose], source_crop: Crop,
                  framing: Optional[Framing] = None) -> tuple[list[Pose], Crop]:
    """Target poses on the model canvas (one crop for the whole sequence, so a walk still walks) and that crop."""
    crop = target_crop(target_poses, source_crop, framing)
    return [crop.pose_to_canvas(p) for p in target_poses], crop


def frame_target(target_pose: Pose, source_crop: Crop, source_pose: Optional[Pose] = None,
                 framing: Optional[Framing] = None) -> Pose:
    """One target pose on the model canvas, framed like the source person (see :func:`target_crop`).
    ``source_pose`` is accepted for symmetry; the source's size travels in ``source_crop.stature``."""
    del source_pose
    return frame_targets([target_pose], source_crop, framing)[0][0]
