"""Pose formats: POSE_KEYPOINT, OpenPose JSON (COCO-18 / BODY_25), PIDM .txt, GFLA .csv, numpy."""

import json
import re
from pathlib import Path

import numpy as np
import pytest

from pidm_core.pose import (
    Pose,
    coco18_from_body25,
    coco18_from_coco17,
    coco18_from_mediapipe33,
    is_normalized,
    load_pidm_txt,
    load_pose_file,
    load_pose_sequence,
    pose_from_array,
    pose_keypoint_from_poses,
    pose_to_array,
    poses_from_pose_keypoint,
    read_deepfashion_csv,
    resize_canvas,
    save_pose_file,
    write_deepfashion_csv,
)

from pidm_core.pose import formats

FIXTURE = Path(__file__).parent / "fixtures" / "pose_maps_official_256.npz"


def standing_pose(width: int = 512, height: int = 768, missing: tuple[int, ...] = (4, 17)) -> Pose:
    """A plausible standing person in pixels (right wrist and left ear missing by default)."""
    xy = np.array([
        [0.50, 0.12], [0.50, 0.20], [0.40, 0.21], [0.37, 0.33], [0.36, 0.44], [0.60, 0.21], [0.63, 0.33],
        [0.64, 0.44], [0.44, 0.46], [0.43, 0.64], [0.42, 0.82], [0.56, 0.46], [0.57, 0.64], [0.58, 0.82],
        [0.48, 0.10], [0.52, 0.10], [0.46, 0.11], [0.54, 0.11],
    ]) * (width, height)  # fmt: skip
    keypoints = np.concatenate([xy, np.full((18, 1), 0.9)], axis=1)
    keypoints[list(missing)] = 0
    return Pose(keypoints, width, height)


def assert_same_pose(a: Pose, b: Pose, atol: float = 1e-3) -> None:
    assert (a.width, a.height) == (b.width, b.height)
    np.testing.assert_array_equal(a.present, b.present)
    np.testing.assert_allclose(a.xy[a.present], b.xy[b.present], atol=atol)


# --------------------------------------------------------------------------------------------------
# Pose


def test_pose_zeroes_missing_and_non_finite_joints():
    keypoints = standing_pose().keypoints.copy()
    keypoints[0, 0] = np.nan  # a NaN coordinate makes the joint missing
    keypoints[2, 2] = np.inf
    keypoints[3] = (50, 60, 0)  # stale coordinates of a missing joint are dropped
    pose = Pose(keypoints, 512, 768)
    assert not pose.present[[0, 2, 3]].any()
    assert (pose.keypoints[[0, 2, 3]] == 0).all()
    assert pose.keypoints.dtype == np.float32
    with pytest.raises(ValueError, match="shape"):
        Pose(np.zeros((17, 3)), 10, 10)


def test_array_round_trip_keeps_missing_as_minus_one():
    pose = standing_pose()
    array = pose_to_array(pose)
    assert array.shape == (18, 2) and (array[[4, 17]] == -1).all()
    assert_same_pose(pose_from_array(array, 512, 768), pose)
    # [18, 3] with a threshold: low-confidence joints become missing
    keypoints = pose_to_array(pose, with_confidence=True)
    keypoints[0, 2] = 0.2
    assert not pose_from_array(keypoints, 512, 768, threshold=0.3).present[0]
    with pytest.raises(ValueError, match="my array"):
        pose_from_array(np.zeros((18, 4)), 10, 10, name="my array")


# --------------------------------------------------------------------------------------------------
# POSE_KEYPOINT


@pytest.mark.parametrize("normalized", [False, True])
def test_pose_keypoint_round_trip(normalized):
    poses = [standing_pose(), standing_pose(640, 480, missing=(0,))]
    data = pose_keypoint_from_poses(poses, normalized=normalized)
    assert len(data) == 2 and data[0]["canvas_width"] == 512 and data[1]["canvas_height"] == 480
    flat = np.array(data[0]["people"][0]["pose_keypoints_2d"]).reshape(18, 3)
    assert (flat[[4, 17]] == 0).all()  # missing → 0, 0, 0 as comfyui_controlnet_aux writes it
    assert (flat[np.array(poses[0].present), 2] == 1.0).all()  # its readers drop confidence < 1
    assert (flat[:, :2].max() <= 1.0) == normalized
    json.dumps(data)  # plain JSON types only
    for pose, back in zip(poses, poses_from_pose_keypoint(data)):
        assert_same_pose(back, pose)


