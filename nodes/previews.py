"""What nodes show in the web UI: pose previews, preview images, and the sampler's per-step previews.

A node returns these as ``io.NodeOutput(..., ui=...)``; the server sends the dict to the browser in
its ``executed`` message (and keeps it in /history), where ``js/pose_preview.js`` draws the pose
over its thumbnail. Every value is a list, as ComfyUI concatenates ui lists over batched calls.
Images are written to ComfyUI's temp folder and referenced like PreviewImage does
(``{"filename", "subfolder", "type": "temp"}``); the server empties that folder when it starts.
"""

from __future__ import annotations

import os
import secrets

import folder_paths
import numpy as np
from PIL import Image

from ..pidm_core.pose.edit import jsonable, preview_frames

PREVIEW_FRAMES = 32      # poses (and thumbnails) sent per node: enough to scrub a short sequence
THUMBNAIL_MAX_PX = 384   # longest side of a pose thumbnail


def _uint8(image) -> np.ndarray:
    """IMAGE entry [H, W, C] float in [0, 1] (tensor or array) -> uint8 RGB [H, W, 3]."""
    array = image.detach().cpu().float().numpy() if hasattr(image, "detach") else np.asarray(image, np.float32)
    array = np.clip(array * 255.0 + 0.5, 0, 255).astype(np.uint8)
    if array.shape[-1] == 1:
        array = np.repeat(array, 3, axis=-1)
    return array[..., :3]


def save_temp_images(images, prefix: str, max_px: int | None = None, fmt: str = "PNG") -> list[dict]:
    """Write IMAGE entries to the temp folder; returns their /view references.

    ``max_px``: downscale so the longest side is at most this many pixels (None = full size).
    """
    folder = folder_paths.get_temp_directory()
    os.makedirs(folder, exist_ok=True)
    stem = f"{prefix}_{secrets.token_hex(4)}"
    suffix = ".jpg" if fmt == "JPEG" else ".png"
    references = []
    for index, image in enumerate(images):
        picture = Image.fromarray(_uint8(image))
        if max_px is not None and max(picture.size) > max_px:
            picture.thumbnail((max_px, max_px), Image.Resampling.LANCZOS)
        filename = f"{stem}_{index:05d}{suffix}"
        if fmt == "JPEG":
            picture.save(os.path.join(folder, filename), quality=88)
        else:
            picture.save(os.path.join(folder, filename), compress_level=1)
        references.append({"filename": filename, "subfolder": "", "type": "temp"})
    return references


def step_preview(x0, index: int = 0) -> Image.Image:
    """PIL image of one item of a model-canvas batch [B, 3, S, S] in [-1, 1] (the per-step preview)."""
    array = ((x0[index].float().clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(array)


def preview_images_ui(images) -> dict:
    """ui that makes the web UI show ``images`` (IMAGE [B, H, W, C]) on the node, like PreviewImage."""
    return jsonable({"images": save_temp_images(images, "PIDM_preview")})


def pose_ui(pose_keypoint: list, images=None) -> dict:
    """ui for the pose preview: the first frames of a POSE_KEYPOINT, and thumbnails of the images
    they came from (one per frame, optional). Strict JSON only (no NaN or infinity): the server keeps
    every ui in /history, and one NaN there breaks it for every browser."""
    frames = pose_keypoint if isinstance(pose_keypoint, (list, tuple)) else [pose_keypoint]
    ui = {"pidm_pose": preview_frames(frames, PREVIEW_FRAMES), "pidm_frame_count": [len(frames)]}
    if images is not None:
        ui["pidm_thumbnails"] = save_temp_images(list(images)[:PREVIEW_FRAMES], "PIDM_pose", THUMBNAIL_MAX_PX, "JPEG")
    return jsonable(ui)
