"""Synthetic scenes (pidm_core.data.synthetic.scene): people small in larger, busy photos, two poses in
one scene, masks and boxes that match the drawing, determinism and bad arguments."""

from __future__ import annotations

import time

import numpy as np
import pytest

from pidm_core.data.synthetic import make_pair
from pidm_core.data.synthetic.scene import (
    PERSON_SCALE_RANGE,
    SCENE_ASPECTS,
    SCENE_MARGIN,
    SCENE_SEED_OFFSET,
    make_scene,
)

SEEDS = [SCENE_SEED_OFFSET + i for i in range(12)]


@pytest.fixture(scope="module")
def scenes():
    return [make_scene(seed, 128) for seed in SEEDS]


def test_same_seed_same_scene_and_different_seeds_differ():
    a, b, c = make_scene(SEEDS[0], 96), make_scene(SEEDS[0], 96), make_scene(SEEDS[1], 96)
    for field in ("source_image", "target_image", "background", "source_keypoints", "target_keypoints",
                  "source_mask", "target_mask"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    assert a.source_box == b.source_box and a.target_box == b.target_box
    assert not np.array_equal(a.source_image, c.source_image)


def test_types_shapes_and_aspects(scenes):
    for scene in scenes:
        h, w = scene.height, scene.width
        assert h == 128 and min(abs(w / h - a) for a in SCENE_ASPECTS) < 0.02
        for image in (scene.source_image, scene.target_image, scene.background):
            assert image.dtype == np.uint8 and image.shape == (h, w, 3)
        for mask in (scene.source_mask, scene.target_mask):
            assert mask.dtype == np.float32 and mask.shape == (h, w) and 0 <= mask.min() and mask.max() == 1
        for keypoints in (scene.source_keypoints, scene.target_keypoints):
            assert keypoints.dtype == np.float32 and keypoints.shape == (18, 3)
    assert len({round(s.width / s.height, 2) for s in scenes}) >= 3, "several aspect ratios"
    assert make_scene(SEEDS[0], 100, aspect=2.0).source_image.shape == (100, 200, 3)


def test_person_is_25_to_60_percent_of_the_scene_height_and_wholly_inside(scenes):
    for scene in scenes:
        assert PERSON_SCALE_RANGE[0] <= scene.person_scale <= PERSON_SCALE_RANGE[1]
        for pose, box in ((scene.source_pose, scene.source_box), (scene.target_pose, scene.target_box)):
            # the generator's body unit is the standing height: scale_px is the person's height in pixels
            assert pose.scale_px == pytest.approx(scene.person_scale * scene.height, rel=1e-5)
            x0, y0, x1, y1 = box
            margin = SCENE_MARGIN * scene.height - 2  # anti-aliased edges may reach a pixel further
            assert x0 >= margin and y0 >= margin and x1 <= scene.width - margin and y1 <= scene.height - margin
            # the drawn box: a standing figure is about its stature tall; raised arms or a stride change that
            assert 0.15 * scene.height <= y1 - y0 <= 0.8 * scene.height


def test_source_and_target_share_the_person_and_the_backdrop(scenes):
    for scene in scenes:
        for image, mask in ((scene.source_image, scene.source_mask), (scene.target_image, scene.target_mask)):
            # outside the figure the photo is the bare backdrop, pixel for pixel
            np.testing.assert_array_equal(image[mask == 0], scene.background[mask == 0])
            assert np.abs(image[mask == 1].astype(int) - scene.background[mask == 1]).sum(-1).mean() > 10
    assert sum(s.source_pose.kind != s.target_pose.kind for s in scenes) >= 3


def test_the_target_often_stands_elsewhere_uncovering_the_source_area(scenes):
    uncovered = [((s.source_mask > 0.5) & (s.target_mask < 0.5)).sum() / (s.source_mask > 0.5).sum() for s in scenes]
    assert np.median(uncovered) > 0.3


def test_backgrounds_are_not_studio_backdrops(scenes):
    for scene in scenes:
        background = scene.background.astype(np.float32)
        # far from one colour or one gradient: strong local structure in both directions
        assert background.std(axis=(0, 1)).max() > 12
        assert np.abs(np.diff(background, axis=0)).sum(-1).max() > 60
        assert np.abs(np.diff(background, axis=1)).sum(-1).max() > 60


def test_keypoints_sit_on_the_drawn_figure(scenes):
    for scene in scenes:
        for keypoints, mask in ((scene.source_keypoints, scene.source_mask), (scene.target_keypoints, scene.target_mask)):
            present = keypoints[:, 2] > 0
            assert present.sum() >= 8
            x, y = np.round(keypoints[present, :2]).astype(int).T
            near = [mask[max(0, b - 1):b + 2, max(0, a - 1):a + 2].max() for a, b in zip(x, y)]
            assert min(near) > 0, "a present joint lies off the figure"


def test_box_is_the_masks_extent(scenes):
    for scene in scenes:
        x0, y0, x1, y1 = scene.target_box
        ys, xs = np.nonzero(scene.target_mask)
        assert (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) == (x0, y0, x1, y1)


def test_a_larger_scene_is_the_same_scene():
    small, large = make_scene(SEEDS[2], 64), make_scene(SEEDS[2], 256)
    assert small.width * 4 == pytest.approx(large.width, abs=2)
    for a, b in ((small.source_keypoints, large.source_keypoints), (small.target_keypoints, large.target_keypoints)):
        np.testing.assert_array_equal(a[:, 2] > 0, b[:, 2] > 0)
        present = a[:, 2] > 0
        # pixel centres: x_large + 0.5 = 4 (x_small + 0.5); the margins are fractions of the height too
        np.testing.assert_allclose(a[present, :2] * 4 + 1.5, b[present, :2], atol=1.0)


def test_identity_is_the_pairs_identity_of_the_same_seed():
    # the first draws of a scene are the pair generator's identity: held-out seeds stay held out
    assert make_scene(SEEDS[3], 64).identity == make_pair(SEEDS[3]).identity


@pytest.mark.parametrize("height, aspect, match", [(16, None, "at least 32"), (64.5, None, "integer"),
                                                   (64, 0.1, "aspect"), (64, 9.0, "aspect")])
def test_bad_arguments_are_clear_errors(height, aspect, match):
    with pytest.raises(ValueError, match=match):
        make_scene(SEEDS[0], height, aspect)


def test_a_scene_is_quick():
    make_scene(SEEDS[4], 256)
    start = time.process_time()
    for seed in SEEDS[:2]:
        make_scene(seed, 256)
    assert (time.process_time() - start) / 2 < 0.5  # about 0.1 s of CPU per 256-pixel scene when measured
