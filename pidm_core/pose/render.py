"""The official 20-channel PIDM pose map.

Reproduces the DeepFashion loader of ankanbhunia/PIDM (``data/fashion_data.py``,
``get_label_tensor``): channels 0–2 are the OpenPose skeleton drawn with cv2 on black (joint
circles, then limbs as filled ellipses blended 40/60 into the canvas), stored BGR→RGB swapped as the
official code does; channels 3–19 are, per limb, the L1 distance (cv2, 3×3 mask) to the filled limb
ellipse, divided by 3, clipped to 255, stored as uint8 and scaled to [0, 1]; a limb with a missing
end is 1.0 everywhere.

At 256 pixels of height every number equals the official code's. At other sizes, lengths scale with
``height / 256``: the joint radius and the stick width (rounded, at least 1 pixel) and the distance
divisor (3·height/256), so a pose map at 64×64 looks like a 256×256 map downsampled.

Work is bounded, since sizes come from requests: a pose map is at most MAX_MAP_PIXELS, a skeleton
image at most MAX_SKELETON_PIXELS, and :func:`check_render_budget` estimates a whole Render Pose
request (skeletons and grids of every frame) before anything is allocated. A limb with a joint
beyond ±COORD_LIMIT (near where cv2's int32 coordinates end) is cut, along its own line, to a box one
canvas-size around the canvas, so that the part on the canvas is still drawn: drawing clips. Joints
within the limit are drawn exactly as the official code draws them.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from ..paths import size_text
from .keypoints import COLORS, LIMBS, NUM_JOINTS

REFERENCE_HEIGHT = 256
JOINT_RADIUS = 4
STICK_WIDTH = 4
DISTANCE_DIVISOR = 3.0

MAX_MAP_PIXELS = 2048 * 2048         # a 20-channel float32 map of 2048x2048 is 336 MB
MAX_SKELETON_PIXELS = 8192 * 8192    # a uint8 RGB skeleton of 8192x8192 is 201 MB
COORD_LIMIT = float(1 << 29)         # cv2 draws with int32 coordinates; farther limbs are cut
GRID_COLUMNS = 5                     # the 20 channels are shown as 4 rows of 5 tiles
GRID_TILE_MAX_PX = 128               # grid tiles: a 20-tile preview, not 20 full-size images
RENDER_BUDGET_BYTES = 1 << 30        # 1 GiB for one Render Pose request: its float32 outputs and work


def _scaled(length: float, height: int) -> int:
    return max(1, int(round(length * height / REFERENCE_HEIGHT)))


def _check_size(height: int, width: int, max_pixels: int, what: str) -> None:
    if not (isinstance(height, (int, np.integer)) and isinstance(width, (int, np.integer)) and height >= 1 and width >= 1):
        raise ValueError(f"{what} size must be whole numbers of pixels >= 1, got {width}x{height}")
    if height * width > max_pixels:
        raise ValueError(f"{what} of {width}x{height} pixels is larger than the {max_pixels / 1e6:.1f} megapixels "
                         f"drawn at once; use a smaller size")


def _clip_segment(a: np.ndarray, b: np.ndarray, limit: float) -> tuple[np.ndarray, np.ndarray] | None:
    """The part of segment a-b inside the square [-limit, limit]^2 (Liang-Barsky), or None if it misses it."""
    d = b - a
    t0, t1 = 0.0, 1.0
    for p, q in ((-d[0], a[0] + limit), (d[0], limit - a[0]), (-d[1], a[1] + limit), (d[1], limit - a[1])):
        if p == 0:
            if q < 0:
                return None
        elif p < 0:
            t0 = max(t0, q / p)
        else:
            t1 = min(t1, q / p)
    if t0 > t1:
        return None
    return a + t0 * d, a + t1 * d


def _limb_polygon(keypoints: np.ndarray, a: int, b: int, stick: int, height: int, width: int) -> np.ndarray | None:
    """The official filled-ellipse polygon of limb a-b; None when it has a joint beyond COORD_LIMIT
    and misses the box one canvas-size around the canvas."""
    (xa, ya), (xb, yb) = keypoints[a, :2], keypoints[b, :2]
    if max(abs(xa), abs(ya), abs(xb), abs(yb)) > COORD_LIMIT:  # only far joints: the official path stays exact
        # Cut to a box near the canvas, not at the limit: the official int(angle) turns a limb by up to
        # 1 degree, which would swing a limb millions of pixels long right off the canvas.
        pad = max(height, width)
        centre = np.array([width / 2, height / 2])
        clipped = _clip_segment(np.array([xa, ya]) - centre, np.array([xb, yb]) - centre, centre.max() + pad)
        if clipped is None:
            return None
        (xa, ya), (xb, yb) = clipped[0] + centre, clipped[1] + centre
    length = math.hypot(xa - xb, ya - yb)
    angle = math.degrees(math.atan2(ya - yb, xa - xb))
    return cv2.ellipse2Poly((int((xa + xb) / 2), int((ya + yb) / 2)), (int(length / 2), stick), int(angle), 0, 360, 1)


def _present_finite(keypoints: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    keypoints = np.asarray(keypoints, dtype=np.float64)
    if keypoints.shape != (NUM_JOINTS, 3):
        raise ValueError(f"keypoints must have shape (18, 3) (x, y, confidence), got {keypoints.shape}")
    present = keypoints[:, 2] > 0
    if not np.isfinite(keypoints[present, :2]).all():
        raise ValueError("keypoints contain NaN or infinite coordinates for present joints")
    return keypoints, present


def _draw_skeleton(keypoints: np.ndarray, present: np.ndarray, height: int, width: int) -> tuple[np.ndarray, list]:
    """uint8 RGB canvas [H, W, 3] of the official skeleton, and each limb's polygon (None: not drawn)."""
    radius = _scaled(JOINT_RADIUS, height)
    stick = _scaled(STICK_WIDTH, height)
    canvas = np.zeros((height, width, 3), dtype=np.uint8)
    for i in range(NUM_JOINTS):
        x, y = keypoints[i, :2]
        # a circle whose centre is more than its radius off the canvas draws nothing: skipped
        if present[i] and -radius - 1 <= x <= width + radius and -radius - 1 <= y <= height + radius:
            cv2.circle(canvas, (int(x), int(y)), radius, COLORS[i], thickness=-1)
    polygons = []
    for i, (a, b) in enumerate(LIMBS):
        polygon = _limb_polygon(keypoints, a, b, stick, height, width) if present[a] and present[b] else None
        polygons.append(polygon)
        if polygon is None:
            continue
        # The official code blends a whole-canvas copy; outside the polygon 0.4·v + 0.6·v == v, so
        # blending only the polygon's bounding box gives the same pixels without copying the canvas.
        x0, y0 = np.maximum(polygon.min(axis=0), 0)
        x1, y1 = np.minimum(polygon.max(axis=0) + 1, (width, height))
        if x0 >= x1 or y0 >= y1:
            continue
        region = canvas[y0:y1, x0:x1]
        limb_region = region.copy()
        cv2.fillConvexPoly(limb_region, polygon - np.int32([x0, y0]), COLORS[i])
        region[:] = cv2.addWeighted(region, 0.4, limb_region, 0.6, 0)
    return canvas, polygons


