"""Retargeting onto the source's proportions, and the flip / scale / translate / canvas helpers."""

import numpy as np
import pytest

from pidm_core.pose import (
    FLIP_PERMUTATION,
    LIMBS,
    Pose,
    bone_lengths,
    fit_to_canvas,
    flip_horizontal,
    overall_ratio,
    resize_canvas,
    retarget_pose,
    retarget_sequence,
    scale_pose,
    translate_pose,
)

LIMB_A, LIMB_B = np.array(LIMBS).T


def make_pose(xy, width=256, height=256, missing=()) -> Pose:
    keypoints = np.concatenate([np.asarray(xy, np.float64), np.ones((18, 1))], axis=1)
    keypoints[list(missing)] = 0
    return Pose(keypoints, width, height)


# A tall source standing straight, and a short target with its arms up and one knee bent.
SOURCE_XY = np.array([
    [128, 30], [128, 58], [100, 60], [95, 105], [92, 148], [156, 60], [161, 105], [164, 148],
    [110, 150], [108, 200], [106, 248], [146, 150], [148, 200], [150, 248],
    [123, 25], [133, 25], [116, 28], [140, 28],
])  # fmt: skip
TARGET_XY = np.array([
    [60, 80], [60, 96], [46, 97], [36, 80], [30, 60], [74, 97], [86, 82], [92, 63],
    [52, 150], [40, 178], [50, 205], [68, 150], [70, 180], [72, 206],
    [57, 77], [63, 77], [53, 79], [67, 79],
])  # fmt: skip


