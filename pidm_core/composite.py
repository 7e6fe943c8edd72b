"""Back into the photo: paste a generated canvas image into the full-resolution photo through a Crop.

The sampler draws the person on the model canvas, framed by :mod:`pidm_core.framing`. This module
puts that person back where the target pose stands in the original photo, at the photo's resolution:

1. The area the old person covered (their mask, grown a little to take their anti-aliased edge and
   shadow) is filled from its surroundings with cv2 inpainting (:func:`fill_person_area`), once for
   every frame of a sequence.
2. The new person is cut out of the canvas image by a soft mask (:func:`new_person_alpha`), mapped
   into the photo through the crop, and blended over the filled photo.
3. What was filled and stays visible (not covered by the new person) is returned as a mask, so an
   artist can refine it with any inpainting model downstream.

The new person's mask. The canvas image holds a person and a background the model drew. Two
signals find the person, and both are needed: the target pose says *where* a body can be (an
envelope of capsules around its limbs, sized by the framing's stature on the canvas, which is known),
and the source canvas (the photo as the model saw it, whose backdrop the model copies, trained on
pairs that share it) says *what* changed: pixels that differ from that backdrop were drawn by the
model. Behind the source person the backdrop is unknown; it is estimated by inpainting the source
canvas there. The mask is the intersection, plus thin lines along the limbs (surely the person).
The envelope alone (no source canvas given) is the fallback: it may carry a rim of generated
background, never a cut-off limb. Colour difference alone would take the model's repainting of the
old person's area as person; the pose envelope alone would paste a halo of canvas background into a
place where the background is different.

Sizes: a photo of H × W pixels and N frames make N × H × W × 4 float32 values of output; that is
bounded by :data:`MAX_OUTPUT_BYTES` and checked before anything is allocated.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Optional, Sequence

import cv2
import numpy as np

from .errors import check_choice, plural
from .framing import Crop, frame_targets
from .pose.geometry import fit_to_canvas
from .pose.keypoints import LIMBS, NUM_JOINTS, Pose

PLACES = ("pose", "source")  # where the new person stands: where the target pose says, or where the source stood
METHODS = ("telea", "ns")  # cv2 inpainting: Telea's fast marching, or Navier-Stokes
MAX_OUTPUT_BYTES = 2 << 30  # images and masks of all frames together
MAX_INPAINT_SIDE = 512  # a larger hole is inpainted at reduced resolution (inpainting fills smoothly anyway)
ASPECT_TOLERANCE = 0.02

# Shapes of the envelope, as shares of the stature on the canvas (the standing person's height).
LIMB_RADIUS = 0.055  # arms and legs, clothes included
TORSO_GROW = 0.05  # around the hull of shoulders, neck and hips
HEAD_RADIUS = 0.08  # around the middle of the face joints (hair included)
FOOT_RADIUS = 0.05  # around each ankle (shoes)
ENVELOPE_MARGIN = 0.03  # the envelope grows by this after drawing
CORE_RADIUS = 0.015  # along every limb: always person, whatever the colours say
DIFFERENCE_THRESHOLD = 0.10  # max |output − source canvas| over RGB, 0..1: drawn by the model
FEATHER = 0.012  # soft edge (Gaussian sigma) of the pasted person, share of the stature in the image
GROW_OLD = 0.03  # the old person's hole grows by this share of their height (edge, shadow) + 1 px
INPAINT_RADIUS = 0.02  # cv2 inpainting neighbourhood, share of the old person's height (at least 3 px)

HEAD_JOINTS = (0, 14, 15, 16, 17)
TORSO_JOINTS = (1, 2, 5, 8, 11)
ANKLES = (10, 13)


@dataclass(frozen=True)
class Composite:
    """The result for N frames: ``images`` float32 [N, H, W, 3] in [0, 1] (the photo with the new
    person), ``filled`` float32 [N, H, W] (the inpainted area left visible, 1 = filled), ``person``
    float32 [N, H, W] (the pasted person's soft mask)."""

    images: np.ndarray
    filled: np.ndarray
    person: np.ndarray


# ---------------------------------------------------------------------------------------------
# Checking inputs


def as_image_batch(images, name: str) -> np.ndarray:
    """float32 [B, H, W, 3] in [0, 1] from a torch/numpy batch (or one [H, W, 3] image); uint8 and 0-255
    floats are divided by 255. ValueError naming ``name`` for any other shape or NaN/inf."""
    if hasattr(images, "detach"):
        images = images.detach().cpu().float().numpy()
    array = np.asarray(images)
    if array.ndim == 3:
        array = array[None]
    if array.ndim != 4 or array.shape[-1] not in (1, 3, 4) or 0 in array.shape:
        raise ValueError(f"{name} must be an image batch [B, H, W, 3] with values in [0, 1], got shape {array.shape}")
    if min(array.shape[1:3]) < 8:
        raise ValueError(f"{name} is {array.shape[2]}x{array.shape[1]} pixels; it must be at least 8x8")
    integer = array.dtype.kind in "uib"
    array = array[..., :3].astype(np.float32)
    if not np.isfinite(array).all():
        raise ValueError(f"{name} contains NaN or infinite values: fix or replace the node that made it")
    if integer or array.max() > 1.5:
        array = array / 255
    if array.shape[-1] == 1:
        array = np.repeat(array, 3, axis=-1)
    return np.clip(array, 0, 1)


def as_mask_batch(masks, width: int, height: int, name: str) -> np.ndarray:
    """float32 [M, height, width] in [0, 1]: another size of the photo's aspect is resized; another aspect
    is a ValueError naming both sizes."""
    if hasattr(masks, "detach"):
        masks = masks.detach().cpu().float().numpy()
    array = np.asarray(masks)
    if array.ndim == 2:
        array = array[None]
    if array.ndim != 3 or 0 in array.shape:
        raise ValueError(f"{name} must be a MASK [B, H, W] with values in [0, 1], got shape {array.shape}")
    array = array.astype(np.float32)
    if not np.isfinite(array).all():
        raise ValueError(f"{name} contains NaN or infinite values: fix or replace the node that made it")
    if array.max() > 1.5:
        array = array / 255
    mh, mw = array.shape[1:]
    if (mw, mh) != (width, height):
        if abs(math.log(mw * height / (mh * width))) > ASPECT_TOLERANCE:
            raise ValueError(f"{name} is {mw}x{mh} pixels but the photo is {width}x{height}: give the mask of this "
                             "photo (another size of the same aspect ratio is resized)")
        array = np.stack([cv2.resize(m, (width, height), interpolation=cv2.INTER_LINEAR) for m in array])
    return np.clip(array, 0, 1)


WHOLE_PHOTO_SHARE = 0.9  # a "person" mask covering this much of the photo is no segmentation at all


def check_person_masks(masks: np.ndarray) -> None:
    """A mask that covers (almost) the whole photo is what Pose From Image gives without MediaPipe's
    segmentation; inpainting it would repaint the whole photo. ValueError saying what to connect."""
    for index, mask in enumerate(masks):
        share = float((mask >= 0.5).mean())
        if share > WHOLE_PHOTO_SHARE:
            where = "person mask" if len(masks) == 1 else f"person mask {index + 1} of {len(masks)}"
            raise ValueError(f"{where} covers {share:.0%} of the photo: that is no person's outline (Pose From Image "
                             "gives the whole image when MediaPipe's segmentation is not installed); connect the mask "
                             "of the person, or leave the mask unconnected to keep the old person under the new one")


def _count(name: str, found: int, count: int, what: str) -> None:
    if found not in (1, count):
        choice = "1" if count == 1 else f"1 (used for every frame) or {count}"
        raise ValueError(f"{name} holds {found} items for {plural(count, what)}: give {choice}")


def check_output_size(frames: int, height: int, width: int) -> None:
    """Refuse before allocating when N frames of an H × W photo would pass :data:`MAX_OUTPUT_BYTES`."""
    needed = frames * height * width * 4 * 4  # RGB + the filled mask (and the person mask), float32
    if needed > MAX_OUTPUT_BYTES:
        raise ValueError(f"{frames} frames of a {width}x{height} photo need {needed / 2**30:.1f} GiB of output; "
                         f"at most {MAX_OUTPUT_BYTES / 2**30:.0f} GiB: paste fewer frames per run or scale the photo down")


# ---------------------------------------------------------------------------------------------
# The old person's area


def fill_person_area(photo: np.ndarray, mask: np.ndarray, method: str = "telea") -> tuple[np.ndarray, np.ndarray]:
    """The photo with the person of ``mask`` removed, and the area that was filled.

    photo: float32 [H, W, 3] in [0, 1]; mask: float32 [H, W] in [0, 1] (1 = the old person). The hole
    is the mask (> 0.1, so its soft edge too) grown by ``GROW_OLD`` of the person's height + 1 px,
    filled by cv2 inpainting (``telea`` or ``ns``). Returns (filled photo float32 [H, W, 3], hole
    float32 [H, W] of 0/1). Outside the hole the photo is returned unchanged, bit for bit.
    """
    flags = {"telea": cv2.INPAINT_TELEA, "ns": cv2.INPAINT_NS}
    check_choice("inpainting method", method, METHODS)
    hard = (mask > 0.1).astype(np.uint8)
    if not hard.any():
        return photo.copy(), np.zeros(mask.shape, np.float32)
    ys, xs = np.nonzero(hard)
    person_height = float(ys.max() - ys.min() + 1)
    grow = int(math.ceil(GROW_OLD * person_height)) + 1
    hole = cv2.dilate(hard, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1)))
    radius = max(3.0, INPAINT_RADIUS * person_height)
    # Inpaint only a window around the hole: the fill reads a few radii around it, nothing else.
    h, w = hole.shape
    pad = int(math.ceil(3 * radius)) + 2
    y0, y1 = max(0, int(ys.min()) - grow - pad), min(h, int(ys.max()) + grow + pad + 1)
    x0, x1 = max(0, int(xs.min()) - grow - pad), min(w, int(xs.max()) + grow + pad + 1)
    window = (np.clip(photo[y0:y1, x0:x1], 0, 1) * 255 + 0.5).astype(np.uint8)
    window_hole = hole[y0:y1, x0:x1]
    shrink = min(1.0, MAX_INPAINT_SIDE / max(window.shape[:2]))
    if shrink < 1.0:  # a huge hole: inpaint small, bring the (smooth) fill back up
        size = (max(1, round(window.shape[1] * shrink)), max(1, round(window.shape[0] * shrink)))
        small = cv2.resize(window, size, interpolation=cv2.INTER_AREA)
        small_hole = (cv2.resize(window_hole, size, interpolation=cv2.INTER_AREA) > 0).astype(np.uint8)
        small_fill = cv2.inpaint(small, small_hole, max(3.0, radius * shrink), flags[method])
        fill = cv2.resize(small_fill, (window.shape[1], window.shape[0]), interpolation=cv2.INTER_LINEAR)
    else:
        fill = cv2.inpaint(window, window_hole, radius, flags[method])
    out = photo.copy()
    region = out[y0:y1, x0:x1]
    inside = window_hole.astype(bool)
    region[inside] = fill[inside].astype(np.float32) / 255
    return out, hole.astype(np.float32)


