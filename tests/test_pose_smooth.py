"""Per-joint temporal smoothing: it removes jitter without moving the joints off their path."""

from __future__ import annotations

import numpy as np
import pytest

from pidm_core.pose.smooth import METHODS, savgol_half_window, smooth_keypoints

FPS = 25.0


def swinging(frames: int = 120) -> np.ndarray:
    """Truth [frames, 18, 3]: joints on slow circles (0.5 Hz) of 20 px around fixed points, person ~150 px."""
    t = np.arange(frames)[:, None] / FPS
    phase = np.linspace(0, np.pi, 18)[None, :]
    out = np.zeros((frames, 18, 3))
    out[:, :, 0] = 100 + 6 * np.arange(18)[None, :] + 20 * np.cos(2 * np.pi * 0.5 * t + phase)
    out[:, :, 1] = 40 + 8 * np.arange(18)[None, :] + 20 * np.sin(2 * np.pi * 0.5 * t + phase)
    out[:, :, 2] = 0.9
    return out


def noisy(truth: np.ndarray, sigma: float = 3.0, seed: int = 0) -> np.ndarray:
    seen = truth.copy()
    seen[:, :, :2] += np.random.default_rng(seed).normal(0, sigma, truth[:, :, :2].shape)
    return seen


def error(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a[:, :, :2] - b[:, :, :2], axis=2).mean())


def jitter(a: np.ndarray) -> float:
    return float(np.linalg.norm(a[2:, :, :2] - 2 * a[1:-1, :, :2] + a[:-2, :, :2], axis=2).mean())


@pytest.mark.parametrize("method", METHODS)
def test_smoothing_brings_noisy_joints_closer_to_the_truth(method):
    truth = swinging()
    seen = noisy(truth)
    smoothed = smooth_keypoints(seen, FPS, 0.5, method)
    assert error(smoothed, truth) < 0.6 * error(seen, truth)
    assert jitter(smoothed) < 0.3 * jitter(seen)
    stronger = smooth_keypoints(seen, FPS, 1.0, method)
    assert jitter(stronger) < jitter(smoothed)


@pytest.mark.parametrize("method", METHODS)
def test_strength_zero_is_off_and_missing_joints_stay_missing(method):
    seen = noisy(swinging(40))
    assert np.array_equal(smooth_keypoints(seen, FPS, 0.0, method), seen.astype(np.float32))
    seen[10:14, 3] = 0
    smoothed = smooth_keypoints(seen, FPS, 0.7, method)
    assert not (smoothed[10:14, 3] != 0).any()
    assert np.array_equal(smoothed[:, :, 2], seen[:, :, 2].astype(np.float32))
    assert np.isfinite(smoothed).all()


def test_savgol_keeps_straight_and_curved_motion_exactly():
    # a quadratic fit reproduces motion up to constant acceleration, at the ends and around gaps too
    t = np.arange(60, dtype=np.float64)
    keypoints = np.zeros((60, 18, 3))
    keypoints[:, :, 0] = (5 + 1.5 * t + 0.02 * t ** 2)[:, None]
    keypoints[:, :, 1] = (200 - 0.7 * t)[:, None]
    keypoints[:, :, 2] = np.random.default_rng(1).uniform(0.3, 1.0, (60, 18))
    keypoints[20:23, 5, 2] = 0
    smoothed = smooth_keypoints(keypoints, FPS, 1.0, "savgol")
    present = keypoints[:, :, 2] > 0
    assert np.abs(smoothed[present, :2] - keypoints[present, :2]).max() < 1e-4  # float32 rounding


def test_confident_frames_pull_harder():
    # a wrong low-confidence frame moves the result less than the same error at full confidence
    keypoints = np.zeros((30, 18, 3))
    keypoints[:, :, :2] = 100.0
    keypoints[:, :, 2] = 1.0
    keypoints[15, :, 0] = 140.0
    for method in METHODS:
        sure = smooth_keypoints(keypoints, FPS, 0.6, method)[15, 0, 0]
        keypoints[15, :, 2] = 0.1
        unsure = smooth_keypoints(keypoints, FPS, 0.6, method)[15, 0, 0]
        keypoints[15, :, 2] = 1.0
        assert 100 <= unsure < sure < 140


def test_window_scales_with_frame_rate():
    assert savgol_half_window(50, 0.5) == 2 * savgol_half_window(25, 0.5)
    assert savgol_half_window(25, 0.01) == 1


def test_bad_arguments():
    seen = swinging(10)
    with pytest.raises(ValueError, match="strength"):
        smooth_keypoints(seen, FPS, 1.5)
    with pytest.raises(ValueError, match="method"):
        smooth_keypoints(seen, FPS, 0.5, "kalman")
    with pytest.raises(ValueError, match="frame_rate"):
        smooth_keypoints(seen, 0, 0.5)
    with pytest.raises(ValueError, match="frames, joints, 3"):
        smooth_keypoints(seen[0], FPS, 0.5)
    assert smooth_keypoints(seen[:2], FPS, 0.5).shape == (2, 18, 3)
