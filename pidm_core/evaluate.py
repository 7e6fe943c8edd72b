"""Evaluate a PIDM model on held-out pose-transfer pairs: SSIM, PSNR, and LPIPS / FID when available.

    python -m pidm_core.evaluate --model embedded --data synthetic --count 100 --out results.json
    python -m pidm_core.evaluate --model last.pt --data deepfashion:/data/fashion --count 8570 \\
        --steps 50 --baselines --grid grid.png --out results.json
    torchrun --nproc_per_node 8 -m pidm_core.evaluate ...   # pairs sharded by rank, rank 0 writes

Pairs: the first ``count`` pairs of the test split (DeepFashion) or of the held-out synthetic seeds
(``HELD_OUT_SEED_OFFSET + i``). Pair ``i`` is sampled with its own noise, seed ``seed + i``. Under
torchrun each rank runs whole batches of the single-process run (:func:`shard_indices`) and the
per-pair results are gathered, so the numbers equal a single-process run on the same kind of device
and thread count (batched CPU/GPU kernels may round differently otherwise).

Frame: DeepFashion predictions are mapped back from the model's S×S canvas to the 176×256 photo
(:func:`pidm_core.canvas.restore_images`) and compared with the stored ground-truth photo, the
frame GFLA evaluates in and the official LPIPS / FID code resizes to; synthetic pairs are compared
on the canvas.

Metrics, following ``utils/metrics.py`` of the official code:

* SSIM: ``structural_similarity(truth, prediction, data_range=1, win_size=51, channel_axis=-1)`` on
  float32 RGB images divided by 255 — per-channel SSIM with a uniform 51×51 window (no Gaussian
  weighting, sample covariance, K1 = 0.01, K2 = 0.03), averaged over the three channels, then over
  pairs. This is the official ``compare_ssim(..., data_range=1, win_size=51, multichannel=True)``.
* PSNR: ``10·log10(255² / MSE)`` over all pixels and channels of the uint8 images (the official
  ``compare_psnr`` on images / 255 with data_range 1). Identical images have infinite PSNR; a pair's
  value is capped at :data:`PSNR_CAP_DB` before averaging.
* LPIPS (AlexNet, ``lpips`` package) on images scaled to [-1, 1], mean over pairs.
* FID (``pytorch-fid``'s Inception pool3 features, 2048-d) between the predictions and the
  ground-truth targets of the evaluated pairs. The paper's FID uses the whole training set as the
  real side; FID from a few hundred pairs is biased upwards, comparable only with runs of equal size.

LPIPS and FID need their package and pretrained weights in the torch hub cache; missing either, the
metric is reported as skipped (``null`` in the JSON) with the reason. Nothing is downloaded unless
``allow_download`` / ``--allow-download``.

Baselines (``--baselines``): ``copy_source`` predicts the source photo itself; ``pose_only`` runs
the same sampler with the source replaced by a zero image (the null texture), so the network sees
only the pose.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np
import torch
import torch.distributed as dist

from . import guidance
from .canvas import FIT_MODES, FitInfo, restore_images
from .data import open_pairs
from .pipeline import generate_from_tensors
from .pose.render import render_pose_map, render_skeleton_image
from .samplers import DEFAULT_SETTINGS, SamplingSettings, add_settings_arguments, settings_from_args

SSIM_WINDOW = 51
PSNR_CAP_DB = 100.0
BASELINES = ("copy_source", "pose_only")
# File names the torch hub cache holds once torchvision's AlexNet / pytorch-fid's Inception were fetched.
ALEXNET_WEIGHTS = "alexnet-owt-7be5be79.pth"
FID_INCEPTION_WEIGHTS = "pt_inception-2015-12-05-6726825d.pth"


# ---------------------------------------------------------------------------------------------
# Metrics on uint8 images


def _check_pair(prediction: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    prediction, truth = np.asarray(prediction), np.asarray(truth)
    if prediction.shape != truth.shape or prediction.ndim != 3 or prediction.shape[2] != 3:
        raise ValueError(f"prediction and truth must both be [H, W, 3] RGB, got {prediction.shape} and {truth.shape}")
    if prediction.dtype != np.uint8 or truth.dtype != np.uint8:
        raise ValueError(f"metrics take uint8 images, got {prediction.dtype} and {truth.dtype}")
    return prediction, truth


def ssim_window(height: int, width: int) -> int:
    """The protocol's 51-pixel window, or the largest odd window that fits a smaller image."""
    side = min(SSIM_WINDOW, height, width)
    return side if side % 2 else side - 1


