"""Back into the photo: paste a generated canvas image into the full-resolution photo through a Placement.

The sampler draws the person on the model canvas, framed by :mod:`pidm_core.framing`. This module
puts that person back where the target pose stands in the original photo, at the photo's resolution:

1. The area the old person covered (their mask, grown a little to take their anti-aliased edge and
   shadow) is filled from its surroundings with cv2 inpainting (:func:`fill_person_area`), once for
   every frame of a sequence (and, with a :class:`Backdrop`, once for a sequence pasted in several calls).
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

Sizes: a photo of H × W pixels and N frames make N × H × W × 5 float32 values of output (the images,
the filled and the person masks); that is bounded by :data:`MAX_OUTPUT_BYTES` and by the free memory,
checked from the inputs' shapes before any pixel is copied. The photo is read where it lies (a view of the
IMAGE tensor) and written once into each output frame; the fill and the pasted person are worked out in
windows and blocks of rows, so the peak stays a small multiple of the photo (docs/robustness.md says how
much, tests/test_composite.py checks it).

Values: the photo's pixels outside the filled area and the new person are returned as they came, bit for
bit (a 0-255 photo is read as such, by the rule of :mod:`pidm_core.pixels`, and divided by 255).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

import cv2
import numpy as np

from .checks import image_batch, mask_batch, pixel_scales, same_aspect
from .errors import check_choice, explain_out_of_memory, plural
from .framing import frame_targets
from .memory import free_memory_bytes
from .placement import Placement, warp_rows
from .pose.geometry import fit_to_canvas
from .pose.keypoints import LIMBS, NUM_JOINTS, Pose

PLACES = ("pose", "source")  # where the new person stands: where the target pose says, or where the source stood
METHODS = ("telea", "ns")  # cv2 inpainting: Telea's fast marching, or Navier-Stokes
MAX_OUTPUT_BYTES = 2 << 30  # images and masks of all frames together
OUTPUT_BYTES_PER_PIXEL = 20  # per frame: RGB, the filled mask and the person mask, float32
# Besides the outputs, per photo pixel: a person mask of another size resized (4), its threshold and the hole
# (2), the fill's colours and hole in their window (4); measured: docs/robustness.md, Put Back Into Photo
WORKING_BYTES_PER_PIXEL = 12
BLOCK_PIXELS = 1 << 18  # photo pixels warped and blended at once: bounds the temporaries of a large paste
SAME_PHOTO = 1 / 255  # thumbnails of one photo agree to this; two photos never do everywhere
HOLE_THRESHOLD = 0.1  # a person mask above this is the old person (its soft edge included)
MAX_INPAINT_SIDE = 512  # a larger hole is inpainted at reduced resolution (inpainting fills smoothly anyway)

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
# Checking inputs: shapes first (views, nothing copied), values after


def write_image(values: np.ndarray, scale: int, out: np.ndarray, clip: bool = False) -> None:
    """One image [H, W, C] written into ``out`` (float32 [H, W, 3]) in its [0, 1] reading: grey repeated, alpha
    dropped, divided by ``scale``. ``clip``: to [0, 1] (a photo keeps its own values: module doc)."""
    np.copyto(out, values[..., :3] if values.shape[-1] != 1 else values, casting="unsafe")
    if scale != 1:
        np.divide(out, scale, out=out)
    if clip:
        np.clip(out, 0, 1, out=out)


def person_mask(values: np.ndarray, scale: int, width: int, height: int) -> np.ndarray:
    """One mask [H', W'] as float32 [height, width] in its [0, 1] reading, not clipped (it is thresholded); a
    view of the input when that is already float32 of the photo's size."""
    mask = values.astype(np.float32, copy=False)
    if scale != 1:
        mask = mask / scale
    if mask.shape != (height, width):
        mask = cv2.resize(np.ascontiguousarray(mask), (width, height), interpolation=cv2.INTER_LINEAR)
    return mask


WHOLE_PHOTO_SHARE = 0.9  # a "person" mask covering this much of the photo is no segmentation at all


