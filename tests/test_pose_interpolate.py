"""In-between poses and pose sequences for animation."""

import math

import numpy as np
import pytest

from pidm_core.pose import (
    Pose,
    blend_poses,
    bone_lengths,
    interpolate_poses,
    interpolate_sequence,
    pose_keypoint_from_poses,
    poses_from_pose_keypoint,
    resample_sequence,
)

STANDING = np.array([
    [128, 30], [128, 58], [100, 60], [95, 105], [92, 148], [156, 60], [161, 105], [164, 148],
    [110, 150], [108, 200], [106, 248], [146, 150], [148, 200], [150, 248],
    [123, 25], [133, 25], [116, 28], [140, 28],
], dtype=np.float64)  # fmt: skip


def make_pose(xy, missing=(), confidence=1.0) -> Pose:
    keypoints = np.concatenate([np.asarray(xy, np.float64), np.full((18, 1), confidence)], axis=1)
    keypoints[list(missing)] = 0
    return Pose(keypoints, 256, 256)


def arm_raised() -> np.ndarray:
    """STANDING with the right arm rotated 90° (elbow and wrist) about the right shoulder: pointing out."""
    xy = STANDING.copy()
    shoulder = xy[2]
    for joint in (3, 4):
        dx, dy = xy[joint] - shoulder
        xy[joint] = shoulder + (dy, -dx)  # +90° in image coordinates
    return xy


def test_endpoints_equal_inputs_and_missing_joints_stay_missing():
    a = make_pose(STANDING, missing=(4,), confidence=0.8)
    b = make_pose(arm_raised(), missing=(17,), confidence=0.6)
    frames = interpolate_poses(a, b, 5)
    assert len(frames) == 5
    np.testing.assert_array_equal(frames[0].keypoints, a.keypoints)
    np.testing.assert_array_equal(frames[-1].keypoints, b.keypoints)
    for frame in frames[1:-1]:
        assert not frame.present[[4, 17]].any()  # missing at either end → missing in between
        assert frame.present.sum() == 16
    np.testing.assert_allclose(frames[2].keypoints[0, 2], 0.7)  # confidences blend


def test_linear_midpoint_is_the_average():
    a, b = make_pose(STANDING), make_pose(arm_raised() + (10, 0))
    middle = interpolate_poses(a, b, 3, mode="linear")[1]
    np.testing.assert_allclose(middle.xy, (a.xy + b.xy) / 2, atol=1e-4)


def test_angular_turns_limbs_and_keeps_bone_lengths():
    a, b = make_pose(STANDING), make_pose(arm_raised())
    frames = interpolate_poses(a, b, 9)
    for frame in frames:
        np.testing.assert_allclose(bone_lengths(frame), bone_lengths(a), atol=1e-3)
    # halfway, the upper arm has turned 45°
    middle = frames[4]
    start, halfway = a.xy[3] - a.xy[2], middle.xy[3] - middle.xy[2]
    cosine = np.dot(start, halfway) / (np.linalg.norm(start) * np.linalg.norm(halfway))
    assert math.degrees(math.acos(cosine)) == pytest.approx(45, abs=1e-2)
    # a linear blend would shorten the same arm
    linear = interpolate_poses(a, b, 9, mode="linear")[4]
    assert bone_lengths(linear)[2] < 0.75 * bone_lengths(a)[2]


def test_angular_takes_the_shorter_arc():
    # Forearm from pointing down-right (+77°) to up-right (−77°): the short way turns through "right"
    # (0°, +x); the long way would swing the wrist through the body's side (180°, −x).
    down, up = STANDING.copy(), STANDING.copy()
    down[4], up[4] = down[3] + (10, 43), up[3] + (10, -43)
    for frame in interpolate_poses(make_pose(down), make_pose(up), 7)[1:-1]:
        forearm = frame.xy[4] - frame.xy[3]
        assert forearm[0] > 10 - 1e-3


def test_errors():
    a = make_pose(STANDING)
    with pytest.raises(ValueError, match="n_frames"):
        interpolate_poses(a, a, 1)
    with pytest.raises(ValueError, match="share a canvas"):
        interpolate_poses(a, Pose(a.keypoints, 128, 256), 3)
    with pytest.raises(ValueError, match="mode"):
        blend_poses(a, a, 0.5, mode="cubic")


def test_sequences():
    keys = [make_pose(STANDING), make_pose(arm_raised()), make_pose(STANDING + (20, 0))]
    frames = interpolate_sequence(keys, frames_between=3)
    assert len(frames) == 2 * 4 + 1
    for index, key in zip((0, 4, 8), keys):
        np.testing.assert_array_equal(frames[index].keypoints, key.keypoints)
    retimed = resample_sequence(frames, 5)
    assert len(retimed) == 5
    np.testing.assert_array_equal(retimed[0].keypoints, frames[0].keypoints)
    np.testing.assert_array_equal(retimed[-1].keypoints, frames[-1].keypoints)
    np.testing.assert_array_equal(retimed[2].keypoints, frames[4].keypoints)  # lands on a frame
    # a multi-frame POSE_KEYPOINT survives the trip to and from the graph's type
    back = poses_from_pose_keypoint(pose_keypoint_from_poses(frames))
    assert len(back) == len(frames)
    np.testing.assert_allclose(back[3].xy, frames[3].xy, atol=1e-3)