# ---------------------------------------------------------------------------------------------
# The new person on the canvas


def _present(keypoints: np.ndarray) -> np.ndarray:
    return (keypoints[:, 2] > 0) & np.isfinite(keypoints[:, :2]).all(axis=1)


def person_envelope(keypoints: np.ndarray, stature: float, height: int, width: int,
                    core_only: bool = False) -> np.ndarray:
    """Where a body of ``stature`` pixels posed by ``keypoints`` ([18, 3], image pixels) can be: uint8
    [height, width] of 0/1. Capsules around the limbs, the hull of the torso, discs at head and feet,
    grown by ``ENVELOPE_MARGIN``; ``core_only``: thin lines along the limbs only (surely the person)."""
    present = _present(keypoints)
    xy = keypoints[:, :2].astype(np.float64)
    envelope = np.zeros((height, width), np.uint8)
    if not present.any():
        return envelope
    scale = 16  # cv2 fixed point: 4 fractional bits

    def pt(p) -> tuple[int, int]:
        clipped = np.clip(p, -4 * max(height, width), 5 * max(height, width))  # far joints stay drawable
        return int(round(clipped[0] * scale)), int(round(clipped[1] * scale))

    def thickness(radius: float) -> int:
        return max(1, int(round(2 * radius)))

    limb_r = (CORE_RADIUS if core_only else LIMB_RADIUS) * stature
    for a, b in LIMBS:
        if present[a] and present[b] and not (a in HEAD_JOINTS and b in HEAD_JOINTS):
            cv2.line(envelope, pt(xy[a]), pt(xy[b]), 1, thickness(limb_r), cv2.LINE_8, shift=4)
    if core_only:
        return envelope
    torso = [xy[i] for i in TORSO_JOINTS if present[i]]
    if len(torso) >= 3:
        hull = cv2.convexHull(np.round(np.array(torso) * scale).astype(np.int32))
        cv2.fillConvexPoly(envelope, hull, 1, cv2.LINE_8, shift=4)
        cv2.polylines(envelope, [hull], True, 1, thickness(TORSO_GROW * stature), cv2.LINE_8, shift=4)
    head = [xy[i] for i in HEAD_JOINTS if present[i]]
    if head:
        centre = np.mean(head, axis=0)
    elif present[1]:
        centre = xy[1] - np.array([0.0, 0.1 * stature])  # no face joint: the head sits above the neck
    else:
        centre = None
    if centre is not None:
        cv2.circle(envelope, pt(centre), int(round(HEAD_RADIUS * stature * scale)), 1, -1, cv2.LINE_8, shift=4)
    for ankle in ANKLES:
        if present[ankle]:
            cv2.circle(envelope, pt(xy[ankle]), int(round(FOOT_RADIUS * stature * scale)), 1, -1, cv2.LINE_8, shift=4)
    grow = int(round(ENVELOPE_MARGIN * stature))
    if grow > 0:
        envelope = cv2.dilate(envelope, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1)))
    return envelope