def check_person_masks(masks: np.ndarray, scales: Sequence[int] = ()) -> None:
    """A mask that covers (almost) the whole photo is what Pose From Image gives without MediaPipe's
    segmentation; inpainting it would repaint the whole photo. ValueError saying what to connect.
    ``scales``: each mask's divisor (:func:`pixel_scales`), 1 by default; the share is that of the hole."""
    for index, mask in enumerate(masks):
        scale = scales[index] if len(scales) else 1
        share = float((mask > HOLE_THRESHOLD * scale).mean())
        if share > WHOLE_PHOTO_SHARE:
            where = "person mask" if len(masks) == 1 else f"person mask {index + 1} of {len(masks)}"
            raise ValueError(f"{where} covers {share:.0%} of the photo: that is no person's outline (Pose From Image "
                             "gives the whole image when MediaPipe's segmentation is not installed); connect the mask "
                             "of the person, or leave the mask unconnected to keep the old person under the new one")


def _count(name: str, found: int, count: int, what: str) -> None:
    if found not in (1, count):
        choice = "1" if count == 1 else f"1 (used for every frame) or {count}"
        raise ValueError(f"{name} holds {found} items for {plural(count, what)}: give {choice}")


def check_output_size(frames: int, height: int, width: int, free_bytes: Optional[int] = None) -> None:
    """Refuse before allocating when N frames of an H × W photo would pass :data:`MAX_OUTPUT_BYTES`, or when
    they and the work on the photo would not fit the free memory (``free_bytes``; None = read it)."""
    output = frames * height * width * OUTPUT_BYTES_PER_PIXEL
    if output > MAX_OUTPUT_BYTES:
        gib = output / 2**30
        shown = f"{gib:.1f}" if round(gib, 1) > MAX_OUTPUT_BYTES / 2**30 else f"{gib:.2f}"  # never "2.0 ... at most 2"
        raise ValueError(f"{plural(frames, 'frame')} of a {width}x{height} photo {'needs' if frames == 1 else 'need'} "
                         f"{shown} GiB of output; "
                         f"at most {MAX_OUTPUT_BYTES / 2**30:.0f} GiB: paste fewer frames per run or scale the photo down")
    needed = output + height * width * WORKING_BYTES_PER_PIXEL
    free = free_memory_bytes("cpu") if free_bytes is None else free_bytes
    if needed > free:
        raise ValueError(f"putting {plural(frames, 'frame')} back into a {width}x{height} photo needs about "
                         f"{needed / 2**30:.1f} GiB of memory, but {free / 2**30:.1f} GiB is free: paste fewer frames "
                         "per run, scale the photo down, or free memory (unload models, close other programs)")


def _target_keypoints(keypoints, frames: int) -> np.ndarray:
    keypoints = np.asarray(keypoints, np.float64)
    keypoints = keypoints[None] if keypoints.ndim == 2 else keypoints
    if keypoints.ndim != 3 or keypoints.shape[1:] != (NUM_JOINTS, 3):
        raise ValueError(f"target keypoints must be [N, 18, 3] on the model canvas, got shape {keypoints.shape}")
    _count("target poses", keypoints.shape[0], frames, "generated image")
    return keypoints


def check_targets_in_photo(keypoints: np.ndarray, crops: Sequence[Placement]) -> None:
    """Each target pose ([N, 18, 3] on the canvas, mapped into the photo by its crop) has a joint inside the
    photo; one wholly outside it would paste nothing and return the photo with the old person removed."""
    count = len(keypoints)
    for index, (frame, crop) in enumerate(zip(keypoints, crops)):
        where = "target pose" if count == 1 else f"target pose {index + 1} of {count}"
        present = _present(frame)
        if not present.any():
            raise ValueError(f"{where} has no joints (every joint is missing): there is no person to paste; give a "
                             "pose with at least one limb")
        x, y = crop.to_photo(frame[present, :2]).T
        width, height = crop.photo_width, crop.photo_height
        if not ((x >= -0.5) & (x <= width - 0.5) & (y >= -0.5) & (y <= height - 0.5)).any():
            raise ValueError(
                f"{where} stands wholly outside the photo: its joints land at x {x.min():.0f}..{x.max():.0f}, "
                f"y {y.min():.0f}..{y.max():.0f} of the {width}x{height} photo, so nothing of the new person would be "
                "pasted; move the pose into the picture (place 'pose' fits a pose drawn on another canvas onto the "
                "photo), or use place 'source' to put the person where the source person stood")


