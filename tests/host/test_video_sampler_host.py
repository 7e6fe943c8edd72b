"""PIDM Sampler (video) through a real ComfyUI 0.3.75: a short pose sequence sampled into a VIDEO, saved by core
Save Video; the saved mp4 has the frame count and rate asked for, the driving video's sound (through core Load
Video and Get Video Components), the first frames on the node, and bad inputs are node errors. On the V1-only
host the node is not listed (that host has no VIDEO type)."""

from __future__ import annotations

import json
from fractions import Fraction

import numpy as np
import pytest

from pidm_core.checkpoint import EMBEDDED_PATH
from pidm_core.pose.formats import pose_keypoint_from_poses
from pidm_core.pose.interpolate import interpolate_poses
from pidm_core.video.write import VideoWriter
from tests.test_bad_inputs import standing_pose
from tests.tiny_model import save_tiny_model

av = pytest.importorskip("av")

pytestmark = pytest.mark.host

POSES = 6
DRIVING_RATE = Fraction(30000, 1001)
TINY = "tiny_video_test.safetensors"


@pytest.fixture(scope="module")
def client(comfy):
    inputs = comfy.server.dirs["input"]
    from PIL import Image

    Image.fromarray(np.full((64, 48, 3), (180, 40, 50), np.uint8)).save(inputs / "video_source.png")
    walk = interpolate_poses(standing_pose(dx=-4), standing_pose(dx=4), POSES)
    (inputs / "video_walk.json").write_text(json.dumps(pose_keypoint_from_poses(walk)))
    # a driving video with sound: 2 s of a tone, 30000/1001 fps
    t = np.arange(2 * 16000) / 16000
    sound = np.stack([0.2 * np.sin(2 * np.pi * 440 * t)] * 2).astype(np.float32)
    with VideoWriter(inputs / "video_driving.mp4", DRIVING_RATE, audio=(sound, 16000)) as video:
        video.write(np.zeros((60, 32, 32, 3), np.uint8))
    save_tiny_model(comfy.server.models_pidm / TINY)
    return comfy


def _model_name() -> str:
    return "embedded" if EMBEDDED_PATH.is_file() else TINY


def _graph(prefix: str, audio: bool = True, **node) -> dict:
    graph = {
        "model": {"class_type": "PIDMLoadModel", "inputs": {"model_name": _model_name(), "dtype": "fp32"}},
        "photo": {"class_type": "LoadImage", "inputs": {"image": "video_source.png"}},
        "texture": {"class_type": "PIDMEncodeTexture",
                    "inputs": {"model": ["model", 0], "image": ["photo", 0], "fit": "pad"}},
        "pose": {"class_type": "PIDMLoadPose",
                 "inputs": {"file": "video_walk.json", "person_index": -1, "canvas_width": 0, "canvas_height": 0}},
        "driving": {"class_type": "LoadVideo", "inputs": {"file": "video_driving.mp4"}},
        "parts": {"class_type": "GetVideoComponents", "inputs": {"video": ["driving", 0]}},
        "render": {"class_type": "PIDMSampleVideo", "inputs": {
            "model": ["model", 0], "texture": ["texture", 0], "pose": ["pose", 0], "seed": 0, "steps": 1,
            "sampler": "ddim", "guidance": "official", "appearance_scale": 2.0, "pose_scale": 2.0,
            "person_index": -1, "frame_rate": ["parts", 2], "place": "pose", "inpaint": "telea", "chunk_size": 4,
            "sequence_denoise": 1.0,  # frames from noise, in chunks of 4
            **({"audio": ["parts", 1]} if audio else {}), **node}},
        "save": {"class_type": "SaveVideo", "inputs": {"video": ["render", 0], "filename_prefix": prefix,
                                                       "format": "auto", "codec": "auto"}},
    }
    return graph


def _saved(client, result) -> dict:
    entry = client.history(result.prompt_id)["outputs"]["save"]["images"][0]
    path = client.server.dirs["output"] / entry["subfolder"] / entry["filename"]
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        sound = container.streams.audio[0] if container.streams.audio else None
        return {"frames": sum(1 for _ in container.decode(video=0)), "rate": video.average_rate,
                "codec": video.codec.name,
                "audio_s": None if sound is None else float(sound.duration * sound.time_base)}


def test_a_sequence_becomes_a_saved_video_with_the_driving_rate_and_sound(client):
    result = client.run(_graph("video/pidm_walk"), timeout=600)
    assert result.error is None, f"{result.error}\n{client.server.log_tail()}"
    saved = _saved(client, result)
    assert saved["frames"] == POSES and saved["rate"] == DRIVING_RATE and saved["codec"] == "h264"
    assert saved["audio_s"] == pytest.approx(POSES / DRIVING_RATE, abs=0.05)  # the sound, cut at the video's end
    shown = client.output_images(result, "render")
    assert len(shown) == POSES and shown[0].size == (48, 64)  # the first frames on the node, the source's size
    assert result.progress and result.progress[-1]["value"] == result.progress[-1]["max"] == 2  # 2 chunks x 1 step


def test_without_audio_the_video_is_silent_at_the_rate_typed(client):
    result = client.run(_graph("video/pidm_silent", audio=False, frame_rate=12.5), timeout=600)
    assert result.error is None, f"{result.error}\n{client.server.log_tail()}"
    saved = _saved(client, result)
    assert saved["frames"] == POSES and saved["rate"] == Fraction(25, 2) and saved["audio_s"] is None


@pytest.mark.parametrize("changes, message", [
    ({"mask": ["mask_image", 1]}, "mask is connected but photo is not"),
    ({"photo": ["photo", 0]}, "photo: the texture was not framed"),
    ({"texture": 5}, "texture must be linked to Encode Source Texture's output"),
])
def test_bad_inputs_are_node_errors(client, changes, message):
    graph = _graph("video/pidm_bad", audio=False)
    graph["mask_image"] = {"class_type": "LoadImage", "inputs": {"image": "video_source.png"}}
    graph["render"]["inputs"].update(changes)
    client.node_error(graph, "PIDMSampleVideo", message)


def test_the_v1_host_does_not_list_the_video_node(comfy_v1):
    info = comfy_v1.object_info()
    assert "PIDMSampler" in info and "PIDMSampleVideo" not in info