def new_person_alpha(image: np.ndarray, keypoints: np.ndarray, stature: float,
                     reference: Optional[np.ndarray] = None, reference_mask: Optional[np.ndarray] = None) -> np.ndarray:
    """Soft mask (float32 [h, w] in [0, 1]) of the person the model drew in ``image`` (float32 [h, w, 3]).

    keypoints: the target pose [18, 3] in ``image``'s pixels; stature: the standing person's height in
    those pixels (the framing's ``person_height`` × the image height). reference: the source canvas the
    model saw ([h, w, 3], resized to ``image``'s size if needed), reference_mask: the source person on it
    ([h, w]). Without a reference, the pose envelope is the mask (module docstring).
    """
    h, w = image.shape[:2]
    envelope = person_envelope(keypoints, stature, h, w)
    hard = envelope
    if reference is not None:
        if reference.shape[:2] != (h, w):
            reference = cv2.resize(reference, (w, h), interpolation=cv2.INTER_LINEAR)
        if reference_mask is not None:  # the backdrop behind the source person: the source canvas inpainted
            if reference_mask.shape != (h, w):
                reference_mask = cv2.resize(reference_mask, (w, h), interpolation=cv2.INTER_LINEAR)
            reference = fill_person_area(reference, reference_mask)[0]
        sigma = max(0.5, 0.005 * stature)  # compare colours, not the noise of two samplings
        difference = np.abs(cv2.GaussianBlur(image, (0, 0), sigma) - cv2.GaussianBlur(reference, (0, 0), sigma)).max(-1)
        changed = (difference > DIFFERENCE_THRESHOLD).astype(np.uint8)
        close = max(1, int(round(0.02 * stature)))
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * close + 1, 2 * close + 1))
        changed = cv2.morphologyEx(changed, cv2.MORPH_CLOSE, kernel)
        hard = envelope & (changed | person_envelope(keypoints, stature, h, w, core_only=True))
    sigma = max(0.5, FEATHER * stature)
    alpha = cv2.GaussianBlur(hard.astype(np.float32), (0, 0), sigma)
    # the blur spreads half its width outside the cut: keep the soft edge inside the envelope
    return np.clip(alpha * envelope, 0, 1).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# Canvas → photo