def check_one_photo_for_the_sources(texture, photo_count: int) -> None:
    """One photo for several framed sources is fine when they were framed in that one photo (several people
    of it); sources framed in different photos would be pasted into the first one, at their own places."""
    thumbnails = getattr(texture, "photo_thumbnails", None)
    if photo_count != 1 or thumbnails is None or len(thumbnails) < 2:
        return
    for index in range(1, len(thumbnails)):
        if np.abs(thumbnails[index] - thumbnails[0]).max() > SAME_PHOTO:
            raise ValueError(f"photo holds 1 image but the texture was framed from {len(thumbnails)} different "
                             f"photos (source image {index + 1} is not source image 1): connect the batch of "
                             f"{len(thumbnails)} photos given to Encode Source Texture, in the same order")


# ---------------------------------------------------------------------------------------------
# The old person's area


def _rows_per_block(width: int) -> int:
    return max(1, BLOCK_PIXELS // max(1, width))


def _to_uint8(image: np.ndarray) -> np.ndarray:
    return (np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8)


@dataclass(frozen=True)
class Fill:
    """The old person's area in a photo, filled: rows y0:y1 and columns x0:x1 of the photo hold the hole
    ``inside`` (bool [h, w]: the person grown by GROW_OLD) and its inpainted colours ``colour`` (uint8 [h, w, 3])."""

    y0: int
    y1: int
    x0: int
    x1: int
    inside: np.ndarray
    colour: np.ndarray

    @property
    def window(self) -> tuple[slice, slice]:
        return slice(self.y0, self.y1), slice(self.x0, self.x1)

    def apply(self, image: np.ndarray) -> None:
        """The fill written into ``image`` (float32 [H, W, 3]) inside the hole; the rest stays bit for bit."""
        region = image[self.window]
        step = _rows_per_block(self.x1 - self.x0)
        for start in range(0, region.shape[0], step):
            rows = slice(start, start + step)
            np.copyto(region[rows], self.colour[rows].astype(np.float32) / 255, where=self.inside[rows, :, None])


def person_fill(photo: np.ndarray, mask: np.ndarray, method: str = "telea") -> Optional[Fill]:
    """The fill of the person of ``mask`` (float32 [H, W]; 1 = the old person) in ``photo`` (float32 [H, W, 3]),
    or None when the mask is empty. The hole is the mask (> HOLE_THRESHOLD, so its soft edge too) grown by
    ``GROW_OLD`` of the person's height + 1 px, filled by cv2 inpainting (``telea`` or ``ns``) in a window
    around it (the fill reads a few radii around the hole, nothing else)."""
    flags = {"telea": cv2.INPAINT_TELEA, "ns": cv2.INPAINT_NS}
    check_choice("inpainting method", method, METHODS)
    hard = mask > HOLE_THRESHOLD
    rows, columns = np.flatnonzero(hard.any(axis=1)), np.flatnonzero(hard.any(axis=0))
    if not len(rows):
        return None
    person_height = float(rows[-1] - rows[0] + 1)
    grow = int(math.ceil(GROW_OLD * person_height)) + 1
    radius = max(3.0, INPAINT_RADIUS * person_height)
    pad = int(math.ceil(3 * radius)) + 2
    h, w = mask.shape
    y0, y1 = max(0, int(rows[0]) - grow - pad), min(h, int(rows[-1]) + grow + pad + 1)
    x0, x1 = max(0, int(columns[0]) - grow - pad), min(w, int(columns[-1]) + grow + pad + 1)
    # the window reaches `grow` past the person on every side (or the photo's edge): dilating it alone is exact
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1))
    inside = cv2.dilate(hard[y0:y1, x0:x1].astype(np.uint8), kernel)
    window = photo[y0:y1, x0:x1]
    shrink = min(1.0, MAX_INPAINT_SIDE / max(window.shape[:2]))
    if shrink < 1.0:  # a huge hole: inpaint small, bring the (smooth) fill back up
        size = (max(1, round(window.shape[1] * shrink)), max(1, round(window.shape[0] * shrink)))
        small = _to_uint8(cv2.resize(window, size, interpolation=cv2.INTER_AREA))
        small_hole = (cv2.resize(inside, size, interpolation=cv2.INTER_AREA) > 0).astype(np.uint8)
        small_fill = cv2.inpaint(small, small_hole, max(3.0, radius * shrink), flags[method])
        colour = cv2.resize(small_fill, (window.shape[1], window.shape[0]), interpolation=cv2.INTER_LINEAR)
    else:
        colour = cv2.inpaint(_to_uint8(window), inside, radius, flags[method])
    return Fill(y0, y1, x0, x1, inside.view(bool), colour)