def render_pose_map(keypoints: np.ndarray, height: int, width: int) -> np.ndarray:
    """Pose map ``[20, height, width]`` float32 in [0, 1] from keypoints ``[18, 3]`` (x_px, y_px, conf).

    Joints with confidence <= 0 are missing. Coordinates are truncated to integers as the official
    code does; joints outside the canvas are drawn clipped by cv2. At most MAX_MAP_PIXELS.
    """
    _check_size(height, width, MAX_MAP_PIXELS, "pose map")
    keypoints, present = _present_finite(keypoints)
    divisor = DISTANCE_DIVISOR * height / REFERENCE_HEIGHT
    canvas, polygons = _draw_skeleton(keypoints, present, height, width)

    distance_maps = np.ones((len(LIMBS), height, width), dtype=np.float32)
    for i, polygon in enumerate(polygons):
        if polygon is None:
            continue
        limb_mask = np.zeros((height, width), dtype=np.uint8)
        cv2.fillConvexPoly(limb_mask, polygon, 255)
        distance = cv2.distanceTransform(255 - limb_mask, cv2.DIST_L1, 3)
        # cv2 returns FLT_MAX where the limb lies off the canvas; clip before dividing to stay finite.
        distance_maps[i] = (np.minimum(distance, 255 * divisor) / divisor).astype(np.uint8) / np.float32(255.0)

    # The official loader draws RGB colours into a canvas it then converts BGR→RGB.
    skeleton = canvas[:, :, ::-1].transpose(2, 0, 1).astype(np.float32) / 255.0
    return np.concatenate([skeleton, distance_maps], axis=0)