def check_canvas_image_size(width: int, height: int, crop: Crop, name: str = "generated image") -> None:
    """A canvas image may be any size of the canvas's aspect (an upscaled sampler output) or of the
    training photos' aspect (``framing.output_size``); anything else is not this crop's canvas."""
    aspects = {crop.canvas_width / crop.canvas_height, crop.framing.output_size[0] / crop.framing.output_size[1]}
    if min(abs(math.log(width / height / a)) for a in aspects) > ASPECT_TOLERANCE:
        expected = " or ".join(f"{a:.3g}" for a in sorted(aspects))
        raise ValueError(f"{name} is {width}x{height} pixels (aspect {width / height:.3g}) but the model canvas has "
                         f"aspect {expected}: connect the sampler's output (upscaled keeps its aspect), not another image")


def canvas_to_photo(image: np.ndarray, crop: Crop, border: int = cv2.BORDER_CONSTANT) -> tuple[tuple[int, int, int, int], np.ndarray]:
    """An image of the whole canvas (any size, [h, w] or [h, w, C] float32) in the photo: the photo box
    ``(x0, y0, x1, y1)`` it covers (clipped; maybe empty) and its pixels there. Shrinking goes through
    INTER_AREA first (warpAffine alone aliases), enlarging is bilinear."""
    region = crop.paste_region()
    box = (region.x0, region.y0, region.x1, region.y1)
    if region.empty:
        return box, np.zeros((0, 0) + image.shape[2:], np.float32)
    matrix = np.vstack([crop.image_to_photo_matrix(image.shape[1], image.shape[0]), [0, 0, 1]])
    fx, fy = matrix[0, 0], matrix[1, 1]  # photo pixels per image pixel
    if fx < 0.8 or fy < 0.8:
        size = (max(1, int(round(image.shape[1] * min(1.0, fx)))), max(1, int(round(image.shape[0] * min(1.0, fy)))))
        sx, sy = size[0] / image.shape[1], size[1] / image.shape[0]
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        # small pixel j has centre (j + 0.5)/s − 0.5 in the original image
        matrix = matrix @ np.array([[1 / sx, 0, 0.5 / sx - 0.5], [0, 1 / sy, 0.5 / sy - 0.5], [0, 0, 1]])
    to_region = (np.array([[1, 0, -region.x0], [0, 1, -region.y0], [0, 0, 1]]) @ matrix)[:2]
    out = cv2.warpAffine(image, to_region, (region.width, region.height), flags=cv2.INTER_LINEAR,
                         borderMode=border, borderValue=0.0)
    return box, out.astype(np.float32)