def fill_person_area(photo: np.ndarray, mask: np.ndarray, method: str = "telea") -> tuple[np.ndarray, np.ndarray]:
    """The photo with the person of ``mask`` removed, and the area that was filled (:func:`person_fill`).

    photo: float32 [H, W, 3] in [0, 1]; mask: float32 [H, W] in [0, 1] (1 = the old person). Returns (filled
    photo float32 [H, W, 3], hole float32 [H, W] of 0/1). Outside the hole the photo is returned unchanged,
    bit for bit.
    """
    out = np.array(photo, np.float32)
    hole = np.zeros(mask.shape, np.float32)
    fill = person_fill(out, mask, method)
    if fill is not None:
        fill.apply(out)
        hole[fill.window] = fill.inside
    return out, hole


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


def reference_backdrop(reference: np.ndarray, reference_mask: Optional[np.ndarray], height: int,
                       width: int) -> np.ndarray:
    """The source canvas as :func:`new_person_alpha` compares an image of ``height`` × ``width`` with it: ``reference``
    (float32 [h, w, 3]) resized to that size, and the source person of ``reference_mask`` ([h, w]; None: nothing
    filled) inpainted away, so what is left is the backdrop the model copies. It depends on the source alone:
    work it out once for every frame of that size (``new_person_alpha(..., backdrop=...)``)."""
    if reference.shape[:2] != (height, width):
        reference = cv2.resize(reference, (width, height), interpolation=cv2.INTER_LINEAR)
    if reference_mask is not None:  # the backdrop behind the source person: the source canvas inpainted
        if reference_mask.shape != (height, width):
            reference_mask = cv2.resize(reference_mask, (width, height), interpolation=cv2.INTER_LINEAR)
        reference = fill_person_area(reference, reference_mask)[0]
    return reference


def new_person_alpha(image: np.ndarray, keypoints: np.ndarray, stature: float,
                     reference: Optional[np.ndarray] = None, reference_mask: Optional[np.ndarray] = None, *,
                     backdrop: Optional[np.ndarray] = None) -> np.ndarray:
    """Soft mask (float32 [h, w] in [0, 1]) of the person the model drew in ``image`` (float32 [h, w, 3]).

    keypoints: the target pose [18, 3] in ``image``'s pixels; stature: the standing person's height in
    those pixels (the framing's ``person_height`` × the image height). reference: the source canvas the
    model saw ([h, w, 3], resized to ``image``'s size if needed), reference_mask: the source person on it
    ([h, w]). Without a reference, the pose envelope is the mask (module docstring). backdrop: instead of
    reference and reference_mask, their :func:`reference_backdrop` at ``image``'s size, worked out once for
    many frames (the same mask, bit for bit, without inpainting the source canvas again).
    """
    h, w = image.shape[:2]
    envelope = person_envelope(keypoints, stature, h, w)
    hard = envelope
    if backdrop is None and reference is not None:
        backdrop = reference_backdrop(reference, reference_mask, h, w)
    if backdrop is not None:
        if backdrop.shape[:2] != (h, w):
            raise ValueError(f"the source canvas backdrop is {backdrop.shape[1]}x{backdrop.shape[0]} pixels but the "
                             f"image is {w}x{h}: work it out for the image's size (reference_backdrop)")
        reference = backdrop
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