def test_normalised_and_pixel_input_are_told_apart():
    pose = standing_pose(640, 480)
    normalised = pose_keypoint_from_poses([pose], normalized=True)
    pixels = pose_keypoint_from_poses([pose], normalized=False)
    joints = np.array(normalised[0]["people"][0]["pose_keypoints_2d"]).reshape(18, 3)
    assert is_normalized([joints], 640, 480)
    assert not is_normalized([joints], 4, 4)  # a 4x4 canvas is too small to tell: pixels
    assert_same_pose(poses_from_pose_keypoint(normalised)[0], pose)
    assert_same_pose(poses_from_pose_keypoint(pixels)[0], pose)
    # forcing the interpretation
    forced = poses_from_pose_keypoint(normalised, normalized=False)[0]
    assert forced.xy[forced.present].max() <= 1.0


def test_person_selection_and_threshold():
    small = standing_pose(640, 480)
    large_keypoints = small.keypoints.copy()
    large_keypoints[:, :2] *= 1.2
    large_keypoints[0, 2] = 0.1  # a low-confidence nose
    people = [pose_keypoint_from_poses([p], keep_confidence=True)[0]["people"][0] for p in (small, Pose(large_keypoints, 640, 480))]
    frame = {"people": people, "canvas_width": 640, "canvas_height": 480}
    assert np.allclose(poses_from_pose_keypoint([frame], person_index=0)[0].xy, small.xy)
    largest = poses_from_pose_keypoint([frame], person_index="largest", threshold=0.5)[0]
    assert np.allclose(largest.xy[1], large_keypoints[1, :2]) and not largest.present[0]
    assert poses_from_pose_keypoint([frame], person_index=-1)[0].present.sum() == 16
    with pytest.raises(ValueError, match="frame 1 of 1 has 2 people, person index 2"):
        poses_from_pose_keypoint([frame], person_index=2)


def test_pose_keypoint_errors_name_the_input_and_index():
    good = pose_keypoint_from_poses([standing_pose()])[0]
    with pytest.raises(ValueError, match="empty"):
        poses_from_pose_keypoint([])
    with pytest.raises(ValueError, match="frame 2 of 2 has no people"):
        poses_from_pose_keypoint([good, {"people": [], "canvas_width": 8, "canvas_height": 8}])
    with pytest.raises(ValueError, match="frame 1 of 1: expected a dict with a 'people' list, got list"):
        poses_from_pose_keypoint([[good]])  # one level of nesting too many
    with pytest.raises(ValueError, match="expected a list of frames"):
        poses_from_pose_keypoint("people")
    short = {"people": [{"pose_keypoints_2d": [1.0, 2.0, 1.0] * 17}], "canvas_width": 8, "canvas_height": 8}
    with pytest.raises(ValueError, match=r"frame 2 of 2, person 1 of 1: .*17 joints"):
        poses_from_pose_keypoint([good, short], name="POSE_KEYPOINT")
    ragged = {"people": [{"pose_keypoints_2d": [1.0] * 53}], "canvas_width": 8, "canvas_height": 8}
    with pytest.raises(ValueError, match="not a multiple of 3"):
        poses_from_pose_keypoint([ragged])
    nobody = {"people": [{"pose_keypoints_2d": [0.0] * 54}], "canvas_width": 8, "canvas_height": 8}
    with pytest.raises(ValueError, match="frame 1 of 1: the chosen person has no joint"):
        poses_from_pose_keypoint([nobody])
    no_canvas = {"people": good["people"]}
    with pytest.raises(ValueError, match="canvas_size"):
        poses_from_pose_keypoint([no_canvas])


def test_missing_joints_never_become_origin_joints():
    data = pose_keypoint_from_poses([standing_pose()])
    flat = data[0]["people"][0]["pose_keypoints_2d"]
    flat[3 * 6 : 3 * 6 + 3] = [float("nan"), float("nan"), 1.0]  # NaN coordinates → missing
    pose = poses_from_pose_keypoint(data)[0]
    assert not pose.present[[4, 6, 17]].any()
    round_trip = np.array(pose_keypoint_from_poses([pose])[0]["people"][0]["pose_keypoints_2d"]).reshape(18, 3)
    assert (round_trip[[4, 6, 17]] == 0).all()
    # The -1, -1 marker some tools write is missing whatever its confidence.
    flat[0:3] = [-1.0, -1.0, 1.0]
    assert not poses_from_pose_keypoint(data)[0].present[0]


