"""Quality for compute: network rows per image against SSIM / LPIPS / PSNR, flicker and seconds (issue 26).

A *row* is one image through the denoising network at one step: a step of official guidance runs two rows per
image (conditional and unconditional), a step outside the guidance interval one. Rows per image are counted by
the sampling plan (:func:`pidm_core.plan.network_rows`, ``SamplingPlan.run_rows``), not estimated.

Sections (one run can hold them all; ``--cache DIR`` keeps every sampled image, so a rerun only samples what is
missing and the scores can be recomputed, with LPIPS, once its weights are on disk):

- ``stills``: held-out synthetic pairs (the evaluator's: ``HELD_OUT_SEED_OFFSET + i``, pair i sampled with seed
  ``seed + i``, the PIDM/GFLA SSIM protocol, on the 64×64 canvas), the embedded model in fp32, one row per
  configuration: rows per image, mean SSIM / LPIPS (AlexNet) / PSNR, their paired difference from the baseline
  (today's default, the first configuration) with its standard error, and seconds per image (the wall time of
  that configuration's sampling in this run, batches of ``--batch``).
- ``sequences``: held-out synthetic sequences (``make_sequence``: frame 0 is the source photo, frames 1..F the
  targets, true frames known) through :func:`pidm_core.pipeline.sample`, shared noise: rows per output frame of
  this run and of a frame after the first (``follow``), SSIM / LPIPS / PSNR against the truth, flicker (as
  ``benchmarks/sequence_quality.py``), seconds per frame.
- ``long``: a few held-out sequences of 48 frames for today's defaults, the chosen still settings and them with
  the sequence start: SSIM of the first and last 8 frames (does a chain of frames drift away?), flicker.
- ``speed256``: the official-size network (deepfashion_256, random weights) on this machine's automatic dtype:
  the measured time of one guided step (2 rows) and one conditional step (1 row) for one image, and each
  configuration's seconds per image as the sum over its steps of the measured step times.
- ``figure``: quality against rows per image (``--figure PATH``).

Configurations are written ``sampler:steps[:start-end][:scale=S][:seq=D]``: ``ddpm:25:0.2-1`` guides from 20 % of the
schedule to the end (``guidance_start``/``guidance_end``), ``ddpm:20:seq=0.6`` starts every frame after the first
from the previous frame, re-running 60 % of the schedule (``sequence_denoise``); the first configuration of each
list is the baseline the differences are taken against.

    python benchmarks/quality_compute.py --cache ~/.cache/comfyui-pidm/quality_compute --json out.json \\
        --figure docs/images/quality_compute.png
    python benchmarks/quality_compute.py --cache ~/.cache/comfyui-pidm/quality_compute --retime 8   # quiet machine

``--retime N`` scores the cached images again and times every configuration anew on its first N pairs /
sequences, for seconds measured on a quieter machine than the one that sampled the images.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import common  # noqa: E402
from benchmarks.embedded_guidance import clothing_colour_error  # noqa: E402
from benchmarks.sequence_quality import flicker  # noqa: E402
from pidm_core import checkpoint, pipeline, plan  # noqa: E402
from pidm_core.data import open_pairs, to_image_tensor  # noqa: E402
from pidm_core.data.synthetic import HELD_OUT_SEED_OFFSET  # noqa: E402
from pidm_core.data.synthetic.sequence import make_sequence  # noqa: E402
from pidm_core.metrics import LPIPSMetric, MetricUnavailable, psnr_score, ssim_score  # noqa: E402
from pidm_core.pose.keypoints import Pose  # noqa: E402
from pidm_core.pose.render import render_pose_map  # noqa: E402
from pidm_core.samplers import DEFAULT_SETTINGS, SamplingSettings  # noqa: E402

INTERVALS = ("0.2-1", "0.4-1", "0-0.8", "0.2-0.8", "0-0.6")
STILLS = (
    ["ddpm:50", *(f"ddpm:{n}" for n in (5, 8, 10, 15, 20, 25)), "ddpm:10:scale=1"]
    + [f"ddpm:{n}:{i}" for n in (10, 20) for i in INTERVALS]
    + [f"ddim:{n}" for n in (5, 8, 10, 15, 25)] + [f"ddim:10:{i}" for i in ("0.2-1", "0.4-1", "0-0.8")]
    + [f"dpmpp_2m:{n}" for n in (5, 8, 10, 15)] + [f"dpmpp_2m:10:{i}" for i in ("0.2-1", "0.4-1", "0-0.8")]
    # the frontier, looked at closer: 4 to 8 steps with every interval (steps 6 and 7 run 7 and 8 timesteps:
    # the official spacing range(0, 1000, 1000 // steps))
    + [f"ddpm:{n}" for n in (4, 6, 7)] + [f"ddpm:{n}:{i}" for n in (4, 5, 6, 7, 8) for i in INTERVALS]
    + [f"ddpm:{n}:scale=1" for n in (5, 8)]
    + [f"ddim:{n}:{i}" for n in (6, 8) for i in ("0.2-0.8", "0-0.6")]
    + [f"dpmpp_2m:8:{i}" for i in ("0.2-0.8", "0-0.6")]
)
LONG = ("ddpm:50", "ddpm:6:0.2-0.8", "ddpm:6:0.2-0.8:seq=0.6")  # does a chain of 48 frames drift?
SEQUENCES = (
    ["ddpm:50", "ddpm:6:0.2-0.8", "ddpm:8:0-0.6", "ddpm:10", "ddim:10"]
    + [f"ddpm:6:0.2-0.8:seq={d}" for d in (0.4, 0.5, 0.6, 0.7, 0.8)]
    + [f"ddpm:8:0-0.6:seq={d}" for d in (0.5, 0.7)] + [f"ddpm:10:seq={d}" for d in (0.5, 0.7)]
    + [f"ddim:10:seq={d}" for d in (0.6, 0.8)] + ["ddpm:20:seq=0.6"]
)


# what a configuration leaves unsaid: every step guided at scale 2, every frame from noise (the defaults before
# issue 26), so that a configuration names the same run whatever the library's defaults become
UNSAID = {"guidance_start": 0.0, "guidance_end": 1.0, "appearance_scale": 2.0, "sequence_denoise": 1.0}


def parse_config(text: str, base: SamplingSettings = DEFAULT_SETTINGS) -> SamplingSettings:
    """``sampler:steps[:start-end][:scale=S][:seq=D]`` → the settings it names (the interval, scale and sequence
    start unsaid are :data:`UNSAID`; seed, guidance mode and the rest from ``base``)."""
    sampler, steps, *rest = text.split(":")
    fields = {**UNSAID, "sampler": sampler, "steps": int(steps)}
    for part in rest:
        if part.startswith("seq="):
            fields["sequence_denoise"] = float(part[4:])
        elif part.startswith("scale="):
            fields["appearance_scale"] = float(part[6:])
        else:
            start, end = part.split("-")
            fields["guidance_start"], fields["guidance_end"] = float(start), float(end)
    return SamplingSettings(**{**asdict(base), **fields})


@dataclass
class Scores:
    ssim: list
    psnr: list
    lpips: list | None
    colour: list  # clothing colour error (0-255) at the torso and thighs: what appearance guidance is for


def score(predictions: np.ndarray, truths: np.ndarray, keypoints: list, lpips) -> Scores:
    return Scores([ssim_score(p, t) for p, t in zip(predictions, truths)],
                  [psnr_score(p, t) for p, t in zip(predictions, truths)],
                  None if lpips is None else [lpips(p, t) for p, t in zip(predictions, truths)],
                  [clothing_colour_error(p, t, k) for p, t, k in zip(predictions, truths, keypoints)])


def open_lpips():
    try:
        return LPIPSMetric(torch.device("cpu")), None
    except MetricUnavailable as err:
        return None, str(err)


def cached(args, section: str, config: str, make, count: int):
    """``make(count)`` → (images uint8 of the first ``count`` items, seconds per item), kept in ``--cache`` so a rerun
    does not sample it again. With ``--retime N`` a cached configuration's seconds are measured again in this run
    on its first N items (the images are deterministic on a CPU in fp32; the time is what a quieter run changes)."""
    path = None if args.cache is None else args.cache / section / (config.replace(":", "_").replace("=", "") + ".npz")
    if path is not None and path.is_file():
        data = np.load(path)
        images, seconds, timed_on = data["images"], float(data["seconds"]), f"cache ({count})"
        if args.retime:
            seconds, timed_on = make(min(args.retime, count))[1], f"this run ({min(args.retime, count)})"
        return images, seconds, timed_on
    images, seconds = make(count)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(path, images=images, seconds=seconds)
    return images, seconds, f"this run ({count})"


def _uint8_canvas(x: torch.Tensor) -> np.ndarray:
    return (((x.float().cpu() + 1) / 2).clamp(0, 1).permute(0, 2, 3, 1) * 255).round().to(torch.uint8).numpy()


def stills(args, model, lpips) -> list[dict]:
    network, size = model.network, model.network.config.image_size
    pairs = open_pairs("synthetic", size, split="test")
    items = [pairs.pair(i) for i in range(args.pairs)]
    truths = np.stack([item[2] for item in items])

    def sample_all(settings):
        def make(count):
            out, start = [], time.perf_counter()
            for begin in range(0, count, args.batch):
                batch = items[begin:min(begin + args.batch, count)]
                source = torch.stack([to_image_tensor(it[0]) for it in batch])
                maps = torch.stack([torch.from_numpy(render_pose_map(it[3], size, size)) for it in batch])
                seeds = [settings.seed + i for i in range(begin, begin + len(batch))]
                out.append(_uint8_canvas(pipeline.generate_from_tensors(network, source, maps, settings, seeds=seeds)))
            return np.concatenate(out), (time.perf_counter() - start) / count
        return make

    rows = []
    for config in args.stills:
        settings = parse_config(config)
        images, seconds, timed_on = cached(args, f"stills_{args.pairs}", config, sample_all(settings), len(items))
        rows.append({"config": config, "rows": plan.network_rows(settings), "seconds": seconds, "timed_on": timed_on,
                     **asdict(score(images, truths, [item[3] for item in items], lpips))})
        _log(rows[-1])
    return _with_differences(rows)


def sequences(args, model, lpips, configs=None, count=None, frames=None, seed_offset=500, name="sequences"):
    """The sequence table: ``count`` held-out sequences (seeds from ``HELD_OUT_SEED_OFFSET + seed_offset``) of
    ``frames`` frames, each configuration of ``configs`` (defaults: the command line's)."""
    configs = args.sequences_configs if configs is None else configs
    count, frames = args.sequences if count is None else count, args.frames if frames is None else frames
    size = model.network.config.image_size
    clips = [make_sequence(HELD_OUT_SEED_OFFSET + seed_offset + k, frames + 1, size) for k in range(count)]
    truths = np.stack([image for clip in clips for image in clip.images[1:]])
    textures = [pipeline.encode_source(model, torch.from_numpy(clip.images[0]).float().div(255)[None])
                for clip in clips]
    poses = [[Pose(kp, size, size) for kp in clip.keypoints[1:]] for clip in clips]
    rows = []
    for config in configs:
        settings = parse_config(config)

        def make(count, settings=settings):
            out, start = [], time.perf_counter()
            for texture, clip_poses in zip(textures[:count], poses[:count]):
                output = pipeline.sample(model, texture, clip_poses, settings)
                out.append((output.clamp(0, 1) * 255).round().to(torch.uint8).numpy())
            return np.concatenate(out), (time.perf_counter() - start) / (count * frames)

        images, seconds, timed_on = cached(args, f"{name}_{len(clips)}x{frames}", config, make,
                                           len(clips))
        run = pipeline.plan_for(model, textures[0], poses[0], settings)
        follow = run.follow_rows if run.follows_previous else run.image_rows
        per_clip = [images[k * frames:(k + 1) * frames] for k in range(len(clips))]
        clip_truths = [truths[k * frames:(k + 1) * frames] for k in range(len(clips))]
        rows.append({"config": config, "rows": run.run_rows / run.frames, "follow_rows": follow, "seconds": seconds,
                     "timed_on": timed_on, "flicker": float(np.mean([flicker(list(o), list(t))
                                                                  for o, t in zip(per_clip, clip_truths)])),
                     **asdict(score(images, truths, [kp for clip in clips for kp in clip.keypoints[1:]], lpips))})
        block = min(8, frames)  # SSIM of each clip's first and last frames: does a chain drift away?
        ssims = np.asarray(rows[-1]["ssim"]).reshape(len(clips), frames)
        rows[-1]["ssim_first"], rows[-1]["ssim_last"] = float(ssims[:, :block].mean()), float(ssims[:, -block:].mean())
        _log(rows[-1])
    return _with_differences(rows)


def _log(row: dict) -> None:
    short = {k: (float(np.nanmean(v)) if isinstance(v, list) else v) for k, v in row.items()}
    print(f"  {short}", file=sys.stderr, flush=True)


def _with_differences(rows: list[dict]) -> list[dict]:
    """Means, and the paired difference of each metric from the first row (the baseline) with its standard error."""
    base = rows[0]
    for row in rows:
        for metric in ("ssim", "psnr", "lpips", "colour"):
            values = row[metric]
            if values is None:
                row[f"{metric}_mean"] = row[f"{metric}_diff"] = row[f"{metric}_se"] = None
                continue
            diff = np.asarray(values, np.float64) - np.asarray(base[metric], np.float64)
            diff = diff[np.isfinite(diff)]  # the colour error is NaN where no clothing joint is visible
            row[f"{metric}_mean"] = float(np.nanmean(values))
            row[f"{metric}_diff"] = float(diff.mean())
            row[f"{metric}_se"] = float(diff.std(ddof=1) / np.sqrt(len(diff))) if len(diff) > 1 else 0.0
    return rows


def within_tolerance(row: dict, tolerance: float, errors: float = 0.0) -> bool:
    """SSIM no more than ``tolerance`` below the baseline and LPIPS no more than ``tolerance`` above it, the paired
    mean difference moved ``errors`` standard errors towards worse (0: the mean itself)."""
    ok = row["ssim_diff"] - errors * row["ssim_se"] >= -tolerance
    return ok and (row["lpips_diff"] is None or row["lpips_diff"] + errors * row["lpips_se"] <= tolerance)


def guided(config: str) -> bool:
    """Whether a configuration runs appearance guidance at some step (scale 2 and an interval holding a step)."""
    settings = parse_config(config)
    return settings.appearance_scale != 1 and max(plan.step_rows(settings)) > 1


def cheapest(rows: list[dict], tolerance: float, steadiness: bool = False, errors: float = 0.0) -> dict | None:
    """The cheapest guided configuration within ``tolerance`` of the baseline (the first row) in SSIM and LPIPS
    (:func:`within_tolerance` with ``errors``; with ``steadiness``, flickering no more than it too); rows per image,
    then LPIPS decide. None when there is none."""
    fits = [r for r in rows[1:] if within_tolerance(r, tolerance, errors) and guided(r["config"])
            and (not steadiness or r["flicker"] <= rows[0]["flicker"])]
    return min(fits, key=lambda r: (r["follow_rows"] if steadiness else r["rows"], r["lpips_mean"] or 0.0),
               default=None)


def speed256(args, configs: list[str]) -> list[dict]:
    """Seconds per image at 256² from the measured time of a guided and a conditional step for one image."""
    from pidm_core import guidance
    from pidm_core.pipeline import encode_texture_pair

    dtype = checkpoint.auto_dtype_cpu()
    network = common.converted(common.random_network("deepfashion_256"), dtype, channels_last=True) \
        if dtype != torch.float32 else common.random_network("deepfashion_256")
    source = torch.rand(1, 3, 256, 256) * 2 - 1
    pose_map = torch.rand(1, 20, 256, 256).to(dtype)
    texture, null = encode_texture_pair(network, source)
    x, t = torch.randn(1, 3, 256, 256).to(dtype), torch.tensor([500])
    guided = guidance.official_guidance(network, pose_map, texture, null, 2.0)
    conditional = guidance.conditional_denoiser(network, pose_map, texture)
    with torch.no_grad():
        step = {2: common.median_time(lambda: guided(x, t), torch.device("cpu"), args.repeats_256),
                1: common.median_time(lambda: conditional(x, t), torch.device("cpu"), args.repeats_256)}
    print(f"  256²: guided step {step[2]:.2f} s, conditional step {step[1]:.2f} s ({dtype})", file=sys.stderr)
    rows = []
    for config in configs:
        settings = parse_config(config)
        per_step = plan.step_rows(settings)
        follow = plan.step_rows(plan.following_settings(settings), img2img=True)
        rows.append({"config": config, "seconds": sum(step[r] for r in per_step),
                     "follow_seconds": sum(step[r] for r in follow) if settings.sequence_denoise < 1 else None})
    return [{"dtype": str(dtype).replace("torch.", ""), "guided_step": step[2], "conditional_step": step[1]}] + rows


def print_tables(result: dict, tolerance: float) -> None:
    speed = {r["config"]: r for r in result.get("speed256", [])[1:]}
    fmt = lambda v, f: "—" if v is None else format(v, f)  # noqa: E731
    if "stills" in result:
        rows = result["stills"]
        print(f"\n## Still images: {len(rows[0]['ssim'])} held-out synthetic pairs, embedded model (64²), fp32\n")
        print("Differences are paired (same pairs, same seeds) against the first row, ± one standard error; "
              f"**bold**: within {tolerance} SSIM and {tolerance} LPIPS of it.\n")
        print("Colour: the clothing colour error at the torso and thighs (0-255, lower is better; "
              "benchmarks/embedded_guidance.py), what appearance guidance is for.\n")
        print("| configuration | rows/image | SSIM | Δ SSIM | LPIPS | Δ LPIPS | PSNR | Δ PSNR | colour | Δ colour | "
              "s/image 64² | s/image 256² |")
        print("|---|---|---|---|---|---|---|---|---|---|---|---|")
        for r in sorted(rows, key=lambda r: (r["rows"], r["config"])):
            name = f"**{r['config']}**" if within_tolerance(r, tolerance) else r["config"]
            print(f"| {name} | {r['rows']} | {r['ssim_mean']:.4f} | {r['ssim_diff']:+.4f} ± {r['ssim_se']:.4f} | "
                  f"{fmt(r['lpips_mean'], '.4f')} | "
                  f"{'—' if r['lpips_diff'] is None else format(r['lpips_diff'], '+.4f') + ' ± ' + format(r['lpips_se'], '.4f')} | "
                  f"{r['psnr_mean']:.2f} | {r['psnr_diff']:+.2f} | {r['colour_mean']:.1f} | "
                  f"{r['colour_diff']:+.1f} ± {r['colour_se']:.1f} | {r['seconds']:.3f} | "
                  f"{fmt(speed.get(r['config'], {}).get('seconds'), '.1f')} |")
    if "sequences" in result:
        rows = result["sequences"]
        print(f"\n## Pose sequences: {result['sequence_clips']} held-out sequences × {result['sequence_frames']} "
              "frames, embedded model (64²), fp32, shared noise\n")
        print("rows/frame: this run's network rows over its frames; after the first: rows of each frame that starts "
              "from the previous one (the long-run cost per frame).\n")
        print("| configuration | rows/frame | rows/frame after the first | SSIM | Δ SSIM | LPIPS | Δ LPIPS | PSNR | "
              "colour | flicker | s/frame 64² | ms/row 64² | s/frame 256² (after the first) |")
        print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        for r in rows:
            name = f"**{r['config']}**" if within_tolerance(r, tolerance) else r["config"]
            s256 = speed.get(r["config"], {})
            s256 = s256.get("follow_seconds") or s256.get("seconds")
            print(f"| {name} | {r['rows']:.1f} | {r['follow_rows']} | {r['ssim_mean']:.4f} | "
                  f"{r['ssim_diff']:+.4f} ± {r['ssim_se']:.4f} | {fmt(r['lpips_mean'], '.4f')} | "
                  f"{'—' if r['lpips_diff'] is None else format(r['lpips_diff'], '+.4f')} | {r['psnr_mean']:.2f} | "
                  f"{r['colour_mean']:.1f} | {r['flicker']:.2f} | {r['seconds']:.3f} | {1e3 * r['seconds'] / r['rows']:.1f} | {fmt(s256, '.1f')} |")
    if "long" in result:
        rows = result["long"]
        frames = result.get("long_frames")
        print(f"\n## Long sequences: {len(rows[0]['ssim']) // frames} held-out sequences × {frames} frames "
              "(does a chain of frames that start from the previous one drift?)\n")
        print("| configuration | rows/frame | SSIM | SSIM, first 8 frames | SSIM, last 8 frames | LPIPS | flicker | s/frame 64² |")
        print("|---|---|---|---|---|---|---|---|")
        for r in rows:
            print(f"| {r['config']} | {r['rows']:.1f} | {r['ssim_mean']:.4f} | {r['ssim_first']:.4f} | "
                  f"{r['ssim_last']:.4f} | {fmt(r['lpips_mean'], '.4f')} | {r['flicker']:.2f} | {r['seconds']:.3f} |")
    for section, steadiness in (("stills", False), ("sequences", True)):
        if section not in result:
            continue
        base = result[section][0]
        what = "rows per frame after the first" if steadiness else "rows per image"
        key = "follow_rows" if steadiness else "rows"
        for errors, how in ((0.0, "at the mean difference"), (1.0, "at the mean plus one standard error")):
            best = cheapest(result[section], tolerance, steadiness, errors)
            print(f"\n{section}: the cheapest guided configuration within {tolerance} SSIM and {tolerance} LPIPS of "
                  f"{base['config']} {how}{' that flickers no more' if steadiness else ''}: "
                  + ("none" if best is None else f"**{best['config']}**, {best[key]} {what} against {base[key]} "
                                                  f"({best[key] / base[key]:.0%})"))
    timed = sorted({r["timed_on"] for section in ("stills", "sequences") for r in result.get(section, [])})
    if timed:
        print(f"\nSeconds at 64² were timed on: {', '.join(timed)} items (pairs or sequences) per configuration.")
    if "speed256" in result:
        head = result["speed256"][0]
        print(f"\n256² step times (deepfashion_256, random weights, {head['dtype']}, one image, median of "
              f"{result['repeats_256']}): guided {head['guided_step']:.2f} s, conditional {head['conditional_step']:.2f} s.")
    if result.get("lpips_skipped"):
        print(f"\nLPIPS: {result['lpips_skipped']}")


def figure(result: dict, path: str, tolerance: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = [("ssim_mean", "SSIM (higher is better)"), ("lpips_mean", "LPIPS (lower is better)")]
    sections = [s for s in ("stills", "sequences") if s in result]
    fig, axes = plt.subplots(len(sections), 2, figsize=(11, 4.2 * len(sections)), squeeze=False)
    for row_axes, section in zip(axes, sections):
        rows = result[section]
        for ax, (key, label) in zip(row_axes, metrics):
            if rows[0][key] is None:
                ax.set_visible(False)
                continue
            for sampler, marker in (("ddpm", "o"), ("ddim", "s"), ("dpmpp_2m", "^")):
                chosen = [r for r in rows if r["config"].startswith(sampler + ":")]
                ax.scatter([r["rows"] for r in chosen], [r[key] for r in chosen], marker=marker, label=sampler, alpha=0.8)
            base = rows[0]
            band = base[key] - tolerance if key == "ssim_mean" else base[key] + tolerance
            ax.axhline(band, color="grey", linestyle="--", linewidth=0.8,
                       label=f"baseline {base['config']} ± {tolerance}")
            ax.scatter([base["rows"]], [base[key]], s=140, facecolors="none", edgecolors="black")
            ax.set_xlabel("network rows per image" if section == "stills" else "network rows per frame")
            ax.set_ylabel(label)
            ax.set_title("still images" if section == "stills" else "pose sequences")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"\nwrote {path}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sections", default="stills,sequences,long,speed256,figure")
    parser.add_argument("--stills", nargs="+", default=STILLS, help="configurations of the stills section")
    parser.add_argument("--sequence-configs", dest="sequences_configs", nargs="+", default=SEQUENCES)
    parser.add_argument("--pairs", type=int, default=96)
    parser.add_argument("--batch", type=int, default=8, help="pairs sampled at once (stills)")
    parser.add_argument("--sequences", type=int, default=8)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--long-sequences", type=int, default=3, help="section 'long': sequences of --long-frames")
    parser.add_argument("--long-frames", type=int, default=48)
    parser.add_argument("--repeats-256", type=int, default=3)
    parser.add_argument("--tolerance", type=float, default=0.005)
    parser.add_argument("--cache", type=Path, help="keep sampled images here (reruns reuse them)")
    parser.add_argument("--retime", type=int, default=0,
                        help="time cached configurations again in this run on their first N pairs / sequences")
    parser.add_argument("--json", help="write every number here")
    parser.add_argument("--figure", default="docs/images/quality_compute.png")
    parser.add_argument("--threads", type=int)
    parser.add_argument("--no-lpips", action="store_true")
    args = parser.parse_args(argv)
    common.set_threads(args.threads)
    common.print_header("Quality for compute", torch.device("cpu"))
    sections = args.sections.split(",")
    model = checkpoint.load_model(checkpoint.EMBEDDED_NAME, dtype=torch.float32)
    lpips, skipped = (None, "not asked for (--no-lpips)") if args.no_lpips else open_lpips()
    result = {"lpips_skipped": skipped, "sequence_clips": args.sequences, "sequence_frames": args.frames,
              "long_frames": args.long_frames,
              "repeats_256": args.repeats_256}
    if "stills" in sections:
        result["stills"] = stills(args, model, lpips)
    if "sequences" in sections:
        result["sequences"] = sequences(args, model, lpips)
    if "long" in sections:
        result["long"] = sequences(args, model, lpips, list(LONG), args.long_sequences, args.long_frames, 700, "long")
    if "speed256" in sections:
        configs = list(dict.fromkeys([*(args.stills if "stills" in sections else []),
                                      *(args.sequences_configs if "sequences" in sections else [])]))
        result["speed256"] = speed256(args, configs)
    print(f"- load average at the end: {os.getloadavg()[0]:.2f}")
    print_tables(result, args.tolerance)
    if "figure" in sections:
        figure(result, args.figure, args.tolerance)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
