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
from pidm_core.pose.retarget import motion_scale, retarget_motion

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


# --------------------------------------------------------------------------------------------------
# retarget_motion: a driving sequence as one motion

ANKLES = [10, 13]


def walker(step: int, size: float = 1.0, x0: float = 120.0, ground: float = 400.0, speed: float = 6.0,
           canvas=(640, 480), leg: float = 1.0, arm: float = 1.0, swing: float = 0.45) -> Pose:
    """A figure walking to the right with both feet on the ground line ``ground``: straight legs at
    ±angle, the hips as high as the legs' angle lets them be. ``size`` scales every bone, ``leg`` and
    ``arm`` the leg and arm bones only (another person's proportions)."""
    angle = swing * np.sin(step * 0.5)
    thigh, shin, torso, upper, fore = 50 * size * leg, 50 * size * leg, 70 * size, 32 * size * arm, 30 * size * arm
    hip_y = ground - (thigh + shin) * np.cos(angle)
    cx = x0 + speed * step
    hips = {8: (cx - 10 * size, hip_y), 11: (cx + 10 * size, hip_y)}
    joints = dict(hips)
    for hip, knee, ankle, sign in ((8, 9, 10, 1), (11, 12, 13, -1)):
        direction = np.array([np.sin(sign * angle), np.cos(sign * angle)])
        joints[knee] = np.array(hips[hip]) + direction * thigh
        joints[ankle] = np.array(hips[hip]) + direction * (thigh + shin)
    neck = np.array([cx, hip_y - torso])
    joints[1] = neck
    for shoulder, elbow, wrist, side, sign in ((2, 3, 4, -1, -1), (5, 6, 7, 1, 1)):
        s = neck + (side * 18 * size, 2 * size)
        direction = np.array([np.sin(sign * angle), np.cos(sign * angle)])
        joints[shoulder], joints[elbow], joints[wrist] = s, s + direction * upper, s + direction * (upper + fore)
    joints[0] = neck + (0, -22 * size)
    joints[14], joints[15] = joints[0] + (-5 * size, -4 * size), joints[0] + (5 * size, -4 * size)
    joints[16], joints[17] = joints[0] + (-10 * size, -2 * size), joints[0] + (10 * size, -2 * size)
    keypoints = np.array([[*joints[j], 1.0] for j in range(18)])
    return Pose(keypoints, *canvas)


def lowest_ankle(pose: Pose) -> float:
    return max(pose.xy[a, 1] for a in ANKLES if pose.present[a])


# the source: a larger person than the driving actor, with longer legs and shorter arms, standing
MOTION_SOURCE = walker(0, size=1.6, x0=300, ground=600, canvas=(512, 768), leg=1.2, arm=0.8, swing=0.0)
DRIVING_WALK = [walker(step) for step in range(40)]


def test_retarget_motion_gives_every_frame_the_source_bone_lengths():
    frames = retarget_motion(DRIVING_WALK, MOTION_SOURCE)
    assert len(frames) == len(DRIVING_WALK)
    for frame, target in zip(frames, DRIVING_WALK):
        assert (frame.width, frame.height) == (512, 768)
        np.testing.assert_array_equal(frame.present, target.present)
        np.testing.assert_allclose(bone_lengths(frame), bone_lengths(MOTION_SOURCE), atol=1e-3)
        np.testing.assert_allclose(limb_directions(frame), limb_directions(fit_to_canvas(target, 512, 768)),
                                   atol=1e-4)


def test_retarget_motion_keeps_the_feet_on_the_source_ground():
    frames = retarget_motion(DRIVING_WALK, MOTION_SOURCE)
    ground = lowest_ankle(MOTION_SOURCE)
    np.testing.assert_allclose([lowest_ankle(f) for f in frames], ground, atol=1e-3)
    # per-frame anchoring (the old behaviour) pins the neck instead, and the feet slide up and down
    per_frame = [retarget_pose(t, MOTION_SOURCE) for t in DRIVING_WALK]
    assert np.ptp([lowest_ankle(f) for f in per_frame]) > 5


def test_retarget_motion_keeps_the_root_motion_scaled_by_one_constant():
    frames = retarget_motion(DRIVING_WALK, MOTION_SOURCE)
    fitted = [fit_to_canvas(t, 512, 768) for t in DRIVING_WALK]
    scale = motion_scale(fitted, MOTION_SOURCE)
    # the source is 1.6 times the driver, whose 640x480 canvas is fitted into 512x768 (x0.8): about 2
    # (legs and arms differ on purpose)
    assert 1.8 < scale < 2.3
    assert frames[0].xy[1][0] == pytest.approx(MOTION_SOURCE.xy[1][0], abs=1e-3)  # starts at the source
    driven = np.array([t.xy[1][0] - fitted[0].xy[1][0] for t in fitted])
    moved = np.array([f.xy[1][0] - frames[0].xy[1][0] for f in frames])
    np.testing.assert_allclose(moved, driven * scale, atol=1e-3)
    assert moved[-1] > 100  # the walk crosses the frame


