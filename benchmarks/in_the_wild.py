"""People small in larger photos: today's pad and stretch against framing + back into the photo.

Held-out synthetic scenes (:mod:`pidm_core.data.synthetic.scene`): the generator's people at 25–60 %
of the scene height, anywhere in scenes of several aspect ratios with busy backgrounds; source and
target pose in the same scene, the true target scene rendered too. For each scene and method the
model redraws the source person in the target pose, and we score the result against the true target
scene with SSIM and PSNR (pidm_core.metrics' protocol) (a) inside the true target person's box and
(b) on the whole scene. Methods:

* ``pad`` / ``stretch``: today's fit of the whole photo onto the model canvas, output restored to
  the photo's size (pidm_core.placement);
* ``framed``: the source person framed like the model's training data (pidm_core.framing, from the
  scene's keypoints and person mask), the target pose framed with the source's scale, the output
  pasted back into the photo at the target's place with the old person's area inpainted
  (pidm_core.composite).
* ``paste ceiling`` (a reference, not a method): what a perfect model would draw on the canvas (the
  backdrop as the source canvas shows it, the true target person where the target crop puts them),
  pasted by the same code: the most framing + pasting can give at this canvas size.

Poses and masks are the scenes' own (no detector): this measures framing and pasting, not
detection. Every method samples with the same settings and seed.

    python benchmarks/in_the_wild.py --count 32 --steps 25 --json docs/results/in_the_wild.json \
        --grid docs/images/in_the_wild.jpg --cache in_the_wild_samples.npz
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import command_line, device_description, resolve_device, set_threads  # noqa: E402
from pidm_core import composite, load_model, pipeline  # noqa: E402
from pidm_core.data.synthetic.scene import SCENE_SEED_OFFSET, Scene, make_scene  # noqa: E402
from pidm_core.framing import framing_for  # noqa: E402
from pidm_core.metrics import psnr_score, ssim_score  # noqa: E402
from pidm_core.pose.keypoints import Pose  # noqa: E402
from pidm_core.pose.render import render_skeleton_image  # noqa: E402
from pidm_core.samplers import OFFICIAL_RUN, SamplingSettings  # noqa: E402

METHODS = ("pad", "stretch", "framed")


def _uint8(images: np.ndarray) -> np.ndarray:
    return (np.clip(images, 0, 1) * 255 + 0.5).astype(np.uint8)


def _groups(scenes: list[Scene]) -> dict[tuple[int, int], list[int]]:
    """Scene indices by photo size: the pipeline encodes a batch of photos of one size at once."""
    groups: dict[tuple[int, int], list[int]] = {}
    for index, scene in enumerate(scenes):
        groups.setdefault((scene.height, scene.width), []).append(index)
    return groups


def generate(model, scenes: list[Scene], method: str, settings: SamplingSettings, mask_source: bool,
             cached: dict | None = None) -> list[dict]:
    """The library's own path (pidm_core.pipeline), as the nodes run it. pad/stretch: the output in the photo's
    size. framed (fit "person"): the model canvas, the source canvas the model saw, and the source and target
    crops, for :func:`paste`. ``mask_source``: the person mask goes to the encoder too (crop measured with it,
    backdrop blanked), as when Pose From Image's MASK is connected to Encode Source Texture. ``cached``: sampled
    images by group, filled in (and reused when present) so that a rerun of the pasting needs no sampling."""
    outputs: list = [None] * len(scenes)
    for indices in _groups(scenes).values():
        photos = torch.from_numpy(np.stack([scenes[i].source_image for i in indices])).float() / 255
        targets = [Pose(scenes[i].target_keypoints, scenes[i].width, scenes[i].height) for i in indices]
        if method == "framed":
            sources = [Pose(scenes[i].source_keypoints, scenes[i].width, scenes[i].height) for i in indices]
            masks = torch.from_numpy(np.stack([scenes[i].source_mask for i in indices])) if mask_source else None
            texture = pipeline.encode_source(model, photos, masks, "person", sources)
        else:
            texture = pipeline.encode_source(model, photos, None, method)
        key = f"{method}_{indices[0]}"
        if cached is not None and key in cached:
            images = cached[key]
        else:
            images = pipeline.sample(model, texture, targets, settings).numpy()
            if cached is not None:
                cached[key] = images
        crops = pipeline.target_placements(texture, targets) if method == "framed" else [None] * len(indices)
        source_canvases = ((texture.source.float().cpu() + 1) / 2).permute(0, 2, 3, 1).numpy()
        for k, i in enumerate(indices):
            outputs[i] = {"image": images[k], "target_crop": crops[k], "source_canvas": source_canvases[k],
                          "source_crop": texture.placements[k] if texture.framing else None}
    return outputs


def paste(scene: Scene, canvas_image: np.ndarray, source_crop, target_crop, source_canvas: np.ndarray) -> np.ndarray:
    """A framed output put back into the scene photo (pidm_core.composite), as Put Back Into Photo does."""
    target = target_crop.pose_to_canvas(Pose(scene.target_keypoints, scene.width, scene.height))
    result = composite.paste_into_photo(scene.source_image, canvas_image, target_crop, target.keypoints,
                                        old_masks=scene.source_mask, reference=source_canvas,
                                        reference_mask=source_crop.crop_mask(scene.source_mask))
    return _uint8(result.images[0])


def ideal_canvas(scene: Scene, source_crop, target_crop) -> np.ndarray:
    """What a perfect model would draw on the canvas: the backdrop as the source canvas shows it (here the
    true one behind the old person) with the true target person where the target crop puts them."""
    alpha = target_crop.crop_mask(scene.target_mask)[..., None]
    return source_crop.crop_image(scene.background) * (1 - alpha) + target_crop.crop_image(scene.target_image) * alpha


def scores(output: np.ndarray, scene: Scene) -> dict:
    x0, y0, x1, y1 = scene.target_box
    truth = scene.target_image
    return {"box_ssim": ssim_score(output[y0:y1, x0:x1], truth[y0:y1, x0:x1]),
            "box_psnr": psnr_score(output[y0:y1, x0:x1], truth[y0:y1, x0:x1]),
            "scene_ssim": ssim_score(output, truth), "scene_psnr": psnr_score(output, truth)}


def summary(rows: list[dict]) -> dict:
    return {key: {"mean": float(np.mean([r[key] for r in rows])), "std": float(np.std([r[key] for r in rows]))}
            for key in rows[0]}


def _cell(image: np.ndarray, height: int) -> np.ndarray:
    width = max(1, int(round(image.shape[1] * height / image.shape[0])))
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)


def picture(scenes: list[Scene], outputs: dict, path: Path, rows: int = 6, height: int = 150) -> None:
    """Grid: scene (source photo), target pose over the dimmed scene, pad, framed result, truth."""
    lines = []
    for index, scene in enumerate(scenes[:rows]):
        skeleton = render_skeleton_image(scene.target_keypoints, scene.height, scene.width)
        drawn = skeleton.any(-1, keepdims=True)
        pose_view = np.where(drawn, skeleton, (scene.source_image * 0.45).astype(np.uint8))
        cells = [scene.source_image, pose_view, outputs["pad"][index], outputs["framed"][index], scene.target_image]
        gap = np.full((height, 4, 3), 255, np.uint8)
        line = np.concatenate([part for cell in cells for part in (_cell(cell, height), gap)][:-1], axis=1)
        lines.append(line)
    width = max(line.shape[1] for line in lines)
    grid = [np.pad(line, ((0, 4), (0, width - line.shape[1]), (0, 0)), constant_values=255) for line in lines]
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(np.concatenate(grid), cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="embedded")
    parser.add_argument("--count", type=int, default=32)
    parser.add_argument("--height", type=int, default=256, help="scene height in pixels")
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--sampler", default="ddpm")
    parser.add_argument("--seed-offset", type=int, default=SCENE_SEED_OFFSET)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--no-source-mask", dest="mask_source", action="store_false",
                        help="frame without the person mask: crop from the joints alone, the photo's backdrop kept on "
                             "the canvas (default: the mask goes to the encoder, as in the example workflow)")
    parser.add_argument("--cache", default="", help="keep the sampled images here (.npz) and reuse them when the "
                                                    "settings match: reruns of the pasting need no sampling")
    parser.add_argument("--json", default="", help="write the results here")
    parser.add_argument("--grid", default="", help="write the picture grid here (.jpg)")
    return parser


def main(argv=None) -> dict:
    args = _parser().parse_args(argv)
    set_threads(args.threads)
    device = resolve_device(args.device)
    started = time.time()
    model = load_model(args.model, device=device)
    settings = SamplingSettings(**OFFICIAL_RUN, steps=args.steps, sampler=args.sampler, seed=0)
    scenes = [make_scene(args.seed_offset + i, args.height) for i in range(args.count)]

    key = json.dumps([args.model, args.count, args.height, args.steps, args.sampler, args.seed_offset, args.mask_source,
                      framing_for(model).to_json()])
    cached = {}
    if args.cache and Path(args.cache).is_file():
        with np.load(args.cache, allow_pickle=False) as stored:
            if str(stored["key"]) == key:
                cached = {name: stored[name] for name in stored.files if name != "key"}
                print(f"reusing {len(cached)} sampled groups from {args.cache}", file=sys.stderr)
    reused = sorted(cached)  # sampled groups read from the cache: "seconds" then times the rest only
    generated, seconds = {}, {}
    for method in METHODS:
        start = time.time()
        generated[method] = generate(model, scenes, method, settings, args.mask_source, cached)
        if args.cache:
            np.savez(args.cache, key=np.array(key), **cached)
        seconds[method] = time.time() - start
        print(f"{method}: {seconds[method]:.1f}s", file=sys.stderr)
    outputs = {method: [_uint8(g["image"]) for g in generated[method]] for method in ("pad", "stretch")}
    outputs["framed"] = [paste(scene, g["image"], g["source_crop"], g["target_crop"], g["source_canvas"])
                         for scene, g in zip(scenes, generated["framed"])]
    ceiling = [paste(scene, ideal_canvas(scene, g["source_crop"], g["target_crop"]), g["source_crop"], g["target_crop"],
                     g["source_canvas"]) for scene, g in zip(scenes, generated["framed"])]

    per_scene = {method: [scores(o, s) for o, s in zip(outputs[method], scenes)] for method in METHODS}
    per_scene["paste ceiling"] = [scores(o, s) for o, s in zip(ceiling, scenes)]
    result = {
        "benchmark": "in_the_wild", "command": command_line(), "date": time.strftime("%Y-%m-%d"),
        "device": f"{device} — {device_description(device)}", "model": args.model, "scenes": args.count,
        "scene_height": args.height, "seed_offset": args.seed_offset, "steps": args.steps, "sampler": args.sampler,
        "mask_source": args.mask_source, "framing": json.loads(framing_for(model).to_json()),
        "aspects": sorted({round(s.width / s.height, 3) for s in scenes}),
        "person_scale": {"min": min(s.person_scale for s in scenes), "max": max(s.person_scale for s in scenes)},
        "seconds": seconds, "groups_reused_from_cache": reused,
        "summary": {method: summary(rows) for method, rows in per_scene.items()},
        "framed_beats_pad_in_box": float(np.mean([f["box_ssim"] > p["box_ssim"]
                                                  for f, p in zip(per_scene["framed"], per_scene["pad"])])),
        "per_scene": per_scene,
        "wall_seconds": time.time() - started,
    }
    print(f"# in the wild: {args.count} held-out scenes, {args.model}, {args.sampler} {args.steps} steps\n")
    print("| method | SSIM person box | PSNR person box | SSIM scene | PSNR scene |\n|---|---|---|---|---|")
    for method, stats in result["summary"].items():
        print(f"| {method} | {stats['box_ssim']['mean']:.3f} | {stats['box_psnr']['mean']:.2f} | "
              f"{stats['scene_ssim']['mean']:.3f} | {stats['scene_psnr']['mean']:.2f} |")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
    if args.grid:
        picture(scenes, outputs, Path(args.grid))
    return result


if __name__ == "__main__":
    main()
