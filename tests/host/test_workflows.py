"""Workflows through a real ComfyUI server: API-format graphs posted over HTTP, watched on the websocket.

Inputs are made here: a small source photo, pose files and a random-weight ``tiny_32`` model saved
into the server's models/pidm folder (or the embedded model when its weights are present). Few
sampling steps keep the whole file to a few seconds of CPU.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from tests.tiny_model import save_tiny_model
from pidm_core.checkpoint import EMBEDDED_PATH
from pidm_core.pose.formats import pose_keypoint_from_poses
from pidm_core.pose.keypoints import Pose

pytestmark = pytest.mark.host

SOURCE_W, SOURCE_H = 48, 64  # a portrait source: outputs must come back in this size
TINY_MODEL = "tiny_random.safetensors"
STEPS = 4


# --- inputs ------------------------------------------------------------------------------------

def _standing_pose(width: int, height: int, arm_raise: float = 0.0) -> Pose:
    """A front-facing COCO-18 figure filling the canvas; arm_raise lifts the wrists (fraction of height)."""
    cx = width / 2
    u, v = width / 48, height / 64
    joints = {
        0: (cx, 8 * v), 1: (cx, 16 * v), 2: (cx - 8 * u, 16 * v), 3: (cx - 10 * u, 26 * v),
        4: (cx - 11 * u, (36 - 30 * arm_raise) * v), 5: (cx + 8 * u, 16 * v), 6: (cx + 10 * u, 26 * v),
        7: (cx + 11 * u, (36 - 30 * arm_raise) * v), 8: (cx - 5 * u, 36 * v), 9: (cx - 5 * u, 48 * v),
        10: (cx - 5 * u, 60 * v), 11: (cx + 5 * u, 36 * v), 12: (cx + 5 * u, 48 * v), 13: (cx + 5 * u, 60 * v),
        14: (cx - 2 * u, 7 * v), 15: (cx + 2 * u, 7 * v), 16: (cx - 4 * u, 8 * v), 17: (cx + 4 * u, 8 * v),
    }
    keypoints = np.zeros((18, 3), np.float32)
    for index, (x, y) in joints.items():
        keypoints[index] = (x, y, 1.0)
    return Pose(keypoints, width, height)


def _source_photo() -> Image.Image:
    image = Image.new("RGB", (SOURCE_W, SOURCE_H), (200, 200, 190))
    draw = ImageDraw.Draw(image)
    draw.ellipse((18, 2, 30, 14), fill=(230, 180, 150))  # head
    draw.rectangle((15, 15, 33, 37), fill=(180, 30, 40))  # shirt
    draw.rectangle((17, 37, 31, 62), fill=(30, 40, 120))  # trousers
    return image


def _tiny_model(path: Path) -> None:
    save_tiny_model(path)


def _prepare(server) -> str:
    """Write the test inputs into a server's tree; returns the model name to load."""
    inputs = server.dirs["input"]
    _source_photo().save(inputs / "source.png")
    walk = [_standing_pose(SOURCE_W, SOURCE_H, 0.0), _standing_pose(SOURCE_W, SOURCE_H, 1.0)]
    (inputs / "poses.json").write_text(json.dumps(pose_keypoint_from_poses(walk)))
    (inputs / "arms_up.json").write_text(json.dumps(pose_keypoint_from_poses([_standing_pose(96, 128, 1.0)])))
    _tiny_model(server.models_pidm / TINY_MODEL)
    # A file in models/pidm that is not a PIDM model at all.
    from safetensors.torch import save_file

    save_file({"model.diffusion_model.input_blocks.0.0.weight": torch.zeros(4, 4)},
              str(server.models_pidm / "not_pidm.safetensors"))
    return "embedded" if EMBEDDED_PATH.is_file() else TINY_MODEL


@pytest.fixture(scope="module")
def v3(comfy):
    return comfy, _prepare(comfy.server)


@pytest.fixture(scope="module")
def v1(comfy_v1):
    return comfy_v1, _prepare(comfy_v1.server)


# --- graphs ------------------------------------------------------------------------------------