def render_skeleton_image(keypoints: np.ndarray, height: int, width: int) -> np.ndarray:
    """RGB uint8 image ``[H, W, 3]`` of the skeleton in the usual OpenPose colours (for previews):
    channels 0-2 of the pose map swapped back, drawn without the distance maps. At most
    MAX_SKELETON_PIXELS."""
    _check_size(height, width, MAX_SKELETON_PIXELS, "skeleton image")
    keypoints, present = _present_finite(keypoints)
    return _draw_skeleton(keypoints, present, height, width)[0]


def grid_tile_size(height: int, width: int) -> tuple[int, int]:
    """(tile_height, tile_width) of the pose-map grid: the canvas, scaled down (aspect kept) so that
    its longer side is at most GRID_TILE_MAX_PX."""
    scale = min(1.0, GRID_TILE_MAX_PX / max(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


def pose_map_grid_size(height: int, width: int) -> tuple[int, int]:
    """(height, width) of :func:`pose_map_grid`'s image for a ``width × height`` canvas."""
    tile_h, tile_w = grid_tile_size(height, width)
    return (20 // GRID_COLUMNS) * tile_h, GRID_COLUMNS * tile_w


def pose_map_grid(keypoints: np.ndarray, height: int, width: int) -> np.ndarray:
    """The 20 channels of the pose map of ``keypoints`` (pixels of a ``width × height`` canvas) as a
    uint8 grey grid ``[4·th, 5·tw]``, 4 rows of 5 tiles of :func:`grid_tile_size`; the map is drawn
    at the tile size, as PIDM would see it at that resolution."""
    tile_h, tile_w = grid_tile_size(height, width)
    keypoints = np.array(keypoints, dtype=np.float64)
    keypoints[:, :2] *= (tile_w / width, tile_h / height)
    channels = (render_pose_map(keypoints, tile_h, tile_w) * 255.0 + 0.5).astype(np.uint8)
    return channels.reshape(-1, GRID_COLUMNS, tile_h, tile_w).transpose(0, 2, 1, 3).reshape(-1, GRID_COLUMNS * tile_w)


def render_request_bytes(frames: int, height: int, width: int) -> int:
    """Estimated peak bytes of drawing ``frames`` skeletons of ``width × height`` and their pose-map
    grids as float32 RGB images: the outputs held for every frame, plus one frame's work (the uint8
    canvas and its blend copies, the 20-channel map at tile size and its distance transform)."""
    tile_h, tile_w = grid_tile_size(height, width)
    canvas_px, tile_px = height * width, tile_h * tile_w
    outputs = frames * (canvas_px * 3 + 20 * tile_px * 3) * 4
    work = canvas_px * 3 * 3 + tile_px * (20 * 4 * 2 + 8)
    return outputs + work


def check_render_budget(frames: int, height: int, width: int, what: str = "Render Pose") -> None:
    """ValueError, before anything is drawn, when a request would need more than RENDER_BUDGET_BYTES."""
    needed = render_request_bytes(frames, height, width)
    if needed > RENDER_BUDGET_BYTES:
        raise ValueError(
            f"{what}: {frames} frame{'s' if frames != 1 else ''} at {width}x{height} would need about "
            f"{size_text(needed)} of memory (skeleton images and pose-map grids as float32); one request may use "
            f"{size_text(RENDER_BUDGET_BYTES)}: lower width/height (0 = the pose's own canvas) or render fewer frames"
        )
