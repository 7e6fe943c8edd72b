"""The Edit Pose node's Python side: the edited JSON from its widget wins over the input pose."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pidm_core.pose.edit import choose_pose, jsonable, parse_edited_pose
from pidm_core.pose.formats import pose_keypoint_from_poses, poses_from_pose_keypoint
from pidm_core.pose.keypoints import NUM_JOINTS, Pose

WIDGET = "edited_pose"


def _pose_keypoint(x_shift: float = 0.0) -> list[dict]:
    keypoints = np.zeros((NUM_JOINTS, 3), np.float32)
    keypoints[:, 0] = np.linspace(10, 50, NUM_JOINTS) + x_shift
    keypoints[:, 1] = np.linspace(5, 60, NUM_JOINTS)
    keypoints[:, 2] = 1.0
    return pose_keypoint_from_poses([Pose(keypoints, 64, 64)])


def test_edited_json_wins_over_the_input():
    edited = _pose_keypoint(x_shift=3.0)
    chosen = choose_pose(json.dumps(edited), _pose_keypoint(), WIDGET)
    assert chosen == edited
    assert poses_from_pose_keypoint(chosen)[0].keypoints[0, 0] == pytest.approx(13.0)


@pytest.mark.parametrize("empty", ["", "   \n", None])
def test_empty_widget_passes_the_input_through(empty):
    given = _pose_keypoint()
    assert choose_pose(empty, given, WIDGET) is given


def test_one_frame_dict_is_a_list_of_one():
    frame = _pose_keypoint()[0]
    assert parse_edited_pose(json.dumps(frame), WIDGET) == [frame]


def test_malformed_json_is_a_value_error_naming_the_widget():
    with pytest.raises(ValueError, match=r"edited_pose: the edited pose is not valid JSON .*line 1") as error:
        choose_pose('[{"people": [', _pose_keypoint(), WIDGET)
    assert "Reset" in str(error.value)


@pytest.mark.parametrize("text, found", [
    ('{"people": []}', "has no people"),
    ('[{"people": [{"pose_keypoints_2d": [1, 2, 1]}], "canvas_width": 8, "canvas_height": 8}]', "1 joints"),
    ('[{"people": [{"pose_keypoints_2d": [1, 2, 1]}]}]', "canvas_width"),
    ('42', "expected a list of frames"),
])
def test_json_that_is_not_a_pose_is_a_value_error_naming_the_widget(text, found):
    with pytest.raises(ValueError, match=found) as error:
        parse_edited_pose(text, WIDGET)
    assert str(error.value).startswith(WIDGET)


def test_nothing_to_output_says_what_to_do():
    with pytest.raises(ValueError, match="connect a POSE_KEYPOINT.*edited_pose is empty"):
        choose_pose("", None, WIDGET)


def test_jsonable_turns_numpy_into_plain_numbers():
    data = [{"people": [{"pose_keypoints_2d": np.arange(3, dtype=np.float32)}], "canvas_width": np.int64(4)}]
    assert jsonable(data) == [{"people": [{"pose_keypoints_2d": [0.0, 1.0, 2.0]}], "canvas_width": 4}]
