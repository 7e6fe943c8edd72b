"""Canvas geometry: photos of any size on the model's square canvas and back, and poses mapped with them.

Fitting: the source is placed on the model's S×S canvas either by ``pad`` (scale the longest side
to the canvas, pad the rest by repeating the border; our models) or ``stretch`` (resize both sides;
what the official test script does with DeepFashion's 176×256 images). A target pose drawn on
another canvas is first fitted into the source frame (aspect kept, centred), then mapped like the
source. :func:`restore_images` crops and resizes back, so a 176×256 source comes back 176×256.
IMAGE and MASK inputs are checked here too, as they are fitted (docs/robustness.md: Photos, Masks).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .errors import plural
from .pixels import item_name, pixel_scale, warn_0_255
from .pose.keypoints import Pose
from .pose.render import render_pose_map

FIT_MODES = ("pad", "stretch")
LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class FitInfo:
    """How a [H, W] image was placed on the model's S×S canvas: content scaled by (scale_x,
    scale_y) and placed at (offset_x, offset_y)."""

    height: int
    width: int
    size: int
    scale_x: float
    scale_y: float
    offset_x: int
    offset_y: int

    @property
    def content_width(self) -> int:
        return int(round(self.width * self.scale_x))

    @property
    def content_height(self) -> int:
        return int(round(self.height * self.scale_y))


def fit_info(height: int, width: int, size: int, mode: str = "pad") -> FitInfo:
    if mode not in FIT_MODES:
        raise ValueError(f"fit mode must be one of {FIT_MODES}, got {mode!r}")
    if mode == "stretch":
        return FitInfo(height, width, size, size / width, size / height, 0, 0)
    scale = size / max(height, width)
    cw, ch = max(1, int(round(width * scale))), max(1, int(round(height * scale)))
    return FitInfo(height, width, size, cw / width, ch / height, (size - cw) // 2, (size - ch) // 2)


# Checking IMAGE and MASK inputs: the rules of docs/robustness.md (Photos, Masks), in one place.

ASPECT_TOLERANCE = 0.02  # a mask/init/reference image of another size is resized if its aspect is this close


def _first(flags: torch.Tensor) -> int:
    """1-based index of the first batch item whose flag is set."""
    return int(flags.nonzero()[0, 0]) + 1


def values_in_unit_range(values: torch.Tensor, name: str, item: str, integer_is_255: bool) -> torch.Tensor:
    """Float values in [0, 1] of an IMAGE or MASK batch (batch first).

    Each item is read as [0, 1] floats or as 0-255 values by the whole item (:mod:`pidm_core.pixels`); 0-255
    items are divided by 255 with a logged warning. NaN/inf, values above 255 and a [0, 1] item with stray
    values above 1.5 are errors naming the item; the rest is clipped to [0, 1].
    ``integer_is_255``: an integer IMAGE is 0-255 whatever it holds; an integer MASK of 0 and 1 is a mask.
    """
    if values.dtype == torch.bool:
        return values.float()
    if values.is_complex():
        raise ValueError(f"{name} holds complex numbers ({values.dtype}); connect a real {item} batch")
    dtype, integer = str(values.dtype).replace("torch.", ""), not values.is_floating_point()
    values = values.float()
    # NaN and inf spread into an item's min or max: no full-size temporary for a large photo
    finite = torch.tensor([bool(torch.isfinite(v.max()) and torch.isfinite(v.min())) for v in values])
    if not finite.all():
        raise ValueError(f"{name} contains NaN or infinite values ({item} {_first(~finite)} of {len(finite)}): "
                         "fix or replace the node that made it, or disconnect the input")
    count = len(values)
    scales = [pixel_scale(v, name if count == 1 else item_name(name, item, i, count), item, integer, integer_is_255)
              for i, v in enumerate(values)]
    if max(scales) > 1:
        warn_0_255(name, dtype, float(values.max()))
        values = values / torch.tensor(scales, dtype=values.dtype, device=values.device).view(-1, *[1] * (values.dim() - 1))
    return values.clamp(0, 1)


def _check_count(name: str, found: int, noun: str, count: int, of: str) -> None:
    """A per-image input holds one item for every image or one per image; checked before anything is copied,
    so 10,000 masks for 2 images are an error, not a copy."""
    if found not in (1, count):
        raise ValueError(f"{name} has {plural(found, noun)} for {plural(count, of)}: give 1 {noun} (used for "
                         f"every image) or {count} (one per image)")


def _check_frame(name: str, height: int, width: int, frame: Optional[FitInfo]) -> None:
    """Masks, init and reference images lie in the source frame: another size is resized to it if the aspect
    matches, and a 1x1 mask is one value for every pixel; another aspect would shift them against the source."""
    if frame is None or (height, width) in ((frame.height, frame.width), (1, 1)):
        return
    if abs(math.log(width * frame.height / (height * frame.width))) > ASPECT_TOLERANCE:
        raise ValueError(f"{name} is {width}x{height} pixels but the source image is {frame.width}x{frame.height}: "
                         "give it in the source image's size (another size of the same aspect ratio is resized)")


def _check_images(images: torch.Tensor, name: str, count: Optional[int] = None, of: str = "image",
                  frame: Optional[FitInfo] = None) -> torch.Tensor:
    if isinstance(images, (list, tuple)):
        raise ValueError(f"{name} is a list of {len(images)} images, not one batch [B, H, W, 3]: resize them to one "
                         "size (e.g. with an Upscale Image node) and batch them")
    if not isinstance(images, torch.Tensor) or images.dim() != 4 or images.shape[-1] not in (1, 3, 4):
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"{name} must be an image batch [B, H, W, 3] with values in [0, 1], got {shape}")
    if images.shape[0] == 0:
        raise ValueError(f"{name} is an empty batch")
    if count is not None:
        _check_count(name, images.shape[0], "image", count, of)
    if min(images.shape[1:3]) < 8:
        raise ValueError(f"{name} is {images.shape[2]}x{images.shape[1]} pixels; it must be at least 8x8")
    _check_frame(name, images.shape[1], images.shape[2], frame)
    if images.shape[-1] == 4:
        images = images[..., :3]  # alpha is dropped: PIDM sees RGB only
    images = values_in_unit_range(images, name, "image", integer_is_255=True)
    return images.expand(-1, -1, -1, 3) if images.shape[-1] == 1 else images


def check_images(images: torch.Tensor, name: str, count: Optional[int] = None, of: str = "image") -> torch.Tensor:
    """An IMAGE batch checked by the rules of docs/robustness.md (Photos) as float RGB [B, H, W, 3] in [0, 1],
    not yet fitted (fit "person" crops it itself: pidm_core.framing)."""
    return _check_images(images, name, count, of)


def check_masks(masks: torch.Tensor, name: str, count: Optional[int], of: str) -> torch.Tensor:
    """A MASK batch checked by the rules of docs/robustness.md (Masks) as float [M, H, W] in [0, 1], any size
    (fit "person" checks the size against its photo: pidm_core.framing.check_mask)."""
    return _check_masks(masks, name, count, of, None)


def _check_masks(masks: torch.Tensor, name: str, count: Optional[int], of: str, frame: Optional[FitInfo]) -> torch.Tensor:
    if not isinstance(masks, torch.Tensor) or masks.dim() not in (2, 3):
        shape = tuple(masks.shape) if isinstance(masks, torch.Tensor) else type(masks).__name__
        raise ValueError(f"{name} must be a MASK [B, H, W] (or [H, W]) with values in [0, 1], got {shape}")
    masks = masks[None] if masks.dim() == 2 else masks
    if masks.shape[0] == 0:
        raise ValueError(f"{name} is an empty batch (0 masks)")
    if count is not None:
        _check_count(name, masks.shape[0], "mask", count, of)
    if 0 in masks.shape[1:]:
        raise ValueError(f"{name} is {masks.shape[2]}x{masks.shape[1]} pixels: it holds no values")
    _check_frame(name, masks.shape[1], masks.shape[2], frame)
    return values_in_unit_range(masks, name, "mask", integer_is_255=False)


def fit_images(images: torch.Tensor, size: int, mode: str = "pad", name: str = "image", count: Optional[int] = None,
               of: str = "image", frame: Optional[FitInfo] = None) -> tuple[torch.Tensor, FitInfo]:
    """IMAGE [B, H, W, 3] in [0, 1] → model canvas [B, 3, S, S] in [-1, 1], and how it was placed.
    count: B must be 1 or count (of what); frame: the image must have that frame's aspect ratio."""
    images = _check_images(images, name, count, of, frame)
    info = fit_info(images.shape[1], images.shape[2], size, mode)
    x = images.permute(0, 3, 1, 2) * 2 - 1
    x = F.interpolate(x, size=(info.content_height, info.content_width), mode="bicubic", align_corners=False, antialias=True)
    pad_l, pad_t = info.offset_x, info.offset_y
    pad_r, pad_b = size - info.content_width - pad_l, size - info.content_height - pad_t
    if pad_l or pad_r or pad_t or pad_b:
        x = F.pad(x, (pad_l, pad_r, pad_t, pad_b), mode="replicate")
    return x.clamp(-1, 1), info