def check_canvas_image_size(width: int, height: int, crop: Placement, name: str = "generated image") -> None:
    """A canvas image may be any size of the canvas's aspect (an upscaled sampler output) or of the
    training photos' aspect (``framing.output_size``); anything else is not this crop's canvas."""
    aspects = {crop.canvas_width / crop.canvas_height, crop.framing.output_size[0] / crop.framing.output_size[1]}
    if not any(same_aspect(width, height, a, 1) for a in aspects):
        expected = " or ".join(f"{a:.3g}" for a in sorted(aspects))
        raise ValueError(f"{name} is {width}x{height} pixels (aspect {width / height:.3g}) but the model canvas has "
                         f"aspect {expected}: connect the sampler's output (upscaled keeps its aspect), not another image")


def _paste_frame(out: np.ndarray, person: np.ndarray, image: np.ndarray, alpha: np.ndarray, crop: Placement) -> None:
    """The drawn canvas ``image`` (float32 [h, w, 3]) blended over the photo ``out`` (float32 [H, W, 3], changed
    in place) through its soft mask ``alpha`` ([h, w]), whose pasted share is written into ``person`` ([H, W]).
    A block of rows at a time, so the temporaries stay small whatever the photo's size."""
    region = crop.paste_region()
    if region.empty:  # the canvas lies outside the photo (check_targets_in_photo tells the artist first)
        return
    drawn, drawn_matrix = crop.prepared_for_photo(image)
    cut, cut_matrix = crop.prepared_for_photo(alpha)
    step = _rows_per_block(region.width)
    for top in range(region.y0, region.y1, step):
        rows = min(step, region.y1 - top)
        a = warp_rows(cut, cut_matrix, region.x0, top, region.width, rows, cv2.BORDER_CONSTANT)
        colours = warp_rows(drawn, drawn_matrix, region.x0, top, region.width, rows, cv2.BORDER_REPLICATE)
        person[top:top + rows, region.x0:region.x1] = a
        under = out[top:top + rows, region.x0:region.x1]
        colours -= under  # under + (drawn − under)·a: where a is 0 the photo stays bit for bit
        colours *= a[..., None]
        under += colours


@dataclass(frozen=True)
class _Group:
    """Output frames ``start:end`` pasted into one photo (with one fill) through one crop."""

    start: int
    end: int
    photo: int  # index into the photo batch
    mask: Optional[int]  # index into the mask batch (None: nothing is filled)
    crop: Placement
    reference: Optional[np.ndarray] = None  # the source canvas [h, w, 3] the model saw
    reference_mask: Optional[np.ndarray] = None  # the source person on it [h, w]


@dataclass(frozen=True)
class Backdrop:
    """What put back works out from the photo, the old person's mask and the source canvas alone, the same for
    every frame pasted through them: made once by :func:`photo_backdrop` and given to every
    :func:`paste_into_photo` call of a sequence, so the old person and the source person are inpainted once per
    sequence, not once per call (and the source canvas once per frame). A video pasted a chunk at a time
    (:mod:`pidm_core.video.render`, chunks of one frame when frames start from the previous one) needs it.

    photo_size, image_size: (width, height) of the photo and of the canvas images it serves. masked: made with
    an old person's mask. fill: the old person's area filled (:class:`Fill`; None: no mask, or an empty one).
    reference: the source canvas at ``image_size`` with its person filled (:func:`reference_backdrop`; None: no
    source canvas given). Memory, held for the whole sequence: the fill's window (uint8 colours and a bool hole,
    at most 4 bytes per photo pixel, less than the float32 photo's 12) and one canvas-sized float32 image, so put
    back's peak stays the small multiple of the photo that docs/robustness.md gives."""

    photo_size: tuple[int, int]
    image_size: tuple[int, int]
    masked: bool
    fill: Optional[Fill]
    reference: Optional[np.ndarray]