def ssim_score(prediction: np.ndarray, truth: np.ndarray) -> float:
    """Mean SSIM of two uint8 ``[H, W, 3]`` images with the GFLA/PIDM protocol (module docstring).

    Images smaller than 51 pixels use the largest odd window that fits (:func:`ssim_window`).
    """
    from skimage.metrics import structural_similarity

    prediction, truth = _check_pair(prediction, truth)
    # float32 / 255 as the official script reads its PNGs; skimage then works in float32 too.
    truth_f = truth.astype(np.float32) / 255.0
    prediction_f = prediction.astype(np.float32) / 255.0
    window = ssim_window(*truth.shape[:2])
    if window < 3:
        raise ValueError(f"images of {truth.shape[1]}x{truth.shape[0]} pixels are too small for SSIM")
    return float(structural_similarity(truth_f, prediction_f, data_range=1.0, win_size=window, channel_axis=-1))


def psnr_score(prediction: np.ndarray, truth: np.ndarray, max_db: Optional[float] = PSNR_CAP_DB) -> float:
    """PSNR in dB of two uint8 ``[H, W, 3]`` images: ``10·log10(255² / MSE)``.

    Identical images give ``max_db`` (infinity when ``max_db`` is None); other values are capped
    at ``max_db`` too, so a mean over pairs stays finite.
    """
    prediction, truth = _check_pair(prediction, truth)
    mse = float(np.mean((prediction.astype(np.float64) - truth.astype(np.float64)) ** 2))
    value = math.inf if mse == 0 else 10.0 * math.log10(255.0**2 / mse)
    return value if max_db is None else min(value, float(max_db))


class MetricUnavailable(RuntimeError):
    """A metric whose package or weights are missing; the message says which and how to get them."""


def _hub_weights(file_name: str) -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / file_name


def _to_unit_tensor(image: np.ndarray, device: torch.device) -> torch.Tensor:
    """uint8 [H, W, 3] → float32 [1, 3, H, W] in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float().div(255.0).to(device)


def _offline_package(metric: str, module: str, package: str, network: str, weights: str, allow_download: bool):
    """The metric's package, once its pretrained ``network`` weights are in the torch hub cache (or
    ``allow_download``); otherwise MetricUnavailable saying what is missing and how to get it."""
    try:
        imported = importlib.import_module(module)
    except ImportError:
        raise MetricUnavailable(f"{metric} skipped: package {package} not installed (pip install {package})") from None
    if not allow_download and not _hub_weights(weights).is_file():
        raise MetricUnavailable(f"{metric} skipped: {network} weights not available offline ({_hub_weights(weights)} "
                                "is missing); pass --allow-download to fetch them")
    return imported


class LPIPSMetric:
    """LPIPS (Zhang et al. 2018) with the AlexNet backbone, as the official evaluation uses it."""

    def __init__(self, device: torch.device, allow_download: bool = False):
        lpips = _offline_package("LPIPS", "lpips", "lpips", "AlexNet", ALEXNET_WEIGHTS, allow_download)
        self.device = device
        self.model = lpips.LPIPS(net="alex", verbose=False).to(device).eval()

    @torch.no_grad()
    def __call__(self, prediction: np.ndarray, truth: np.ndarray) -> float:
        a = _to_unit_tensor(prediction, self.device) * 2 - 1
        b = _to_unit_tensor(truth, self.device) * 2 - 1
        return float(self.model(a, b).item())


class InceptionFeatures:
    """2048-d pool3 features of pytorch-fid's FID Inception network (the TF FID weights)."""

    def __init__(self, device: torch.device, allow_download: bool = False):
        inception = _offline_package("FID", "pytorch_fid.inception", "pytorch-fid", "Inception", FID_INCEPTION_WEIGHTS,
                                     allow_download)
        self.device = device
        self.model = inception.InceptionV3([inception.InceptionV3.BLOCK_INDEX_BY_DIM[2048]]).to(device).eval()

    @torch.no_grad()
    def __call__(self, image: np.ndarray) -> np.ndarray:
        return self.model(_to_unit_tensor(image, self.device))[0].reshape(-1).cpu().double().numpy()  # no float64 on MPS