# --------------------------------------------------------------------------------------------------
# OpenPose JSON, BODY_25, COCO-17, MediaPipe


def test_openpose_body25_json_file(tmp_path):
    body25 = np.zeros((25, 3))
    body25[:, 0] = np.arange(25) * 10 + 5  # x encodes the BODY_25 index
    body25[:, 1] = 100
    body25[:, 2] = 0.8
    body25[12, 2] = 0  # left hip missing
    path = tmp_path / "frame_000000000000_keypoints.json"
    path.write_text(json.dumps({"version": 1.3, "people": [{"person_id": [-1], "pose_keypoints_2d": body25.ravel().tolist()}]}))
    with pytest.raises(ValueError, match="canvas_size"):
        load_pose_file(path)
    (pose,) = load_pose_file(path, canvas_size=(640, 360))
    assert (pose.width, pose.height) == (640, 360)
    expected_index = np.array([0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18])
    present = pose.present
    np.testing.assert_allclose(pose.xy[present, 0], expected_index[present] * 10 + 5)
    assert not present[11]  # COCO-18 left hip = BODY_25 joint 12
    np.testing.assert_array_equal(coco18_from_body25(body25), body25[expected_index])


def test_coco17_to_coco18():
    coco17 = np.zeros((17, 3))
    coco17[:, 0] = np.arange(17)
    coco17[:, 1] = 50
    coco17[:, 2] = 1
    coco17[5:7, 1] = (40, 60)  # left shoulder at y 40, right at y 60
    coco18 = coco18_from_coco17(coco17)
    np.testing.assert_array_equal(coco18[[0, 2, 5, 8, 11, 14, 15, 16, 17], 0], [0, 6, 5, 12, 11, 2, 1, 4, 3])
    np.testing.assert_allclose(coco18[1], (5.5, 50, 1))  # neck = shoulder midpoint
    coco17[6, 2] = 0
    assert coco18_from_coco17(coco17)[1, 2] == 0  # one shoulder missing → no neck


def test_mediapipe33_to_coco18():
    landmarks = np.zeros((33, 3))
    landmarks[:, 0] = np.arange(33)
    landmarks[:, 2] = 0.9
    coco18 = coco18_from_mediapipe33(landmarks)
    np.testing.assert_array_equal(coco18[:, 0], [0, 11.5, 12, 14, 16, 11, 13, 15, 24, 26, 28, 23, 25, 27, 5, 2, 8, 7])
    assert (coco18[:, 2] == 0.9).all()


# --------------------------------------------------------------------------------------------------
# official .txt and GFLA .csv


def test_pidm_txt_matches_the_official_transform(tmp_path):
    # The fixture holds .txt keypoints and the official loader's 256×256 transform of them.
    with np.load(FIXTURE) as data:
        for case in ("missing_joints", "off_canvas"):
            path = tmp_path / f"{case}.txt"
            np.savetxt(path, data[f"{case}_txt"])
            pose = load_pidm_txt(path)
            assert (pose.width, pose.height) == (176, 256)
            expected = data[f"{case}_keypoints"]
            on_network_canvas = resize_canvas(pose, 256, 256)
            np.testing.assert_array_equal(on_network_canvas.present, ~(expected == -1).any(axis=1))
            np.testing.assert_allclose(on_network_canvas.xy[pose.present], expected[pose.present], atol=1e-3)


def test_pidm_txt_round_trip(tmp_path):
    pose = standing_pose(176, 256)
    save_pose_file(tmp_path / "pose.txt", [pose])
    text = (tmp_path / "pose.txt").read_text().splitlines()
    assert len(text) == 18 and text[4].split() == ["-1.000", "-1.000"]
    assert_same_pose(load_pose_file(tmp_path / "pose.txt")[0], pose)
    with pytest.raises(ValueError, match="one pose"):
        save_pose_file(tmp_path / "two.txt", [pose, pose])


