"""Evaluate a PIDM model on held-out pose-transfer pairs: SSIM, PSNR, and LPIPS / FID when available.

    python -m pidm_core.evaluate --model embedded --data synthetic --count 100 --out results.json
    python -m pidm_core.evaluate --model last.pt --data deepfashion:/data/fashion --count 8570 \\
        --steps 50 --baselines --grid grid.png --out results.json
    torchrun --nproc_per_node 8 -m pidm_core.evaluate ...   # pairs sharded by rank, rank 0 writes

What is evaluated and how: :mod:`pidm_core.evaluation`; the metrics: :mod:`pidm_core.metrics`.
"""

from __future__ import annotations

import argparse
import json
import math
import os
from pathlib import Path
from typing import Optional, Sequence

import torch
import torch.distributed as dist

from ..data import open_pairs
from ..evaluation import evaluate
from ..fit_modes import FIT_MODES
from ..samplers import add_settings_arguments, settings_from_args


def _device(name: str, local_rank: int) -> torch.device:
    """'auto' → this rank's GPU (LOCAL_RANK) when there is one, else the CPU."""
    device = torch.device(name) if name != "auto" else (
        torch.device("cuda", local_rank) if torch.cuda.is_available() else torch.device("cpu"))
    if device.type == "cuda":
        torch.cuda.set_device(device)  # all_gather_object over NCCL uses the current device
    return device


def _init_distributed(device: torch.device) -> int:
    """Join the torchrun process group (NCCL on GPUs, gloo on CPUs); returns the world size."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return dist.get_world_size() if dist.is_initialized() else 1


def _finite_json(value):
    """JSON has no infinity or NaN: write them as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_json(v) for v in value]
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pidm_core.evaluate", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--model", default="embedded", help="'embedded', a PIDM .safetensors or the official last.pt")
    parser.add_argument("--data", default="synthetic", help="'synthetic' (held-out seeds) or 'deepfashion:PATH' (test split)")
    parser.add_argument("--count", type=int, default=100, help="number of pairs, from the first; 0 = all (DeepFashion)")
    # pair i is sampled with --seed + i, in batches of --batch-size
    add_settings_arguments(parser, skip=("denoise", "frame_noise", "chunk_size"))
    parser.add_argument("--batch-size", type=int, default=8, help="pairs per forward pass (per process)")
    parser.add_argument("--fit", default="stretch", choices=FIT_MODES,
                        help="DeepFashion onto the square canvas: 'stretch' (the official loader) or 'pad' (aspect kept)")
    parser.add_argument("--device", default="auto", help="'auto' (the rank's GPU, else CPU), 'cpu', 'cuda:1', ...")
    parser.add_argument("--dtype", default="", help="fp32, fp16 or bf16; empty keeps the file's")
    parser.add_argument("--out", default="results.json", help="JSON file for the results (written by rank 0)")
    parser.add_argument("--grid", default="", help="optional PNG: rows of source | target pose | output | truth")
    parser.add_argument("--grid-rows", type=int, default=8, help="pairs shown in the grid")
    parser.add_argument("--baselines", action="store_true", help="also score copy-the-source and pose-only (null texture)")
    parser.add_argument("--no-lpips", action="store_true", help="skip LPIPS")
    parser.add_argument("--no-fid", action="store_true", help="skip FID")
    parser.add_argument("--allow-download", action="store_true", help="let lpips / pytorch-fid download their weights")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> dict:
    args = build_parser().parse_args(argv)
    from ..checkpoint import load_model, parse_dtype

    if args.count < 0 or (args.count == 0 and args.data == "synthetic"):
        raise ValueError(f"--count must be a number of pairs (0 = all, DeepFashion only), "
                         f"got {args.count} for --data {args.data}")
    device = _device(args.device, int(os.environ.get("LOCAL_RANK", "0")))
    joined = not dist.is_initialized()  # leave a process group we did not create to its owner
    world = _init_distributed(device)
    rank = dist.get_rank() if world > 1 else 0
    try:
        model = load_model(args.model, device=device, dtype=parse_dtype(args.dtype) if args.dtype else None)
        pairs = open_pairs(args.data, model.network.config.image_size, split="test", fit=args.fit)
        log = print if rank == 0 else (lambda _: None)
        result = evaluate(model, pairs, settings_from_args(args), count=args.count or None,
                          batch_size=args.batch_size, baselines=args.baselines, lpips=not args.no_lpips,
                          fid=not args.no_fid, allow_download=args.allow_download, grid_path=args.grid or None,
                          grid_rows=args.grid_rows, log=log)
        result = {"model": str(args.model), "model_name": model.info.name, "data": args.data, **result}
        if rank == 0:
            Path(args.out).write_text(json.dumps(_finite_json(result), indent=1, allow_nan=False) + "\n")
            summary = {"metrics": result["metrics"], **({"baselines": result["baselines"]} if args.baselines else {})}
            print(json.dumps(_finite_json(summary)))
            print(f"wrote {args.out}" + (f" and {args.grid}" if args.grid else ""))
        return result
    finally:
        if joined and dist.is_initialized():
            dist.destroy_process_group()


if __name__ == "__main__":
    main()
