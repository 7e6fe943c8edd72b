"""Input checks shared by the library, the nodes and the programs: IMAGE and MASK batches, person masks, poses,
when two sizes have one aspect ratio, and how a value from a request or a file is quoted in an error.

The rules are those of docs/robustness.md (Photos, Masks, Poses). What an IMAGE's or MASK's numbers mean
([0, 1] or 0-255) is decided by :mod:`pidm_core.pixels`. Shapes and counts are checked before values, so that
a bad batch is refused before a large photo is copied. torch is imported by the functions that take tensors
only: configs, file names and poses quote values with :func:`short_repr` without loading it.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Optional

import cv2
import numpy as np

from .pixels import item_name, pixel_scale, warn_0_255

if TYPE_CHECKING:
    import torch

# Another size of the same picture (a mask, a pose, a full-resolution original) has its aspect ratio within this
# (|log| of the ratio of ratios): rounding a side to whole pixels moves it less, another picture moves it more.
ASPECT_TOLERANCE = 0.02
QUOTE_CHARS = 60  # how much of a value an error repeats


def short_repr(value, limit: int = QUOTE_CHARS) -> str:
    """``repr`` of a value from a request or a file (possibly hostile), cut to ``limit`` characters for a message."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def same_aspect(width: float, height: float, other_width: float, other_height: float) -> bool:
    """Whether ``width`` × ``height`` and ``other_width`` × ``other_height`` have one aspect ratio (to the tolerance)."""
    return abs(math.log(width * other_height / (height * other_width))) <= ASPECT_TOLERANCE


# ---------------------------------------------------------------------------------------------
# IMAGE and MASK batches (torch, ComfyUI's layout)


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
    import torch

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


def check_count(name: str, found: int, noun: str, count: int, of: str) -> None:
    """A per-image input holds one item for every image or one per image; checked before anything is copied,
    so 10,000 masks for 2 images are an error, not a copy."""
    from .errors import plural  # errors imports torch

    if found not in (1, count):
        raise ValueError(f"{name} has {plural(found, noun)} for {plural(count, of)}: give 1 {noun} (used for "
                         f"every image) or {count} (one per image)")


def check_frame(name: str, height: int, width: int, frame: Optional[tuple[int, int]]) -> None:
    """Masks, init and reference images lie in the source frame (``frame`` = its (width, height)): another size is
    resized to it if the aspect matches, and a 1x1 mask is one value for every pixel; another aspect would shift
    them against the source."""
    if frame is None or (width, height) in (frame, (1, 1)):
        return
    if not same_aspect(width, height, *frame):
        raise ValueError(f"{name} is {width}x{height} pixels but the source image is {frame[0]}x{frame[1]}: "
                         "give it in the source image's size (another size of the same aspect ratio is resized)")


def check_images(images: torch.Tensor, name: str, count: Optional[int] = None, of: str = "image",
                 frame: Optional[tuple[int, int]] = None) -> torch.Tensor:
    """An IMAGE batch checked by the rules of docs/robustness.md (Photos) as float RGB [B, H, W, 3] in [0, 1].
    count: B must be 1 or count (of what); frame: (width, height) whose aspect the images must have."""
    import torch

    if isinstance(images, (list, tuple)):
        raise ValueError(f"{name} is a list of {len(images)} images, not one batch [B, H, W, 3]: resize them to one "
                         "size (e.g. with an Upscale Image node) and batch them")
    if not isinstance(images, torch.Tensor) or images.dim() != 4 or images.shape[-1] not in (1, 3, 4):
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"{name} must be an image batch [B, H, W, 3] with values in [0, 1], got {shape}")
    if images.shape[0] == 0:
        raise ValueError(f"{name} is an empty batch")
    if count is not None:
        check_count(name, images.shape[0], "image", count, of)
    if min(images.shape[1:3]) < 8:
        raise ValueError(f"{name} is {images.shape[2]}x{images.shape[1]} pixels; it must be at least 8x8")
    check_frame(name, images.shape[1], images.shape[2], frame)
    if images.shape[-1] == 4:
        images = images[..., :3]  # alpha is dropped: PIDM sees RGB only
    images = values_in_unit_range(images, name, "image", integer_is_255=True)
    return images.expand(-1, -1, -1, 3) if images.shape[-1] == 1 else images