def frechet_distance(real: np.ndarray, fake: np.ndarray) -> float:
    """FID of two feature sets [N, 2048] (pytorch-fid's Fréchet distance of their Gaussians)."""
    from pytorch_fid.fid_score import calculate_frechet_distance

    stats = [(f.mean(axis=0), np.cov(f, rowvar=False)) for f in (real, fake)]
    return float(calculate_frechet_distance(stats[0][0], stats[0][1], stats[1][0], stats[1][1]))


# ---------------------------------------------------------------------------------------------
# Pairs


def shard_indices(count: int, rank: int, world_size: int, batch_size: int = 1) -> list[int]:
    """Pair indices of one rank. The pairs ``0 … count-1`` are cut into batches of ``batch_size``
    (the batches a single process would run) and the batches are dealt out round-robin, so every
    index lands on exactly one rank and every batch holds the same pairs whatever the number of
    processes: batched convolutions then give the same numbers as the single-process run."""
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is not in a world of {world_size} processes")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    starts = range(rank * batch_size, count, world_size * batch_size)
    return [i for start in starts for i in range(start, min(start + batch_size, count))]


# ---------------------------------------------------------------------------------------------
# Evaluation


def _to_tensor(image: np.ndarray) -> torch.Tensor:
    """uint8 [H, W, 3] → float32 [3, H, W] in [-1, 1]."""
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float() / 127.5 - 1.0


def _canvas_to_uint8(x: torch.Tensor, fit: Optional[FitInfo]) -> np.ndarray:
    """Model outputs [B, 3, S, S] in [-1, 1] → uint8 [B, H, W, 3] in the metric frame."""
    x = x.detach().float().cpu()
    images = restore_images(x, fit) if fit is not None else ((x + 1) / 2).clamp(0, 1).permute(0, 2, 3, 1)
    return (images * 255.0).round().clamp(0, 255).to(torch.uint8).numpy()


class _Scorer:
    """Per-pair metrics; LPIPS and Inception are set up once, or their skip reasons recorded."""

    def __init__(self, device: torch.device, lpips: bool, fid: bool, allow_download: bool, log: Callable):
        self.skipped: dict[str, str] = {}
        self.lpips = self._open("lpips", lpips, LPIPSMetric, device, allow_download, log)
        self.inception = self._open("fid", fid, InceptionFeatures, device, allow_download, log)

    def _open(self, name: str, wanted: bool, factory, device: torch.device, allow_download: bool, log: Callable):
        if not wanted:
            self.skipped[name] = f"{name.upper()} skipped: not requested"
            return None
        try:
            return factory(device, allow_download)
        except MetricUnavailable as reason:
            self.skipped[name] = str(reason)
            log(str(reason))
            return None

    def __call__(self, prediction: np.ndarray, truth: np.ndarray) -> dict:
        scores = {"ssim": ssim_score(prediction, truth), "psnr": psnr_score(prediction, truth),
                  "lpips": self.lpips(prediction, truth) if self.lpips is not None else None}
        if self.inception is not None:
            scores["_features"] = self.inception(prediction)
        return scores


def _summary(records: list[dict], key: Optional[str], scorer: _Scorer, truth_features: list) -> dict:
    """Means over pairs of one method (``key`` None = the model, else a baseline name)."""
    rows = [r if key is None else r["baselines"][key] for r in records]
    out = {name: float(np.mean([row[name] for row in rows])) for name in ("ssim", "psnr")}
    out["lpips"] = float(np.mean([row["lpips"] for row in rows])) if scorer.lpips is not None else None
    out["fid"] = None
    if scorer.inception is not None and len(rows) >= 2:
        out["fid"] = frechet_distance(np.stack(truth_features), np.stack([row["_features"] for row in rows]))
    return out


def _strip_private(record: dict) -> dict:
    return {k: (_strip_private(v) if isinstance(v, dict) else v) for k, v in record.items() if not k.startswith("_")}


def _save_grid(path: str | Path, records: list[dict]) -> None:
    """Rows of source | target pose skeleton | output | truth (metric frame, uint8 PNG)."""
    from PIL import Image

    rows = [np.concatenate(r["_grid"], axis=1) for r in records if "_grid" in r]
    if rows:
        Image.fromarray(np.concatenate(rows, axis=0)).save(path)


