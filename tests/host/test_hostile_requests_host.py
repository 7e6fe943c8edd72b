"""Hostile requests through a real ComfyUI 0.3.75 server (issue 14): what a prompt posted to /prompt
can put into the pack's string and size inputs, since the host does not check V3 combo values.

Each case must end as a node error naming the input and quoting nothing of any file outside the
server's folders, leave the server alive and serving, grow it by less than 3 GB, and leave
``GET /history`` strict JSON (no NaN or infinity: ``JSON.parse`` in a browser refuses them). The
library side of the same families is tests/test_hostile_requests.py.
"""

from __future__ import annotations

import json
import os
import shutil
import struct

import numpy as np
import pytest
import requests
from PIL import Image

from pidm_core.pose.formats import pose_keypoint_from_poses
from pidm_core.pose.keypoints import Pose
from tests.graphs import one_step_sampler_graph
from tests.tiny_model import save_tiny_model

pytestmark = pytest.mark.host

SECRET = "HOSTILE-SECRET-7f3a"
GROWTH_LIMIT_BYTES = 3 << 30
W, H = 48, 64


def _standing() -> Pose:
    joints = [(24, 8), (24, 16), (16, 16), (14, 26), (13, 36), (32, 16), (34, 26), (35, 36), (19, 36), (19, 48),
              (19, 60), (29, 36), (29, 48), (29, 60), (22, 7), (26, 7), (20, 8), (28, 8)]
    return Pose(np.array([(x, y, 1.0) for x, y in joints], np.float32), W, H)


def _npy_header(shape: tuple) -> bytes:
    header = repr({"descr": "<f4", "fortran_order": False, "shape": shape}).encode("latin1")
    header += b" " * (64 - (10 + len(header) + 1) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header


def _strict_json(text: str):
    def refuse(constant):
        raise ValueError(f"/history holds {constant}, which JSON.parse refuses")

    return json.loads(text, parse_constant=refuse)


@pytest.fixture(scope="module")
def hostile(comfy):
    """The client, with a good pose, hostile pose files in input/, a tiny model in models/pidm, and a
    secret outside every folder the server may read (plus a link to it inside input/)."""
    # Earlier modules post "nan" to core nodes (SolidMask), whose prompts the host keeps in /history
    # and no pack can refuse: this module checks the history of its own prompts.
    requests.post(comfy.base_url + "/history", json={"clear": True}, timeout=30).raise_for_status()
    server = comfy.server
    inputs = server.dirs["input"]
    outside = server.root / "outside"
    outside.mkdir(exist_ok=True)
    secrets = {
        "secret.json": json.dumps({SECRET: [SECRET], "people": SECRET}),
        "secret.txt": f"{SECRET} the password\n",
        "secret.csv": f"name:keypoints_y:keypoints_x\n{SECRET}:{SECRET}:[{SECRET}]\n",
        "secret.safetensors": SECRET * 100,
    }
    for name, text in secrets.items():
        (outside / name).write_text(text)
    link = inputs / "hostile_link.json"
    if not link.exists():
        link.symlink_to(outside / "secret.json")

    good = pose_keypoint_from_poses([_standing()])
    (inputs / "hostile_good.json").write_text(json.dumps(good))
    (inputs / "hostile_huge_canvas.json").write_text(json.dumps([{**good[0], "canvas_width": 16384,
                                                                  "canvas_height": 16384}]))
    (inputs / "hostile_nan_canvas.json").write_text(json.dumps([{**good[0], "canvas_width": float("nan")}]))
    (inputs / "hostile_huge.npy").write_bytes(_npy_header((10**9, 18, 3)) + bytes(72))
    (inputs / "hostile_deep.json").write_text("[" * 100_000)
    Image.fromarray(np.full((H, W, 3), 120, np.uint8)).save(inputs / "hostile_photo.png")
    save_tiny_model(server.models_pidm / "hostile_tiny.safetensors", "tiny random hostile-request model")
    yield comfy, outside
    link.unlink()  # the session server serves other modules: leave no link out of its input folder
    shutil.rmtree(outside)


def _render_graph(file: str = "hostile_good.json", width: int = 0, height: int = 0, edited_pose: str | None = None,
                  canvas: tuple[int, int] = (0, 0)) -> dict:
    graph = {
        "load": {"class_type": "PIDMLoadPose", "inputs": {"file": file, "person_index": -1,
                                                           "canvas_width": canvas[0], "canvas_height": canvas[1]}},
        "render": {"class_type": "PIDMRenderPose",
                   "inputs": {"pose": ["load", 0], "width": width, "height": height, "person_index": -1}},
        "show": {"class_type": "PreviewImage", "inputs": {"images": ["render", 1]}},
    }
    if edited_pose is not None:
        graph["edit"] = {"class_type": "PIDMPoseEditor", "inputs": {"pose": ["load", 0], "edited_pose": edited_pose}}
        graph["render"]["inputs"]["pose"] = ["edit", 0]
    return graph


def _model_graph(model_name: str) -> dict:
    return one_step_sampler_graph(model_name, "hostile_photo.png", "hostile_good.json")


def _assert_nothing_quoted(client, result_error: dict) -> None:
    assert SECRET not in json.dumps(result_error)
    assert SECRET not in client.get("/history").text
    assert SECRET not in client.server.log()


def _assert_good_prompt_runs(client) -> None:
    result = client.run(_render_graph(), timeout=180)
    assert result.error is None, f"{result.error}\n{client.server.log_tail()}"


# --- names outside the folders ----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["absolute:secret.json", "absolute:secret.txt", "absolute:secret.csv",
                                  "../outside/secret.json", "../outside/secret.txt", "sub/../../outside/secret.csv",
                                  "hostile_link.json"])
