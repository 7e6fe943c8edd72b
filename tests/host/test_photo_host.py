"""Put Back Into Photo through a real ComfyUI server: the shipped photo_from_the_wild graph (a person at the
side of a room, framed, sampled, upscaled by ComfyUI's ImageScaleBy and pasted back), its outputs, and bad
inputs reported as node errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pidm_core.checkpoint import EMBEDDED_PATH

pytestmark = pytest.mark.host

REPO = Path(__file__).resolve().parents[2]
SCENE = REPO / "assets" / "pidm_scene.png"

from tests.optional import HAVE_MEDIAPIPE


@pytest.fixture(scope="module")
def client(comfy):
    if not HAVE_MEDIAPIPE:
        pytest.skip("needs mediapipe (the example detects the pose and the person mask with it)")
    if not EMBEDDED_PATH.is_file():
        pytest.skip(f"the embedded model is missing ({EMBEDDED_PATH})")
    return comfy


def _graph(changes: dict | None = None) -> dict:
    graph = json.loads((REPO / "example_workflows" / "api" / "photo_from_the_wild.json").read_text())
    graph["sample"]["inputs"]["steps"] = 2
    graph["show_person"] = {"class_type": "PreviewImage", "inputs": {"images": ["person_image", 0]}}
    graph["person_image"] = {"class_type": "MaskToImage", "inputs": {"mask": ["paste", 2]}}
    for (node, key), value in (changes or {}).items():
        graph[node]["inputs"][key] = value
    return graph


def _grey(client, result, node) -> np.ndarray:
    return np.asarray(client.output_images(result, node)[0].convert("L"), np.float32) / 255


def test_the_person_is_put_back_into_the_photo_at_full_resolution(client):
    result = client.run(_graph(), timeout=600)
    assert result.error is None, f"{result.error}\n{client.server.log_tail()}"
    photo = np.asarray(Image.open(SCENE).convert("RGB"), np.float32) / 255
    out = np.asarray(client.output_images(result, "save")[0].convert("RGB"), np.float32) / 255
    assert out.shape == photo.shape == (384, 512, 3)
    filled, person = _grey(client, result, "show_filled"), _grey(client, result, "show_person")
    assert filled.shape == person.shape == (384, 512)
    untouched = (filled == 0) & (person == 0)
    assert untouched.mean() > 0.8
    assert np.abs(out - photo)[untouched].max() <= 1.5 / 255  # the photo itself (8-bit rounding of the save)
    # the person stood at the right side of the room (x 420..493): the new one stands there, the fill is there
    columns = np.nonzero(person.max(0) > 0.5)[0]
    assert 380 < columns.mean() < 520 and person.max() == 1
    assert filled[:, :360].max() == 0 and (filled > 0.5).sum() > 50
    assert np.abs(out - photo)[person > 0.5].mean() > 0.02  # something new was drawn there


@pytest.mark.parametrize("changes, match", [
    ({("texture", "fit"): "pad"}, "the texture was not framed"),
    ({("paste", "photo"): ["other", 0]}, "photo is 256x256 pixels but the person was framed in a 512x384 photo"),
    ({("paste", "mask"): ["other_pose", 2]}, "person mask is 256x256 pixels but the photo is 512x384"),
    ({("paste", "images"): ["photo", 0]}, "generated image is 512x384 pixels"),
])
def test_bad_inputs_are_node_errors(client, changes, match):
    result = client.run(_graph(changes), timeout=600)
    assert result.error is not None, "expected a node error"
    assert result.error["node_type"] == "PIDMPasteIntoPhoto", result.error
    assert match in result.error["exception_message"]


def test_a_pose_sequence_is_put_back_frame_by_frame(client):
    graph = _graph()
    graph["sequence"] = {"class_type": "PIDMLoadPose", "inputs": {"file": "pidm_pose_sequence.json", "person_index": -1,
                                                                  "canvas_width": 0, "canvas_height": 0}}
    graph["retarget"]["inputs"]["target"] = ["sequence", 0]
    graph["sample"]["inputs"]["steps"] = 1
    result = client.run(graph, timeout=600)
    assert result.error is None, f"{result.error}\n{client.server.log_tail()}"
    frames = [np.asarray(image.convert("RGB"), np.float32) / 255 for image in client.output_images(result, "save")]
    assert len(frames) == 8 and all(frame.shape == (384, 512, 3) for frame in frames)
    # the arms rise through the sequence: the frames differ, around the person only
    assert np.abs(frames[0] - frames[-1]).max() > 0.2
    assert np.abs(frames[0] - frames[-1])[:, :300].max() <= 1.5 / 255
