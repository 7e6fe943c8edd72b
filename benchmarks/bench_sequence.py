"""Long pose sequences: peak RSS and time per frame of one process sampling N frames.

Each case runs in a fresh process (peak RSS = the process's VmHWM, so cases do not inherit each
other's peaks): one synthetic person (held-out seed) and N poses interpolated between two of its
poses, sampled through :func:`pidm_core.pipeline.sample` with the default chunk size (automatic).
Few steps are enough here: memory does not depend on the step count, and time per frame is
proportional to it.

    python benchmarks/bench_sequence.py                                   # embedded, 10/100/1000 frames, 1 step
    python benchmarks/bench_sequence.py --model deepfashion_256 --dtype bf16 --frames 200
    python benchmarks/bench_sequence.py --frames 10 100 --chunk-size 0 8 100   # chunk sizes side by side

``--model deepfashion_256`` is the official-size network with random weights (the official file is
not bundled); ``--dtype auto`` is what Load PIDM Model's dtype=auto gives on this CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def run_case(model_name: str, dtype_name: str, frames: int, steps: int, chunk_size: int) -> dict:
    """Sample ``frames`` frames in this process; returns the numbers (child side)."""
    import torch

    from benchmarks.common import peak_rss_mb
    from pidm_core import checkpoint, pipeline
    from pidm_core.data.synthetic import HELD_OUT_SEED_OFFSET, make_pair
    from pidm_core.pose.interpolate import interpolate_poses
    from pidm_core.pose.keypoints import Pose
    from pidm_core.samplers import OFFICIAL_RUN, SamplingSettings

    dtype = checkpoint.auto_dtype_cpu() if dtype_name == "auto" else checkpoint.parse_dtype(dtype_name)
    model = checkpoint.load_model(checkpoint.EMBEDDED_NAME if model_name == "embedded" else model_name, dtype=dtype)
    network = model.network
    size = network.config.image_size
    pair = make_pair(HELD_OUT_SEED_OFFSET + 1, size)
    source = torch.from_numpy(pair.source_image).float().div(255)[None]
    poses = interpolate_poses(Pose(pair.source_keypoints, size, size), Pose(pair.target_keypoints, size, size), frames)
    settings = SamplingSettings(**OFFICIAL_RUN, steps=steps, sampler="ddim", chunk_size=chunk_size)
    rss_loaded_mb = peak_rss_mb()
    start = time.perf_counter()
    texture = pipeline.encode_source(model, source)
    chunks = []

    def on_step(info: dict) -> None:
        if info["i"] % steps == 0:
            chunks.append(len(info["frames"]))
        if info["i"] % steps == steps - 1:  # a chunk ended: a run cut off early still leaves its figures so far
            print(f"  progress: {info['frames'][-1] + 1}/{frames} frames, {time.perf_counter() - start:.0f} s, "
                  f"peak RSS so far {peak_rss_mb():.0f} MiB", file=sys.stderr, flush=True)

    images = pipeline.sample(model, texture, poses, settings, callback=on_step)
    seconds = time.perf_counter() - start
    assert images.shape[0] == frames and torch.isfinite(images).all()
    return {"model": Path(model_name).stem, "dtype": str(dtype).replace("torch.", ""), "frames": frames, "steps": steps,
            "chunk_size": chunk_size, "chunks": len(chunks), "frames_per_chunk": max(chunks),
            "seconds": seconds, "ms_per_frame_step": 1e3 * seconds / (frames * steps),
            "peak_rss_mb": peak_rss_mb(), "rss_after_load_mb": rss_loaded_mb,
            "threads": torch.get_num_threads()}


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="embedded", help="embedded, or a config name (random weights)")
    parser.add_argument("--dtype", default="auto", choices=["auto", "fp32", "bf16", "fp16"])
    parser.add_argument("--frames", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--steps", type=int, default=1)
    parser.add_argument("--chunk-size", type=int, nargs="+", default=[0], help="0 = automatic")
    parser.add_argument("--json", help="write the rows here")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(run_case(*json.loads(args.child))))
        return []

    from benchmarks import common

    print(f"# Long sequences: peak RSS and time per frame ({args.model}, dtype {args.dtype}, {args.steps} step(s))\n")
    print(f"- command: `{common.command_line()}`")
    print(f"- load average at start: {os.getloadavg()[0]:.2f}\n")
    model_file = args.model
    if args.model != "embedded":  # random weights of that config, saved once in the dtype the child loads
        import tempfile

        import torch

        from pidm_core import checkpoint

        dtype = checkpoint.auto_dtype_cpu() if args.dtype == "auto" else checkpoint.parse_dtype(args.dtype)
        model_file = str(Path(tempfile.mkdtemp()) / f"random_{args.model}.safetensors")
        network = common.random_network(args.model)
        checkpoint.save_model(model_file, network, checkpoint.ModelInfo(name=f"random {args.model}",
                                                                        config=network.config, source_drop_prob=0.1, pose_drop_prob=0.0), dtype=dtype)
        del network
    rows = []
    for chunk_size in args.chunk_size:
        for frames in args.frames:
            child = json.dumps([model_file, args.dtype, frames, args.steps, chunk_size])
            # the child's stderr (progress per chunk, errors) goes straight to ours
            done = subprocess.run([sys.executable, __file__, "--child", child], stdout=subprocess.PIPE, text=True,
                                  cwd=ROOT, check=False)
            if done.returncode != 0:
                print(f"case {child} failed with exit code {done.returncode} (its messages are on stderr)")
                continue
            rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(f"  done: {rows[-1]}", file=sys.stderr)
    base = {(r["chunk_size"]): r["ms_per_frame_step"] for r in rows if r["frames"] == min(args.frames)}
    print("| model | dtype | frames | chunk_size | frames per chunk | peak RSS | RSS after import+load | ms per frame-step | vs fewest frames |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        ratio = r["ms_per_frame_step"] / base[r["chunk_size"]] if r["chunk_size"] in base else float("nan")
        print(f"| {r['model']} | {r['dtype']} | {r['frames']} | {r['chunk_size'] or 'auto'} | {r['frames_per_chunk']} | "
              f"{r['peak_rss_mb']:.0f} MiB | {r['rss_after_load_mb']:.0f} MiB | {r['ms_per_frame_step']:.1f} | {ratio:.2f}× |")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return rows


if __name__ == "__main__":
    main()
