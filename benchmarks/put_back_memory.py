"""Peak memory of Put Back Into Photo (pidm_core.composite.paste_from_texture) against the photo's size.

One process per case: a synthetic scene (pidm_core.data.synthetic.scene) framed at its own size, then pasted
into a copy of its photo enlarged to ``--width`` (float32, with a full-size person mask), ``--frames`` frames.
Prints the peak of every numpy allocation (tracemalloc) and the peak RSS rise, each as a multiple of the
float32 photo (H × W × 3 × 4 bytes), and the output's own multiple (5 float32 values a pixel a frame).

    python -m benchmarks.put_back_memory --width 4000 --frames 1 3
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tracemalloc
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _status_bytes(key: str) -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(key):
                return int(line.split()[1]) * 1024
    return 0


def measure(width: int, frames: int) -> dict:
    """One case in this process: the multiples of the float32 photo."""
    import cv2
    import numpy as np
    import torch

    from pidm_core import composite
    from pidm_core.data.synthetic.scene import SCENE_SEED_OFFSET, make_scene
    from pidm_core.framing import frame_person, frame_targets, synthetic_framing
    from pidm_core.pose.keypoints import Pose

    scene = make_scene(SCENE_SEED_OFFSET + 2, 192)
    w, h = scene.width, scene.height
    crop = frame_person(Pose(scene.source_keypoints, w, h), scene.source_mask, w, h, synthetic_framing(64))
    [_], target_crop = frame_targets([Pose(scene.target_keypoints, w, h)], crop)
    canvas = torch.from_numpy(crop.crop_image(scene.source_image)).permute(2, 0, 1)[None] * 2 - 1
    texture = types.SimpleNamespace(placements=(crop,), source=canvas)  # what Encode Source Texture holds, model aside
    images = np.stack([target_crop.crop_image(scene.target_image)] * frames)
    poses = [Pose(scene.target_keypoints, w, h)] * frames
    height = round(width * h / w)
    photo = torch.from_numpy(cv2.resize(scene.source_image, (width, height), interpolation=cv2.INTER_LINEAR)).float() / 255
    mask = torch.from_numpy(cv2.resize(scene.source_mask, (width, height), interpolation=cv2.INTER_LINEAR))
    composite.paste_from_texture(texture, scene.source_image, images, poses, scene.source_mask)  # warm up
    photo_bytes = photo.numel() * 4
    before = _status_bytes("VmRSS:")
    tracemalloc.start()
    result = composite.paste_from_texture(texture, photo[None], images, poses, mask[None])
    traced = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    output = sum(array.nbytes for array in (result.images, result.filled, result.person))
    return {"width": width, "height": height, "frames": frames, "photo_mib": round(photo_bytes / 2**20, 1),
            "traced_peak_x": round(traced / photo_bytes, 2), "rss_rise_x": round((_status_bytes("VmHWM:") - before) / photo_bytes, 2),
            "output_x": round(output / photo_bytes, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, nargs="+", default=[4000])
    parser.add_argument("--frames", type=int, nargs="+", default=[1, 3])
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)  # a child process: one case
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.width[0], args.frames[0])))
        return
    print(f"command: python -m benchmarks.put_back_memory {' '.join(sys.argv[1:])}")
    print("| photo | frames | photo MiB | traced peak × photo | RSS rise × photo | output × photo |")
    print("|---|---|---|---|---|---|")
    for width in args.width:
        for frames in args.frames:
            done = subprocess.run([sys.executable, "-m", "benchmarks.put_back_memory", "--one", "--width", str(width),
                                   "--frames", str(frames)], capture_output=True, text=True, cwd=ROOT)
            if done.returncode:  # refused (the output limit, the free memory): the error's last line
                print(f"| {width} wide | {frames} | refused: {done.stderr.strip().splitlines()[-1]} | | | |")
                continue
            row = json.loads(done.stdout.strip().splitlines()[-1])
            print(f"| {row['width']}x{row['height']} | {frames} | {row['photo_mib']} | {row['traced_peak_x']} | "
                  f"{row['rss_rise_x']} | {row['output_x']} |")


if __name__ == "__main__":
    main()