def _reference_image(reference) -> Optional[np.ndarray]:
    """The source canvas (an IMAGE [1, h, w, 3] or [h, w, 3]) as float32 [h, w, 3] in [0, 1]."""
    if reference is None:
        return None
    canvas = image_batch(reference, "source canvas")
    image = np.empty(canvas.shape[1:3] + (3,), np.float32)
    write_image(canvas[0], pixel_scales(canvas, "source canvas", "image")[0], image, clip=True)
    return image


def photo_backdrop(photos, image_size: tuple[int, int], *, old_masks=None, reference=None,
                   reference_mask: Optional[np.ndarray] = None, method: str = "telea") -> Backdrop:
    """The :class:`Backdrop` of one photo for canvas images of ``image_size`` (width, height): the arguments
    as in :func:`paste_into_photo` (``photos`` holds one photo, ``old_masks`` at most one mask). Every
    :func:`paste_into_photo` given it with these inputs returns what it would without it, bit for bit."""
    check_choice("inpainting method", method, METHODS)
    photos = image_batch(photos, "photo")
    if photos.shape[0] != 1:
        raise ValueError(f"photo holds {photos.shape[0]} images: a backdrop is made for one photo")
    height, width = photos.shape[1:3]
    fill = None
    masks = None if old_masks is None else mask_batch(old_masks, width, height, "person mask")
    if masks is not None:
        _count("person mask", masks.shape[0], 1, "photo")
        mask_scales = pixel_scales(masks, "person mask", "mask", integer_is_255=False)
        check_person_masks(masks, mask_scales)
        photo = np.empty((height, width, 3), np.float32)  # as _paste_group reads it into the first frame
        write_image(photos[0], pixel_scales(photos, "photo", "image")[0], photo)
        fill = person_fill(photo, person_mask(masks[0], mask_scales[0], width, height), method)
        del photo
    image_width, image_height = image_size
    canvas = _reference_image(reference)
    filled = None if canvas is None else reference_backdrop(canvas, reference_mask, image_height, image_width)
    return Backdrop((width, height), (image_width, image_height), masks is not None, fill, filled)


def _allocate(frames: int, height: int, width: int) -> Composite:
    return Composite(np.empty((frames, height, width, 3), np.float32), np.zeros((frames, height, width), np.float32),
                     np.zeros((frames, height, width), np.float32))


def _paste_group(result: Composite, group: _Group, photos: np.ndarray, photo_scales: list[int], images: np.ndarray,
                 image_scales: list[int], keypoints: np.ndarray, masks: Optional[np.ndarray], mask_scales: list[int],
                 method: str, backdrop: Optional[Backdrop] = None) -> None:
    """Frames of ``group`` written into ``result``: the photo read once into the first frame, its old person
    filled there once (or ``backdrop``'s fill), copied to the others; then each frame's drawn person cut out
    (against the source canvas filled once: ``backdrop``'s, or worked out here for all the group's frames) and
    pasted."""
    first, crop = result.images[group.start], group.crop
    height, width = first.shape[:2]
    write_image(photos[group.photo], photo_scales[group.photo], first)
    ih, iw = images.shape[1:3]
    if backdrop is not None:
        fill, reference = backdrop.fill, backdrop.reference
    else:
        fill = None
        if group.mask is not None:
            fill = person_fill(first, person_mask(masks[group.mask], mask_scales[group.mask], width, height), method)
        reference = None
        if group.reference is not None:
            reference = reference_backdrop(group.reference, group.reference_mask, ih, iw)
    if fill is not None:
        fill.apply(first)
    for i in range(group.start + 1, group.end):
        result.images[i] = first
    to_image = np.array([iw / crop.canvas_width, ih / crop.canvas_height])
    stature = crop.framing.person_height * ih  # the standing person's height in the image's pixels
    image = np.empty((ih, iw, 3), np.float32)
    for i in range(group.start, group.end):
        write_image(images[i], image_scales[i], image, clip=True)
        frame_kp = keypoints[i].copy()
        frame_kp[:, :2] = (frame_kp[:, :2] + 0.5) * to_image - 0.5  # canvas pixel centres → image pixel centres
        alpha = new_person_alpha(image, frame_kp, stature, backdrop=reference)
        _paste_frame(result.images[i], result.person[i], image, alpha, crop)
        if fill is not None:
            filled = result.filled[i][fill.window]
            np.subtract(1, result.person[i][fill.window], out=filled)
            filled *= fill.inside


