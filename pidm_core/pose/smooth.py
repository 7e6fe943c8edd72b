"""Per-joint temporal smoothing of a pose sequence, weighted by the detector's confidence.

Two filters, each with a ``strength`` from 0 (off: the joints are returned unchanged) to 1 (strongest):

* ``"one_euro"``: the One Euro filter (Casiraghi, Roussel, Vogel 2012), an exponential average whose
  cut-off rises with the joint's speed, so a still joint is held steady and a fast one follows without
  lag. Run forwards and backwards and averaged (the whole video is known, so no lag is needed). Speeds
  are measured in person heights per second, so the same strength suits any frame size. A joint's
  confidence scales how much a new observation moves the estimate.
* ``"savgol"``: Savitzky–Golay, a local quadratic fitted over a window of frames around each frame,
  here by weighted least squares with the confidences as weights (a missing joint has weight 0, so the
  fit simply uses the frames that have it). The window grows with the strength (in seconds, so it
  means the same at any frame rate).

A joint missing in a frame stays missing; confidences are not changed. Which filter and which strength
is the default was measured on synthetic driving videos with known joints (benchmarks/video_poses.py;
docs/video_poses.md): :data:`DEFAULT_METHOD`, :data:`DEFAULT_STRENGTH`.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.ndimage import correlate1d

METHODS = ("one_euro", "savgol")
DEFAULT_METHOD = "savgol"
DEFAULT_STRENGTH = 0.5

# One Euro: the cut-off of a still joint goes from MAX_CUTOFF_HZ (strength -> 0) to MIN_CUTOFF_HZ
# (strength 1) on a log scale; BETA raises it with speed (per person height per second).
MAX_CUTOFF_HZ, MIN_CUTOFF_HZ = 8.0, 0.25
BETA = 1.0
DERIVATIVE_CUTOFF_HZ = 1.0
# Savitzky–Golay: half-window in seconds at strength 1; quadratic fit.
MAX_HALF_WINDOW_S = 0.4
SAVGOL_ORDER = 2


def _check(keypoints: np.ndarray, frame_rate: float, strength: float, method: str) -> np.ndarray:
    keypoints = np.asarray(keypoints, dtype=np.float64)
    if keypoints.ndim != 3 or keypoints.shape[2] != 3:
        raise ValueError(f"keypoints to smooth must be [frames, joints, 3] (x, y, confidence), got {keypoints.shape}")
    if method not in METHODS:
        raise ValueError(f"smoothing method must be one of {METHODS}, got {method!r}")
    if isinstance(strength, bool) or not isinstance(strength, (int, float, np.integer, np.floating)) or not (
            0 <= float(strength) <= 1):
        raise ValueError(f"smoothing strength must be a number from 0 (off) to 1, got {strength!r}")
    if not (math.isfinite(float(frame_rate)) and float(frame_rate) > 0):
        raise ValueError(f"frame_rate must be a positive number of frames per second, got {frame_rate!r}")
    return keypoints


def smooth_keypoints(keypoints: np.ndarray, frame_rate: float, strength: float = DEFAULT_STRENGTH,
                     method: str = DEFAULT_METHOD, size: float | None = None) -> np.ndarray:
    """Smoothed copy of ``keypoints`` float ``[T, J, 3]`` (x_px, y_px, confidence; <= 0 = missing).

    ``frame_rate``: frames per second of the sequence as given. ``strength``: 0..1 (0 = unchanged).
    ``method``: ``"one_euro"`` | ``"savgol"``. ``size``: person height in pixels (One Euro's speeds are
    measured in it); default: the median height of the joints' boxes."""
    keypoints = _check(keypoints, frame_rate, strength, method)
    out = keypoints.copy()
    if float(strength) == 0 or len(keypoints) < 3:
        return out.astype(np.float32)
    confidence = np.clip(np.where(keypoints[:, :, 2] > 0, keypoints[:, :, 2], 0.0), 0.0, 1.0)
    if method == "savgol":
        out[:, :, :2] = _savgol(keypoints[:, :, :2], confidence, _half_window(frame_rate, strength))
    else:
        scale = size if size and size > 0 else _median_height(keypoints)
        forwards = _one_euro(keypoints[:, :, :2], confidence, frame_rate, strength, scale)
        backwards = _one_euro(keypoints[::-1, :, :2], confidence[::-1], frame_rate, strength, scale)[::-1]
        out[:, :, :2] = (forwards + backwards) / 2
    present = keypoints[:, :, 2] > 0
    out[~present] = keypoints[~present]
    return out.astype(np.float32)


