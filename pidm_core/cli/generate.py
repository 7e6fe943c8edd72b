"""Command line: draw the person of a source photo in a target pose, without ComfyUI.

    python -m pidm_core.generate --source person.png --pose pose.json --out out.png
    python -m pidm_core.generate --model last.pt --source person.jpg --pose other_photo.jpg --retarget --out out.png

``--pose`` takes a pose file (.json POSE_KEYPOINT/OpenPose, .txt official keypoints, .npy, .csv) or
a photo, from which the pose is detected. A file with several poses gives one image per pose
(``out.png`` → ``out_0000.png``, ``out_0001.png``, ...).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..checkpoint import load_model
from ..metrics import read_image
from ..pipeline import generate
from ..pose import detect_poses, load_pose_file, retarget_pose
from ..samplers import add_settings_arguments, settings_from_args

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp"}


def write_images(images: torch.Tensor, out: Path) -> list[Path]:
    arrays = (images.clamp(0, 1) * 255).round().byte().cpu().numpy()
    if len(arrays) == 1:
        paths = [out]
    else:
        paths = [out.with_name(f"{out.stem}_{i:04d}{out.suffix}") for i in range(len(arrays))]
    out.parent.mkdir(parents=True, exist_ok=True)
    for array, path in zip(arrays, paths):
        Image.fromarray(array).save(path)
    return paths


def main(argv=None) -> list[Path]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--model", default="embedded", help="'embedded', our .safetensors, or the official last.pt")
    parser.add_argument("--source", required=True, help="photo of the person")
    parser.add_argument("--pose", required=True, help="pose file or a photo to take the pose from")
    parser.add_argument("--out", required=True, help="output PNG")
    add_settings_arguments(parser, skip=("denoise",))  # no init image here
    parser.add_argument("--backend", default="auto", choices=["auto", "openpose", "mediapipe"], help="pose detector for photos")
    parser.add_argument("--retarget", action="store_true", help="fit the target pose to the source person's proportions")
    parser.add_argument("--device", default=None, help="torch device, e.g. cpu, cuda, mps (default: cpu)")
    args = parser.parse_args(argv)

    model = load_model(args.model, device=args.device)
    source = read_image(args.source)
    if Path(args.pose).suffix.lower() in IMAGE_SUFFIXES:
        poses = detect_poses([np.asarray(Image.open(args.pose).convert("RGB"))], backend=args.backend)
    else:
        poses = load_pose_file(args.pose)
    if args.retarget:
        src_np = (source[0].numpy() * 255).astype(np.uint8)
        source_pose = detect_poses([src_np], backend=args.backend)[0]
        poses = [retarget_pose(p, source_pose) for p in poses]
    images = generate(model, source, poses, settings_from_args(args))
    paths = write_images(images, Path(args.out))
    for path in paths:
        print(path)
    return paths


if __name__ == "__main__":
    main()