def _sampler_graph(model_name: str, steps: int = STEPS, seed: int = 0, poses: str = "poses.json") -> dict:
    return {
        "model": {"class_type": "PIDMLoadModel", "inputs": {"model_name": model_name, "dtype": "fp32"}},
        "photo": {"class_type": "LoadImage", "inputs": {"image": "source.png"}},
        "texture": {"class_type": "PIDMEncodeTexture",
                    "inputs": {"model": ["model", 0], "image": ["photo", 0], "fit": "auto"}},
        "pose": {"class_type": "PIDMLoadPose",
                 "inputs": {"file": poses, "person_index": -1, "canvas_width": 0, "canvas_height": 0}},
        "sample": {"class_type": "PIDMSampler", "inputs": {
            "model": ["model", 0], "texture": ["texture", 0], "pose": ["pose", 0], "seed": seed, "steps": steps,
            "sampler": "ddim", "guidance": "official", "appearance_scale": 2.0, "pose_scale": 2.0,
            "person_index": -1, "denoise": 1.0,
            # every step guided, every frame from noise in chunks: the runs these tests count
            "guidance_start": 0.0, "guidance_end": 1.0, "sequence_denoise": 1.0}},
        "preview": {"class_type": "PreviewImage", "inputs": {"images": ["sample", 0]}},
    }


def _arrays(client, result, node: str) -> list[np.ndarray]:
    return [np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0 for image in client.output_images(result, node)]


def _assert_real_images(images: list[np.ndarray], count: int, width: int, height: int) -> None:
    assert len(images) == count
    for image in images:
        assert image.shape == (height, width, 3)
        assert np.isfinite(image).all()
        assert image.std() > 0.01, "blank image"


def _run_ok(client, graph: dict, timeout: float = 180):
    result = client.run(graph, timeout=timeout)
    assert result.error is None, f"{result.error}\n{client.server.log_tail()}"
    return result


# --- new host (V3) -----------------------------------------------------------------------------

def test_sampler_workflow_reports_progress_and_returns_images(v3):
    client, model_name = v3
    result = _run_ok(client, _sampler_graph(model_name))
    progress = [p for p in result.progress if p["node"] == "sample"]
    assert progress and progress[-1]["value"] == progress[-1]["max"] == STEPS
    assert len(result.previews) >= 1
    Image.open(io.BytesIO(result.previews[-1])).verify()
    _assert_real_images(_arrays(client, result, "preview"), 2, SOURCE_W, SOURCE_H)
    # The sampler shows its final images on itself too (the web UI's preview, from the temp folder).
    shown = [np.asarray(client.view_image(i).convert("RGB")) for i in result.outputs["sample"]["images"]]
    assert [image.shape for image in shown] == [(SOURCE_H, SOURCE_W, 3)] * 2


def test_interrupt_stops_sampling_and_server_serves_the_next_prompt(v3):
    client, model_name = v3

    def interrupt_on_first_progress(result, message):
        if message["type"] == "progress" and len(result.progress) == 1:
            client.interrupt()

    result = client.run(_sampler_graph(model_name, steps=400, seed=1), timeout=300,
                        on_message=interrupt_on_first_progress)
    assert result.interrupted, [m["type"] for m in result.messages]
    assert result.progress[-1]["value"] < 400
    assert "preview" not in result.outputs
    _run_ok(client, _sampler_graph(model_name, steps=2, seed=2))


def _sequence_graph(model_name: str, frames: int, chunk_size: int, steps: int) -> dict:
    graph = _sampler_graph(model_name, steps=steps, seed=4)
    graph["arms"] = {"class_type": "PIDMLoadPose", "inputs": {"file": "arms_up.json", "person_index": -1,
                                                              "canvas_width": 0, "canvas_height": 0}}
    graph["sequence"] = {"class_type": "PIDMInterpolatePoses", "inputs": {
        "a": ["pose", 0], "b": ["arms", 0], "frames": frames, "mode": "angular", "person_index": -1}}
    graph["sample"]["inputs"].update(pose=["sequence", 0], chunk_size=chunk_size)
    return graph


def test_long_sequence_runs_in_chunks_with_one_progress_bar_and_stops_on_interrupt_in_a_later_chunk(v3):
    client, model_name = v3
    chunks, steps = 10, 2

    def interrupt_in_the_third_chunk(result, message):
        if message["type"] == "progress" and message["data"]["value"] == 5 and message["data"]["node"] == "sample":
            client.interrupt()

    result = client.run(_sequence_graph(model_name, frames=4 * chunks, chunk_size=4, steps=steps), timeout=600,
                        on_message=interrupt_in_the_third_chunk)
    assert result.interrupted, [m["type"] for m in result.messages]
    progress = [p for p in result.progress if p["node"] == "sample"]
    assert {p["max"] for p in progress} == {chunks * steps}  # one bar across all chunks
    assert 5 <= progress[-1]["value"] < chunks * steps and "preview" not in result.outputs
    # the server serves the next sequence; a chunk_size that does not divide the frames loses none
    result = _run_ok(client, _sequence_graph(model_name, frames=7, chunk_size=3, steps=steps), timeout=600)
    progress = [p for p in result.progress if p["node"] == "sample"]
    assert progress[-1]["value"] == progress[-1]["max"] == 3 * steps
    _assert_real_images(_arrays(client, result, "preview"), 7, SOURCE_W, SOURCE_H)


