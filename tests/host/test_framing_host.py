"""Framing through a real ComfyUI server: Pose From Image's mask output and Encode Source Texture's fit
'person', on a photo from tests/photos/ (OpenCV sample data, Apache-2.0)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from pidm_core.checkpoint import EMBEDDED_PATH

pytestmark = pytest.mark.host

PHOTOS = Path(__file__).resolve().parents[1] / "photos"

from tests.optional import HAVE_MEDIAPIPE


@pytest.fixture(scope="module")
def client(comfy):
    if not HAVE_MEDIAPIPE:
        pytest.skip("needs mediapipe")
    if not EMBEDDED_PATH.is_file():
        pytest.skip("needs the embedded model")
    shutil.copy(PHOTOS / "messi5.jpg", comfy.server.dirs["input"] / "messi5.jpg")
    return comfy


def _graph(fit: str = "person", connect_pose: bool = True) -> dict:
    texture_inputs = {"model": ["model", 0], "image": ["photo", 0], "fit": fit, "mask": ["detect", 2]}
    if connect_pose:
        texture_inputs["pose"] = ["detect", 0]
    return {
        "model": {"class_type": "PIDMLoadModel", "inputs": {"model_name": "embedded", "dtype": "fp32"}},
        "photo": {"class_type": "LoadImage", "inputs": {"image": "messi5.jpg"}},
        "detect": {"class_type": "PIDMPoseFromImage", "inputs": {
            "image": ["photo", 0], "backend": "mediapipe", "person_index": -1, "threshold": 0.3,
            "allow_download": False}},
        "mask_image": {"class_type": "MaskToImage", "inputs": {"mask": ["detect", 2]}},
        "show_mask": {"class_type": "PreviewImage", "inputs": {"images": ["mask_image", 0]}},
        "texture": {"class_type": "PIDMEncodeTexture", "inputs": texture_inputs},
        "sample": {"class_type": "PIDMSampler", "inputs": {
            "model": ["model", 0], "texture": ["texture", 0], "pose": ["detect", 0], "seed": 0, "steps": 2,
            "sampler": "ddim", "guidance": "official", "appearance_scale": 2.0, "pose_scale": 2.0,
            "person_index": -1, "denoise": 1.0}},
        "preview": {"class_type": "PreviewImage", "inputs": {"images": ["sample", 0]}},
    }


def test_mask_output_and_fit_person_through_the_host(client):
    result = client.run(_graph(), timeout=300)
    assert result.error is None, f"{result.error}\n{client.server.log_tail()}"
    mask = np.asarray(client.output_images(result, "show_mask")[0].convert("L"), np.float32) / 255
    assert mask.shape == (342, 548)  # the photo's size
    assert 0.08 < (mask >= 0.5).mean() < 0.25 and (mask[:40] >= 0.5).sum() == 0  # the player, not the crowd
    framed = np.asarray(client.output_images(result, "preview")[0].convert("RGB"), np.float32) / 255
    assert framed.shape == (64, 64, 3) and framed.std() > 0.01  # the framed canvas of the embedded model


def test_fit_person_without_a_pose_is_a_node_error(client):
    result = client.run(_graph(connect_pose=False), timeout=300)
    assert result.error is not None and result.error["node_type"] == "PIDMEncodeTexture"
    assert "fit 'person' needs the source person's pose" in result.error["exception_message"]
