"""What the numbers of an IMAGE or MASK mean: ComfyUI's floats in [0, 1], or 0-255 pixel values.

ComfyUI's IMAGE and MASK hold floats in [0, 1]. A node that passes 0-255 values instead would give an almost
white photo, so such input is read as 0-255 and divided by 255 (with a logged warning). Which of the two an
image holds is decided by the whole image, never by one value: an image is 0-255 when it is an integer IMAGE,
or when most of its non-black values lie above 1.5. A [0, 1] image with a few stray values above 1.5 is
neither, and an error: dividing it by 255 would change every pixel, and clipping the strays would hide a
broken node. Values a little outside [0, 1] (up to 1.5, and below 0: an HDR or overshooting image) keep the
[0, 1] reading. Works on numpy arrays and torch tensors alike, without a full-size temporary.
"""

from __future__ import annotations

import logging
import math

LOG = logging.getLogger(__name__)

ZERO_TO_255_ABOVE = 1.5  # values above this are no [0, 1] pixel (an overshoot is at most this)
ZERO_TO_255_SHARE = 0.5  # 0-255 when at least this share of the non-black values is above ZERO_TO_255_ABOVE
DARK = 0.01  # values at or below this are black in either reading and say nothing about the scale
LARGEST_255 = 256  # a 0-255 image (after resampling, a little above 255) holds nothing larger
BLOCK_VALUES = 1 << 22  # values compared at once: bounds the temporary of a count over a large photo


def _count_above(values, threshold: float) -> int:
    """How many of ``values`` (an array or tensor, any shape) exceed ``threshold``, a block of rows at a time."""
    if values.ndim == 0:
        return int(values > threshold)
    row = max(1, math.prod(values.shape[1:]))
    step = max(1, BLOCK_VALUES // row)
    return sum(int((values[start:start + step] > threshold).sum()) for start in range(0, values.shape[0], step))


def pixel_scale(values, name: str, item: str = "image", integer: bool = False, integer_is_255: bool = True) -> int:
    """255 when one image's ``values`` hold 0-255 pixel values, 1 when they hold [0, 1] floats (module doc).

    ``integer``: the values' dtype is an integer one (an integer IMAGE is 0-255 whatever it holds when
    ``integer_is_255``; an integer MASK of 0 and 1 is a mask). ``values`` must be finite (checked before).
    ValueError naming ``name`` for a [0, 1] image with stray values above 1.5, or for values above 255.
    """
    high = float(values.max())
    if integer and integer_is_255:
        scale = 255
    elif high <= ZERO_TO_255_ABOVE:
        return 1
    else:
        bright, lit = _count_above(values, ZERO_TO_255_ABOVE), _count_above(values, DARK)
        if bright < ZERO_TO_255_SHARE * lit:
            raise ValueError(f"{name} is neither ComfyUI's floats in [0, 1] nor 0-255 values: {bright} of its {lit} "
                             f"non-black values are above 1.5 (up to {high:.6g}), the rest in [0, 1]; an {item} is read "
                             "as 0-255 only when most of them are: fix or replace the node that made it")
        scale = 255
    if high > LARGEST_255:
        raise ValueError(f"{name} has values up to {high:.6g}; expected floats in [0, 1] (0-255 is read too): "
                         f"scale the {item} to [0, 1]")
    return scale


def warn_0_255(name: str, dtype: str, high: float) -> None:
    LOG.warning("%s holds 0-255 values (%s, largest %g), not ComfyUI's floats in [0, 1]: divided by 255",
                name, dtype, high)


def item_name(name: str, item: str, index: int, count: int) -> str:
    """``name`` with the batch item it is about: "photo (image 2 of 3)"."""
    return f"{name} ({item} {index + 1} of {count})"