def fit_masks(masks: torch.Tensor, info: FitInfo, name: str = "mask", count: Optional[int] = None,
              of: str = "image") -> torch.Tensor:
    """MASK [M, H, W] (or [H, W]) in the source frame (any size of its aspect, or 1x1) → [M, 1, S, S] on the
    model canvas. count: M must be 1 (one mask for every image) or count (one per image)."""
    masks = _check_masks(masks, name, count, of, info)
    m = F.interpolate(masks[:, None], size=(info.content_height, info.content_width), mode="bilinear",
                      align_corners=False, antialias=True)
    s = info.size
    m = F.pad(m, (info.offset_x, s - info.content_width - info.offset_x, info.offset_y, s - info.content_height - info.offset_y), value=1.0)
    return m.clamp(0, 1)


def restore_images(x: torch.Tensor, info: FitInfo) -> torch.Tensor:
    """Model canvas [B, 3, S, S] in [-1, 1] → IMAGE [B, H, W, 3] in [0, 1] in the source's size."""
    x = x[:, :, info.offset_y:info.offset_y + info.content_height, info.offset_x:info.offset_x + info.content_width]
    x = F.interpolate(x.float(), size=(info.height, info.width), mode="bicubic", align_corners=False)
    return ((x + 1) / 2).clamp(0, 1).permute(0, 2, 3, 1).contiguous()