def paste_into_photo(photos, images, crop: Crop, keypoints: np.ndarray, *, old_masks=None, reference=None,
                     reference_mask: Optional[np.ndarray] = None, method: str = "telea") -> Composite:
    """The generated person of each frame pasted into the photo; see the module docstring.

    photos: [B, H, W, 3] (B = 1 or N), the photo of ``crop``. images: [N, h, w, 3], the sampler's canvas
    images (any size of the canvas's aspect). crop: canvas ↔ photo for the targets (one for the whole
    sequence). keypoints: [N, 18, 3] (or [18, 3] for every frame), the target poses on the model canvas.
    old_masks: [M, H', W'] (M = 1 or B; any size of the photo's aspect), the person to remove (None: no
    fill). reference / reference_mask: the source canvas [h', w', 3] and the source person on it [h', w']
    (None: the pose envelope alone cuts the person out).
    """
    photos = as_image_batch(photos, "photo")
    images = as_image_batch(images, "generated images")
    n, b = images.shape[0], photos.shape[0]
    _count("photo", b, n, "generated image")
    height, width = photos.shape[1:3]
    if (width, height) != (crop.photo_width, crop.photo_height):
        raise ValueError(f"photo is {width}x{height} pixels but the crop was made for a {crop.photo_width}x"
                         f"{crop.photo_height} photo: paste into the photo the person was framed from")
    check_canvas_image_size(images.shape[2], images.shape[1], crop)
    keypoints = np.asarray(keypoints, np.float64)
    keypoints = keypoints[None] if keypoints.ndim == 2 else keypoints
    if keypoints.ndim != 3 or keypoints.shape[1:] != (NUM_JOINTS, 3):
        raise ValueError(f"target keypoints must be [N, 18, 3] on the model canvas, got shape {keypoints.shape}")
    _count("target poses", keypoints.shape[0], n, "generated image")
    check_output_size(n, height, width)
    masks = None
    if old_masks is not None:
        masks = as_mask_batch(old_masks, width, height, "person mask")
        _count("person mask", masks.shape[0], b, "photo")
        check_person_masks(masks)
    reference_image = None if reference is None else as_image_batch(reference, "source canvas")[0]

    filled_photos = []
    for index in range(b):
        if masks is None:
            filled_photos.append((photos[index], np.zeros((height, width), np.float32)))
        elif index > 0 and masks.shape[0] == 1 and b > 1 and np.array_equal(photos[index], photos[0]):
            filled_photos.append(filled_photos[0])
        else:
            filled_photos.append(fill_person_area(photos[index], masks[min(index, masks.shape[0] - 1)], method))

    out = np.empty((n, height, width, 3), np.float32)
    filled = np.empty((n, height, width), np.float32)
    person = np.zeros((n, height, width), np.float32)
    ih, iw = images.shape[1:3]
    to_image = np.array([iw / crop.canvas_width, ih / crop.canvas_height])
    stature = crop.framing.person_height * ih  # the standing person's height in the image's pixels
    for i in range(n):
        base, hole = filled_photos[min(i, b - 1)]
        frame_kp = keypoints[min(i, keypoints.shape[0] - 1)].copy()
        frame_kp[:, :2] = (frame_kp[:, :2] + 0.5) * to_image - 0.5  # canvas pixel centres → image pixel centres
        alpha = new_person_alpha(images[i], frame_kp, stature, reference_image, reference_mask)
        (x0, y0, x1, y1), drawn = canvas_to_photo(images[i], crop, cv2.BORDER_REPLICATE)
        _, pasted_alpha = canvas_to_photo(alpha, crop)
        out[i] = base
        person[i, y0:y1, x0:x1] = pasted_alpha
        region = out[i, y0:y1, x0:x1]
        a = pasted_alpha[..., None]
        region[:] = region * (1 - a) + drawn * a
        filled[i] = hole * (1 - person[i])
    return Composite(np.clip(out, 0, 1), filled, person)



