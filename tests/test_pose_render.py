"""The 20-channel pose map against maps made by the official loader's logic (tests/fixtures)."""

from pathlib import Path

import cv2
import numpy as np
import pytest

from pidm_core.pose import LIMBS, Pose, pose_from_array, render_pose_map, render_skeleton_image

FIXTURE = Path(__file__).parent / "fixtures" / "pose_maps_official_256.npz"
CASES = ("full_body", "missing_joints", "off_canvas", "side_no_neck")


@pytest.fixture(scope="module")
def official():
    with np.load(FIXTURE) as data:
        return {key: data[key] for key in data.files}


def _pose(official, case: str) -> Pose:
    return pose_from_array(official[f"{case}_keypoints"], 256, 256)


@pytest.mark.parametrize("case", CASES)
def test_matches_official_map_exactly_at_256(official, case):
    pose_map = render_pose_map(_pose(official, case).keypoints, 256, 256)
    expected = official[f"{case}_map"].astype(np.float32) / np.float32(255.0)
    assert pose_map.shape == (20, 256, 256) and pose_map.dtype == np.float32
    np.testing.assert_array_equal(pose_map, expected)


def test_float64_official_keypoints_render_identically(official):
    # render_pose_map also takes raw float64 [18, 3] arrays (no Pose, no float32 rounding).
    keypoints = official["off_canvas_keypoints"]
    confidence = (~(keypoints == -1).any(axis=1)).astype(np.float64)[:, None]
    pose_map = render_pose_map(np.concatenate([keypoints, confidence], axis=1), 256, 256)
    np.testing.assert_array_equal(pose_map, official["off_canvas_map"] / np.float32(255.0))


@pytest.mark.parametrize("case", CASES)
def test_64_map_is_close_to_downsampled_256_map(official, case):
    pose = _pose(official, case)
    big = render_pose_map(pose.keypoints, 256, 256)
    small = render_pose_map(pose.keypoints * np.float32([0.25, 0.25, 1.0]), 64, 64)
    downsampled = cv2.resize(big.transpose(1, 2, 0), (64, 64), interpolation=cv2.INTER_AREA).transpose(2, 0, 1)
    difference = np.abs(small - downsampled)
    assert difference[3:].max() < 0.02  # distance maps: lengths and divisor scale with the height
    assert difference[:3].mean() < 0.03  # the drawn skeleton differs only along anti-aliasing-free edges


@pytest.mark.parametrize("height, width", [(256, 176), (64, 64), (512, 352), (37, 23)])
def test_shapes_and_ranges_at_other_sizes(official, height, width):
    pose = _pose(official, "full_body")
    keypoints = pose.keypoints * np.float32([width / 256, height / 256, 1.0])
    pose_map = render_pose_map(keypoints, height, width)
    assert pose_map.shape == (20, height, width) and pose_map.dtype == np.float32
    assert np.isfinite(pose_map).all() and pose_map.min() >= 0.0 and pose_map.max() <= 1.0
    # every limb is present, so every distance map touches 0 on the limb
    assert (pose_map[3:].reshape(17, -1).min(axis=1) == 0.0).all()


def test_missing_limbs_are_all_one(official):
    pose = _pose(official, "missing_joints")
    pose_map = render_pose_map(pose.keypoints, 256, 256)
    for limb, (a, b) in enumerate(LIMBS):
        channel = pose_map[3 + limb]
        if pose.present[a] and pose.present[b]:
            assert channel.min() == 0.0
        else:
            assert (channel == 1.0).all(), f"limb {limb} {a}-{b} should be all 1.0"


def test_empty_pose_gives_black_skeleton_and_all_one_distances():
    pose_map = render_pose_map(np.zeros((18, 3), np.float32), 64, 48)
    assert (pose_map[:3] == 0).all() and (pose_map[3:] == 1).all()


def test_bad_keypoints_are_rejected():
    with pytest.raises(ValueError, match="shape"):
        render_pose_map(np.zeros((17, 3)), 64, 64)
    keypoints = np.zeros((18, 3))
    keypoints[0] = (np.nan, 3, 1)
    with pytest.raises(ValueError, match="NaN"):
        render_pose_map(keypoints, 64, 64)


def test_skeleton_image_is_rgb_uint8(official):
    keypoints = _pose(official, "full_body").keypoints
    image = render_skeleton_image(keypoints, 256, 256)
    assert image.shape == (256, 256, 3) and image.dtype == np.uint8
    # The map stores the skeleton BGR-swapped like the official loader; the preview swaps it back
    # so that the palette reads as OpenPose's (the nose's first colour is red).
    np.testing.assert_array_equal(image, official["full_body_map"][2::-1].transpose(1, 2, 0))
