"""README pictures of framing + Put Back Into Photo, made through the library exactly as the
photo_from_the_wild example workflow runs it (no ComfyUI needed):

    python scripts/make_wild_pictures.py     # writes docs/images/photo_from_the_wild.jpg and wild_photos.jpg

Each row: the photo with the detected person's mask outlined, the framed crop the model sees, the
sampler's output upscaled 4× (Lanczos, as ComfyUI's ImageScaleBy), the result put back into the photo,
and the filled area. Rows: the workflow's own inputs (assets/pidm_scene.png in the pose of
assets/pidm_person2.png), then the two real photos of tests/photos/ (OpenCV sample data, Apache-2.0)
in the arms-raised pose of assets/pidm_pose_arms_raised.json. Poses and masks come from MediaPipe
(Pose From Image's mediapipe backend); every target pose is retargeted onto the photo's person
(Retarget Pose, anchor neck), so the new person stands where the old one stood.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pidm_core import composite, load_model, pipeline  # noqa: E402
from pidm_core.pose import detect  # noqa: E402
from pidm_core.pose.formats import load_pose_file  # noqa: E402
from pidm_core.pose.retarget import retarget_pose  # noqa: E402
from pidm_core.samplers import SamplingSettings  # noqa: E402

CELL_HEIGHT = 200
UPSCALE = 4


def _rgb(path: Path) -> np.ndarray:
    return np.array(Image.open(path).convert("RGB"))


def _lanczos(image: np.ndarray, factor: int) -> np.ndarray:
    pil = Image.fromarray((np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8))
    return np.asarray(pil.resize((pil.width * factor, pil.height * factor), Image.LANCZOS), np.float32) / 255


def put_back(model, photo: np.ndarray, target, settings: SamplingSettings) -> list[np.ndarray]:
    """The workflow's steps for one photo; returns the row's cells (uint8 RGB)."""
    found = detect.detect_people([photo], backend="mediapipe")[0]
    pose, mask = found.pose, found.mask
    retargeted = retarget_pose(target, pose, anchor="neck")
    photo_t = torch.from_numpy(photo).float()[None] / 255
    mask_t = torch.from_numpy(mask)[None]
    texture = pipeline.encode_source(model, photo_t, mask_t, "person", [pose])
    canvas = pipeline.sample(model, texture, [retargeted], settings)[0].numpy()
    upscaled = _lanczos(canvas, UPSCALE)
    result = composite.paste_from_texture(texture, photo, upscaled, [retargeted], mask)

    outlined = photo.copy()
    contours, _ = cv2.findContours((mask >= 0.5).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    cv2.drawContours(outlined, contours, -1, (255, 40, 40), max(1, photo.shape[0] // 150))
    crop = texture.placements[0].crop_image(photo)
    filled = np.repeat(result.filled[0][..., None], 3, axis=2)
    cells = [outlined, crop, upscaled, result.images[0], filled]
    return [c if c.dtype == np.uint8 else (np.clip(c, 0, 1) * 255 + 0.5).astype(np.uint8) for c in cells]


def _row(cells: list[np.ndarray]) -> np.ndarray:
    gap = np.full((CELL_HEIGHT, 6, 3), 255, np.uint8)
    parts = []
    for cell in cells:
        width = max(1, round(cell.shape[1] * CELL_HEIGHT / cell.shape[0]))
        interpolation = cv2.INTER_AREA if cell.shape[0] > CELL_HEIGHT else cv2.INTER_NEAREST
        parts += [cv2.resize(cell, (width, CELL_HEIGHT), interpolation=interpolation), gap]
    return np.concatenate(parts[:-1], axis=1)


def _save(rows: list[np.ndarray], path: Path) -> None:
    width = max(r.shape[1] for r in rows)
    padded = [np.pad(r, ((0, 6), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows]
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(np.concatenate(padded), cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])
    print(path)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--out", default=str(ROOT / "docs" / "images"))
    args = parser.parse_args(argv)
    model = load_model("embedded")
    settings = SamplingSettings(steps=args.steps, sampler="ddpm", seed=0)
    out = Path(args.out)

    second = _rgb(ROOT / "assets" / "pidm_person2.png")
    second_pose = detect.detect_people([second], backend="mediapipe", masks=False)[0].pose
    _save([_row(put_back(model, _rgb(ROOT / "assets" / "pidm_scene.png"), second_pose, settings))],
          out / "photo_from_the_wild.jpg")

    raised = load_pose_file(ROOT / "assets" / "pidm_pose_arms_raised.json")[0]
    rows = [_row(put_back(model, _rgb(ROOT / "tests" / "photos" / name), raised, settings))
            for name in ("messi5.jpg", "basketball1.png")]
    _save(rows, out / "wild_photos.jpg")


if __name__ == "__main__":
    main()