@dataclass(frozen=True)
class _Job:
    """What every batch of one evaluation needs."""

    network: torch.nn.Module
    pairs: object
    settings: SamplingSettings
    scorer: _Scorer
    fit: Optional[FitInfo]  # not None: score in the native frame (pairs.native_pair)
    baselines: bool
    grid_rows: int  # pairs with a grid row (0 = no grid)

    @property
    def size(self) -> int:
        return self.network.config.image_size


def _generate_batch(job: _Job, batch: list[int], items: list) -> tuple[np.ndarray, Optional[np.ndarray]]:
    """Predictions (and pose-only baselines) of one batch, uint8 [B, H, W, 3] in the metric frame."""
    device = next(job.network.parameters()).device
    source = torch.stack([_to_tensor(it[0]) for it in items]).to(device)
    pose_map = torch.stack([torch.from_numpy(render_pose_map(it[3], job.size, job.size)) for it in items]).to(device)
    seeds = [job.settings.seed + i for i in batch]
    predictions = _canvas_to_uint8(generate_from_tensors(job.network, source, pose_map, job.settings, seeds=seeds), job.fit)
    if not job.baselines:
        return predictions, None
    zeros = torch.zeros_like(source)
    return predictions, _canvas_to_uint8(generate_from_tensors(job.network, zeros, pose_map, job.settings, seeds=seeds),
                                         job.fit)


def _score_pair(job: _Job, index: int, item: tuple, prediction: np.ndarray, pose_only: Optional[np.ndarray]) -> dict:
    """The record of one pair: its scores, its baselines' and (private keys) FID features and grid row."""
    if job.fit is not None:
        source_image, _, truth, target_pose = job.pairs.native_pair(index)
        target_keypoints, (height, width) = target_pose.keypoints, truth.shape[:2]
    else:
        source_image, truth, target_keypoints, (height, width) = item[0], item[2], item[3], (job.size, job.size)
    names = job.pairs.names(index) if hasattr(job.pairs, "names") else (None, None)
    record = {"index": index, "source": names[0], "target": names[1], **job.scorer(prediction, truth)}
    if job.scorer.inception is not None:
        record["_truth_features"] = job.scorer.inception(truth)
    if pose_only is not None:
        record["baselines"] = {"copy_source": job.scorer(source_image, truth), "pose_only": job.scorer(pose_only, truth)}
    if index < job.grid_rows:
        record["_grid"] = [source_image, render_skeleton_image(target_keypoints, height, width), prediction, truth]
    return record


def _evaluate_batch(job: _Job, batch: list[int]) -> list[dict]:
    items = [job.pairs.pair(i) for i in batch]
    if items[0][0].shape != (job.size, job.size, 3):
        raise ValueError(f"pairs give {items[0][0].shape} images but the model works on {job.size}x{job.size}x3; "
                         f"open the data with size={job.size}")
    predictions, pose_only = _generate_batch(job, batch, items)
    return [_score_pair(job, index, item, predictions[j], None if pose_only is None else pose_only[j])
            for j, (index, item) in enumerate(zip(batch, items))]


def _pair_count(pairs, count: Optional[int], batch_size: int, log: Callable[[str], None]) -> int:
    total = len(pairs) if count is None else int(count)
    if total < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    if total > len(pairs):
        log(f"only {len(pairs)} pairs available; evaluating all of them instead of {total}")
        total = len(pairs)
    return total


def _gather(records: list[dict], seconds: float, distributed: bool, world: int) -> tuple[list[dict], float]:
    """Every rank's records, by pair index, and the slowest rank's time."""
    if distributed:
        gathered: list = [None] * world
        dist.all_gather_object(gathered, (records, seconds))
        records = [r for part, _ in gathered for r in part]
        seconds = max(s for _, s in gathered)
    return sorted(records, key=lambda r: r["index"]), seconds


