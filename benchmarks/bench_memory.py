"""Peak memory of one PIDM image per setting: peak RSS (and peak VRAM on a GPU), each setting in a
fresh process so that one setting's allocations never hide another's.

    python benchmarks/bench_memory.py                                  # deepfashion_256, CPU
    python benchmarks/bench_memory.py --device cuda
    python benchmarks/bench_memory.py --config tiny_32 --settings ours_fp32   # smoke

Each worker process imports torch and pidm_core, loads a random-weight model from a safetensors file
written beforehand (memory-mapped, as users load models), encodes the source and the null source, and
runs ``--steps`` guided DDIM steps at ``--batch``. Reported: RSS after the imports, after loading,
and the process's peak RSS (``getrusage`` ru_maxrss: file pages read through the memory map count
while resident); on a GPU, ``torch.cuda.max_memory_allocated`` / ``max_memory_reserved``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from benchmarks import common
from benchmarks import official_baseline as off
from pidm_core.config import CONFIGS, get_config


@dataclass(frozen=True)
class Setting:
    file: str  # which weights file: fp32, bf16, fp16 or official_fp32 (unused official tensors included)
    dtype: str | None  # dtype at load (None: the file's)
    algorithm: str  # "ours" (pidm_core pipeline) or "baseline" (the official algorithm)
    channels_last: bool | None = None  # conv weight layout; None: load_model's default (NHWC for fp16/bf16 on CPU)
    description: str = ""


SETTINGS = {
    "baseline_fp32": Setting("fp32", None, "baseline", description="official algorithm, fp32"),
    "ours_fp32": Setting("fp32", None, "ours", description="ours, fp32 file"),
    "ours_bf16": Setting("bf16", None, "ours", description="ours, bf16 file (load_model's default layout: channels-last on CPU)"),
    "ours_bf16_from_fp32": Setting("fp32", "bf16", "ours", description="ours, fp32 file cast to bf16 at load"),
    "ours_bf16_nchw": Setting("bf16", None, "ours", False, "ours, bf16 file, conv weights left NCHW"),
    "ours_fp16": Setting("fp16", None, "ours", description="ours, fp16 file (load_model's default layout)"),
    "ours_fp16_nchw": Setting("fp16", None, "ours", False, "ours, fp16 file, conv weights NCHW (as ComfyUI loads them for a GPU)"),
    "ours_fp16_cl": Setting("fp16", None, "ours", True, "ours, fp16 file, conv weights channels-last"),
    "ours_bf16_cl": Setting("bf16", None, "ours", True, "ours, bf16 file, conv weights channels-last"),
    "ours_fp32_official_layout": Setting("official_fp32", None, "ours",
                                         description="ours, fp32 file with the official unused tensors (dropped at load)"),
}
DEFAULT_SETTINGS = {
    "cpu": ["baseline_fp32", "ours_fp32", "ours_bf16", "ours_bf16_from_fp32", "ours_bf16_nchw",
            "ours_fp32_official_layout"],
    "cuda": ["baseline_fp32", "ours_fp32", "ours_fp16_nchw", "ours_fp16_cl", "ours_bf16_nchw", "ours_bf16_cl"],
}
TARGETS_GB = {"cpu": ("ours_bf16", 1.5, "peak RSS"), "cuda": ("ours_fp16_nchw", 3.0, "peak VRAM allocated")}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="deepfashion_256", choices=sorted(CONFIGS), help="network config (random weights)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    p.add_argument("--steps", type=int, default=1, help="guided DDIM steps per worker")
    p.add_argument("--batch", type=int, default=1, help="images per worker (one source, several poses)")
    p.add_argument("--repeats", type=int, default=1, help="workers per setting; the largest peak is reported")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads in the workers")
    p.add_argument("--settings", default=None, help=f"comma-separated subset of {', '.join(SETTINGS)} (default: per device)")
    p.add_argument("--tmpdir", default=None, help="where the temporary model files are written")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default=None, help="also write every number to this JSON file")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    p.add_argument("--file", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if min(args.steps, args.batch, args.repeats) < 1:
        p.error("--steps, --batch and --repeats must be at least 1")
    return args


# ---------------------------------------------------------------------------------------------
# Worker (one fresh process per setting)


def run_worker(args) -> None:
    rss_import = common.current_rss_mb()
    import_anon, import_file = common.rss_split_mb()
    setting = SETTINGS[args.worker]
    device = common.resolve_device(args.device)
    from pidm_core import checkpoint, memory, pipeline, samplers

    dtype = common.DTYPES[setting.dtype] if setting.dtype else None
    start = time.perf_counter()
    model = checkpoint.load_model(args.file, device=device, dtype=dtype, channels_last=setting.channels_last)
    common.sync(device)
    load_s = time.perf_counter() - start
    network = model.network
    rss_load = common.current_rss_mb()
    vram_load = torch.cuda.memory_allocated(device) / 2**20 if device.type == "cuda" else None
    s = network.config.image_size
    source = common.smooth_source(s, 1, args.seed).expand(args.batch, -1, -1, -1).to(device)
    pose = common.pose_batch(s, args.batch).to(device)
    start = time.perf_counter()
    with torch.no_grad():
        if setting.algorithm == "baseline":
            x_T = samplers.BatchNoise([args.seed] * args.batch, device)(torch.empty(args.batch, 3, s, s, device=device))
            out = off.official_ddim_sample(network, source, pose, x_T, args.steps)
        else:
            settings = samplers.SamplingSettings(**samplers.OFFICIAL_RUN, steps=args.steps, sampler="ddim", seed=args.seed)
            out = pipeline.generate_from_tensors(network, source, pose, settings)
    common.sync(device)
    run_s = time.perf_counter() - start
    result = {
        "setting": args.worker, "weights_dtype": common.DTYPE_NAMES.get(model.dtype, str(model.dtype)),
        "rss_import_mib": rss_import, "rss_import_anon_mib": import_anon, "rss_import_file_mib": import_file,
        "rss_load_mib": rss_load, "peak_rss_mib": common.peak_rss_mb(),
        "load_s": load_s, "run_s": run_s, "finite": bool(torch.isfinite(out).all()),
        "ignored_tensors": len(model.report.ignored) if model.report else 0,
        # what the PIDM Sampler node tells ComfyUI for this request (pidm_core.memory)
        "estimate_mib": memory.sampling_memory_bytes(network.config, args.batch, 2, model.dtype) / 2**20,
    }
    if device.type == "cuda":
        result.update({"vram_load_mib": vram_load,
                       "vram_peak_allocated_mib": torch.cuda.max_memory_allocated(device) / 2**20,
                       "vram_peak_reserved_mib": torch.cuda.max_memory_reserved(device) / 2**20})
    print("RESULT " + json.dumps(result), flush=True)


# ---------------------------------------------------------------------------------------------
# Parent


def write_files(args, names: list[str], tmp: Path) -> dict[str, Path]:
    needed = {SETTINGS[n].file for n in names}
    network = common.random_network(get_config(args.config), args.seed)
    files = {}
    for kind in sorted(needed):
        path = tmp / f"{kind}.safetensors"
        if kind == "official_fp32":
            g = torch.Generator().manual_seed(args.seed)
            extra = {k: torch.randn(shape, generator=g) * 0.02 for k, shape in off.official_unused_tensors(network).items()}
            common.write_random_checkpoint(path, network, torch.float32, extra)
        else:
            common.write_random_checkpoint(path, network, common.DTYPES[kind])
        files[kind] = path
    return files


def run_setting(args, name: str, path: Path) -> dict:
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", name, "--file", str(path),
               "--config", args.config, "--device", args.device, "--steps", str(args.steps),
               "--batch", str(args.batch), "--seed", str(args.seed)]
    if args.threads:
        command += ["--threads", str(args.threads)]
    done = subprocess.run(command, capture_output=True, text=True)
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if done.returncode or line is None:
        raise RuntimeError(f"memory worker for {name} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(line[len("RESULT "):])


def main(argv=None) -> list[dict]:
    args = parse_args(argv)
    if args.worker:
        common.set_threads(args.threads)
        run_worker(args)
        return []
    common.set_threads(args.threads)
    device = common.resolve_device(args.device)
    names = args.settings.split(",") if args.settings else DEFAULT_SETTINGS[device.type]
    unknown = [n for n in names if n not in SETTINGS]
    if unknown:
        raise SystemExit(f"unknown settings {unknown}; choose from {', '.join(SETTINGS)}")
    common.print_header(f"PIDM memory benchmark ({args.config})", device)
    results = []
    with tempfile.TemporaryDirectory(dir=args.tmpdir, prefix="pidm_mem_") as tmp:
        files = write_files(args, names, Path(tmp))
        for name in names:
            runs = [run_setting(args, name, files[SETTINGS[name].file]) for _ in range(args.repeats)]
            worst = max(runs, key=lambda r: r.get("vram_peak_allocated_mib") or r["peak_rss_mib"])
            worst["file_mib"] = files[SETTINGS[name].file].stat().st_size / 2**20
            results.append(worst)
            print(f"  measured {name}", file=sys.stderr, flush=True)

    gpu = device.type == "cuda"
    headers = ["setting", "what", "weights", "file", "RSS after imports", "RSS after load", "peak RSS",
               "peak RSS − imports", "load", "run"]
    if gpu:
        headers[8:8] = ["VRAM after load", "peak VRAM allocated", "peak VRAM reserved", "estimate (activations)"]
    rows = []
    for r in results:
        row = [r["setting"], SETTINGS[r["setting"]].description, r["weights_dtype"], f"{r['file_mib']:.0f} MiB",
               _mib(r["rss_import_mib"]), _mib(r["rss_load_mib"]), _mib(r["peak_rss_mib"]),
               _mib(r["peak_rss_mib"] - r["rss_import_mib"]), common.fmt_seconds(r["load_s"]), common.fmt_seconds(r["run_s"])]
        if gpu:
            row[8:8] = [_mib(r["vram_load_mib"]), _mib(r["vram_peak_allocated_mib"]), _mib(r["vram_peak_reserved_mib"]),
                        _mib(r["estimate_mib"])]
        if not r["finite"]:
            row[1] += " (output NOT finite)"
        rows.append(row)
    config = get_config(args.config)
    print(f"## Peak memory: {args.config} ({config.image_size}×{config.image_size}), batch {args.batch}, "
          f"{args.steps} guided DDIM step(s), RANDOM weights, one fresh process per setting\n")
    print(common.markdown_table(headers, rows))
    first = results[0]
    print("\n'run' = encoding the source and null source + the guided steps. RSS includes the Python "
          "interpreter and torch itself ('RSS after imports': "
          f"{first['rss_import_anon_mib']:.0f} MiB private + {first['rss_import_file_mib']:.0f} MiB of shared "
          "libraries); 'peak RSS − imports' subtracts it. Pages of the memory-mapped weights file count while "
          "they are resident.")
    target_name, limit_gb, what = TARGETS_GB["cuda" if gpu else "cpu"]
    hit = next((r for r in results if r["setting"] == target_name), None)
    if hit:
        value = hit["vram_peak_allocated_mib"] if gpu else hit["peak_rss_mib"]
        gb = value * 2**20 / 1e9
        print(f"Issue target: {what} of {target_name} ≤ {limit_gb} GB — measured {gb:.2f} GB "
              f"({'met' if gb <= limit_gb else 'NOT met'}).")
    print()
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "results": results}, indent=2, default=str))
        print(f"(numbers written to {args.json})")
    return results


def _mib(value) -> str:
    return "n/a" if value is None else f"{value:.0f} MiB"


if __name__ == "__main__":
    main()