def check_masks(masks: torch.Tensor, name: str, count: Optional[int], of: str,
                frame: Optional[tuple[int, int]] = None) -> torch.Tensor:
    """A MASK batch checked by the rules of docs/robustness.md (Masks) as float [M, H, W] in [0, 1]; ``frame``:
    (width, height) whose aspect it must have (None: any size)."""
    import torch

    if not isinstance(masks, torch.Tensor) or masks.dim() not in (2, 3):
        shape = tuple(masks.shape) if isinstance(masks, torch.Tensor) else type(masks).__name__
        raise ValueError(f"{name} must be a MASK [B, H, W] (or [H, W]) with values in [0, 1], got {shape}")
    masks = masks[None] if masks.dim() == 2 else masks
    if masks.shape[0] == 0:
        raise ValueError(f"{name} is an empty batch (0 masks)")
    if count is not None:
        check_count(name, masks.shape[0], "mask", count, of)
    if 0 in masks.shape[1:]:
        raise ValueError(f"{name} is {masks.shape[2]}x{masks.shape[1]} pixels: it holds no values")
    check_frame(name, masks.shape[1], masks.shape[2], frame)
    return values_in_unit_range(masks, name, "mask", integer_is_255=False)


# ---------------------------------------------------------------------------------------------
# One photo or mask (numpy), and batches read in place (Put Back Into Photo)


def numpy_view(values) -> np.ndarray:
    """A numpy view of a torch tensor or an array: a copy only off the CPU or for a dtype numpy lacks (bf16)."""
    if hasattr(values, "detach"):
        values = values.detach().cpu()
        try:
            return values.numpy()
        except TypeError:
            return values.float().numpy()
    return np.asarray(values)


def float_image(image, width: Optional[int], height: Optional[int], name: str) -> np.ndarray:
    """One image [H, W, C] (uint8, or float in [0, 1]) as float32 RGB [H, W, 3]; ``width`` × ``height``: the size
    it must have (None: any)."""
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
        if mask.shape != (1, 1) and not same_aspect(mask.shape[1], mask.shape[0], width, height):
            raise ValueError(f"{name} is {mask.shape[1]}x{mask.shape[0]} pixels but the photo is {width}x{height}: "
                             "give the mask of this photo (another size of the same aspect ratio is resized)")
        mask = cv2.resize(mask, (width, height), interpolation=cv2.INTER_LINEAR)
    return np.clip(mask, 0, 1) if low < 0 or high > 1 else mask


def image_batch(images, name: str) -> np.ndarray:
    """An IMAGE batch (torch or numpy, or one [H, W, C] image) as a numpy view [B, H, W, C], C = 1, 3 or 4;
    ValueError naming ``name`` for any other shape or a side under 8 px. Nothing is copied."""
    array = numpy_view(images)
    if array.ndim == 3:
        array = array[None]
    if array.ndim != 4 or array.shape[-1] not in (1, 3, 4) or 0 in array.shape or array.dtype.kind not in "uifb":
        raise ValueError(f"{name} must be an image batch [B, H, W, 3] with values in [0, 1], got shape {array.shape}")
    if min(array.shape[1:3]) < 8:
        raise ValueError(f"{name} is {array.shape[2]}x{array.shape[1]} pixels; it must be at least 8x8")
    return array


def mask_batch(masks, width: int, height: int, name: str) -> np.ndarray:
    """A MASK batch as a numpy view [M, H', W'] of the photo's size, another size of its aspect, or 1x1 (one
    value for every pixel); another aspect is a ValueError naming both sizes. Nothing is copied."""
    array = numpy_view(masks)
    if array.ndim == 2:
        array = array[None]
    if array.ndim != 3 or 0 in array.shape or array.dtype.kind not in "uifb":
        raise ValueError(f"{name} must be a MASK [B, H, W] with values in [0, 1], got shape {array.shape}")
    mh, mw = array.shape[1:]
    if (mw, mh) not in ((width, height), (1, 1)) and not same_aspect(mw, mh, width, height):
        raise ValueError(f"{name} is {mw}x{mh} pixels but the photo is {width}x{height}: give the mask of this "
                         "photo (another size of the same aspect ratio is resized)")
    return array


