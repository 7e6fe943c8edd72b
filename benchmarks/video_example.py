"""Seconds per output frame of the example workflow ``video_motion_transfer`` through a real ComfyUI, per sampler setting.

The example (``example_workflows/api/video_motion_transfer.json``, the API twin of the shipped workflow) runs on one
ComfyUI 0.3.75 server started here (``scripts/comfy_launcher.py``, CPU), its inputs (``assets/pidm_scene.png``,
``assets/pidm_driving_walk.mp4``) copied into the server's input folder. Each *configuration* overrides inputs of
the example's sampler node (``sample``, PIDM Sampler (video)) with ``name=value,name=value`` (values parse as int,
then float, else string); ``as stored`` is the example unchanged, the baseline.

First one warm-up prompt of the stored example: it loads the model and extracts the poses, and is reported apart.
Then ``--rounds`` rounds, each running every configuration once in the order given (alternating, so that drift of
the machine's load hits every configuration alike). ComfyUI caches the outputs of nodes whose inputs did not
change, so after the warm-up only the sampler and Save Video run (read from each prompt's ``execution_cached``
message in the history, and printed). Before each timed prompt an untimed one of the example without the sampler and
Save Video drops the sampler's cached result (ComfyUI's classic cache keeps only the latest prompt's nodes), so a
configuration equal to the prompt before it (the first after the warm-up) is sampled again, not served from the
cache. Save Video gets a filename prefix of its own per prompt.

Per prompt: wall seconds from the POST of /prompt to the history's completion, the frames of the saved mp4 (decoded
with av) and seconds per output frame. Per configuration: the network rows per output frame the library's plan
counts (:func:`rows_per_frame`), the median seconds per frame over the rounds and its ratio to the first
configuration's median.

    python benchmarks/video_example.py --configs "as stored" \\
        "steps=10,sampler=ddim,sequence_denoise=1.0,guidance_start=0,guidance_end=1" --rounds 2 --json out.json
    python benchmarks/video_example.py --configs "as stored" "steps=4" --rounds 1      # a quick smoke check
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import importlib.util
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

EXAMPLE = ROOT / "example_workflows" / "api" / "video_motion_transfer.json"
ASSETS = ("pidm_scene.png", "pidm_driving_walk.mp4")
SAMPLE, SAVE = "sample", "save"
AS_STORED = "as stored"


def parse_value(text: str):
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def parse_config(text: str) -> dict:
    """``name=value,name=value`` → overrides of the sampler node's inputs; ``as stored`` → none."""
    if text.strip() == AS_STORED or not text.strip():
        return {}
    overrides = {}
    for part in text.split(","):
        name, sep, value = part.partition("=")
        if not sep or not name.strip():
            raise SystemExit(f"--configs {text!r}: {part!r} is not name=value")
        overrides[name.strip()] = parse_value(value.strip())
    return overrides


def sampling_settings(node_inputs: dict):
    """The SamplingSettings the sampler node's widget inputs describe (linked inputs and node-only ones dropped)."""
    from pidm_core.samplers import SamplingSettings

    names = {f.name for f in dataclasses.fields(SamplingSettings)}
    return SamplingSettings(**{k: v for k, v in node_inputs.items() if k in names and not isinstance(v, list)})


def rows_per_frame(settings, frames: int) -> float:
    """Network rows per output frame of an N-frame run: with ``sequence_denoise`` < 1 the first frame runs the whole
    schedule and each later frame starts from the previous one (img2img at sequence_denoise); else every frame runs
    the whole schedule."""
    from pidm_core import plan

    first = plan.network_rows(settings)
    if settings.sequence_denoise >= 1 or frames <= 1:
        return float(first)
    following = plan.network_rows(plan.following_settings(settings), img2img=True)
    return (first + (frames - 1) * following) / frames


def load_launcher():
    spec = importlib.util.spec_from_file_location("pidm_comfy_launcher", ROOT / "scripts" / "comfy_launcher.py")
    launcher = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = launcher
    spec.loader.exec_module(launcher)
    return launcher


