"""Save Pose and Load Pose through a real ComfyUI 0.3.75 server: a pose sequence saved into the output
folder with its frame rate comes back through Load Pose ("name [output]") with the same keypoints and
rate; a hostile filename_prefix writes nothing outside the output folder; Retarget Pose's 'motion'
anchor runs in a graph.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from pidm_core.pose.formats import pose_keypoint_from_poses, read_pose_file
from pidm_core.pose.keypoints import Pose
from pidm_core.pose.retarget import bone_lengths

pytestmark = pytest.mark.host

WALK_FILE = "save_pose_walk.json"
SOURCE_FILE = "save_pose_source.json"
W, H = 96, 128
FRAMES = 6


def _figure(shift: float, size: float = 1.0) -> Pose:
    joints = [(24, 8), (24, 16), (16, 16), (14, 26), (13, 36), (32, 16), (34, 26), (35, 36), (19, 36), (19, 48),
              (19, 60), (29, 36), (29, 48), (29, 60), (22, 7), (26, 7), (20, 8), (28, 8)]
    return Pose(np.array([(x * size + shift, y * size + 30, 1.0) for x, y in joints], np.float32), W, H)


WALK = [_figure(3.5 * k + 0.25) for k in range(FRAMES)]


def _load(file: str) -> dict:
    return {"class_type": "PIDMLoadPose", "inputs": {"file": file, "person_index": -1, "canvas_width": 0,
                                                     "canvas_height": 0}}


def _save(pose: list, prefix: str, frame_rate) -> dict:
    return {"class_type": "PIDMSavePose", "inputs": {"pose": pose, "filename_prefix": prefix, "person_index": -1,
                                                     "frame_rate": frame_rate}}


@pytest.fixture(scope="module")
def client(comfy):
    inputs = comfy.server.dirs["input"]
    (inputs / WALK_FILE).write_text(json.dumps(pose_keypoint_from_poses(WALK)))  # no frame rate stored
    (inputs / SOURCE_FILE).write_text(json.dumps(pose_keypoint_from_poses([_figure(20, size=1.3)])))
    yield comfy
    shutil.rmtree(comfy.server.dirs["output"] / "pidm_save_test", ignore_errors=True)


def _saved(client, result, node: str):
    """The path of the file a Save Pose node reports, and the name Load Pose knows it by."""
    assert result.error is None, f"{result.error}\n{client.server.log_tail()}"
    (saved,) = result.outputs[node]["pidm_saved"]
    path = client.server.dirs["output"] / saved["subfolder"] / saved["filename"]
    assert path.is_file(), saved
    return path, saved["load_pose_file"]


def _assert_same_poses(read, poses) -> None:
    assert len(read) == len(poses)
    for back, pose in zip(read, poses):
        assert (back.width, back.height) == (pose.width, pose.height)
        np.testing.assert_array_equal(back.present, pose.present)
        np.testing.assert_allclose(back.xy, pose.xy, atol=1e-3)


def test_save_pose_then_load_pose_gives_the_same_poses_and_frame_rate(client):
    result = client.run({"walk": _load(WALK_FILE), "save": _save(["walk", 0], "pidm_save_test/walk", 12.5)})
    path, name = _saved(client, result, "save")
    assert path.name == "walk_00001_.json" and name == "pidm_save_test/walk_00001_.json [output]"
    stored = read_pose_file(path)
    assert stored.frame_rate == 12.5
    _assert_same_poses(stored.poses, WALK)

    # Load Pose lists the output file by ComfyUI's annotated name, reads it back, and its frame_rate
    # output carries the stored rate: a second Save Pose, fed by it, stores the same rate.
    listed = client.object_info("PIDMLoadPose")["PIDMLoadPose"]["input"]["required"]["file"]
    assert name in json.dumps(listed)
    assert WALK_FILE in json.dumps(listed)
    result = client.run({"again": _load(name), "save": _save(["again", 0], "pidm_save_test/again", ["again", 1])})
    again, _ = _saved(client, result, "save")
    assert read_pose_file(again).frame_rate == 12.5
    _assert_same_poses(read_pose_file(again).poses, WALK)
    assert result.outputs["again"]["pidm_frame_count"] == [FRAMES]

    # a file without a rate gives Load Pose's default, 30
    result = client.run({"walk": _load(WALK_FILE), "save": _save(["walk", 0], "pidm_save_test/default", ["walk", 1])})
    default, _ = _saved(client, result, "save")
    assert read_pose_file(default).frame_rate == 30.0
    # frame_rate 0 stores none; the counter goes on as ComfyUI's savers count
    result = client.run({"walk": _load(WALK_FILE), "save": _save(["walk", 0], "pidm_save_test/walk", 0.0)})
    second, _ = _saved(client, result, "save")
    assert second.name == "walk_00002_.json" and read_pose_file(second).frame_rate is None


@pytest.mark.parametrize("prefix", ["../escaped/poses", "pidm_save_test/../../escaped/poses", "absolute", "", "C:\\poses",
                                    "linked/poses", "linked/new/poses", ".hidden", "long"])
def test_a_prefix_outside_the_output_folder_is_refused(client, tmp_path, prefix):
    output = client.server.dirs["output"]
    outside = client.server.root / "escaped"
    outside.mkdir(exist_ok=True)
    link = output / "linked"
    if not link.exists():
        link.symlink_to(outside, target_is_directory=True)
    if prefix == "absolute":
        prefix = str(outside / "poses")
    elif prefix == "long":
        prefix = "x" * 300  # longer than a file name may be
    try:
        graph = {"walk": _load(WALK_FILE), "save": _save(["walk", 0], prefix, 25.0)}
        error = client.node_error(graph, "PIDMSavePose", "Save Pose filename_prefix", "output folder")
        assert str(outside) not in error["exception_message"] or prefix.startswith(str(outside))
        assert list(outside.iterdir()) == [], "nothing is written outside the output folder"
    finally:
        link.unlink()
        shutil.rmtree(outside)


def test_load_pose_refuses_output_names_outside_the_output_folder(client):
    secret = client.server.root / "save_pose_secret.json"
    secret.write_text(json.dumps(pose_keypoint_from_poses(WALK)))
    try:
        for name in ["../save_pose_secret.json [output]", f"{secret} [output]"]:
            client.node_error({"load": _load(name), "save": _save(["load", 0], "pidm_save_test/x", 0.0)},
                              "PIDMLoadPose", "Load Pose file", "is not a file name inside its folder")
    finally:
        secret.unlink()


def test_retarget_motion_anchor_runs_in_a_graph(client):
    graph = {
        "walk": _load(WALK_FILE),
        "source": _load(SOURCE_FILE),
        "retarget": {"class_type": "PIDMRetargetPose", "inputs": {"target": ["walk", 0], "source": ["source", 0],
                                                                  "anchor": "motion", "person_index": -1}},
        "save": _save(["retarget", 0], "pidm_save_test/motion", ["walk", 1]),
    }
    path, _ = _saved(client, client.run(graph), "save")
    frames = read_pose_file(path).poses
    source = read_pose_file(client.server.dirs["input"] / SOURCE_FILE).poses[0]
    assert len(frames) == FRAMES
    ground = max(source.xy[[10, 13], 1])
    for frame in frames:
        np.testing.assert_allclose(bone_lengths(frame), bone_lengths(source), atol=2e-3)
        assert max(frame.xy[[10, 13], 1]) == pytest.approx(ground, abs=2e-3)  # feet on the source's ground
    steps = np.diff([frame.xy[1, 0] for frame in frames])
    np.testing.assert_allclose(steps, 3.5 * 1.3, atol=2e-3)  # the walk, scaled by the one scale


def test_save_and_load_on_the_v1_host(comfy_v1):
    """The March-2024 ComfyUI (V1 nodes only) saves and loads back the same way."""
    (comfy_v1.server.dirs["input"] / WALK_FILE).write_text(json.dumps(pose_keypoint_from_poses(WALK)))
    try:
        result = comfy_v1.run({"walk": _load(WALK_FILE), "save": _save(["walk", 0], "pidm_save_test/v1", 24.0)})
        path, name = _saved(comfy_v1, result, "save")
        result = comfy_v1.run({"again": _load(name), "save": _save(["again", 0], "pidm_save_test/v1_again",
                                                                     ["again", 1])})
        again, _ = _saved(comfy_v1, result, "save")
        assert read_pose_file(again).frame_rate == 24.0
        _assert_same_poses(read_pose_file(again).poses, WALK)
    finally:
        shutil.rmtree(comfy_v1.server.dirs["output"] / "pidm_save_test", ignore_errors=True)


def test_frames_without_a_person_keep_their_place(client):
    """A video frame where nobody was found (no people, or a person without joints) passes through
    Load Pose, Retarget Pose (anchor motion) and Save Pose as an empty frame."""
    frames = pose_keypoint_from_poses(WALK)
    frames[2] = {"people": [], "canvas_width": W, "canvas_height": H}
    frames[4] = pose_keypoint_from_poses([Pose(np.zeros((18, 3)), W, H)])[0]
    (client.server.dirs["input"] / "save_pose_gaps.json").write_text(json.dumps(frames))
    graph = {
        "walk": _load("save_pose_gaps.json"),
        "source": _load(SOURCE_FILE),
        "retarget": {"class_type": "PIDMRetargetPose", "inputs": {"target": ["walk", 0], "source": ["source", 0],
                                                                  "anchor": "motion", "person_index": -1}},
        "save": _save(["retarget", 0], "pidm_save_test/gaps", 25.0),
    }
    path, _ = _saved(client, client.run(graph), "save")
    read = read_pose_file(path, keep_empty=True).poses
    assert [bool(p.present.any()) for p in read] == [True, True, False, True, False, True]