def paste_into_photo(photos, images, crop: Placement, keypoints: np.ndarray, *, old_masks=None, reference=None,
                     reference_mask: Optional[np.ndarray] = None, method: str = "telea",
                     backdrop: Optional[Backdrop] = None) -> Composite:
    """The generated person of each frame pasted into the photo; see the module docstring.

    photos: [B, H, W, 3] (B = 1 or N), the photo of ``crop``. images: [N, h, w, 3], the sampler's canvas
    images (any size of the canvas's aspect). crop: canvas ↔ photo for the targets (one for the whole
    sequence). keypoints: [N, 18, 3] (or [18, 3] for every frame), the target poses on the model canvas.
    old_masks: [M, H', W'] (M = 1 or B; any size of the photo's aspect, or 1x1), the person to remove (None:
    no fill). reference / reference_mask: the source canvas [h', w', 3] and the source person on it [h', w']
    (None: the pose envelope alone cuts the person out). backdrop: :func:`photo_backdrop` of these same photo,
    old_masks, reference, reference_mask and method, for images of this size: the fills are taken from it
    instead of inpainting again (one photo only; the result is the same, bit for bit). Every check runs on
    shapes before a pixel is copied.
    """
    check_choice("inpainting method", method, METHODS)
    photos, images = image_batch(photos, "photo"), image_batch(images, "generated images")
    n, b = images.shape[0], photos.shape[0]
    _count("photo", b, n, "generated image")
    height, width = photos.shape[1:3]
    if (width, height) != (crop.photo_width, crop.photo_height):
        raise ValueError(f"photo is {width}x{height} pixels but the crop was made for a {crop.photo_width}x"
                         f"{crop.photo_height} photo: paste into the photo the person was framed from")
    check_canvas_image_size(images.shape[2], images.shape[1], crop)
    keypoints = np.broadcast_to(_target_keypoints(keypoints, n), (n, NUM_JOINTS, 3))
    check_output_size(n, height, width)
    masks = None if old_masks is None else mask_batch(old_masks, width, height, "person mask")
    if masks is not None:
        _count("person mask", masks.shape[0], b, "photo")
    check_targets_in_photo(keypoints, [crop] * n)
    photo_scales, image_scales = pixel_scales(photos, "photo", "image"), pixel_scales(images, "generated images", "image")
    mask_scales = [] if masks is None else pixel_scales(masks, "person mask", "mask", integer_is_255=False)
    if masks is not None:
        check_person_masks(masks, mask_scales)
    if backdrop is not None:
        _check_backdrop(backdrop, b, (width, height), (images.shape[2], images.shape[1]), masks is not None,
                        reference is not None)
    reference_image = None if backdrop is not None else _reference_image(reference)
    spans = [(0, n)] if b == 1 else [(i, i + 1) for i in range(n)]
    result = _allocate(n, height, width)
    for start, end in spans:
        group = _Group(start, end, min(start, b - 1), None if masks is None else min(start, masks.shape[0] - 1), crop,
                       reference_image, reference_mask)
        _paste_group(result, group, photos, photo_scales, images, image_scales, keypoints, masks, mask_scales, method,
                     backdrop)
    return result