# ---------------------------------------------------------------------------------------------
# From a framed texture (what the nodes hold)


def crop_for_photo_size(crop: Crop, width: int, height: int) -> Crop:
    """``crop`` for another size of the same photo (a full-resolution original of the photo that was
    framed): canvas = p·s + o for a photo pixel p becomes p'·s/k + o + s·(0.5/k − 0.5) for the pixel p'
    of the photo scaled by k (pixel centres at whole numbers). Another aspect is a ValueError."""
    if (width, height) == (crop.photo_width, crop.photo_height):
        return crop
    if abs(math.log(width * crop.photo_height / (height * crop.photo_width))) > ASPECT_TOLERANCE:
        raise ValueError(f"photo is {width}x{height} pixels but the person was framed in a {crop.photo_width}x"
                         f"{crop.photo_height} photo: paste into that photo (or another size of it, same aspect ratio)")
    kx, ky = width / crop.photo_width, height / crop.photo_height
    return dataclasses.replace(
        crop, scale_x=crop.scale_x / kx, scale_y=crop.scale_y / ky,
        offset_x=crop.offset_x + crop.scale_x * (0.5 / kx - 0.5), offset_y=crop.offset_y + crop.scale_y * (0.5 / ky - 0.5),
        photo_width=int(width), photo_height=int(height), stature=crop.stature * ky)