def pixel_scales(array: np.ndarray, name: str, item: str, integer_is_255: bool = True) -> list[int]:
    """The divisor of each item of a batch: 1 for [0, 1] floats, 255 for 0-255 values, each item read as a whole
    (:mod:`pidm_core.pixels`; the 0-255 reading is logged). NaN or inf is a ValueError naming the item."""
    count, scales = len(array), []
    for index, values in enumerate(array):
        where = name if count == 1 else item_name(name, item, index, count)
        if array.dtype.kind == "b":
            scales.append(1)
            continue
        low, high = values.min(), values.max()  # NaN and inf spread into min or max: no full-size temporary
        if not (np.isfinite(low) and np.isfinite(high)):
            raise ValueError(f"{where} contains NaN or infinite values: fix or replace the node that made it")
        scales.append(pixel_scale(values, where, item, array.dtype.kind in "ui", integer_is_255))
    if max(scales) > 1:
        warn_0_255(name, str(array.dtype), float(array.max()))
    return scales


# ---------------------------------------------------------------------------------------------
# Poses


def joints_inside(pose) -> bool:
    """Whether a pose has a present joint inside its canvas (pixel edges included)."""
    x, y = pose.xy[pose.present].T
    return bool(((x >= -0.5) & (x <= pose.width - 0.5) & (y >= -0.5) & (y <= pose.height - 0.5)).any())


def _joint_span(pose) -> str:
    x, y = pose.xy[pose.present].T
    return f"x {x.min():.4g}..{x.max():.4g}, y {y.min():.4g}..{y.max():.4g}"


def check_on_canvas(pose, where: str) -> None:
    """A pose with no joint on its canvas renders an empty pose map: the model would get no pose at all."""
    if not pose.present.any():
        raise ValueError(f"{where} has no joints (every joint is missing); give a pose with at least one limb")
    if not joints_inside(pose):
        raise ValueError(
            f"{where} has no joint inside its {pose.width}x{pose.height} canvas ({_joint_span(pose)}); the keypoints "
            "are probably pixels of another image: fix the canvas size or the coordinates"
        )


def check_poses(poses) -> None:
    """Every target pose is usable (:func:`check_on_canvas`), checked before any work."""
    if len(poses) == 0:
        raise ValueError("no target pose given: the pose input is empty")
    for index, pose in enumerate(poses):
        check_on_canvas(pose, f"target pose {index + 1} of {len(poses)}")


def check_pose_in_photo(pose) -> None:
    """A source pose with joints but none inside its photo would crop a canvas of the photo's repeated
    border: the model would encode a blank texture."""
    if not pose.present.any():
        return  # measure_person says there is no person
    if not joints_inside(pose):
        raise ValueError(f"the source pose has no joint inside its {pose.width}x{pose.height} photo "
                         f"({_joint_span(pose)}): the crop would hold no person; give the pose "
                         "of this photo's person (Pose From Image on the same image)")


def check_pose_canvas(pose, width: int, height: int, name: str) -> None:
    """``pose`` is a Pose on a ``width`` × ``height`` canvas (the photo it was detected on)."""
    from .pose.keypoints import Pose  # poses quote values with short_repr: imported here, not at the top

    if not isinstance(pose, Pose):
        raise ValueError(f"{name} must be a Pose, got {type(pose).__name__}")
    if (pose.width, pose.height) != (width, height):
        raise ValueError(f"{name} is on a {pose.width}x{pose.height} canvas but the photo is {width}x{height}: "
                         "detect the pose on this photo")


def pose_on_photo(pose, index: int, count: int, width: int, height: int):
    """Source pose ``index`` of ``count`` in its photo's pixels: a pose detected on another size of the same
    photo (same aspect) is scaled to it; another aspect is an error."""
    from .pose.geometry import resize_canvas
    from .pose.keypoints import Pose

    where = "source pose" if count == 1 else f"source pose {index + 1} of {count}"
    if not isinstance(pose, Pose):
        raise ValueError(f"{where} must be a pose (from Pose From Image), got {type(pose).__name__}")
    if (pose.width, pose.height) == (width, height):
        return pose
    if not same_aspect(pose.width, pose.height, width, height):
        raise ValueError(f"{where} is on a {pose.width}x{pose.height} canvas but its photo is {width}x{height}: "
                         "detect the pose on the source photo itself (Pose From Image on the same image)")
    return resize_canvas(pose, width, height)
