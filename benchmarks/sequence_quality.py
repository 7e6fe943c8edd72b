"""How steady pose-to-frames output is, and how far bf16 images are from fp32 ones.

Two sections, both on held-out synthetic people (seeds from HELD_OUT_SEED_OFFSET on, never trained on):

- ``steadiness``: :func:`~pidm_core.data.synthetic.sequence.make_sequence` renders one person through
  F + 1 poses, so the true frames exist. Frame 0 is the source photo, frames 1..F the targets; the
  embedded model samples them for every sampler and for shared vs independent noise. Reported: mean
  per-frame SSIM and PSNR against the truth, and *flicker*: the mean over consecutive frames of
  max(0, |Δ output| − |Δ truth|), |Δ| the mean absolute change per pixel in 0-255 levels, i.e. the
  frame-to-frame change of the output beyond what the true frames change.
- ``half`` (``bf16`` is accepted too): the same seeds sampled with fp32 and with each reduced precision of
  ``--half`` (bf16, fp16); PSNR and SSIM of the reduced-precision final images against the fp32 ones, on
  held-out synthetic pairs with the embedded model and on the official-size network (deepfashion_256)
  with random weights.

    python benchmarks/sequence_quality.py --sections steadiness --sequences 4 --frames 8 --steps 25
    python benchmarks/sequence_quality.py --sections half --pairs 4 --steps 25 --steps-256 5 --pairs-256 2
    python benchmarks/sequence_quality.py --sections half --half fp16 --pairs 2 --steps 10 --steps-256 0
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import common  # noqa: E402
from pidm_core import checkpoint, pipeline, samplers  # noqa: E402
from pidm_core.data.synthetic import HELD_OUT_SEED_OFFSET, make_pair  # noqa: E402
from pidm_core.data.synthetic.sequence import make_sequence  # noqa: E402
from pidm_core.metrics import psnr_score, read_image, ssim_score  # noqa: E402
from pidm_core.pose.keypoints import Pose  # noqa: E402
from pidm_core.samplers import OFFICIAL_RUN, SamplingSettings  # noqa: E402


def _uint8(images: torch.Tensor) -> list[np.ndarray]:
    return list((images.clamp(0, 1) * 255 + 0.5).byte().cpu().numpy())


def _photo(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(image).float().div(255)[None]


def flicker(output: list[np.ndarray], truth: list[np.ndarray]) -> float:
    """Mean over consecutive frames of max(0, |Δ output| − |Δ truth|), in 0-255 levels per pixel."""
    change = lambda a, b: float(np.abs(a.astype(np.float64) - b.astype(np.float64)).mean())  # noqa: E731
    excess = [max(0.0, change(output[k + 1], output[k]) - change(truth[k + 1], truth[k])) for k in range(len(output) - 1)]
    return float(np.mean(excess))


def steadiness(args) -> list[dict]:
    model = checkpoint.load_model(checkpoint.EMBEDDED_NAME, dtype=torch.float32)
    size = model.network.config.image_size
    sequences = [make_sequence(HELD_OUT_SEED_OFFSET + 500 + k, args.frames + 1, size) for k in range(args.sequences)]
    rows = []
    for sampler in args.samplers:
        for frame_noise in ("shared", "independent"):
            settings = SamplingSettings(**OFFICIAL_RUN, steps=args.steps, sampler=sampler, frame_noise=frame_noise, seed=args.seed)
            ssims, psnrs, flickers, start = [], [], [], time.perf_counter()
            for sequence in sequences:
                texture = pipeline.encode_source(model, _photo(sequence.images[0]))
                poses = [Pose(kp, size, size) for kp in sequence.keypoints[1:]]
                output = _uint8(pipeline.sample(model, texture, poses, settings))
                truth = sequence.images[1:]
                ssims += [ssim_score(o, t) for o, t in zip(output, truth)]
                psnrs += [psnr_score(o, t) for o, t in zip(output, truth)]
                flickers.append(flicker(output, truth))
            rows.append({"sampler": sampler, "frame_noise": frame_noise, "ssim": float(np.mean(ssims)),
                         "psnr": float(np.mean(psnrs)), "flicker": float(np.mean(flickers)),
                         "seconds": time.perf_counter() - start})
            print(f"  {rows[-1]}", file=sys.stderr, flush=True)
    truth_change = np.mean([np.abs(np.diff(np.stack(s.images[1:]).astype(np.float64), axis=0)).mean() for s in sequences])
    print(f"\n## Steadiness: {args.sequences} held-out sequences × {args.frames} frames, {args.steps} steps, "
          f"embedded model, fp32, seed {args.seed}\n")
    print(f"Mean frame-to-frame change of the true frames: {truth_change:.2f} levels.\n")
    print("| sampler | noise | SSIM vs truth | PSNR vs truth | flicker (levels) | seconds |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['sampler']} | {r['frame_noise']} | {r['ssim']:.4f} | {r['psnr']:.2f} dB | {r['flicker']:.2f} | "
              f"{r['seconds']:.0f} |")
    return rows


def _agreement(model_fp32, model_half, sources: torch.Tensor, poses: list, settings: SamplingSettings) -> tuple:
    images = []
    for model in (model_fp32, model_half):
        texture = pipeline.encode_source(model, sources)
        images.append(_uint8(pipeline.sample(model, texture, poses, settings)))
    return ([psnr_score(b, a, max_db=None) for a, b in zip(*images)],
            [ssim_score(b, a) for a, b in zip(*images)])


def half_against_fp32(args) -> list[dict]:
    """Each reduced precision of ``--half`` against fp32, same seeds and inputs."""
    rows = []
    settings = SamplingSettings(**OFFICIAL_RUN, steps=args.steps, sampler=samplers.DEFAULT_SETTINGS.sampler, seed=args.seed)
    fp32 = checkpoint.load_model(checkpoint.EMBEDDED_NAME, dtype=torch.float32)
    size = fp32.network.config.image_size
    pairs = [make_pair(HELD_OUT_SEED_OFFSET + 900 + k, size) for k in range(args.pairs)]
    sources = torch.cat([_photo(p.source_image) for p in pairs])
    poses = [Pose(p.target_keypoints, size, size) for p in pairs]
    big_pairs = [make_pair(HELD_OUT_SEED_OFFSET + 950 + k, 256) for k in range(args.pairs_256)]
    big_sources = torch.cat([_photo(p.source_image) for p in big_pairs]) if big_pairs else None
    big_poses = [Pose(p.target_keypoints, 256, 256) for p in big_pairs]
    big_settings = SamplingSettings(**OFFICIAL_RUN, steps=max(1, args.steps_256), sampler="ddim", seed=args.seed)
    big32 = None
    for half in args.half:
        dtype = checkpoint.parse_dtype(half)
        start = time.perf_counter()
        psnr, ssim = _agreement(fp32, checkpoint.load_model(checkpoint.EMBEDDED_NAME, dtype=dtype), sources, poses,
                                settings)
        rows.append({"dtype": half, "case": f"embedded model, {args.pairs} held-out synthetic pairs, "
                     f"{settings.sampler} {args.steps} steps", "psnr": psnr, "ssim": ssim,
                     "seconds": time.perf_counter() - start})
        print(f"  {rows[-1]}", file=sys.stderr, flush=True)
        if not (args.steps_256 and big_pairs):
            continue
        if big32 is None:
            with torch.no_grad():
                big32 = common.random_network("deepfashion_256")
        start = time.perf_counter()
        psnr, ssim = _agreement(big32, common.converted(big32, dtype, channels_last=True), big_sources, big_poses,
                                big_settings)
        rows.append({"dtype": half, "case": f"deepfashion_256 random weights, {len(big_pairs)} held-out synthetic "
                     f"pair(s), ddim {args.steps_256} steps", "psnr": psnr, "ssim": ssim,
                     "seconds": time.perf_counter() - start})
        print(f"  {rows[-1]}", file=sys.stderr, flush=True)
    print(f"\n## Reduced precision against fp32 final images (same seeds, seed {args.seed}, computed on {common.device_description(torch.device('cpu'))})\n")
    print("| dtype | case | PSNR vs fp32 (mean, min) | SSIM vs fp32 (mean, min) | seconds |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['dtype']} | {r['case']} | {np.mean(r['psnr']):.2f} dB, {np.min(r['psnr']):.2f} dB | "
              f"{np.mean(r['ssim']):.4f}, {np.min(r['ssim']):.4f} | {r['seconds']:.0f} |")
    return rows


def animation_strip(args) -> None:
    """The example workflow pose_sequence_to_animation through the library: every other frame, side by side."""
    from PIL import Image

    from pidm_core.pose.formats import load_pose_file
    from pidm_core.pose.geometry import fit_to_canvas
    from pidm_core.pose.interpolate import interpolate_poses

    model = checkpoint.load_model(checkpoint.EMBEDDED_NAME, dtype=checkpoint.auto_dtype_cpu())
    photo = read_image(ROOT / "assets" / "pidm_person.png")
    start = load_pose_file(str(ROOT / "assets" / "pidm_pose_arms_raised.json"))[-1]
    end = load_pose_file(str(ROOT / "assets" / "pidm_pose_sequence.json"))[0]
    if (end.width, end.height) != (start.width, start.height):
        end = fit_to_canvas(end, start.width, start.height)
    poses = interpolate_poses(start, end, args.strip_frames)
    settings = SamplingSettings(**OFFICIAL_RUN, steps=args.steps, seed=args.seed, sampler=args.strip_sampler)
    frames = _uint8(pipeline.sample(model, pipeline.encode_source(model, photo), poses, settings))
    strip = np.concatenate([np.asarray(photo[0].mul(255).round().byte()), *frames[::2]], axis=1)
    Image.fromarray(strip).save(args.strip)
    print(f"\nwrote {args.strip}: the source photo, then every other frame of {args.strip_frames} "
          f"({settings.sampler}, {settings.steps} steps, seed {settings.seed}, frame noise {settings.frame_noise})")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sections", default="steadiness,half", help="steadiness, half (bf16 = half), strip")
    parser.add_argument("--sequences", type=int, default=4)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--pairs", type=int, default=4)
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--steps-256", type=int, default=5, help="0 skips the official-size case")
    parser.add_argument("--pairs-256", type=int, default=1, help="held-out pairs for the official-size case")
    parser.add_argument("--half", nargs="+", default=["bf16"], choices=["bf16", "fp16"],
                        help="section 'half': the reduced precisions compared with fp32 (fp16 is what dtype=auto "
                             "gives on a GPU without bf16; on a CPU a convolution runs about 90x slower than in fp32)")
    parser.add_argument("--samplers", nargs="+", default=list(samplers.SAMPLERS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--strip", help="section 'strip': write the README's frame strip here")
    parser.add_argument("--strip-frames", type=int, default=16)
    parser.add_argument("--strip-sampler", default="ddim", choices=list(samplers.SAMPLERS),
                        help="the animation example's sampler")
    args = parser.parse_args(argv)
    print(f"# Sequence quality\n\n- command: `{common.command_line()}`\n- torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, load average at start {os.getloadavg()[0]:.2f}")
    sections = args.sections.split(",")
    if "steadiness" in sections:
        steadiness(args)
    if "half" in sections or "bf16" in sections:
        half_against_fp32(args)
    if "strip" in sections:
        animation_strip(args)


if __name__ == "__main__":
    main()