def paste_crops(source_crops: Sequence[Crop], poses: Sequence[Pose], place: str = "pose") -> tuple[list[Crop], np.ndarray]:
    """The crop that puts each output into its source photo, and each target pose on the model canvas
    ([N, 18, 3]), framed as the sampler framed them (:func:`pidm_core.pipeline.target_crops`).

    place "pose": where the target pose stands in the photo; a pose on another canvas (the editor's, a
    second photo's) is first fitted onto the photo (aspect kept, centred), so it lands where it was drawn
    relative to the picture. place "source": where the source person stands (their soles, centre line
    and size), whatever canvas the pose is on.
    """
    check_choice("place", place, PLACES)
    poses, crops = list(poses), list(source_crops)
    if not poses:
        raise ValueError("no target pose given: the pose input is empty")
    b, n = len(crops), len(poses)
    if b not in (1, n) and n != 1:
        raise ValueError(f"{b} source images and {n} poses: give one source, one pose, or as many poses as sources")
    outputs = max(b, n)
    groups = [(crops[0], list(range(n)))] if b == 1 else [(crops[i], [min(i, n - 1)]) for i in range(outputs)]
    paste, keypoints = [], []
    for source_crop, indices in groups:
        frames = [poses[i] for i in indices]
        if place == "pose":
            frames = [p if (p.width, p.height) == (source_crop.photo_width, source_crop.photo_height)
                      else fit_to_canvas(p, source_crop.photo_width, source_crop.photo_height) for p in frames]
        on_canvas, target = frame_targets(frames, source_crop)
        paste += [target if place == "pose" else source_crop] * len(frames)
        keypoints += [p.keypoints for p in on_canvas]
    return paste, np.stack(keypoints).astype(np.float64)


def paste_from_texture(texture, photos, images, poses: Sequence[Pose], old_masks=None, place: str = "pose",
                       method: str = "telea") -> Composite:
    """The sampler's outputs of a framed ``texture`` (:class:`pidm_core.pipeline.SourceTexture` encoded
    with fit "person") pasted into the photo(s); see :func:`paste_into_photo`.

    photos: [B, H, W, 3], the source photo(s) the texture was framed from, or another size of them (the
    full-resolution original). images: [N, h, w, 3], the sampler's output (upscaled is fine). poses: the
    target poses given to the sampler. old_masks: the source person's mask(s) in the photo (None: the old
    person is not removed). place: see :func:`paste_crops`.
    """
    crops = getattr(texture, "crops", None)
    if not crops:
        raise ValueError("the texture was not framed (Encode Source Texture fit 'person'): there is no crop to put "
                         "the person back through; encode the source with fit 'person' and its pose")
    check_choice("place", place, PLACES)
    check_choice("inpainting method", method, METHODS)
    photos = as_image_batch(photos, "photo")
    images = as_image_batch(images, "generated images")
    paste, keypoints = paste_crops(crops, poses, place)
    n = images.shape[0]
    if n != len(paste):
        raise ValueError(f"generated images holds {n} images for {len(paste)} target poses: connect the sampler's "
                         "output for these poses (an upscale keeps the count)")
    _count("photo", photos.shape[0], len(crops), "source image")
    height, width = photos.shape[1:3]
    for crop in crops:
        crop_for_photo_size(crop, width, height)  # the photo the person was framed in, or a copy of another size
    check_output_size(n, height, width)
    source = ((texture.source.detach().float().cpu() + 1) / 2).clamp(0, 1).permute(0, 2, 3, 1).numpy()
    masks = None if old_masks is None else as_mask_batch(old_masks, width, height, "person mask")
    if masks is not None:
        _count("person mask", masks.shape[0], photos.shape[0], "photo")
        check_person_masks(masks)
    results = []
    # outputs that share a crop and a photo (a sequence from one source) are pasted in one call: one fill
    start = 0
    while start < n:
        end = start + 1
        while end < n and paste[end] is paste[start]:
            end += 1
        k = 0 if len(crops) == 1 else start
        crop = crop_for_photo_size(paste[start], width, height)
        source_crop = crops[k]
        reference_mask = None
        mask = None
        if masks is not None:
            mask = masks[min(k, masks.shape[0] - 1)]
            reference_mask = source_crop.crop_mask(mask)
        results.append(paste_into_photo(photos[min(k, photos.shape[0] - 1)], images[start:end], crop,
                                        keypoints[start:end], old_masks=mask, reference=source[k],
                                        reference_mask=reference_mask, method=method))
        start = end
    return Composite(*(np.concatenate([getattr(r, f) for r in results]) for f in ("images", "filled", "person")))