def test_one_scale_is_robust_to_foreshortened_and_missing_limbs():
    true_frames = [fit_to_canvas(walker(step), 512, 768) for step in range(20)]
    scale = motion_scale(true_frames, MOTION_SOURCE)
    hurt = []
    for step, frame in enumerate(true_frames):
        keypoints = frame.keypoints.copy()
        if step % 5 < 3:  # 60 % of the frames: the arms point at the camera and look half as long
            for shoulder, elbow, wrist in ((2, 3, 4), (5, 6, 7)):
                keypoints[[elbow, wrist], :2] = keypoints[shoulder, :2] + (keypoints[[elbow, wrist], :2]
                                                                            - keypoints[shoulder, :2]) * 0.5
        if step % 4 == 0:
            keypoints[[9, 10, 16, 17]] = 0  # a knee, an ankle and the ears not found
        hurt.append(Pose(keypoints, 512, 768))
    assert motion_scale(hurt, MOTION_SOURCE) == pytest.approx(scale, rel=1e-6)
    frames = retarget_motion(hurt, MOTION_SOURCE)
    for frame in frames:
        shown = np.isfinite(bone_lengths(frame))
        np.testing.assert_allclose(bone_lengths(frame)[shown], bone_lengths(MOTION_SOURCE)[shown], atol=1e-3)


def test_retarget_motion_passes_empty_frames_through():
    empty = Pose(np.zeros((18, 3)), 640, 480)
    with_gaps = [empty, *DRIVING_WALK[:10], empty, empty, *DRIVING_WALK[10:]]
    frames = retarget_motion(with_gaps, MOTION_SOURCE)
    assert len(frames) == len(with_gaps)
    for index in (0, 11, 12):
        assert not frames[index].present.any() and (frames[index].width, frames[index].height) == (512, 768)
    # the frames around the gaps are placed as if the gaps were not there
    without = retarget_motion(DRIVING_WALK, MOTION_SOURCE)
    for frame, expected in zip(frames[1:11] + frames[13:], without):
        np.testing.assert_allclose(frame.keypoints, expected.keypoints, atol=1e-3)
    assert not any(f.present.any() for f in retarget_motion([empty, empty], MOTION_SOURCE))


def test_frames_without_ankles_or_neck_follow_their_neighbours():
    broken = [walker(step).keypoints.copy() for step in range(9)]
    broken[4][ANKLES] = 0  # the feet of the middle frame were not found
    broken[6][[1, 2, 5]] = 0  # neck and shoulders not found
    targets = [Pose(k, 640, 480) for k in broken]
    frames = retarget_motion(targets, MOTION_SOURCE)
    whole = retarget_motion([walker(step) for step in range(9)], MOTION_SOURCE)
    assert not frames[4].present[ANKLES].any()
    # the middle frame's hips land where the whole motion puts them (the walk's ground is flat)
    np.testing.assert_allclose(frames[4].xy[[8, 11]], whole[4].xy[[8, 11]], atol=1.0)
    assert lowest_ankle(frames[6]) == pytest.approx(lowest_ankle(MOTION_SOURCE), abs=1e-3)
    for frame in frames:
        shown = np.isfinite(bone_lengths(frame))
        assert shown.sum() >= 10


def test_retarget_motion_keeps_a_jump_in_the_air():
    heights = [0, 0, 10, 25, 30, 25, 10, 0, 0, 0]  # px above the ground: in the air half of the time
    jump = [Pose(walker(0).keypoints - [0, h, 0], 640, 480) for h in heights]
    frames = retarget_motion(jump, MOTION_SOURCE)
    scale = motion_scale([fit_to_canvas(t, 512, 768) for t in jump], MOTION_SOURCE)
    fit = 512 / 640  # the 640x480 driving canvas is fitted into the 512x768 source canvas
    ground = lowest_ankle(MOTION_SOURCE)
    np.testing.assert_allclose([ground - lowest_ankle(f) for f in frames], np.array(heights) * fit * scale, atol=1e-3)


def test_source_without_feet_follows_the_driving_root():
    source = Pose(np.where(np.isin(np.arange(18), [9, 10, 12, 13])[:, None], 0, MOTION_SOURCE.keypoints), 512, 768)
    frames = retarget_motion(DRIVING_WALK[:10], source)
    fitted = [fit_to_canvas(t, 512, 768) for t in DRIVING_WALK[:10]]
    scale = motion_scale(fitted, source)
    for frame, target in zip(frames, fitted):
        np.testing.assert_allclose(frame.xy[1], source.xy[1] + (target.xy[1] - fitted[0].xy[1]) * scale, atol=1e-3)


def test_motion_anchor_and_errors():
    frames = retarget_sequence(DRIVING_WALK[:5], MOTION_SOURCE, anchor="motion")
    for frame, expected in zip(frames, retarget_motion(DRIVING_WALK[:5], MOTION_SOURCE)):
        np.testing.assert_allclose(frame.keypoints, expected.keypoints)
    single = retarget_pose(DRIVING_WALK[3], MOTION_SOURCE, anchor="motion")
    assert lowest_ankle(single) == pytest.approx(lowest_ankle(MOTION_SOURCE), abs=1e-3)
    assert single.xy[1][0] == pytest.approx(MOTION_SOURCE.xy[1][0], abs=1e-3)
    with pytest.raises(ValueError, match="no target frames"):
        retarget_motion([], MOTION_SOURCE)
    with pytest.raises(ValueError, match="source pose has no joint"):
        retarget_motion(DRIVING_WALK, Pose(np.zeros((18, 3)), 64, 64))