def test_sampler_optional_inputs_init_image_and_appearance_mask(v3):
    client, model_name = v3
    graph = _sampler_graph(model_name, steps=STEPS, seed=3)
    graph["mask"] = {"class_type": "SolidMask", "inputs": {"value": 1.0, "width": SOURCE_W, "height": SOURCE_H}}
    graph["sample"]["inputs"].update(init_image=["photo", 0], denoise=0.5, appearance_mask=["mask", 0],
                                     reference=["photo", 0])
    result = _run_ok(client, graph)
    progress = [p for p in result.progress if p["node"] == "sample"]
    assert progress[-1]["value"] == STEPS // 2, progress  # denoise 0.5 re-runs half the schedule
    _assert_real_images(_arrays(client, result, "preview"), 2, SOURCE_W, SOURCE_H)


def test_pose_nodes_workflow(v3):
    client, _ = v3
    load = {"class_type": "PIDMLoadPose", "inputs": {"file": "poses.json", "person_index": -1,
                                                     "canvas_width": 0, "canvas_height": 0}}
    graph = {
        "walk": load,
        "arms": {**load, "inputs": {**load["inputs"], "file": "arms_up.json"}},
        "between": {"class_type": "PIDMInterpolatePoses",
                    "inputs": {"a": ["walk", 0], "b": ["arms", 0], "frames": 3, "mode": "angular", "person_index": -1}},
        "retarget": {"class_type": "PIDMRetargetPose",
                     "inputs": {"target": ["arms", 0], "source": ["walk", 0], "anchor": "neck", "person_index": -1}},
        "render_between": {"class_type": "PIDMRenderPose",
                           "inputs": {"pose": ["between", 0], "width": 0, "height": 0, "person_index": -1}},
        "render_retarget": {"class_type": "PIDMRenderPose",
                            "inputs": {"pose": ["retarget", 0], "width": 96, "height": 128, "person_index": -1}},
        "show_between": {"class_type": "PreviewImage", "inputs": {"images": ["render_between", 0]}},
        "show_grid": {"class_type": "PreviewImage", "inputs": {"images": ["render_between", 1]}},
        "show_retarget": {"class_type": "PreviewImage", "inputs": {"images": ["render_retarget", 0]}},
    }
    result = _run_ok(client, graph)
    _assert_real_images(_arrays(client, result, "show_between"), 3, SOURCE_W, SOURCE_H)
    _assert_real_images(_arrays(client, result, "show_grid"), 3, 5 * SOURCE_W, 4 * SOURCE_H)
    _assert_real_images(_arrays(client, result, "show_retarget"), 1, 96, 128)


def _assert_still_serving(client) -> None:
    assert client.server.alive(), client.server.log_tail()
    graph = {"pose": {"class_type": "PIDMLoadPose", "inputs": {"file": "arms_up.json", "person_index": -1,
                                                               "canvas_width": 0, "canvas_height": 0}},
             "render": {"class_type": "PIDMRenderPose",
                        "inputs": {"pose": ["pose", 0], "width": 0, "height": 0, "person_index": -1}},
             "show": {"class_type": "PreviewImage", "inputs": {"images": ["render", 0]}}}
    _run_ok(client, graph)


def test_non_pidm_checkpoint_is_a_node_error(v3):
    client, _ = v3
    result = client.run(_sampler_graph("not_pidm.safetensors"), timeout=120)
    assert result.error is not None
    assert result.error["node_type"] == "PIDMLoadModel"
    assert "not PIDM" in result.error["exception_message"], result.error["exception_message"]
    _assert_still_serving(client)


# --- old host (V1 only) ------------------------------------------------------------------------

def test_v1_host_runs_the_sampler_workflow(v1):
    client, model_name = v1
    result = _run_ok(client, _sampler_graph(model_name))
    assert [p for p in result.progress if p["node"] == "sample"]
    _assert_real_images(_arrays(client, result, "preview"), 2, SOURCE_W, SOURCE_H)