def test_load_pose_reads_nothing_outside_the_input_folder(hostile, name):
    client, outside = hostile
    file = str(outside / name.split(":", 1)[1]) if name.startswith("absolute:") else name
    expected = "is a link that leads outside" if name == "hostile_link.json" else "is not a file name inside its folder"
    error = client.node_error(_render_graph(file), "PIDMLoadPose", "Load Pose file", expected)
    _assert_nothing_quoted(client, error)
    _assert_good_prompt_runs(client)


@pytest.mark.parametrize("name", ["../../outside/secret.safetensors", "../outside/secret.safetensors",
                                  "absolute:secret.safetensors"])
def test_model_name_outside_the_models_folder_is_refused(hostile, name):
    client, outside = hostile
    model_name = str(outside / name.split(":", 1)[1]) if name.startswith("absolute:") else name
    error = client.node_error(_model_graph(model_name), "PIDMLoadModel", "PIDM model_name",
                        "is not a file name inside its folder")
    _assert_nothing_quoted(client, error)


# --- hostile pose files inside the input folder ------------------------------------------------------


def test_fifo_named_like_a_pose_file_never_blocks_the_server(hostile):
    client, _ = hostile
    fifo = client.server.dirs["input"] / "hostile_fifo.json"
    os.mkfifo(fifo)
    try:  # opening a FIFO blocks until a writer comes: the prompt would never end
        client.node_error(_render_graph("hostile_fifo.json"), "PIDMLoadPose", "'hostile_fifo.json' is not a regular file")
    finally:
        fifo.unlink()
    _assert_good_prompt_runs(client)



@pytest.mark.parametrize(("file", "canvas", "texts"), [
    ("hostile_huge.npy", (64, 64), ("declares an array of shape (1000000000, 18, 3)", "truncated or damaged")),
    ("hostile_deep.json", (0, 0), ("more than 16 levels deep",)),
    ("hostile_nan_canvas.json", (0, 0), ("canvas_width must be a finite whole number of pixels, got nan",)),
])
def test_hostile_pose_files_are_node_errors(hostile, file, canvas, texts):
    client, _ = hostile
    client.node_error(_render_graph(file, canvas=canvas), "PIDMLoadPose", file, *texts)
    _assert_good_prompt_runs(client)


# --- render size ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("file", "width", "height", "shown"), [
    ("hostile_good.json", 8192, 8192, "1 frame at 8192x8192"),
    ("hostile_huge_canvas.json", 0, 0, "1 frame at 16384x16384"),  # the canvas taken from the pose data
])
def test_render_pose_at_huge_sizes_is_refused_without_growing_the_server(hostile, file, width, height, shown):
    client, _ = hostile
    before = client.memory_kb()
    client.node_error(_render_graph(file, width, height), "PIDMRenderPose", shown, "would need about",
                "one request may use 1.0 GiB")
    after = client.memory_kb()
    assert (after["VmHWM"] - before["VmRSS"]) * 1024 < GROWTH_LIMIT_BYTES, (before, after)
    assert (after["VmRSS"] - before["VmRSS"]) * 1024 < 256 << 20, (before, after)  # refused before allocating
    _assert_good_prompt_runs(client)


