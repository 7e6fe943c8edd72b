"""Evaluate a PIDM model on held-out pose-transfer pairs: SSIM, PSNR, and LPIPS / FID when available.

Pairs: the first ``count`` pairs of the test split (DeepFashion) or of the held-out synthetic seeds
(``HELD_OUT_SEED_OFFSET + i``). Pair ``i`` is sampled with its own noise, seed ``seed + i``. Under
torchrun each rank runs whole batches of the single-process run (:func:`shard_indices`) and the
per-pair results are gathered, so the numbers equal a single-process run on the same kind of device
and thread count (batched CPU/GPU kernels may round differently otherwise).

Frame: DeepFashion predictions are mapped back from the model's S×S canvas to the 176×256 photo
(:meth:`pidm_core.placement.Placement.output_images`) and compared with the stored ground-truth photo, the
frame GFLA evaluates in and the official LPIPS / FID code resizes to; synthetic pairs are compared
on the canvas.

Metrics and their protocol: :mod:`pidm_core.metrics`; the command line: :mod:`pidm_core.cli.evaluate`.

Baselines (``--baselines``): ``copy_source`` predicts the source photo itself; ``pose_only`` runs
the same sampler with the source replaced by a zero image (the null texture), so the network sees
only the pose.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch
import torch.distributed as dist

from . import guidance
from .placement import Placement
from .data import to_image_tensor
from .metrics import (PSNR_CAP_DB, InceptionFeatures, LPIPSMetric, MetricUnavailable, frechet_distance, psnr_score,
                      ssim_score, ssim_window)
from .pipeline import generate_from_tensors
from .pose.render import render_pose_map, render_skeleton_image
from .samplers import DEFAULT_SETTINGS, SamplingSettings

BASELINES = ("copy_source", "pose_only")


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


def _canvas_to_uint8(x: torch.Tensor, fit: Optional[Placement]) -> np.ndarray:
    """Model outputs [B, 3, S, S] in [-1, 1] → uint8 [B, H, W, 3] in the metric frame."""
    x = x.detach().float().cpu()
    images = fit.output_images(x) if fit is not None else ((x + 1) / 2).clamp(0, 1).permute(0, 2, 3, 1)
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
    fit: Optional[Placement]  # not None: score in the native frame (pairs.native_pair)
    baselines: bool
    grid_rows: int  # pairs with a grid row (0 = no grid)

    @property
    def size(self) -> int:
        return self.network.config.image_size


def _generate_batch(job: _Job, batch: list[int], items: list) -> tuple[np.ndarray, Optional[np.ndarray]]:
    """Predictions (and pose-only baselines) of one batch, uint8 [B, H, W, 3] in the metric frame."""
    device = next(job.network.parameters()).device
    source = torch.stack([to_image_tensor(it[0]) for it in items]).to(device)
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
    height, width = (fit.photo_height, fit.photo_width) if fit is not None else (size, size)
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
    fit: Optional[Placement] = getattr(pairs, "fit", None) if hasattr(pairs, "native_pair") else None
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