def _result(job: _Job, records: list[dict], seconds: float, batch_size: int, world: int) -> dict:
    """The JSON-ready result of :func:`evaluate` (private record keys dropped)."""
    scorer, size, fit = job.scorer, job.size, job.fit
    truth_features = [r["_truth_features"] for r in records] if scorer.inception is not None else []
    if scorer.inception is not None and len(records) < 2:
        scorer.skipped["fid"] = "FID skipped: it needs at least 2 pairs"
    height, width = (fit.height, fit.width) if fit is not None else (size, size)
    result = {
        "count": len(records),
        "frame": (f"native {width}x{height} (outputs mapped back from the {size}x{size} canvas)"
                  if fit is not None else f"model canvas {size}x{size}"),
        "settings": {**dataclasses.asdict(job.settings), "batch_size": batch_size, "world_size": world},
        "protocol": {
            "ssim": {"data_range": 1.0, "win_size": ssim_window(height, width), "gaussian_weights": False,
                     "use_sample_covariance": True, "K1": 0.01, "K2": 0.03,
                     "channels": "per RGB channel, averaged", "input": "float32 image / 255"},
            "psnr": {"data_range": 255, "cap_db": PSNR_CAP_DB},
            "lpips": "AlexNet, images in [-1, 1]",
            "fid": "pytorch-fid Inception pool3 (2048-d), predictions vs. ground truth of the evaluated pairs",
        },
        "metrics": _summary(records, None, scorer, truth_features),
        "skipped": dict(scorer.skipped),
        "seconds": round(seconds, 3),
    }
    if job.baselines:
        result["baselines"] = {name: _summary(records, name, scorer, truth_features) for name in BASELINES}
    result["per_pair"] = [_strip_private(r) for r in records]
    return result


def evaluate(model, pairs, settings: SamplingSettings = DEFAULT_SETTINGS, *, count: Optional[int] = None,
             batch_size: int = 8, baselines: bool = False, lpips: bool = True, fid: bool = True,
             allow_download: bool = False, grid_path: str | Path | None = None, grid_rows: int = 8,
             log: Callable[[str], None] = print) -> dict:
    """Generate the first ``count`` pairs of ``pairs`` with ``settings`` and score them against the ground truth.

    ``model``: a :class:`~pidm_core.checkpoint.PIDMModel` or a bare ``PIDMNetwork`` (its device and
    dtype are used). ``pairs``: an object with ``len()`` and ``pair(i) -> (source uint8 [S, S, 3],
    source keypoints [18, 3], target uint8 [S, S, 3], target keypoints [18, 3])`` on the model's
    canvas; if it also has ``native_pair(i)`` and ``fit`` (as :class:`DeepFashionPairs`), metrics are
    computed in the native frame. ``count`` None = every pair. Pair i is sampled with seed
    ``settings.seed + i``. Under ``torch.distributed`` each rank evaluates its share
    (:func:`shard_indices`) and every rank returns the merged result.

    Returns a JSON-ready dict: ``metrics`` (means of ssim, psnr, lpips, fid; None when skipped),
    ``skipped`` (reasons), ``baselines`` (same keys per baseline), ``per_pair`` and the settings.
    ``seconds``: wall time of generation and scoring (of the slowest rank).
    """
    network = model.network if hasattr(model, "network") else model
    guidance.require_supported(settings.guidance, getattr(model, "info", None))
    network.eval()
    distributed = dist.is_available() and dist.is_initialized()
    rank, world = (dist.get_rank(), dist.get_world_size()) if distributed else (0, 1)
    log = log if rank == 0 else (lambda _: None)
    total = _pair_count(pairs, count, batch_size, log)
    fit: Optional[FitInfo] = getattr(pairs, "fit", None) if hasattr(pairs, "native_pair") else None
    scorer = _Scorer(next(network.parameters()).device, lpips, fid, allow_download, log)
    job = _Job(network, pairs, settings, scorer, fit, baselines, grid_rows if grid_path is not None else 0)

    local = shard_indices(total, rank, world, batch_size)  # whole batches: chunking it again gives them back
    records: list[dict] = []
    start = time.time()
    for begin in range(0, len(local), batch_size):
        records += _evaluate_batch(job, local[begin:begin + batch_size])
        where = f" on rank 0 of {world}" if world > 1 else ""
        log(f"evaluated {min(begin + batch_size, len(local))}/{len(local)} pairs{where}")
    records, seconds = _gather(records, time.time() - start, distributed, world)
    if grid_path is not None and rank == 0:
        _save_grid(grid_path, records)
    return _result(job, records, seconds, batch_size, world)


# ---------------------------------------------------------------------------------------------
# Command line


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
    from .checkpoint import load_model, parse_dtype

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