def test_deepfashion_csv_reads_y_then_x(tmp_path):
    ys = [30, 60, 62, 100, 135, 61, 99, -1, 140, 190, 235, 141, 191, 236, 26, 26, 30, 30]
    xs = [88, 87, 66, 60, 58, 108, 114, -1, 75, 73, 72, 101, 103, 104, 84, 92, 78, 98]
    path = tmp_path / "fasion-annotation-test.csv"
    path.write_text(f"name:keypoints_y:keypoints_x\nfashionWOMENDressesid0000262902_3back.jpg: {ys}: {xs}\n")
    poses = read_deepfashion_csv(path)
    pose = poses["fashionWOMENDressesid0000262902_3back.jpg"]
    assert (pose.width, pose.height) == (176, 256)
    assert tuple(pose.xy[0]) == (88, 30) and not pose.present[7]
    # write + read back, and load_pose_file returns the rows in file order
    write_deepfashion_csv(tmp_path / "copy.csv", {"a.jpg": pose, "b.jpg": resize_canvas(pose, 352, 512)})
    a, b = load_pose_file(tmp_path / "copy.csv")
    assert_same_pose(a, pose)
    assert_same_pose(b, pose)
    path.write_text("name:keypoints_y:keypoints_x\nbroken.jpg: [1, 2]: [3, 4]\n")
    with pytest.raises(ValueError, match="line 2: expected a list of 18"):
        read_deepfashion_csv(path)


# --------------------------------------------------------------------------------------------------
# numpy, json files and folders


def test_npy_round_trip_and_errors(tmp_path):
    poses = [standing_pose(256, 256), standing_pose(256, 256, missing=(1,))]
    save_pose_file(tmp_path / "seq.npy", poses)
    loaded = load_pose_file(tmp_path / "seq.npy", canvas_size=(256, 256))
    for pose, back in zip(poses, loaded):
        assert_same_pose(back, pose)
    with pytest.raises(ValueError, match="canvas_size"):
        load_pose_file(tmp_path / "seq.npy")
    np.save(tmp_path / "official.npy", pose_to_array(poses[0]))  # [18, 2] with -1
    assert_same_pose(load_pose_file(tmp_path / "official.npy", canvas_size=(256, 256))[0], poses[0])
    np.save(tmp_path / "map.npy", np.zeros((256, 256, 20), np.float32))
    with pytest.raises(ValueError, match="20-channel pose map"):
        load_pose_file(tmp_path / "map.npy", canvas_size=(256, 256))
    with pytest.raises(ValueError, match="unsupported pose file type '.yaml'"):
        load_pose_file(tmp_path / "pose.yaml")


def test_json_file_round_trip(tmp_path):
    poses = [standing_pose(), standing_pose(missing=())]
    save_pose_file(tmp_path / "poses.json", poses, normalized=True)
    for pose, back in zip(poses, load_pose_file(tmp_path / "poses.json")):
        assert_same_pose(back, pose)


def test_sequence_folder_in_natural_order(tmp_path):
    poses = {n: standing_pose(missing=(n,)) for n in (1, 2, 10)}
    for n, pose in poses.items():
        save_pose_file(tmp_path / f"frame{n}.json", [pose])
    save_pose_file(tmp_path / "frame11.json", [poses[1], poses[2]])  # a multi-frame file
    (tmp_path / ".hidden.json").write_text("not json")
    (tmp_path / "notes.md").write_text("ignored")
    sequence = load_pose_sequence(tmp_path)
    assert [int(np.flatnonzero(~p.present)[0]) for p in sequence] == [1, 2, 10, 1, 2]
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="holds no pose files"):
        load_pose_sequence(tmp_path / "empty")


# --- the format table ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", formats.POSE_FORMATS, ids=lambda kind: kind.suffix)
def test_every_format_reads_back_what_it_writes(tmp_path, kind):
    # the joints every format keeps: .txt and .csv stretch to 176x256, .csv rounds to whole pixels,
    # COCO-17 has no neck (rebuilt from the shoulders)
    poses = [standing_pose(176, 256)] if kind.suffix == ".txt" else [standing_pose(176, 256), standing_pose(176, 256, (3,))]
    path = tmp_path / f"poses{kind.suffix}"
    save_pose_file(path, poses)
    assert formats.pose_format(path) is kind
    read = load_pose_file(path, canvas_size=(176, 256))
    assert len(read) == len(poses)
    kept = [j for j in range(18) if not (kind.suffix == ".coco.json" and j == 1)]
    for before, after in zip(poses, read):
        assert (after.width, after.height) == (176, 256)
        np.testing.assert_array_equal(after.present[kept], before.present[kept])
        np.testing.assert_allclose(after.xy[kept], before.xy[kept], atol=0.5 if kind.suffix == ".csv" else 1e-3)