def run_prompts(configs: list[str], rounds: int, folder: Path) -> dict:
    import av

    from benchmarks import common

    launcher = load_launcher()
    stored = json.loads(EXAMPLE.read_text())
    overrides = [parse_config(c) for c in configs]
    for config, o in zip(configs, overrides):
        unknown = set(o) - set(stored[SAMPLE]["inputs"])
        if unknown:
            raise SystemExit(f"--configs {config!r}: the sampler node has no input(s) {sorted(unknown)}")
    server = launcher.ComfyProcess(launcher.HOSTS["v3"], folder / "host", label="pidm_bench_example")
    server.prepare()
    for name in ASSETS:  # what the pack's loader (nodes/folders.py) copies there too, when absent
        shutil.copy2(ROOT / "assets" / name, server.dirs["input"] / name)

    def call(path: str, body: dict | None = None) -> dict:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(server.url + path, data=data, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read())

    def wait(prompt: str) -> dict:
        return common.finished_prompt(call, server, prompt)

    def executed_nodes(graph: dict, history: dict) -> list[str]:
        cached = []
        for kind, message in history["status"].get("messages", []):
            if kind == "execution_cached":
                cached += [str(n) for n in message.get("nodes", [])]
        return sorted(set(graph) - set(cached))

    def evict_sampler() -> None:
        """A prompt of the example without the sampler and Save Video (Save Pose, unchanged, its output): ComfyUI's
        classic cache keeps only the nodes of the latest prompt, so the sampler's cached result is dropped while
        everything upstream stays cached; nothing executes. Without it a configuration that equals the prompt before
        (the first after the warm-up, or one configuration over several rounds) would be served from the cache."""
        graph = {k: v for k, v in copy.deepcopy(stored).items() if k not in (SAMPLE, SAVE)}
        history = wait(call("/prompt", {"prompt": graph})["prompt_id"])
        executed = executed_nodes(graph, history)
        if executed:
            print(f"  (evicting the sampler's cache executed {executed})", file=sys.stderr, flush=True)

    counter = [0]

    def run(override: dict, label: str, evict: bool = True) -> dict:
        if evict:
            evict_sampler()
        graph = copy.deepcopy(stored)
        graph[SAMPLE]["inputs"].update(override)
        counter[0] += 1
        graph[SAVE]["inputs"]["filename_prefix"] = f"pidm_bench/example_{counter[0]:03d}"
        start = time.perf_counter()
        history = wait(call("/prompt", {"prompt": graph})["prompt_id"])
        seconds = time.perf_counter() - start
        executed = executed_nodes(graph, history)
        cached = sorted(set(graph) - set(executed))
        if SAMPLE not in executed:
            raise RuntimeError(f"{label!r}: the sampler was served from ComfyUI's cache, nothing to time")
        entry = history["outputs"][SAVE]["images"][0]
        with av.open(str(server.dirs["output"] / entry["subfolder"] / entry["filename"])) as container:
            frames = sum(1 for _ in container.decode(video=0))
        settings = sampling_settings(graph[SAMPLE]["inputs"])
        row = {"config": label, "seconds": seconds, "frames": frames, "s_per_frame": seconds / frames,
               "rows_per_frame": rows_per_frame(settings, frames), "executed": executed, "cached": sorted(cached),
               "file": entry["filename"]}
        print(f"  {label!r}: {seconds:.1f} s, {frames} frames, {row['s_per_frame']:.3f} s/frame, "
              f"executed {executed}", file=sys.stderr, flush=True)
        return row

    server.start()
    try:
        warmup = run({}, "warm-up: " + AS_STORED, evict=False)
        prompts = [run(o, c) for _ in range(rounds) for c, o in zip(configs, overrides)]
    finally:
        server.stop()
    return {"warmup": warmup, "prompts": prompts}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", nargs="+", default=[AS_STORED],
                        help=f"sampler-node overrides, each 'name=value,name=value' or '{AS_STORED}'")
    parser.add_argument("--rounds", type=int, default=2, help="rounds, each running every configuration once")
    parser.add_argument("--json", help="write every number here")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        raise SystemExit("--rounds must be at least 1")

    import torch

    from benchmarks import common

    common.print_header("The example workflow video_motion_transfer through ComfyUI 0.3.75: seconds per output frame",
                        torch.device("cpu"))
    print("- the server: a separate process, ComfyUI 0.3.75 --cpu, its own torch threads (the line above is this "
          "script's)\n")
    with tempfile.TemporaryDirectory(prefix="pidm_video_example_") as folder:
        result = run_prompts(args.configs, args.rounds, Path(folder))
    load_end = os.getloadavg()[0]

    warm = result["warmup"]
    print(f"First prompt (the stored example), includes model loading and pose extraction: {warm['seconds']:.1f} s, "
          f"{warm['frames']} frames, {warm['s_per_frame']:.3f} s per output frame.\n")
    later = {tuple(r["executed"]) for r in result["prompts"]}
    if later == {tuple(sorted((SAMPLE, SAVE)))}:
        print("Every later prompt executed only the sampler and Save Video (the others were cached, as the history's "
              "execution_cached message lists).\n")
    else:
        print(f"Nodes the later prompts executed (from the history): {sorted(later)}\n")

    rounds = args.rounds
    print("| configuration | network rows per frame | " + " | ".join(f"round {i + 1} s/frame" for i in range(rounds))
          + " | median s/frame | ratio to the first |")
    print("|---|---|" + "---|" * rounds + "---|---|")
    summary = []
    for config in args.configs:
        rows = [r for r in result["prompts"] if r["config"] == config]
        median = statistics.median(r["s_per_frame"] for r in rows)
        summary.append({"config": config, "rows_per_frame": rows[0]["rows_per_frame"], "frames": rows[0]["frames"],
                        "s_per_frame": [r["s_per_frame"] for r in rows], "median_s_per_frame": median})
    base = summary[0]["median_s_per_frame"]
    for s in summary:
        s["ratio"] = s["median_s_per_frame"] / base
        print(f"| `{s['config']}` | {s['rows_per_frame']:.2f} | " + " | ".join(f"{v:.3f}" for v in s["s_per_frame"])
              + f" | {s['median_s_per_frame']:.3f} | {s['ratio']:.2f} |")
    print(f"\n- load average at end: {load_end:.2f}")
    out = {"command": common.command_line(), "configs": args.configs, "rounds": rounds, "load_average_end": load_end,
           **result, "summary": summary}
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
