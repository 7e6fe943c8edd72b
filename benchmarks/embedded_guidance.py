"""Does guidance do what it says on the embedded model? Held-out synthetic people, measured.

1. Appearance scale, for several scales: mean absolute colour error (0..255) between output and the
   true rendering inside the true person's silhouette (pixel by pixel: shape errors count too), and
   the clothing colour error: output against truth in small patches at the torso and thighs of the
   target pose (:func:`clothing_colour_error`).
   Lower = the clothes match the source better.
2. Arms raised: each held-out identity is rendered with an "arms_raised" target pose; we count
   how much of the true raised-arm region (person pixels above the shoulders, outside the head box)
   the output fills with non-background pixels, against the copy-the-source baseline.

    python benchmarks/embedded_guidance.py --count 16 --steps 25
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pidm_core import load_model  # noqa: E402
from pidm_core.data import synthetic, to_image_tensor  # noqa: E402
from pidm_core.pipeline import generate_from_tensors  # noqa: E402
from pidm_core.pose.render import render_pose_map  # noqa: E402
from pidm_core.samplers import OFFICIAL_RUN, SamplingSettings  # noqa: E402


def _background(image: np.ndarray) -> np.ndarray:
    corners = np.concatenate([image[:3, :3].reshape(-1, 3), image[:3, -3:].reshape(-1, 3)])
    return np.median(corners, axis=0)


def person_mask(image: np.ndarray, background: np.ndarray, threshold: float = 30.0) -> np.ndarray:
    return np.abs(image.astype(np.float32) - background).sum(-1) > threshold


# Where clothes are, as pairs of COCO-18 joints whose midpoint is sampled: the torso (neck to each
# hip) and the thighs (hip to knee).
CLOTHING_POINTS = ((1, 8), (1, 11), (8, 9), (11, 12))


def clothing_colour_error(output: np.ndarray, truth: np.ndarray, keypoints: np.ndarray, radius: int = 1) -> float:
    """Mean absolute RGB difference (0-255) between output and truth in small patches at the torso and
    thighs of the target pose: the clothes' colours, little affected by how exactly the drawn figure's
    outline matches the true one. NaN when none of those joints is visible."""
    h, w = truth.shape[:2]
    errors = []
    for a, b in CLOTHING_POINTS:
        if keypoints[a, 2] <= 0 or keypoints[b, 2] <= 0:
            continue
        x, y = np.round((keypoints[a, :2] + keypoints[b, :2]) / 2).astype(int)
        if not (radius <= x < w - radius and radius <= y < h - radius):
            continue
        box = np.s_[y - radius:y + radius + 1, x - radius:x + radius + 1]
        errors.append(np.abs(output[box].astype(np.float32).mean((0, 1)) - truth[box].astype(np.float32).mean((0, 1))).mean())
    return float(np.mean(errors)) if errors else float("nan")


def _to_uint8(x: torch.Tensor) -> np.ndarray:
    return ((x.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()


def _arms_raised_coverage(model, pairs, source: torch.Tensor, args) -> tuple[float, float, int]:
    """The same identities with their arms raised: how much of the region above the shoulders (head left
    out) the figure covers in the model's output and in a copy of the source; prints both."""
    size = model.config.image_size
    raised_images, raised_maps, regions = [], [], []
    for i, p in enumerate(pairs):
        rng = np.random.default_rng(12345 + i)
        fig = synthetic.sample_pose(rng, p.identity, size, size, kind="arms_raised")
        img = synthetic.render_person(p.identity, fig)
        kp = fig.keypoints
        shoulders_y = min(kp[2, 1], kp[5, 1]) if kp[2, 2] > 0 and kp[5, 2] > 0 else kp[1, 1]
        mask = person_mask(img, _background(img))
        region = np.zeros_like(mask)
        region[: max(0, int(shoulders_y) - 1)] = True
        head = kp[[0, 14, 15, 16, 17]]
        head = head[head[:, 2] > 0]
        if len(head):  # leave the head out: only the arms rise above the shoulders elsewhere
            x0, x1 = head[:, 0].min() - size * 0.08, head[:, 0].max() + size * 0.08
            region[:, max(0, int(x0)):int(x1) + 1] = False
        regions.append(region & mask)
        raised_images.append(img)
        raised_maps.append(torch.from_numpy(render_pose_map(kp, size, size)))
    settings = SamplingSettings(**OFFICIAL_RUN, steps=args.steps, sampler=args.sampler, appearance_scale=2.0, seed=0)
    out = _to_uint8(generate_from_tensors(model.network, source, torch.stack(raised_maps), settings))

    def coverage(images):
        vals = []
        for img, region in zip(images, regions):
            if region.sum() == 0:
                continue
            fg = person_mask(img, _background(img))  # each image against its own background
            vals.append(float(fg[region].mean()))
        return float(np.mean(vals)), len(vals)

    ours, n = coverage(out)
    copy, _ = coverage([p.source_image for p in pairs])
    print(f"\n| raised-arm region covered by the figure ({n} people) | fraction |\n|---|---|")
    print(f"| output of the embedded model | {ours:.2f} |\n| copy of the source (baseline) | {copy:.2f} |")
    return ours, copy, n


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="embedded")
    parser.add_argument("--count", type=int, default=16)
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--sampler", default="ddim")
    parser.add_argument("--scales", default="0,1,2,3")
    parser.add_argument("--json", default="")
    args = parser.parse_args(argv)
    model = load_model(args.model)
    size = model.config.image_size
    pairs = [synthetic.make_pair(synthetic.HELD_OUT_SEED_OFFSET + i, size) for i in range(args.count)]
    source = torch.stack([to_image_tensor(p.source_image) for p in pairs])
    pose = torch.stack([torch.from_numpy(render_pose_map(p.target_keypoints, size, size)) for p in pairs])
    truth = np.stack([p.target_image for p in pairs])
    masks = [person_mask(t, _background(t)) for t in truth]
    print(f"# embedded guidance check: {args.count} held-out pairs, {args.sampler} {args.steps} steps, "
          f"{time.strftime('%Y-%m-%d')}\n")
    print("| appearance scale | colour error in the person, per pixel | clothing colour error (torso, thighs) |\n|---|---|---|")
    colour, clothing = {}, {}
    for scale in [float(s) for s in args.scales.split(",")]:
        settings = SamplingSettings(**OFFICIAL_RUN, steps=args.steps, sampler=args.sampler, appearance_scale=scale, seed=0)
        out = _to_uint8(generate_from_tensors(model.network, source, pose, settings))
        err = np.mean([np.abs(o.astype(np.float32) - t)[m].mean() for o, t, m in zip(out, truth, masks)])
        colour[scale] = float(err)
        clothing[scale] = float(np.nanmean([clothing_colour_error(o, t, p.target_keypoints) for o, t, p in zip(out, truth, pairs)]))
        print(f"| {scale:g} | {err:.1f} | {clothing[scale]:.1f} |")

    ours, copy, n = _arms_raised_coverage(model, pairs, source, args)
    result = {"appearance_colour_error": colour, "appearance_clothing_colour_error": clothing, "arms_raised_coverage": {"model": ours, "copy_source": copy, "count": n}}
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
