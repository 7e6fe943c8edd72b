"""What the pose nodes send to the web UI, and the Edit Pose node, through a real ComfyUI server.

The browser test (test_frontend.py) drives the widgets; these check the server side alone over
HTTP: the ui payloads (keypoints, thumbnails in the temp folder) and the editor's rules (the
edited JSON wins; broken JSON is a node error that names the widget).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from pidm_core.pose.formats import pose_keypoint_from_poses
from pidm_core.pose.keypoints import Pose

pytestmark = pytest.mark.host

POSE_FILE = "ui_pose.json"
W, H = 60, 80


def _pose(shift: float = 0.0) -> list[dict]:
    keypoints = np.zeros((18, 3), np.float32)
    keypoints[:, 0] = np.linspace(10, 50, 18) + shift
    keypoints[:, 1] = np.linspace(5, 75, 18)
    keypoints[:, 2] = 1.0
    return pose_keypoint_from_poses([Pose(keypoints, W, H)])


@pytest.fixture(scope="module")
def client(comfy):
    (comfy.server.dirs["input"] / POSE_FILE).write_text(json.dumps(_pose()))
    return comfy


def _graph(edited_pose: str, with_input: bool = True) -> dict:
    editor_inputs = {"edited_pose": edited_pose}
    if with_input:
        editor_inputs["pose"] = ["load", 0]
    return {
        "load": {"class_type": "PIDMLoadPose",
                 "inputs": {"file": POSE_FILE, "person_index": -1, "canvas_width": 0, "canvas_height": 0}},
        "edit": {"class_type": "PIDMPoseEditor", "inputs": editor_inputs},
        "render": {"class_type": "PIDMRenderPose",
                   "inputs": {"pose": ["edit", 0], "width": 0, "height": 0, "person_index": -1}},
        "show": {"class_type": "PreviewImage", "inputs": {"images": ["render", 0]}},
    }


def test_load_pose_sends_its_keypoints_to_the_ui(client):
    result = client.run(_graph(""))
    assert result.error is None, result.error
    ui = result.outputs["load"]
    assert ui["pidm_pose"] == _pose() and ui["pidm_frame_count"] == [1]
    # Nothing edited: the editor passes the input through and says what it received.
    assert result.outputs["edit"]["pidm_pose"] == _pose()
    assert result.outputs["edit"]["pidm_input_pose"] == _pose()
    assert result.outputs["render"]["pidm_pose"] == _pose()


def test_edited_pose_wins_over_the_input(client):
    edited = _pose(shift=4.0)
    result = client.run(_graph(json.dumps(edited)))
    assert result.error is None, result.error
    assert result.outputs["edit"]["pidm_pose"] == edited
    assert result.outputs["edit"]["pidm_input_pose"] == _pose()
    assert result.outputs["render"]["pidm_pose"] == edited  # what the next node got


def test_editor_alone_outputs_its_literal_pose(client):
    edited = _pose(shift=-2.0)
    result = client.run(_graph(json.dumps(edited), with_input=False))
    assert result.error is None, result.error
    assert result.outputs["render"]["pidm_pose"] == edited
    assert "pidm_input_pose" not in result.outputs["edit"]


@pytest.mark.parametrize("text, message", [
    ('[{"people": [', "edited_pose: the edited pose is not valid JSON"),
    ('[{"people": []}]', "edited_pose frame 1 of 1 has no people"),
])
def test_broken_edited_pose_is_a_node_error_naming_the_widget(client, text, message):
    result = client.run(_graph(text))
    assert result.error is not None and result.error["node_type"] == "PIDMPoseEditor"
    assert message in result.error["exception_message"]


def test_editor_without_any_pose_says_what_to_do(client):
    result = client.run(_graph("", with_input=False))
    assert result.error is not None
    assert "connect a POSE_KEYPOINT" in result.error["exception_message"]


PHOTO = Path(__file__).resolve().parents[1] / "photos" / "messi5.jpg"  # tests/photos/SOURCES.md


def test_pose_from_image_sends_a_thumbnail_of_the_photo(client):
    pytest.importorskip("mediapipe")
    shutil.copy(PHOTO, client.server.dirs["input"] / "ui_photo.jpg")
    graph = {
        "photo": {"class_type": "LoadImage", "inputs": {"image": "ui_photo.jpg"}},
        "detect": {"class_type": "PIDMPoseFromImage", "inputs": {
            "image": ["photo", 0], "backend": "mediapipe", "person_index": -1, "threshold": 0.3,
            "allow_download": False}},
        "render": {"class_type": "PIDMRenderPose",
                   "inputs": {"pose": ["detect", 0], "width": 0, "height": 0, "person_index": -1}},
        "show": {"class_type": "PreviewImage", "inputs": {"images": ["render", 0]}},
    }
    result = client.run(graph, timeout=180)
    assert result.error is None, result.error
    ui = result.outputs["detect"]
    frame = ui["pidm_pose"][0]
    assert sum(c > 0 for c in frame["people"][0]["pose_keypoints_2d"][2::3]) >= 10
    (thumbnail,) = ui["pidm_thumbnails"]
    assert thumbnail["type"] == "temp"
    image = client.view_image(thumbnail)
    assert image.format == "JPEG" and max(image.size) <= 384
    # Same aspect as the canvas the keypoints live on, so the skeleton lies on the photo.
    assert image.size[0] / image.size[1] == pytest.approx(frame["canvas_width"] / frame["canvas_height"], rel=0.02)
