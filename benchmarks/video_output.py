"""Output side of motion transfer: N frames sampled into an mp4 through the render path, one process per case.

Each case runs :func:`pidm_core.video.render.render_video` in a fresh process (peak RSS = its VmHWM): the embedded
model, one synthetic person (held-out seed), N poses interpolated between two of its poses, a sound track longer
than the video (a 48 kHz stereo tone, cut at the video's end), 30000/1001 fps. It prints the time per frame, the
chunk the plan chose (and the seconds spent choosing it: the timing of :mod:`pidm_core.chunk_timing`), minor page
faults per chunk-step, the peak RSS, and what the file holds when read back (frame count, frame rate, sound).

Chunk rules compared (``--chunks``):
- ``timed``: chunk_size 0, the rule of today: a long CPU run takes the batch size timed fastest on this machine;
- ``memory``: the automatic chunk before it, the most frames under the 256 MiB CPU cap (passed as an explicit
  chunk_size, so both rules sample the same frames);
- a number: that chunk_size.

    python benchmarks/video_output.py                                  # fp32, 40/100/1000 frames, timed vs memory
    python benchmarks/video_output.py --dtype auto --frames 40 1000
    python benchmarks/video_output.py --alternate 4 8 12 17 24 --mmap-threshold    # sizes in turns; the cause
    python benchmarks/video_output.py --host --frames 100 1000 3000 --dtype auto   # through ComfyUI + Save Video
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

RATE = Fraction(30000, 1001)
AUDIO_RATE = 48000
# glibc: blocks up to this come from the heap, not from a fresh mmap, and the heap's top is not given back
# (the cause docs/video_output.md names); setting the threshold also stops glibc adjusting either by itself
PINNED_MALLOC = {"MALLOC_MMAP_THRESHOLD_": str(1 << 32), "MALLOC_TRIM_THRESHOLD_": str(1 << 32)}


def run_case(dtype_name: str, frames: int, steps: int, chunks: str, folder: str) -> dict:
    """Render ``frames`` frames in this process; returns the numbers (child side)."""
    import av
    import numpy as np
    import torch

    from benchmarks.common import peak_rss_mb
    from pidm_core import checkpoint, memory, pipeline
    from pidm_core.data.synthetic import HELD_OUT_SEED_OFFSET, make_pair
    from pidm_core.pose.interpolate import interpolate_poses
    from pidm_core.pose.keypoints import Pose
    from pidm_core.samplers import OFFICIAL_RUN, SamplingSettings
    from pidm_core.video.render import render_video

    dtype = checkpoint.auto_dtype_cpu() if dtype_name == "auto" else checkpoint.parse_dtype(dtype_name)
    model = checkpoint.load_model(checkpoint.EMBEDDED_NAME, dtype=dtype)
    network = model.network
    size = network.config.image_size
    pair = make_pair(HELD_OUT_SEED_OFFSET + 1, size)
    source = torch.from_numpy(pair.source_image).float().div(255)[None]
    poses = interpolate_poses(Pose(pair.source_keypoints, size, size), Pose(pair.target_keypoints, size, size), frames)
    if chunks == "timed":
        chunk_size = 0
    elif chunks == "memory":  # the automatic chunk before timing: the 256 MiB CPU cap
        chunk_size = memory.auto_chunk_size(network.config, 2, dtype, memory.free_memory_bytes("cpu"), "cpu")
    else:
        chunk_size = int(chunks)
    settings = SamplingSettings(**OFFICIAL_RUN, steps=steps, sampler="ddim", chunk_size=chunk_size)
    t = np.arange(int((frames / RATE + 5) * AUDIO_RATE)) / AUDIO_RATE  # 5 s longer than the video: cut
    sound = np.stack([0.2 * np.sin(2 * np.pi * 440 * t), 0.2 * np.sin(2 * np.pi * 660 * t)]).astype(np.float32)
    rss_loaded_mb = peak_rss_mb()
    path = Path(folder) / f"video_{frames}_{chunks}.mp4"
    start = time.perf_counter()
    texture = pipeline.encode_source(model, source)
    planned = time.perf_counter()
    plan = pipeline.plan_for(model, texture, poses, settings)
    choosing = time.perf_counter() - planned
    usage = resource.getrusage(resource.RUSAGE_SELF)
    written = render_video(model, texture, poses, path, RATE, settings, audio=(sound, AUDIO_RATE), plan=plan)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF)
    faults = after.ru_minflt - usage.ru_minflt
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        audio = container.streams.audio[0] if container.streams.audio else None
        decoded = sum(1 for _ in container.decode(video=0))
        found = {"file_frames": decoded, "file_rate": str(video.average_rate),
                 "file_audio_s": None if audio is None else round(float(audio.duration * audio.time_base), 3),
                 "video_s": round(float(frames / RATE), 3), "file_kib": path.stat().st_size // 1024}
    path.unlink()
    return {"dtype": str(dtype).replace("torch.", ""), "frames": frames, "steps": steps, "chunks": chunks,
            "frames_per_chunk": plan.largest_batch, "choosing_s": choosing, "seconds": seconds,
            "ms_per_frame_step": 1e3 * seconds / (frames * steps),
            "faults_per_chunk_step": faults / plan.total_steps,
            "user_ms_per_frame_step": 1e3 * (after.ru_utime - usage.ru_utime) / (frames * steps),
            "sys_ms_per_frame_step": 1e3 * (after.ru_stime - usage.ru_stime) / (frames * steps),
            "peak_rss_mb": peak_rss_mb(),
            "rss_after_load_mb": rss_loaded_mb, "written_frames": written.frames, "threads": torch.get_num_threads(),
            "mmap_threshold": os.environ.get("MALLOC_MMAP_THRESHOLD_"), **found}


def alternate(dtype_name: str, sizes: list[int], block: int, rounds: int, steps: int) -> list[dict]:
    """Chunk sizes side by side in one process, in turns (size a, size b, ..., again): ``block`` frames sampled
    with each size per turn, ``rounds`` turns. Load from other work that comes and goes touches every size alike,
    so the medians compare sizes even on a busy machine. Returns the median ms per frame-step per size and the
    minor page faults per chunk-step."""
    import statistics

    import torch

    from pidm_core import checkpoint, pipeline
    from pidm_core.data.synthetic import HELD_OUT_SEED_OFFSET, make_pair
    from pidm_core.pose.interpolate import interpolate_poses
    from pidm_core.pose.keypoints import Pose
    from pidm_core.samplers import OFFICIAL_RUN, SamplingSettings

    dtype = checkpoint.auto_dtype_cpu() if dtype_name == "auto" else checkpoint.parse_dtype(dtype_name)
    model = checkpoint.load_model(checkpoint.EMBEDDED_NAME, dtype=dtype)
    size = model.network.config.image_size
    pair = make_pair(HELD_OUT_SEED_OFFSET + 1, size)
    source = torch.from_numpy(pair.source_image).float().div(255)[None]
    poses = interpolate_poses(Pose(pair.source_keypoints, size, size), Pose(pair.target_keypoints, size, size), block)
    texture = pipeline.encode_source(model, source)
    times = {s: [] for s in sizes}
    faults = {s: [] for s in sizes}
    cpu = {s: [] for s in sizes}  # (user, sys) ms per frame-step
    for _ in range(rounds + 1):  # the first turn warms every size up and is not counted
        for chunk in sizes:
            settings = SamplingSettings(**OFFICIAL_RUN, steps=steps, sampler="ddim", chunk_size=chunk)
            before = resource.getrusage(resource.RUSAGE_SELF)
            start = time.perf_counter()
            for _frames, _images in pipeline.sample_chunks(model, texture, poses, settings):
                pass
            times[chunk].append(1e3 * (time.perf_counter() - start) / (block * steps))
            after = resource.getrusage(resource.RUSAGE_SELF)
            chunk_steps = -(-block // chunk) * steps
            faults[chunk].append((after.ru_minflt - before.ru_minflt) / chunk_steps)
            cpu[chunk].append((1e3 * (after.ru_utime - before.ru_utime) / (block * steps),
                               1e3 * (after.ru_stime - before.ru_stime) / (block * steps)))
    return [{"dtype": str(dtype).replace("torch.", ""), "chunk_size": s,
             "ms_per_frame_step": statistics.median(times[s][1:]), "all_ms": [round(t, 1) for t in times[s][1:]],
             "faults_per_chunk_step": statistics.median(faults[s][1:]),
             "user_ms": statistics.median(u for u, _ in cpu[s][1:]),
             "sys_ms": statistics.median(k for _, k in cpu[s][1:]),
             "mmap_threshold": os.environ.get("MALLOC_MMAP_THRESHOLD_")} for s in sizes]


def host_cases(frame_counts: list[int], dtype_name: str, steps: int, folder: str) -> list[dict]:
    """Each of ``frame_counts`` frames, one prompt after the other, through one real ComfyUI 0.3.75 (started
    here): Load Video (a driving clip with sound, as long as the output) → Get Video Components; Load Pose (the
    poses interpolated between two of a held-out synthetic person's) → PIDM Sampler (video) → Save Video. After
    each prompt: the server's peak RSS so far
    (VmHWM), the time, and what the saved file holds. A longer prompt after a shorter one that leaves the peak
    where it was needed no more memory."""
    import importlib.util
    import urllib.request

    import av
    import numpy as np
    from PIL import Image

    from benchmarks import common
    from pidm_core.data.synthetic import HELD_OUT_SEED_OFFSET, make_pair
    from pidm_core.pose.formats import pose_keypoint_from_poses
    from pidm_core.pose.interpolate import interpolate_poses
    from pidm_core.pose.keypoints import Pose
    from pidm_core.video.write import VideoWriter

    spec = importlib.util.spec_from_file_location("pidm_comfy_launcher", ROOT / "scripts" / "comfy_launcher.py")
    launcher = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = launcher
    spec.loader.exec_module(launcher)
    server = launcher.ComfyProcess(launcher.HOSTS["v3"], Path(folder) / "host", label="pidm_bench")
    server.prepare()
    inputs = server.dirs["input"]
    pair = make_pair(HELD_OUT_SEED_OFFSET + 1, 64)
    Image.fromarray(pair.source_image).save(inputs / "bench_source.png")
    a, b = Pose(pair.source_keypoints, 64, 64), Pose(pair.target_keypoints, 64, 64)
    for frames in frame_counts:  # the pose sequence (Interpolate Poses stops at 1000 frames: a pose file)
        (inputs / f"bench_walk_{frames}.json").write_text(json.dumps(pose_keypoint_from_poses(
            interpolate_poses(a, b, frames))))
    for frames in frame_counts:  # driving clips of grey 32x32 frames, with 5 s more sound than the output
        t = np.arange(int((frames / RATE + 5) * AUDIO_RATE)) / AUDIO_RATE
        sound = np.stack([0.2 * np.sin(2 * np.pi * 440 * t)] * 2).astype(np.float32)
        with VideoWriter(inputs / f"bench_driving_{frames}.mp4", RATE, audio=(sound, AUDIO_RATE)) as video:
            for start in range(0, frames, 100):
                video.write(np.full((min(100, frames - start), 32, 32, 3), 128, np.uint8))

    def graph(frames: int) -> dict:
        return {
            "model": {"class_type": "PIDMLoadModel", "inputs": {"model_name": "embedded", "dtype": dtype_name}},
            "photo": {"class_type": "LoadImage", "inputs": {"image": "bench_source.png"}},
            "texture": {"class_type": "PIDMEncodeTexture", "inputs": {"model": ["model", 0], "image": ["photo", 0],
                                                                      "fit": "pad"}},
            "walk": {"class_type": "PIDMLoadPose", "inputs": {"file": f"bench_walk_{frames}.json", "person_index": -1,
                                                              "canvas_width": 0, "canvas_height": 0}},
            "driving": {"class_type": "LoadVideo", "inputs": {"file": f"bench_driving_{frames}.mp4"}},
            "parts": {"class_type": "GetVideoComponents", "inputs": {"video": ["driving", 0]}},
            "render": {"class_type": "PIDMSampleVideo", "inputs": {
                "model": ["model", 0], "texture": ["texture", 0], "pose": ["walk", 0], "seed": 0, "steps": steps,
                "sampler": "ddim", "guidance": "official", "appearance_scale": 2.0, "pose_scale": 2.0,
                "person_index": -1, "frame_rate": ["parts", 2], "audio": ["parts", 1], "place": "pose",
                "inpaint": "telea", "guidance_start": 0.0, "guidance_end": 1.0, "sequence_denoise": 1.0}},
            "save": {"class_type": "SaveVideo", "inputs": {"video": ["render", 0], "filename_prefix": "video/bench",
                                                           "format": "auto", "codec": "auto"}},
        }

    def rss_kib(field: str) -> int:
        for line in Path(f"/proc/{server.process.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
        return 0

    def call(path: str, body: dict | None = None) -> dict:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(server.url + path, data=data, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read())

    rows = []
    server.start()
    try:
        for frames in frame_counts:
            before = rss_kib("VmRSS")
            start = time.perf_counter()
            prompt = call("/prompt", {"prompt": graph(frames)})["prompt_id"]
            history = common.finished_prompt(call, server, prompt, poll=0.5)
            seconds = time.perf_counter() - start
            entry = history["outputs"]["save"]["images"][0]
            with av.open(str(server.dirs["output"] / entry["subfolder"] / entry["filename"])) as container:
                video = container.streams.video[0]
                audio = container.streams.audio[0] if container.streams.audio else None
                rows.append({"frames": frames, "steps": steps, "dtype": dtype_name, "seconds": seconds,
                             "ms_per_frame_step": 1e3 * seconds / (frames * steps),
                             "server_rss_before_mb": before / 1024, "server_peak_rss_mb": rss_kib("VmHWM") / 1024,
                             "file_frames": sum(1 for _ in container.decode(video=0)),
                             "file_rate": str(video.average_rate),
                             "file_audio_s": None if audio is None else round(float(audio.duration * audio.time_base),
                                                                              3),
                             "video_s": round(float(frames / RATE), 3)})
            print(f"  done: {rows[-1]}", file=sys.stderr, flush=True)
    finally:
        server.stop()
    return rows


def _host_table(args) -> list[dict]:
    rows = host_cases(args.frames, args.dtype, args.steps, tempfile.mkdtemp(prefix="pidm_video_output_host_"))
    print("Through ComfyUI 0.3.75, one server, one prompt per row in this order: Load Video → Get Video "
          "Components, Load Pose → PIDM Sampler (video) → Save Video:\n")
    print("| frames | server RSS before the prompt | server peak RSS so far | seconds (whole prompt) | "
          "ms per frame-step | file: frames, fps, sound |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        sound = "none" if r["file_audio_s"] is None else f"{r['file_audio_s']:.2f} s of {r['video_s']:.2f} s"
        print(f"| {r['frames']} | {r['server_rss_before_mb']:.0f} MiB | {r['server_peak_rss_mb']:.0f} MiB | "
              f"{r['seconds']:.0f} | {r['ms_per_frame_step']:.1f} | {r['file_frames']}, {r['file_rate']}, {sound} |")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return rows


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dtype", default="fp32", choices=["auto", "fp32", "bf16"])
    parser.add_argument("--frames", type=int, nargs="+", default=[40, 100, 1000])
    parser.add_argument("--steps", type=int, default=1)
    parser.add_argument("--chunks", nargs="+", default=["timed", "memory"], help="timed, memory or a number")
    parser.add_argument("--mmap-threshold", action="store_true",
                        help="also run every case with glibc's mmap and trim thresholds pinned high "
                             "(MALLOC_MMAP_THRESHOLD_, MALLOC_TRIM_THRESHOLD_)")
    parser.add_argument("--alternate", type=int, nargs="+", metavar="CHUNK",
                        help="instead: these chunk sizes in turns in one process (timing only, no file)")
    parser.add_argument("--host", action="store_true",
                        help="instead: the --frames, one prompt after the other, through one real ComfyUI 0.3.75 and "
                             "Save Video (the server's peak RSS after each)")
    parser.add_argument("--block", type=int, default=96, help="--alternate: frames per turn")
    parser.add_argument("--rounds", type=int, default=3, help="--alternate: turns counted (after one warm-up turn)")
    parser.add_argument("--json", help="write the rows here")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        case = json.loads(args.child)
        print(json.dumps(alternate(*case[1:]) if case[0] == "alternate" else run_case(*case)))
        return []

    from benchmarks import common

    print(f"# Video output: frames sampled into an mp4 (embedded model, dtype {args.dtype}, {args.steps} step(s))\n")
    print(f"- command: `{common.command_line()}`")
    print(f"- load average at start: {os.getloadavg()[0]:.2f}\n")
    if args.alternate:
        return _alternate_table(args)
    if args.host:
        return _host_table(args)
    folder = tempfile.mkdtemp(prefix="pidm_video_output_")
    rows = []
    for pinned in ([False, True] if args.mmap_threshold else [False]):
        env = dict(os.environ)
        if pinned:
            env.update(PINNED_MALLOC)
        for chunks in args.chunks:
            for frames in args.frames:
                child = json.dumps([args.dtype, frames, args.steps, chunks, folder])
                done = subprocess.run([sys.executable, __file__, "--child", child], stdout=subprocess.PIPE, text=True,
                                      cwd=ROOT, env=env, check=False)
                if done.returncode != 0:
                    print(f"case {child} failed with exit code {done.returncode} (its messages are on stderr)")
                    continue
                rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
                print(f"  done: {rows[-1]}", file=sys.stderr, flush=True)
    base = {(r["chunks"], r["mmap_threshold"]): r["ms_per_frame_step"] for r in rows if r["frames"] == min(args.frames)}
    print("| dtype | frames | chunk rule | frames per chunk | choosing | ms per frame-step | vs fewest frames | "
          "CPU ms user + sys | page faults per chunk-step | peak RSS | RSS after load | file: frames, fps, sound |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        rule = r["chunks"] + (" + pinned mmap threshold" if r["mmap_threshold"] else "")
        ratio = r["ms_per_frame_step"] / base[(r["chunks"], r["mmap_threshold"])] \
            if (r["chunks"], r["mmap_threshold"]) in base else float("nan")
        sound = "none" if r["file_audio_s"] is None else f"{r['file_audio_s']:.2f} s of {r['video_s']:.2f} s"
        print(f"| {r['dtype']} | {r['frames']} | {rule} | {r['frames_per_chunk']} | {r['choosing_s']:.1f} s | "
              f"{r['ms_per_frame_step']:.1f} | {ratio:.2f}× | "
              f"{r['user_ms_per_frame_step']:.0f} + {r['sys_ms_per_frame_step']:.0f} | "
              f"{r['faults_per_chunk_step']:,.0f} | "
              f"{r['peak_rss_mb']:.0f} MiB | {r['rss_after_load_mb']:.0f} MiB | "
              f"{r['file_frames']}, {r['file_rate']}, {sound} |")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return rows


def _alternate_table(args) -> list[dict]:
    rows = []
    for pinned in ([False, True] if args.mmap_threshold else [False]):
        env = dict(os.environ)
        if pinned:
            env.update(PINNED_MALLOC)
        child = json.dumps(["alternate", args.dtype, args.alternate, args.block, args.rounds, args.steps])
        done = subprocess.run([sys.executable, __file__, "--child", child], stdout=subprocess.PIPE, text=True,
                              cwd=ROOT, env=env, check=False)
        if done.returncode != 0:
            print(f"case {child} failed with exit code {done.returncode} (its messages are on stderr)")
            continue
        rows += json.loads(done.stdout.strip().splitlines()[-1])
    print(f"Chunk sizes in turns, one process each, {args.block} frames per turn, median of {args.rounds} turns:\n")
    print("| dtype | malloc | chunk_size | ms per frame-step (median) | each turn | CPU ms user + sys (median) | "
          "page faults per chunk-step |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        malloc = "mmap threshold pinned" if r["mmap_threshold"] else "default"
        print(f"| {r['dtype']} | {malloc} | {r['chunk_size']} | {r['ms_per_frame_step']:.1f} | "
              f"{', '.join(map(str, r['all_ms']))} | {r['user_ms']:.0f} + {r['sys_ms']:.0f} | "
              f"{r['faults_per_chunk_step']:,.0f} |")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return rows


if __name__ == "__main__":
    main()
