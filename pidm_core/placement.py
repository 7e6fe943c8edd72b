"""Placement: how one photo meets the model's canvas, and the warps both ways.

Every way a photo is put on the model's S×S canvas is one axis-aligned map ``canvas = photo · scale + offset``
per axis (pixel centres at whole numbers), made by the fit:

- ``pad``: the longest side scaled to the canvas, the rest filled by repeating the border (our models);
- ``stretch``: both sides resized to the canvas (the official test script on DeepFashion's 176×256 photos);
- ``person``: a crop around the photo's person, framed as the model's training data framed people
  (:mod:`pidm_core.framing` finds it; ``framing`` says how the canvas is filled and shown).

Photo → canvas: images (:meth:`Placement.canvas_images`; one photo: :meth:`~Placement.crop_image`), masks and
poses. Canvas → photo: sampler outputs (:meth:`~Placement.output_images`) and pastes into a photo of any size
(:meth:`~Placement.canvas_to_photo`, Put Back Into Photo). pad and stretch resample with torch (bicubic, whole
pixels: what the models were trained and tested with); person warps with cv2 (any scale and sub-pixel offset).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional, Sequence

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from .checks import check_mask, check_pose_canvas, float_image, same_aspect
from .fit_modes import FIT_MODES
from .pose.keypoints import Pose
from .pose.render import render_pose_map

if TYPE_CHECKING:
    from .framing import Framing

PERSON = "person"
SHRINK_FIRST = 0.8  # warpAffine alone aliases when it shrinks more than this: shrink with INTER_AREA first


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
class Placement:
    """``canvas = photo · scale + offset`` per axis, between a ``photo_width`` × ``photo_height`` photo and the
    ``canvas_width`` × ``canvas_height`` model canvas, made by the fit ``fit`` (module doc). For fit "person":
    ``framing`` (how the canvas is filled and shown), ``stature`` (the framed person's height, head top to sole,
    in photo pixels) and ``notes`` (what the artist should know: cut-off feet)."""

    fit: str
    photo_width: int
    photo_height: int
    canvas_width: int
    canvas_height: int
    scale_x: float
    scale_y: float
    offset_x: float
    offset_y: float
    framing: Optional["Framing"] = None
    stature: float = 0.0
    notes: tuple[str, ...] = ()

    # -- geometry ------------------------------------------------------------------------------

    @property
    def size(self) -> int:
        """The side of the (square) model canvas."""
        return self.canvas_width

    @property
    def scale(self) -> float:
        """Canvas pixels per photo pixel, vertically (horizontally it is ``scale_x``)."""
        return self.scale_y

    @property
    def content_width(self) -> int:
        """pad / stretch: the width of the photo on the canvas, whole pixels."""
        return int(round(self.photo_width * self.scale_x))

    @property
    def content_height(self) -> int:
        return int(round(self.photo_height * self.scale_y))

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

    def for_photo_size(self, width: int, height: int) -> "Placement":
        """This placement for another size of the same photo (a full-resolution original): canvas = p·s + o for a
        photo pixel p becomes p'·s/k + o + s·(0.5/k − 0.5) for the pixel p' of the photo scaled by k (pixel
        centres at whole numbers). Another aspect is a ValueError."""
        if (width, height) == (self.photo_width, self.photo_height):
            return self
        if not same_aspect(width, height, self.photo_width, self.photo_height):
            raise ValueError(f"photo is {width}x{height} pixels but the person was framed in a {self.photo_width}x"
                             f"{self.photo_height} photo: paste into that photo (or another size of it, same aspect "
                             "ratio)")
        kx, ky = width / self.photo_width, height / self.photo_height
        return dataclasses.replace(
            self, scale_x=self.scale_x / kx, scale_y=self.scale_y / ky,
            offset_x=self.offset_x + self.scale_x * (0.5 / kx - 0.5),
            offset_y=self.offset_y + self.scale_y * (0.5 / ky - 0.5),
            photo_width=int(width), photo_height=int(height), stature=self.stature * ky)

    # -- poses ---------------------------------------------------------------------------------

    def pose_to_canvas(self, pose: Pose) -> Pose:
        """``pose`` (in this photo's pixels) on the canvas; missing joints stay missing."""
        check_pose_canvas(pose, self.photo_width, self.photo_height, "pose")
        kp = pose.keypoints.astype(np.float64)
        kp[pose.present] = self.to_canvas(kp[pose.present])
        return Pose(kp, self.canvas_width, self.canvas_height)

    def pose_to_photo(self, pose: Pose) -> Pose:
        kp = pose.keypoints.astype(np.float64)
        kp[pose.present] = self.to_photo(kp[pose.present])
        return Pose(kp, self.photo_width, self.photo_height)

    def canvas_keypoints(self, pose: Pose) -> np.ndarray:
        """Keypoints [18, 3] of a target pose on the canvas. pad / stretch: a pose drawn on another canvas is
        first fitted into the photo (aspect kept, centred); person: the placement was framed for its canvas."""
        if self.fit == PERSON:
            return self.pose_to_canvas(pose).keypoints
        kp = pose.keypoints.copy()
        if (pose.width, pose.height) != (self.photo_width, self.photo_height):
            scale = min(self.photo_width / pose.width, self.photo_height / pose.height)
            kp[:, 0] = kp[:, 0] * scale + (self.photo_width - pose.width * scale) / 2
            kp[:, 1] = kp[:, 1] * scale + (self.photo_height - pose.height * scale) / 2
        kp[:, 0] = kp[:, 0] * self.scale_x + self.offset_x
        kp[:, 1] = kp[:, 1] * self.scale_y + self.offset_y
        return kp

    # -- photo → canvas ------------------------------------------------------------------------

    def canvas_images(self, images: torch.Tensor, masks: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Checked IMAGE [B, H, W, 3] in [0, 1] of this photo's size → the canvas [B, 3, S, S] in [-1, 1].
        masks (checked MASK [M, H', W'], M = 1 or B; fit person: float32 of the photo's size): 1 = the person;
        the rest is blanked (pad / stretch: 0; person: the framing's background)."""
        if self.fit == PERSON:
            return self._framed_images(images, masks)
        x = images.permute(0, 3, 1, 2) * 2 - 1
        x = F.interpolate(x, size=(self.content_height, self.content_width), mode="bicubic", align_corners=False,
                          antialias=True)
        x = self._pad(x, mode="replicate").clamp(-1, 1)
        return x if masks is None else x * self.canvas_masks(masks).to(x.device)

    def _pad(self, x: torch.Tensor, **how) -> torch.Tensor:
        """pad / stretch: the content [B, C, h, w] padded to the canvas."""
        pad_l, pad_t = int(self.offset_x), int(self.offset_y)
        pad_r, pad_b = self.canvas_width - self.content_width - pad_l, self.canvas_height - self.content_height - pad_t
        return F.pad(x, (pad_l, pad_r, pad_t, pad_b), **how) if pad_l or pad_r or pad_t or pad_b else x

    def _framed_images(self, images: torch.Tensor, masks: Optional[Sequence[np.ndarray]]) -> torch.Tensor:
        canvases = []
        for index in range(images.shape[0]):
            mask = None if masks is None else masks[index if len(masks) == len(images) else 0]
            photo = float_image(images[index].cpu().numpy(), self.photo_width, self.photo_height, "photo")
            x = torch.from_numpy(self._photo_on_canvas(photo, mask)).permute(2, 0, 1) * 2 - 1
            if mask is not None and self.framing.background == "keep":
                x = x * torch.from_numpy(self._mask_on_canvas(mask))[None]
            canvases.append(x)
        return torch.stack(canvases).clamp(-1, 1)

    def canvas_masks(self, masks: torch.Tensor) -> torch.Tensor:
        """pad / stretch: checked MASK [M, H', W'] (any size of the photo's aspect, or 1x1) → [M, 1, S, S] on the
        canvas, 1 outside the photo (generate there)."""
        m = F.interpolate(masks[:, None], size=(self.content_height, self.content_width), mode="bilinear",
                          align_corners=False, antialias=True)
        return self._pad(m, value=1.0).clamp(0, 1)

    def crop_image(self, image: np.ndarray, mask: Optional[np.ndarray] = None) -> np.ndarray:
        """One photo [H, W, 3] (uint8, or float in [0, 1]) on the canvas by the affine warp, float32 [h, w, 3].

        Outside the photo: its border repeated (``keep``, and without a framing) or the framing's colour. With a
        person mask [H, W] in [0, 1] and a white/color framing, the background around the person is that colour."""
        photo = float_image(image, self.photo_width, self.photo_height, "photo")
        return self._photo_on_canvas(photo, None if mask is None else self._checked_mask(mask))

    def _photo_on_canvas(self, photo: np.ndarray, mask: Optional[np.ndarray]) -> np.ndarray:
        background = "keep" if self.framing is None else self.framing.background
        if background == "keep":
            canvas = self._warp(photo, cv2.BORDER_REPLICATE, 0.0)
        else:
            colour = np.array(self.framing.background_color, np.float32) / 255
            canvas = self._warp(photo, cv2.BORDER_CONSTANT, tuple(float(c) for c in colour))
            if mask is not None:
                alpha = self._mask_on_canvas(mask)[..., None]
                canvas = canvas * alpha + colour * (1 - alpha)
        return np.clip(canvas, 0, 1).astype(np.float32)

    def crop_mask(self, mask: np.ndarray) -> np.ndarray:
        """A photo mask [H, W] (any size of the photo's aspect) on the canvas, float32 [h, w]; 0 outside the photo."""
        return self._mask_on_canvas(self._checked_mask(mask))

    def _checked_mask(self, mask) -> np.ndarray:
        return check_mask(mask, self.photo_width, self.photo_height, "mask")

    def _mask_on_canvas(self, mask: np.ndarray) -> np.ndarray:
        """A checked mask (float32 of the photo's size) warped onto the canvas."""
        return np.clip(self._warp(mask, cv2.BORDER_CONSTANT, 0.0), 0, 1).astype(np.float32)

    def _warp(self, image: np.ndarray, border: int, value) -> np.ndarray:
        matrix = self.matrix
        shrink_x, shrink_y = min(1.0, self.scale_x), min(1.0, self.scale_y)
        if shrink_x < SHRINK_FIRST or shrink_y < SHRINK_FIRST:
            image, matrix = _shrunk(image, shrink_x, shrink_y, np.vstack([matrix, [0, 0, 1]]))
            matrix = matrix[:2]
        return cv2.warpAffine(image, matrix, (self.canvas_width, self.canvas_height), flags=cv2.INTER_LINEAR,
                              borderMode=border, borderValue=value if isinstance(value, tuple) else (value,) * 4)

    # -- canvas → photo ------------------------------------------------------------------------

    def output_images(self, x: torch.Tensor) -> torch.Tensor:
        """Sampled canvas [N, 3, S, S] in [-1, 1] → IMAGE [N, H, W, 3] in [0, 1]: pad / stretch in the photo's
        size; person in the training photos' aspect (176x256 for DeepFashion's framing), for Put Back Into Photo."""
        if self.fit == PERSON:
            width, height = self.framing.output_size
            x = x.float()
            if (width, height) != (x.shape[3], x.shape[2]):
                x = F.interpolate(x, size=(height, width), mode="bicubic", align_corners=False, antialias=True)
        else:
            x = x[:, :, int(self.offset_y):int(self.offset_y) + self.content_height,
                  int(self.offset_x):int(self.offset_x) + self.content_width]
            x = F.interpolate(x.float(), size=(self.photo_height, self.photo_width), mode="bicubic",
                              align_corners=False)
        return ((x + 1) / 2).clamp(0, 1).permute(0, 2, 3, 1).contiguous()

    def canvas_box_in_photo(self) -> tuple[float, float, float, float]:
        """(x0, y0, x1, y1) of the canvas's outer pixel edges in photo pixel coordinates (not clipped)."""
        (x0, y0), (x1, y1) = self.to_photo(np.array([[-0.5, -0.5], [self.canvas_width - 0.5, self.canvas_height - 0.5]]))
        return float(x0 + 0.5), float(y0 + 0.5), float(x1 + 0.5), float(y1 + 0.5)

    def paste_region(self) -> PasteRegion:
        """The photo pixels whose centres the canvas covers, clipped to the photo (maybe empty)."""
        x0, y0, x1, y1 = self.canvas_box_in_photo()
        return PasteRegion(max(0, math.ceil(x0 - 0.5)), max(0, math.ceil(y0 - 0.5)),
                           min(self.photo_width, math.floor(x1 - 0.5) + 1),
                           min(self.photo_height, math.floor(y1 - 0.5) + 1))

    def image_to_photo_matrix(self, image_width: int, image_height: int) -> np.ndarray:
        """2×3 matrix from the pixels of an image of the whole canvas at any size (an upscaled sampler
        output, a 176×256 un-stretched one) to photo pixels."""
        sx, sy = self.canvas_width / image_width, self.canvas_height / image_height
        # image pixel centre i covers canvas (i + 0.5)·s − 0.5
        to_canvas = np.array([[sx, 0.0, 0.5 * sx - 0.5], [0.0, sy, 0.5 * sy - 0.5], [0.0, 0.0, 1.0]])
        return self.inverse_matrix @ to_canvas

    def prepared_for_photo(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """An image of the whole canvas (any size, [h, w] or [h, w, C] float32) ready to be warped into the photo
        (:func:`warp_rows`): the image (shrunk through INTER_AREA first where the photo is smaller) and the 3×3
        matrix from its pixels to photo pixels."""
        matrix = np.vstack([self.image_to_photo_matrix(image.shape[1], image.shape[0]), [0, 0, 1]])
        fx, fy = matrix[0, 0], matrix[1, 1]  # photo pixels per image pixel
        if fx < SHRINK_FIRST or fy < SHRINK_FIRST:
            return _shrunk(image, min(1.0, fx), min(1.0, fy), matrix)
        return image, matrix

    def canvas_to_photo(self, image: np.ndarray, border: int = cv2.BORDER_CONSTANT
                        ) -> tuple[tuple[int, int, int, int], np.ndarray]:
        """An image of the whole canvas (any size, [h, w] or [h, w, C] float32) in the photo: the photo box
        ``(x0, y0, x1, y1)`` it covers (clipped; an empty box and no pixels when the canvas lies outside the
        photo) and its pixels there."""
        region = self.paste_region()
        if region.empty:
            return (0, 0, 0, 0), np.zeros((0, 0) + image.shape[2:], np.float32)
        prepared, matrix = self.prepared_for_photo(image)
        out = warp_rows(prepared, matrix, region.x0, region.y0, region.width, region.height, border)
        return (region.x0, region.y0, region.x1, region.y1), out.astype(np.float32, copy=False)


def _shrunk(image: np.ndarray, shrink_x: float, shrink_y: float, matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``image`` resized by (about) ``shrink_x`` × ``shrink_y`` with INTER_AREA, and the 3×3 ``matrix`` from its
    pixels rewritten for the small image's pixels (small pixel j has centre (j + 0.5)/f − 0.5 in the original)."""
    w = max(1, int(round(image.shape[1] * shrink_x)))
    h = max(1, int(round(image.shape[0] * shrink_y)))
    fx, fy = w / image.shape[1], h / image.shape[0]
    image = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)
    return image, matrix @ np.array([[1 / fx, 0, 0.5 / fx - 0.5], [0, 1 / fy, 0.5 / fy - 0.5], [0, 0, 1]])


def warp_rows(image: np.ndarray, matrix: np.ndarray, x0: int, y0: int, width: int, height: int,
              border: int) -> np.ndarray:
    """The photo pixels x0..x0+width-1, y0..y0+height-1 of a prepared image (:meth:`Placement.prepared_for_photo`),
    bilinear."""
    to_rows = (np.array([[1, 0, -x0], [0, 1, -y0], [0, 0, 1]]) @ matrix)[:2]
    return cv2.warpAffine(image, to_rows, (width, height), flags=cv2.INTER_LINEAR, borderMode=border, borderValue=0.0)


def pose_maps(placements: Sequence[Placement], poses: Sequence[Pose]) -> torch.Tensor:
    """Pose maps [N, 20, S, S] of target poses, each put on the canvas by its placement."""
    return torch.from_numpy(np.stack([render_pose_map(p.canvas_keypoints(pose), p.canvas_width, p.canvas_height)
                                      for p, pose in zip(placements, poses)]))


def fitted_placement(height: int, width: int, size: int, fit: str = "pad") -> Placement:
    """The placement of an ``width`` × ``height`` photo on the ``size`` canvas by fit ``pad`` (longest side to the
    canvas, centred on whole pixels) or ``stretch`` (both sides to the canvas)."""
    if fit not in FIT_MODES:
        raise ValueError(f"fit mode must be one of {FIT_MODES}, got {fit!r}")
    if fit == "stretch":
        return Placement(fit, width, height, size, size, size / width, size / height, 0, 0)
    scale = size / max(height, width)
    cw, ch = max(1, int(round(width * scale))), max(1, int(round(height * scale)))
    return Placement(fit, width, height, size, size, cw / width, ch / height, (size - cw) // 2, (size - ch) // 2)