def _check_backdrop(backdrop: Backdrop, photos: int, photo_size: tuple[int, int], image_size: tuple[int, int],
                    masked: bool, referenced: bool) -> None:
    """A backdrop made for other inputs than these would paste another fill: a ValueError saying which."""
    if photos != 1:
        raise ValueError(f"photo holds {photos} images: a backdrop serves one photo; give none for several")
    if backdrop.photo_size != photo_size:
        raise ValueError(f"the backdrop was made for a {backdrop.photo_size[0]}x{backdrop.photo_size[1]} photo, "
                         f"the photo is {photo_size[0]}x{photo_size[1]}: make it from this photo")
    if backdrop.image_size != image_size:
        raise ValueError(f"the backdrop was made for {backdrop.image_size[0]}x{backdrop.image_size[1]} generated "
                         f"images, these are {image_size[0]}x{image_size[1]}: make it for their size")
    if backdrop.masked != masked or (backdrop.reference is not None) != referenced:
        raise ValueError("the backdrop was made with other inputs (a person mask or source canvas given to one and "
                         "not the other): make it from the same photo, person mask and source canvas")


# ---------------------------------------------------------------------------------------------
# From a framed texture (what the nodes hold)


def paste_crops(source_crops: Sequence[Placement], poses: Sequence[Pose], place: str = "pose") -> tuple[list[Placement], np.ndarray]:
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
    person is not removed). place: see :func:`paste_crops`. Every check runs on shapes before a pixel is copied.
    """
    crops = getattr(texture, "placements", None)
    if not crops or crops[0].framing is None:
        raise ValueError("the texture was not framed (Encode Source Texture fit 'person'): there is no crop to put "
                         "the person back through; encode the source with fit 'person' and its pose")
    check_choice("place", place, PLACES)
    check_choice("inpainting method", method, METHODS)
    photos, images = image_batch(photos, "photo"), image_batch(images, "generated images")
    paste, keypoints = paste_crops(crops, poses, place)
    n = images.shape[0]
    if n != len(paste):
        raise ValueError(f"generated images holds {n} images for {len(paste)} target poses: connect the sampler's "
                         "output for these poses (an upscale keeps the count)")
    _count("photo", photos.shape[0], len(crops), "source image")
    check_one_photo_for_the_sources(texture, photos.shape[0])
    height, width = photos.shape[1:3]
    for crop in crops:
        crop.for_photo_size(width, height)  # the photo the person was framed in, or a copy of another size
    check_output_size(n, height, width)
    check_canvas_image_size(images.shape[2], images.shape[1], crops[0])
    photo_crops = [crop.for_photo_size(width, height) for crop in paste]
    check_targets_in_photo(keypoints, photo_crops)
    masks = None if old_masks is None else mask_batch(old_masks, width, height, "person mask")
    if masks is not None:
        _count("person mask", masks.shape[0], photos.shape[0], "photo")
    photo_scales, image_scales = pixel_scales(photos, "photo", "image"), pixel_scales(images, "generated images", "image")
    mask_scales = [] if masks is None else pixel_scales(masks, "person mask", "mask", integer_is_255=False)
    if masks is not None:
        check_person_masks(masks, mask_scales)
    source = ((texture.source.detach().float().cpu() + 1) / 2).clamp(0, 1).permute(0, 2, 3, 1).numpy()
    result = _allocate(n, height, width)
    with explain_out_of_memory(f"putting {plural(n, 'frame')} back into a {width}x{height} photo", None,
                               "paste fewer frames per run, or scale the photo down"):
        for group in _groups(paste, photo_crops, crops, photos.shape[0], masks, source):
            _paste_group(result, group, photos, photo_scales, images, image_scales, keypoints, masks, mask_scales,
                         method)
    return result


def _groups(paste: list[Placement], photo_crops: list[Placement], crops: Sequence[Placement], photos: int,
            masks: Optional[np.ndarray], source: np.ndarray) -> list[_Group]:
    """Outputs that share a crop and a photo (a sequence from one source) form one group: one fill."""
    groups, start = [], 0
    while start < len(paste):
        end = start + 1
        while end < len(paste) and paste[end] is paste[start]:
            end += 1
        k = 0 if len(crops) == 1 else start
        mask = None if masks is None else min(k, masks.shape[0] - 1)
        reference_mask = None
        if mask is not None:  # the source person on the canvas the model saw
            reference_mask = crops[k].crop_mask(masks[mask])
        groups.append(_Group(start, end, min(k, photos - 1), mask, photo_crops[start], source[k], reference_mask))
        start = end
    return groups
