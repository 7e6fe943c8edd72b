"""Procedural training pairs (pidm_core.data.synthetic): determinism, keypoints that sit on the drawn
figure, shared backgrounds, dataset tensors, pose kinds and speed."""

from __future__ import annotations

import time

import cv2
import numpy as np
import pytest
import torch

from pidm_core.data.synthetic import (
    HELD_OUT_SEED_OFFSET,
    OUT_OF_FRAME_MARGIN,
    POSE_KINDS,
    TRAIN_SEED_OFFSET,
    SyntheticPairs,
    make_pair,
    render_background,
    render_person,
    sample_identity,
    sample_pose,
)
from pidm_core.pose.keypoints import JOINT_NAMES

J = {name: i for i, name in enumerate(JOINT_NAMES)}
TORSO_JOINTS = [J[n] for n in ("neck", "right_shoulder", "left_shoulder", "right_hip", "left_hip")]
SEEDS = range(24)


def figure_mask(image: np.ndarray, background: np.ndarray) -> np.ndarray:
    """Pixels that differ visibly from the bare backdrop."""
    return np.abs(image.astype(int) - background.astype(int)).sum(axis=-1) > 20


def in_frame(keypoints: np.ndarray, height: int, width: int) -> np.ndarray:
    x, y, c = keypoints.T
    return (c > 0) & (x >= 0) & (x <= width - 1) & (y >= 0) & (y <= height - 1)


def views(pair):
    yield pair.source_image, pair.source_pose
    yield pair.target_image, pair.target_pose


def test_same_seed_same_pair_and_different_seeds_differ():
    a, b, c = make_pair(7), make_pair(7), make_pair(8)
    for field in ("source_image", "source_keypoints", "target_image", "target_keypoints"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    assert not np.array_equal(a.source_image, c.source_image)
    assert not np.allclose(a.source_keypoints, c.source_keypoints)


def test_types_and_shapes():
    pair = make_pair(1)
    for image in (pair.source_image, pair.target_image):
        assert image.dtype == np.uint8 and image.shape == (64, 64, 3)
    for keypoints in (pair.source_keypoints, pair.target_keypoints):
        assert keypoints.dtype == np.float32 and keypoints.shape == (18, 3)
        assert set(np.unique(keypoints[:, 2])) <= {0.0, 1.0}
        assert (keypoints[keypoints[:, 2] == 0] == 0).all()  # missing joints carry no stale coordinates


def test_keypoints_sit_on_the_drawn_figure():
    for seed in SEEDS:
        pair = make_pair(seed)
        background = render_background(pair.identity.background, 64, 64)
        for image, pose in views(pair):
            mask = figure_mask(image, background)
            keypoints = pose.keypoints
            padded = np.pad(mask, 1)
            for j in TORSO_JOINTS:
                if in_frame(keypoints[j : j + 1], 64, 64)[0]:
                    x, y = np.round(keypoints[j, :2]).astype(int)
                    # Most of the 3x3 pixels around the joint are figure; one pixel alone could be a
                    # fine pattern averaging to the backdrop's colour.
                    around = padded[y : y + 3, x : x + 3].sum()
                    assert around >= 5, f"seed {seed}: {JOINT_NAMES[j]} at ({x}, {y}) is on the background"
            ys, xs = np.nonzero(mask)
            inside = keypoints[in_frame(keypoints, 64, 64)]
            assert (inside[:, 0] >= xs.min() - 1).all() and (inside[:, 0] <= xs.max() + 1).all(), f"seed {seed}"
            assert (inside[:, 1] >= ys.min() - 1).all() and (inside[:, 1] <= ys.max() + 1).all(), f"seed {seed}"
            if not pose.out_of_frame:
                assert 0.68 <= (ys.max() - ys.min() + 1) / 64 <= 0.97, f"seed {seed}: figure height off"


def test_pair_shares_background_and_identity_but_not_pose():
    for seed in range(8):
        pair = make_pair(seed)
        background = render_background(pair.identity.background, 64, 64)
        # A few pixels away from both figures (clear of anti-aliased fringes) the images are one
        # backdrop, pixel for pixel.
        figures = figure_mask(pair.source_image, background) | figure_mask(pair.target_image, background)
        both_bare = cv2.dilate(figures.astype(np.uint8), np.ones((5, 5), np.uint8)) == 0
        assert both_bare.mean() > 0.3, f"seed {seed}: the figures cover the canvas"
        np.testing.assert_array_equal(pair.source_image[both_bare], pair.target_image[both_bare])
        assert np.abs(pair.source_image.astype(int) - pair.target_image.astype(int)).mean() > 1.0
        moved = np.linalg.norm(pair.source_pose.joints_px - pair.target_pose.joints_px, axis=1)
        assert moved.max() > 2.0, f"seed {seed}: source and target poses are the same"


def test_dataset_items():
    dataset = SyntheticPairs(3, size=32, seed_offset=HELD_OUT_SEED_OFFSET)
    assert len(dataset) == 3
    item = dataset[2]
    expected = {
        "source_image": (3, 32, 32),
        "target_image": (3, 32, 32),
        "source_pose": (20, 32, 32),
        "target_pose": (20, 32, 32),
        "source_keypoints": (18, 3),
        "target_keypoints": (18, 3),
    }
    assert set(item) == set(expected)
    for key, shape in expected.items():
        assert item[key].dtype == torch.float32 and tuple(item[key].shape) == shape, key
    for key in ("source_image", "target_image"):
        assert item[key].min() >= -1.0 and item[key].max() <= 1.0
        assert item[key].min() < 0 < item[key].max()  # uses the range, not a constant
    for key in ("source_pose", "target_pose"):
        assert item[key].min() >= 0.0 and item[key].max() <= 1.0
    pair = make_pair(HELD_OUT_SEED_OFFSET + 2, 32)
    np.testing.assert_allclose(item["target_keypoints"].numpy(), pair.target_keypoints)
    expected_image = pair.source_image.transpose(2, 0, 1) / 127.5 - 1
    np.testing.assert_allclose(item["source_image"].numpy(), expected_image, atol=1e-6)
    with pytest.raises(IndexError):
        dataset[3]


def test_held_out_split_never_meets_training_seeds():
    assert TRAIN_SEED_OFFSET == 0 and HELD_OUT_SEED_OFFSET == 10_000_000
    train = SyntheticPairs(4)
    held_out = SyntheticPairs(4, seed_offset=HELD_OUT_SEED_OFFSET)
    assert not torch.equal(train[0]["source_image"], held_out[0]["source_image"])


@pytest.mark.parametrize("size", [128, (48, 80), (96, 40)])
def test_other_canvas_sizes(size):
    height, width = (size, size) if isinstance(size, int) else size
    pair = make_pair(3, size)
    assert pair.source_image.shape == (height, width, 3)
    background = render_background(pair.identity.background, height, width)
    for image, pose in views(pair):
        keypoints = pose.keypoints
        present = keypoints[:, 2] > 0
        margin = OUT_OF_FRAME_MARGIN * max(height, width) + 1
        assert (keypoints[present, 0] >= -margin).all() and (keypoints[present, 0] <= width - 1 + margin).all()
        assert (keypoints[present, 1] >= -margin).all() and (keypoints[present, 1] <= height - 1 + margin).all()
        assert figure_mask(image, background).any()


def test_a_larger_canvas_shows_the_same_scene():
    small, large = make_pair(11, 64), make_pair(11, 128)
    both = (small.source_keypoints[:, 2] > 0) & (large.source_keypoints[:, 2] > 0)
    assert both.sum() >= 10
    # Pixel centres: output pixel i of 64 covers pixels 2i and 2i+1 of 128, centred at 2i + 0.5.
    np.testing.assert_allclose(large.source_keypoints[both, :2], 2 * small.source_keypoints[both, :2] + 0.5, atol=2.0)


@pytest.mark.parametrize("kind", POSE_KINDS)
def test_every_pose_kind(kind):
    rng = np.random.default_rng(5)
    identity = sample_identity(rng)
    for _ in range(3):
        pose = sample_pose(rng, identity, 64, 64, kind)
        assert pose.kind == kind and pose.keypoints.shape == (18, 3)
        image = render_person(identity, pose)
        assert image.shape == (64, 64, 3) and image.dtype == np.uint8
        if not pose.out_of_frame:
            assert pose.keypoints[J["neck"], 2] > 0
        if kind == "side" and not pose.out_of_frame:  # the far shoulder hides behind the chest
            assert (pose.keypoints[[J["right_shoulder"], J["left_shoulder"]], 2] == 0).sum() == 1
        if kind == "back":
            assert (pose.keypoints[[J["nose"], J["right_eye"], J["left_eye"]], 2] == 0).all()


def test_unknown_pose_kind_is_an_error():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="cartwheel"):
        sample_pose(rng, sample_identity(rng), 64, 64, "cartwheel")


