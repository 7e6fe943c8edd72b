"""People small in larger photos: today's pad and stretch against framing + back into the photo.

Held-out synthetic scenes (:mod:`pidm_core.data.synthetic.scene`): the generator's people at 25–60 %
of the scene height, anywhere in scenes of several aspect ratios with busy backgrounds; source and
target pose in the same scene, the true target scene rendered too. For each scene and method the
model redraws the source person in the target pose, and we score the result against the true target
scene with SSIM and PSNR (pidm_core.evaluate's protocol) (a) inside the true target person's box and
(b) on the whole scene. Methods:

* ``pad`` / ``stretch``: today's fit of the whole photo onto the model canvas, output restored to
  the photo's size (pidm_core.canvas);
* ``framed``: the source person framed like the model's training data (pidm_core.framing, from the
  scene's keypoints and person mask), the target pose framed with the source's scale, the output
  pasted back into the photo at the target's place with the old person's area inpainted
  (pidm_core.composite).
* ``paste ceiling`` (a reference, not a method): the true target person cut from the truth through
  the same crops and pasted by the same code; what a perfect generator would score.

Poses and masks are the scenes' own (no detector): this measures framing and pasting, not
detection. Every method samples with the same settings and seed.

    python benchmarks/in_the_wild.py --count 32 --steps 25 --json /tmp/in_the_wild.json --grid docs/images/in_the_wild.jpg
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
from pidm_core import composite, load_model  # noqa: E402
from pidm_core.canvas import fit_images, pose_maps, restore_images  # noqa: E402
from pidm_core.data.synthetic.scene import SCENE_SEED_OFFSET, Scene, make_scene  # noqa: E402
from pidm_core.evaluate import psnr_score, ssim_score  # noqa: E402
from pidm_core.framing import frame_person, frame_targets, framing_for  # noqa: E402
from pidm_core.pipeline import generate_from_tensors  # noqa: E402
from pidm_core.pose.keypoints import Pose  # noqa: E402
from pidm_core.pose.render import render_pose_map, render_skeleton_image  # noqa: E402
from pidm_core.samplers import SamplingSettings  # noqa: E402

METHODS = ("pad", "stretch", "framed")


def _uint8(images: np.ndarray) -> np.ndarray:
    return (np.clip(images, 0, 1) * 255 + 0.5).astype(np.uint8)


def _photo_tensor(scene: Scene) -> torch.Tensor:
    return torch.from_numpy(scene.source_image).float()[None] / 255


def fitted_outputs(network, scenes: list[Scene], mode: str, settings: SamplingSettings) -> list[np.ndarray]:
    """Today's path: the whole photo fitted to the canvas (pad or stretch), the output restored."""
    size = network.config.image_size
    sources, maps, infos = [], [], []
    for scene in scenes:
        source, info = fit_images(_photo_tensor(scene), size, mode)
        sources.append(source)
        maps.append(pose_maps([Pose(scene.target_keypoints, scene.width, scene.height)], info))
        infos.append(info)
    out = generate_from_tensors(network, torch.cat(sources), torch.cat(maps), settings)
    return [_uint8(restore_images(o[None], info)[0].numpy()) for o, info in zip(out, infos)]


def framed_inputs(model, scene: Scene) -> dict:
    """Crops, canvases and canvas poses of the framed path for one scene."""
    framing = framing_for(model)
    photo_w, photo_h = scene.width, scene.height
    source_crop = frame_person(Pose(scene.source_keypoints, photo_w, photo_h), scene.source_mask, photo_w, photo_h,
                               framing)
    [target], target_crop = frame_targets([Pose(scene.target_keypoints, photo_w, photo_h)], source_crop)
    source_canvas = source_crop.crop_image(scene.source_image, scene.source_mask)
    return {"source_crop": source_crop, "target_crop": target_crop, "target_keypoints": target.keypoints,
            "source_canvas": source_canvas, "source_canvas_mask": source_crop.crop_mask(scene.source_mask)}


def paste(scene: Scene, inputs: dict, canvas_image: np.ndarray) -> np.ndarray:
    result = composite.paste_into_photo(scene.source_image, canvas_image, inputs["target_crop"],
                                        inputs["target_keypoints"], old_masks=scene.source_mask,
                                        reference=inputs["source_canvas"], reference_mask=inputs["source_canvas_mask"])
    return _uint8(result.images[0])


def framed_outputs(model, scenes: list[Scene], all_inputs: list[dict], settings: SamplingSettings) -> list[np.ndarray]:
    size = model.network.config.image_size
    sources = torch.stack([torch.from_numpy(i["source_canvas"]).permute(2, 0, 1) * 2 - 1 for i in all_inputs])
    maps = torch.stack([torch.from_numpy(render_pose_map(i["target_keypoints"], size, size)) for i in all_inputs])
    out = generate_from_tensors(model.network, sources.float(), maps, settings)
    canvases = ((out.clamp(-1, 1) + 1) / 2).permute(0, 2, 3, 1).numpy()
    return [paste(scene, inputs, canvas) for scene, inputs, canvas in zip(scenes, all_inputs, canvases)]


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


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="embedded")
    parser.add_argument("--count", type=int, default=32)
    parser.add_argument("--height", type=int, default=256, help="scene height in pixels")
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--sampler", default="ddpm")
    parser.add_argument("--seed-offset", type=int, default=SCENE_SEED_OFFSET)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--json", default="", help="write the results here")
    parser.add_argument("--grid", default="", help="write the picture grid here (.jpg)")
    args = parser.parse_args(argv)
    set_threads(args.threads)
    device = resolve_device(args.device)
    started = time.time()
    model = load_model(args.model, device=device)
    settings = SamplingSettings(steps=args.steps, sampler=args.sampler, seed=0)
    scenes = [make_scene(args.seed_offset + i, args.height) for i in range(args.count)]
    all_inputs = [framed_inputs(model, scene) for scene in scenes]

    outputs, seconds = {}, {}
    for method in METHODS:
        start = time.time()
        if method == "framed":
            outputs[method] = framed_outputs(model, scenes, all_inputs, settings)
        else:
            outputs[method] = fitted_outputs(model.network, scenes, method, settings)
        seconds[method] = time.time() - start
        print(f"{method}: {seconds[method]:.1f}s", file=sys.stderr)
    ceiling = [paste(scene, inputs, inputs["target_crop"].crop_image(scene.target_image))
               for scene, inputs in zip(scenes, all_inputs)]

    per_scene = {method: [scores(o, s) for o, s in zip(outputs[method], scenes)] for method in METHODS}
    per_scene["paste ceiling"] = [scores(o, s) for o, s in zip(ceiling, scenes)]
    result = {
        "benchmark": "in_the_wild", "command": command_line(), "date": time.strftime("%Y-%m-%d"),
        "device": f"{device} — {device_description(device)}", "model": args.model, "scenes": args.count,
        "scene_height": args.height, "seed_offset": args.seed_offset, "steps": args.steps, "sampler": args.sampler,
        "framing": json.loads(framing_for(model).to_json()),
        "aspects": sorted({round(s.width / s.height, 3) for s in scenes}),
        "person_scale": {"min": min(s.person_scale for s in scenes), "max": max(s.person_scale for s in scenes)},
        "seconds": seconds,
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