def _median_height(keypoints: np.ndarray) -> float:
    heights = []
    for frame in keypoints:
        ys = frame[frame[:, 2] > 0, 1]
        if len(ys) >= 2:
            heights.append(ys.max() - ys.min())
    return float(np.median(heights)) if heights and np.median(heights) > 0 else 100.0


# --------------------------------------------------------------------------------------------------
# One Euro


def one_euro_cutoff(strength: float) -> float:
    """The cut-off (Hz) of a still joint at ``strength`` (0 < strength <= 1)."""
    return MAX_CUTOFF_HZ * (MIN_CUTOFF_HZ / MAX_CUTOFF_HZ) ** float(strength)


def _alpha(cutoff: np.ndarray | float, dt: float) -> np.ndarray:
    tau = 1.0 / (2 * np.pi * np.asarray(cutoff))
    return 1.0 / (1.0 + tau / dt)


def _one_euro(xy: np.ndarray, confidence: np.ndarray, frame_rate: float, strength: float, scale: float) -> np.ndarray:
    """Causal One Euro over frames for every joint at once; a missing joint keeps its state, a joint
    unseen for more than a second starts afresh."""
    dt = 1.0 / float(frame_rate)
    min_cutoff = one_euro_cutoff(strength)
    alpha_derivative = _alpha(DERIVATIVE_CUTOFF_HZ, dt)
    out = xy.copy()
    estimate = xy[0].copy()
    speed = np.zeros(xy.shape[1:])
    last_seen = np.where(confidence[0] > 0, 0, -(10 ** 9))
    for t in range(len(xy)):
        seen = confidence[t] > 0
        fresh = seen & (t - last_seen > frame_rate)
        estimate[fresh], speed[fresh] = xy[t][fresh], 0.0
        gap = np.maximum(1, t - last_seen)[:, None]
        derivative = (xy[t] - estimate) / (gap * dt) / scale
        speed = np.where(seen[:, None], alpha_derivative * derivative + (1 - alpha_derivative) * speed, speed)
        cutoff = min_cutoff + BETA * np.linalg.norm(speed, axis=1)
        alpha = _alpha(cutoff, dt) * confidence[t]
        estimate = np.where(seen[:, None], estimate + alpha[:, None] * (xy[t] - estimate), estimate)
        last_seen = np.where(seen, t, last_seen)
        out[t] = estimate
    return out


# --------------------------------------------------------------------------------------------------
# Savitzky–Golay with weights


def savgol_half_window(frame_rate: float, strength: float) -> int:
    """Frames on each side of the window at ``strength`` (at least 1 when strength > 0)."""
    return max(1, int(round(float(strength) * MAX_HALF_WINDOW_S * float(frame_rate))))


_half_window = savgol_half_window


def _savgol(xy: np.ndarray, weight: np.ndarray, half: int) -> np.ndarray:
    """Weighted local polynomial (order :data:`SAVGOL_ORDER`, lower where the window holds too few
    frames with the joint) evaluated at each frame's centre. Moments are window sums, computed as
    correlations along time: M_k = Σ w·d^k, R_k = Σ w·d^k·x over offsets d in [-half, half]."""
    offsets = np.arange(-half, half + 1, dtype=np.float64)
    order = SAVGOL_ORDER
    moments = [correlate1d(weight, offsets ** k, axis=0, mode="constant") for k in range(2 * order + 1)]
    counts = correlate1d((weight > 0).astype(np.float64), np.ones_like(offsets), axis=0, mode="constant")
    out = xy.copy()
    for axis in range(2):
        values = xy[:, :, axis] * weight
        sums = [correlate1d(values, offsets ** k, axis=0, mode="constant") for k in range(order + 1)]
        result = np.where(moments[0] > 0, sums[0] / np.maximum(moments[0], 1e-12), xy[:, :, axis])  # order 0
        for degree in range(1, order + 1):
            system = np.stack([np.stack([moments[i + k] for k in range(degree + 1)], -1) for i in range(degree + 1)], -2)
            rhs = np.stack(sums[:degree + 1], -1)
            usable = (counts >= 2 * degree + 1) & (np.abs(np.linalg.det(system)) > 1e-9)
            if not usable.any():
                break
            solved = np.linalg.solve(system[usable], rhs[usable][..., None])[..., 0, 0]
            result[usable] = solved
        out[:, :, axis] = result
    return out