def unit(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.linalg.norm(vectors, axis=-1, keepdims=True)


def limb_directions(pose: Pose) -> np.ndarray:
    return unit(pose.xy[LIMB_B].astype(np.float64) - pose.xy[LIMB_A])


def test_bone_lengths_equal_source_and_directions_equal_target():
    source, target = make_pose(SOURCE_XY), make_pose(TARGET_XY, 128, 256)
    result = retarget_pose(target, source)
    assert (result.width, result.height) == (source.width, source.height)
    np.testing.assert_array_equal(result.present, target.present)
    np.testing.assert_allclose(bone_lengths(result), bone_lengths(source), atol=1e-3)
    np.testing.assert_allclose(limb_directions(result), limb_directions(target), atol=1e-5)
    np.testing.assert_allclose(result.xy[1], source.xy[1], atol=1e-3)  # neck on the source's neck


def test_tall_source_is_not_squashed():
    # The target is the source's own pose, 0.6 times as large and elsewhere: retargeting must give
    # back the source's full-size skeleton, at the source's place.
    source = make_pose(SOURCE_XY)
    target = make_pose(SOURCE_XY * 0.6 + (20, 70))
    result = retarget_pose(target, source)
    np.testing.assert_allclose(result.xy, source.xy, atol=1e-3)
    assert overall_ratio(source, target) == pytest.approx(1 / 0.6)


def test_bones_missing_in_source_use_target_length_times_ratio():
    source = make_pose(SOURCE_XY, missing=(4, 13))  # right wrist and left ankle unknown
    target = make_pose(TARGET_XY)
    ratio = overall_ratio(source, target)
    result = retarget_pose(target, source)
    lengths, target_lengths = bone_lengths(result), bone_lengths(target)
    for limb, (a, b) in enumerate(LIMBS):
        expected = bone_lengths(source)[limb] if np.isfinite(bone_lengths(source)[limb]) else target_lengths[limb] * ratio
        assert lengths[limb] == pytest.approx(expected, abs=1e-3), (a, b)
    assert result.present[[4, 13]].all()  # the joints themselves come from the target


def test_joints_missing_in_target_stay_missing_and_broken_chains_move_rigidly():
    source = make_pose(SOURCE_XY)
    target = make_pose(TARGET_XY, missing=(0, 3))  # nose and right elbow missing
    result = retarget_pose(target, source)
    np.testing.assert_array_equal(result.present, target.present)
    assert (result.keypoints[[0, 3]] == 0).all()
    # the right wrist has lost its parent: it keeps its offset from the neck, scaled by the ratio
    ratio = overall_ratio(source, target)
    np.testing.assert_allclose(result.xy[4] - result.xy[1], (target.xy[4] - target.xy[1]) * ratio, atol=1e-3)


def test_target_without_neck_uses_the_shoulder_midpoint():
    source, target = make_pose(SOURCE_XY), make_pose(TARGET_XY, missing=(1,))
    result = retarget_pose(target, source)
    assert not result.present[1]
    drawn = result.present[LIMB_A] & result.present[LIMB_B]
    assert drawn.sum() == 12  # every limb but the five at the neck
    np.testing.assert_allclose(limb_directions(result)[drawn], limb_directions(target)[drawn], atol=1e-5)
    arm = [2, 3]  # shoulder→elbow, elbow→wrist keep the source's lengths
    np.testing.assert_allclose(bone_lengths(result)[arm], bone_lengths(source)[arm], atol=1e-3)


@pytest.mark.parametrize("anchor", ["neck", "center", "target"])
def test_anchors(anchor):
    source, target = make_pose(SOURCE_XY), make_pose(TARGET_XY)
    result = retarget_pose(target, source, anchor=anchor)
    if anchor == "neck":
        np.testing.assert_allclose(result.xy[1], source.xy[1], atol=1e-3)
    elif anchor == "target":
        np.testing.assert_allclose(result.xy[1], target.xy[1], atol=1e-3)
    else:
        box, source_box = np.array(result.bbox()), np.array(source.bbox())
        np.testing.assert_allclose(box[:2] + box[2:], source_box[:2] + source_box[2:], atol=1e-3)
    with pytest.raises(ValueError, match="anchor"):
        retarget_pose(target, source, anchor="feet")


def test_retarget_sequence_keeps_the_motion():
    source = make_pose(SOURCE_XY)
    walk = [make_pose(TARGET_XY + (12 * k, 0)) for k in range(4)]  # the target walks to the right
    frames = retarget_sequence(walk, source)
    ratio = overall_ratio(source, walk[0])
    np.testing.assert_allclose(frames[0].xy[1], source.xy[1], atol=1e-3)
    for k, frame in enumerate(frames):
        np.testing.assert_allclose(frame.xy[1], source.xy[1] + (12 * k * ratio, 0), atol=1e-3)
        np.testing.assert_allclose(bone_lengths(frame), bone_lengths(source), atol=1e-3)


# --------------------------------------------------------------------------------------------------
# geometry helpers


def test_flip_twice_is_identity_and_swaps_sides():
    pose = make_pose(SOURCE_XY, missing=(4, 17))
    flipped = flip_horizontal(pose)
    # the right wrist is missing before the flip, so the left wrist is missing after it
    assert not flipped.present[7] and flipped.present[4] and not flipped.present[16]
    np.testing.assert_allclose(flipped.xy[2], (255 - pose.xy[5][0], pose.xy[5][1]))
    twice = flip_horizontal(flipped)
    np.testing.assert_allclose(twice.keypoints, pose.keypoints, atol=1e-4)
    assert sorted(FLIP_PERMUTATION) == list(range(18))


def test_scale_and_translate_keep_missing_joints_missing():
    pose = make_pose(SOURCE_XY, missing=(0, 10))
    moved = translate_pose(pose, 5, -7)
    np.testing.assert_allclose(moved.xy[pose.present], pose.xy[pose.present] + (5, -7))
    assert (moved.keypoints[[0, 10]] == 0).all()
    scaled = scale_pose(pose, 2.0, center_px=(128, 58))
    np.testing.assert_allclose(bone_lengths(scaled), bone_lengths(pose) * 2, rtol=1e-5)
    np.testing.assert_allclose(scaled.xy[1], (128, 58))
    assert (scaled.keypoints[[0, 10]] == 0).all()
    with pytest.raises(ValueError, match="scale factor"):
        scale_pose(pose, 0)


def test_fit_and_resize_canvas():
    pose = make_pose(SOURCE_XY * (176 / 256, 1), width=176, height=256)
    # DeepFashion 176×256 letterboxed into 256×256: same scale, 40 px border on each side.
    fitted = fit_to_canvas(pose, 256, 256)
    np.testing.assert_allclose(fitted.xy, pose.xy + (40, 0), atol=1e-4)
    # into a wide, small canvas: scale 0.5 from the height, centred horizontally
    wide = fit_to_canvas(pose, 400, 128)
    np.testing.assert_allclose(wide.xy, pose.xy * 0.5 + ((400 - 88) / 2, 0), atol=1e-4)
    assert (wide.width, wide.height) == (400, 128)
    # the official stretch 176 → 256
    stretched = resize_canvas(pose, 256, 256)
    np.testing.assert_allclose(stretched.xy, SOURCE_XY, atol=1e-3)