def test_render_pose_within_the_budget_runs(hostile):
    client, _ = hostile
    before = client.memory_kb()
    result = client.run(_render_graph(width=2048, height=2048), timeout=300)
    assert result.error is None, f"{result.error}\n{client.server.log_tail()}"
    after = client.memory_kb()
    assert (after["VmHWM"] - before["VmRSS"]) * 1024 < GROWTH_LIMIT_BYTES, (before, after)
    (grid,) = client.output_images(result, "show")
    assert grid.size == (5 * 128, 4 * 128)  # tiles at most 128 px on the longer side


# --- what the UI is sent -----------------------------------------------------------------------------


def test_nan_joint_in_edit_pose_keeps_history_strict_json(hostile):
    client, _ = hostile
    frame = pose_keypoint_from_poses([_standing()])[0]
    edited = json.dumps([frame]).replace("[24.0, 8.0, 1.0", "[NaN, 8.0, Infinity", 1)
    assert "NaN" in edited
    result = client.run(_render_graph(edited_pose=edited), timeout=180)
    assert result.error is None, f"{result.error}\n{client.server.log_tail()}"
    shown = result.outputs["edit"]["pidm_pose"][0]["people"][0]["pose_keypoints_2d"]
    assert shown[:3] == [0.0, 0.0, 0.0] and shown[3:6] == frame["people"][0]["pose_keypoints_2d"][3:6]
    _strict_json(client.get(f"/history/{result.prompt_id}").text)
    _strict_json(client.get("/history").text)


def test_nan_joints_through_every_pose_node_keep_history_strict_json(hostile):
    client, _ = hostile
    frame = pose_keypoint_from_poses([_standing()])[0]
    edited = json.dumps([frame]).replace("[24.0, 8.0, 1.0", "[NaN, 8.0, 1.0", 1).replace("35.0, 36.0, 1.0", "Infinity, 36.0, 1.0", 1)
    graph = _render_graph(edited_pose=edited)
    graph["retarget"] = {"class_type": "PIDMRetargetPose", "inputs": {"target": ["edit", 0], "source": ["load", 0],
                                                                      "anchor": "neck", "person_index": -1}}
    graph["between"] = {"class_type": "PIDMInterpolatePoses", "inputs": {"a": ["retarget", 0], "b": ["edit", 0], "frames": 3,
                                                                         "mode": "angular", "person_index": -1}}
    graph["render"]["inputs"]["pose"] = ["between", 0]
    result = client.run(graph, timeout=180)
    assert result.error is None, f"{result.error}\n{client.server.log_tail()}"
    assert {"edit", "retarget", "between"} <= set(result.outputs)  # (load may come from the cache)
    for ui in result.outputs.values():
        json.dumps(ui, allow_nan=False)  # what the websocket sent
    history = _strict_json(client.get(f"/history/{result.prompt_id}").text)
    assert history[result.prompt_id]["outputs"]["edit"]["pidm_pose"][0]["people"][0]["pose_keypoints_2d"][:3] == [0, 0, 0]


@pytest.mark.parametrize(("canvas", "text"), [
    ({"canvas_width": float("nan")}, "canvas_width must be a finite whole number of pixels, got nan"),
    ({"canvas_width": float("inf"), "canvas_height": float("-inf")}, "canvas_width must be a finite whole number"),
    ({"canvas_height": "64px"}, "canvas_height must be a whole number of pixels, got '64px'"),
    ({"canvas_width": 1e309}, "got inf"),
    (None, "more than 16 levels deep"),
])
def test_hostile_editor_text_is_a_node_error_and_history_stays_strict(hostile, canvas, text):
    client, _ = hostile
    frame = pose_keypoint_from_poses([_standing()])[0]
    edited = "[" * 100_000 if canvas is None else json.dumps([{**frame, **canvas}])
    client.node_error(_render_graph(edited_pose=edited), "PIDMPoseEditor", "edited_pose", text)
    _strict_json(client.get("/history").text)
    _assert_good_prompt_runs(client)


def test_history_of_the_whole_module_is_strict_json(hostile):
    client, _ = hostile
    history = _strict_json(client.get("/history").text)
    assert history
    assert SECRET not in json.dumps(history)