def coco_file(tmp_path, images, annotations, name="people.coco.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps({"images": images, "annotations": annotations, "categories": [{"id": 1}]}))
    return path


def coco_keypoints(pose: Pose, visibility: int = 2) -> list:
    """COCO-17 [x, y, v] * 17 of a pose; missing joints (0, 0, 0)."""
    rows = [[*pose.xy[i], visibility] if pose.present[i] else [0, 0, 0] for i in formats.COCO18_TO_COCO17]
    return [float(v) for row in rows for v in row]


def test_coco_keypoints_file_reaches_coco18(tmp_path):
    small, big = standing_pose(640, 480), Pose(standing_pose(640, 480).keypoints * (2, 2, 1), 640, 480)
    path = coco_file(tmp_path, [{"id": 7, "width": 640, "height": 480}, {"id": "b", "width": 640, "height": 480}], [
        {"image_id": "b", "keypoints": coco_keypoints(small, visibility=1)},  # labelled but hidden: present
        {"image_id": 7, "keypoints": coco_keypoints(small)},
        {"image_id": 7, "keypoints": coco_keypoints(big)},
    ])
    first, second = load_pose_file(path, person_index="largest")
    body = [j for j in range(18) if j != 1]  # COCO-17 has no neck
    np.testing.assert_allclose(first.xy[body], big.xy[body])  # images in file order
    np.testing.assert_allclose(second.xy[body], small.xy[body])
    # the neck is the midpoint of the shoulders, as coco18_from_coco17 makes it
    np.testing.assert_allclose(first.xy[1], (big.xy[2] + big.xy[5]) / 2)
    assert not first.present[4] and not first.present[17]  # missing (visibility 0) stays missing
    assert load_pose_file(path, person_index=0)[0].bbox_area() < first.bbox_area()


def test_coco_keypoints_errors_name_the_image_or_annotation(tmp_path):
    image = {"id": 1, "width": 64, "height": 64}
    pose = standing_pose(64, 64)
    cases = [
        ({"images": [image]}, "expected a COCO keypoints dict with 'images' and 'annotations' lists"),
        ({"images": [image], "annotations": [{"image_id": 2, "keypoints": coco_keypoints(pose)}]},
         "annotation 1 of 1: its 'image_id' names no image of the file"),
        ({"images": [image], "annotations": [{"image_id": 1, "keypoints": [1.0] * 54}]},
         "annotation 1 of 1: 'keypoints' must be a list of 51 numbers"),
        ({"images": [image, image], "annotations": []}, "image 2 of 2: its id 1 is given to an earlier image too"),
        ({"images": [{"id": [1]}], "annotations": []}, "image 1 of 1: 'id' must be a number or a name, got list"),
        ({"images": [image], "annotations": []}, "frame 1 of 1 has no people"),
    ]
    for number, (data, message) in enumerate(cases):
        path = tmp_path / f"bad{number}.coco.json"
        path.write_text(json.dumps(data))
        with pytest.raises(ValueError, match=re.escape(message)):
            load_pose_file(path)


def test_unknown_suffix_lists_the_table(tmp_path):
    with pytest.raises(ValueError, match=r"unsupported pose file type '\.yaml'; expected one of \.json, \.coco\.json, "
                                         r"\.txt, \.csv, \.npy"):
        formats.pose_format(tmp_path / "pose.yaml")


# --- the frame rate of a saved sequence ---------------------------------------------------------------


def test_json_keeps_the_frame_rate_and_stays_a_plain_pose_keypoint(tmp_path):
    poses = [standing_pose(), standing_pose(missing=(3, 4))]
    path = tmp_path / "walk.json"
    save_pose_file(path, poses, frame_rate=29.97)
    read = formats.read_pose_file(path)
    assert read.frame_rate == pytest.approx(29.97)
    for pose, back in zip(poses, read.poses):
        assert_same_pose(back, pose)
    data = json.loads(path.read_text())
    assert isinstance(data, list) and [frame["frame_rate"] for frame in data] == [29.97, 29.97]
    # another tool reading the list as a POSE_KEYPOINT gets the same poses
    for pose, back in zip(poses, poses_from_pose_keypoint(data)):
        assert_same_pose(back, pose)
    # without a rate the file has none, and one OpenPose dict may carry one too
    save_pose_file(tmp_path / "still.json", poses[:1])
    assert formats.read_pose_file(tmp_path / "still.json").frame_rate is None
    (tmp_path / "one.json").write_text(json.dumps({**data[0], "frame_rate": 12}))
    assert formats.read_pose_file(tmp_path / "one.json").frame_rate == 12.0


@pytest.mark.parametrize("rates, message", [
    ([25, 30], "give different frame rates (25 and 30)"),
    (["25", "25"], "'frame_rate' must be a number of frames per second, got str"),
    ([True, True], "'frame_rate' must be a number of frames per second, got bool"),
    ([0, 0], "must be a frame rate above 0 and at most 1000"),
    ([1e9, 1e9], "must be a frame rate above 0 and at most 1000"),
    ([float("nan"), float("nan")], "must be a frame rate above 0 and at most 1000"),
])
def test_bad_stored_frame_rates_name_the_file(tmp_path, rates, message):
    frames = pose_keypoint_from_poses([standing_pose(), standing_pose()])
    path = tmp_path / "bad_rate.json"
    path.write_text(json.dumps([{**frame, "frame_rate": rate} for frame, rate in zip(frames, rates)]))
    with pytest.raises(ValueError, match=re.escape(message)) as error:
        formats.read_pose_file(path)
    assert "bad_rate.json" in str(error.value)


def test_saving_is_bounded_and_never_replaces_a_file_when_asked(tmp_path):
    pose = standing_pose(missing=())
    with pytest.raises(ValueError, match="cannot store a frame rate; save as .json"):
        save_pose_file(tmp_path / "p.npy", [pose], frame_rate=25)
    with pytest.raises(ValueError, match="frame_rate must be a frame rate above 0"):
        save_pose_file(tmp_path / "p.json", [pose], frame_rate=-1)
    with pytest.raises(ValueError, match="at most 10000 frames"):
        save_pose_file(tmp_path / "long.json", [pose] * (formats.MAX_FRAMES + 1))
    assert not (tmp_path / "long.json").exists() and not (tmp_path / "p.json").exists()
    # the longest sequence a file may hold is written within the size Load Pose reads, and reads back
    longest = tmp_path / "longest.json"
    save_pose_file(longest, [pose] * formats.MAX_FRAMES, frame_rate=25)
    assert longest.stat().st_size < formats.MAX_POSE_FILE_BYTES
    read = formats.read_pose_file(longest)
    assert len(read.poses) == formats.MAX_FRAMES and read.frame_rate == 25
    assert_same_pose(read.poses[-1], pose)
    before = longest.read_bytes()
    with pytest.raises(FileExistsError):
        save_pose_file(longest, [pose], overwrite=False)
    assert longest.read_bytes() == before


def test_keep_empty_frames_keeps_their_place():
    pose = standing_pose()
    empty = Pose(np.zeros((18, 3)), 512, 768)
    data = pose_keypoint_from_poses([pose, empty, pose])
    data.insert(1, {"people": [], "canvas_width": 512, "canvas_height": 768})
    with pytest.raises(ValueError, match="frame 2 of 4 has no people"):
        poses_from_pose_keypoint(data, "largest")
    read = poses_from_pose_keypoint(data, "largest", keep_empty=True)
    assert [p.present.any() for p in read] == [True, False, False, True]
    assert all((p.width, p.height) == (512, 768) for p in read)
    with pytest.raises(ValueError, match="frame 1 of 1 has no canvas_width"):
        poses_from_pose_keypoint([{"people": []}], keep_empty=True)


def test_a_saved_sequence_with_empty_frames_reads_back_in_place(tmp_path):
    pose, empty = standing_pose(), Pose(np.zeros((18, 3)), 512, 768)
    save_pose_file(tmp_path / "gaps.json", [pose, empty, pose], frame_rate=25)
    with pytest.raises(ValueError, match="frame 2 of 3: the chosen person has no joint"):
        formats.read_pose_file(tmp_path / "gaps.json")
    read = formats.read_pose_file(tmp_path / "gaps.json", keep_empty=True)
    assert [p.present.any() for p in read.poses] == [True, False, True] and read.frame_rate == 25