def test_arms_raised_puts_both_wrists_above_the_shoulders():
    rng = np.random.default_rng(2)
    for _ in range(10):
        identity = sample_identity(rng)
        pose = sample_pose(rng, identity, 64, 64, "arms_raised")
        wrists = pose.joints_px[[J["right_wrist"], J["left_wrist"]], 1]
        shoulders = pose.joints_px[[J["right_shoulder"], J["left_shoulder"]], 1]
        assert wrists.max() < shoulders.min()
        present = pose.keypoints[:, 2] > 0
        for wrist in (J["right_wrist"], J["left_wrist"]):
            if present[wrist]:
                assert pose.keypoints[wrist, 1] == pose.joints_px[wrist, 1]


def test_hands_behind_the_back_usually_hide_a_wrist():
    rng = np.random.default_rng(4)
    hidden_wrist = 0
    for _ in range(20):
        identity = sample_identity(rng)
        pose = sample_pose(rng, identity, 64, 64, "hands_behind")
        hidden_wrist += (pose.keypoints[[J["right_wrist"], J["left_wrist"]], 2] == 0).any()
    assert hidden_wrist >= 14


def test_generation_is_fast():
    dataset = SyntheticPairs(40)
    dataset[0]  # warm-up: imports, cv2 first calls
    # CPU time, not wall time: a busy test machine delays the process without making it slower.
    start = time.process_time()
    for index in range(1, 40):
        dataset[index]
    per_item = (time.process_time() - start) / 39
    # About 4 ms per item on one core (module docstring); the bound leaves room for slow machines.
    assert per_item < 0.025, f"{per_item * 1e3:.1f} ms of CPU per 64x64 item"