def pose_to_canvas(pose: Pose, info: FitInfo) -> np.ndarray:
    """Keypoints [18, 3] of ``pose`` mapped onto the model canvas of a source placed by ``info``."""
    kp = pose.keypoints.copy()
    if (pose.width, pose.height) != (info.width, info.height):
        scale = min(info.width / pose.width, info.height / pose.height)
        kp[:, 0] = kp[:, 0] * scale + (info.width - pose.width * scale) / 2
        kp[:, 1] = kp[:, 1] * scale + (info.height - pose.height * scale) / 2
    kp[:, 0] = kp[:, 0] * info.scale_x + info.offset_x
    kp[:, 1] = kp[:, 1] * info.scale_y + info.offset_y
    return kp


def check_on_canvas(pose: Pose, where: str) -> None:
    """A pose with no joint on its canvas renders an empty pose map: the model would get no pose at all."""
    if not pose.present.any():
        raise ValueError(f"{where} has no joints (every joint is missing); give a pose with at least one limb")
    x, y = pose.xy[pose.present].T
    if not ((x >= -0.5) & (x <= pose.width - 0.5) & (y >= -0.5) & (y <= pose.height - 0.5)).any():
        raise ValueError(
            f"{where} has no joint inside its {pose.width}x{pose.height} canvas (x {x.min():.4g}..{x.max():.4g}, "
            f"y {y.min():.4g}..{y.max():.4g}); the keypoints are probably pixels of another image: fix the canvas size "
            "or the coordinates"
        )


def pose_maps(poses: Sequence[Pose], info: FitInfo) -> torch.Tensor:
    """Pose maps [N, 20, S, S] for poses mapped like the source."""
    if len(poses) == 0:
        raise ValueError("no target pose given: the pose input is empty")
    for index, pose in enumerate(poses):
        check_on_canvas(pose, f"target pose {index + 1} of {len(poses)}")
    return torch.from_numpy(np.stack([render_pose_map(pose_to_canvas(p, info), info.size, info.size) for p in poses]))
