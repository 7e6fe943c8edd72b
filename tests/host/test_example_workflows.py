"""The shipped example workflows and the demo, on a real ComfyUI 0.3.75 server.

The server is a fresh one (``comfy_fresh``: its input folder empty before it starts, as in a ComfyUI
where the pack was just installed): loading the pack must put the examples' inputs there. Each
workflow is then fetched the way the template browser opens it (GET /workflow_templates, then
/api/workflow_templates/ComfyUI-PIDM/<name>.json), turned into the graph the web UI queues, and run
as opened, nothing copied by hand, except that the sampler's steps are cut to a few to keep the suite
short on CPU (steps change no file the workflow reads; the demo test runs photo_to_new_pose with its
full default steps through scripts/demo.sh --exit). The UI files are also checked against the node
schemas and their API twins in example_workflows/api/.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pidm_core.checkpoint import EMBEDDED_PATH

pytestmark = pytest.mark.host

REPO = Path(__file__).resolve().parents[2]
UI_DIR = REPO / "example_workflows"
API_DIR = UI_DIR / "api"
ASSETS = REPO / "assets"
WORKFLOWS = sorted(p.stem for p in API_DIR.glob("*.json"))
UI_WORKFLOWS = sorted(p.stem for p in UI_DIR.glob("*.json"))
TEST_STEPS = 3
SOURCE_SIZE = (256, 256)  # assets/pidm_person.png, (width, height)
EXPECTED_SIZES = {"photo_from_the_wild": (512, 384), "video_motion_transfer": (512, 384)}  # assets/pidm_scene.png: put back at the photo's size
EXPECTED_FRAMES = {"pose_sequence_to_frames": 8}
WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"}
DEMO_TIMEOUT_S = float(os.environ.get("PIDM_DEMO_TEST_TIMEOUT", "900"))


def _needs_embedded():
    if not EMBEDDED_PATH.is_file():
        pytest.skip(f"the embedded model is missing ({EMBEDDED_PATH})")


@pytest.fixture(scope="module")
def host(comfy_fresh):
    return comfy_fresh


def _bundled_inputs() -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in ASSETS.iterdir() if p.name.startswith("pidm_") and p.suffix in (".png", ".json", ".mp4")}


def _api(name: str) -> dict:
    return json.loads((API_DIR / f"{name}.json").read_text())


def test_every_ui_workflow_has_an_api_twin():
    assert set(WORKFLOWS) >= {"photo_to_new_pose", "pose_sequence_to_frames", "appearance_edit_with_mask",
                              "pose_from_second_photo_retargeted", "pose_sequence_to_animation",
                              "video_motion_transfer",
                              "photo_from_the_wild"}
    assert sorted(p.stem for p in UI_DIR.glob("*.json")) == sorted([*WORKFLOWS, "pose_editor"])


def _is_widget(spec) -> bool:
    kind = spec[0]
    return isinstance(kind, list) or kind in WIDGET_TYPES


def _ui_to_api(ui: dict, object_info: dict) -> dict:
    """What the web UI would queue for a UI-format workflow (ids stay the UI's numbers)."""
    links = {link[0]: link for link in ui["links"]}
    graph = {}
    for node in ui["nodes"]:
        info = object_info[node["type"]]
        order = info.get("input_order") or {k: list(v) for k, v in info["input"].items()}
        values = list(node["widgets_values"])
        inputs, trailing = {}, 0
        for section in ("required", "optional"):
            for name in order.get(section, []):
                spec = info["input"][section][name]
                if not _is_widget(spec):
                    continue
                assert values, f"{node['type']}: widgets_values too short at {name!r}"
                inputs[name] = values.pop(0)
                options = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
                if options.get("control_after_generate"):
                    assert values.pop(0) in ("fixed", "increment", "decrement", "randomize")
                if options.get("image_upload") or options.get("video_upload"):
                    trailing += 1  # the upload button's value comes after every other widget
        assert len(values) == trailing, f"{node['type']}: {len(values) - trailing} widget value(s) too many"
        for socket in node["inputs"]:  # a linked socket, a widget turned into one included, queues its link
            if socket.get("link") is not None:
                link = links[socket["link"]]
                inputs[socket["name"]] = [str(link[1]), link[2]]
        graph[str(node["id"])] = {"class_type": node["type"], "inputs": inputs}
    return graph


@pytest.mark.parametrize("name", WORKFLOWS)
def test_ui_workflow_matches_node_schemas_and_api_twin(host, name):
    ui = json.loads((UI_DIR / f"{name}.json").read_text())
    converted = _ui_to_api(ui, host.object_info())
    api = _api(name)
    ids = {node_id: str(index + 1) for index, node_id in enumerate(api)}  # the UI numbers nodes in API order
    renamed = {ids[node_id]: {"class_type": node["class_type"], "inputs": {
        key: [ids[value[0]], value[1]] if isinstance(value, list) else value for key, value in node["inputs"].items()}}
        for node_id, node in api.items()}
    assert converted == renamed


def test_loading_the_pack_put_the_example_inputs_into_the_empty_input_folder(host):
    bundled = _bundled_inputs()
    assert set(bundled) == {"pidm_person.png", "pidm_person2.png", "pidm_mask_upper.png", "pidm_pose_arms_raised.json",
                            "pidm_pose_sequence.json", "pidm_scene.png", "pidm_driving_walk.mp4"}
    folder = host.server.dirs["input"]
    # every file there is one of ours, byte for byte (ComfyUI itself adds only folders, e.g. 3d/)
    assert {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()} == bundled
    assert (host.server.root / "models" / "pidm").is_dir()
    # the node schemas offer them: the examples' combo values are valid as opened
    assert "pidm_person.png" in host.object_info("LoadImage")["LoadImage"]["input"]["required"]["image"][0]


def test_template_browser_lists_every_example(host):
    listed = host.get("/workflow_templates").json()
    assert sorted(listed["ComfyUI-PIDM"]) == UI_WORKFLOWS


def _images(client, result, graph: dict, kinds=("SaveImage",)) -> list[np.ndarray]:
    arrays = []
    for node_id, node in graph.items():
        if node["class_type"] in kinds:
            arrays += [np.asarray(image.convert("RGB"), np.float32) / 255.0 for image in client.output_images(result, node_id)]
    return arrays


@pytest.mark.parametrize("name", UI_WORKFLOWS)
def test_example_workflow_runs_as_opened_from_the_template_browser(host, name):
    _needs_embedded()
    ui = host.get(f"/api/workflow_templates/ComfyUI-PIDM/{name}.json").json()
    graph = _ui_to_api(ui, host.object_info())
    for node in graph.values():
        if node["class_type"] in ("PIDMSampler", "PIDMSampleVideo"):
            node["inputs"]["steps"] = TEST_STEPS
    start = time.monotonic()
    result = host.run(graph, timeout=900)
    assert result.error is None, f"{result.error}\n{host.server.log_tail()}"
    saved = _images(host, result, graph)
    if name == "pose_sequence_to_animation":  # one animated WebP, written by ComfyUI's own SaveAnimatedWEBP
        _check_animation(host, result, graph)
        return
    if name == "video_motion_transfer":  # an mp4 written by ComfyUI's own SaveVideo
        _check_video(host, result, graph)
        return
    if name == "pose_editor":  # a pose preview, nothing saved
        previews = _images(host, result, graph, kinds=("PreviewImage",))
        assert len(previews) == 1 and previews[0].std() > 0.01
        return
    assert len(saved) == EXPECTED_FRAMES.get(name, 1)
    width, height = EXPECTED_SIZES.get(name, SOURCE_SIZE)
    for image in saved:
        assert image.shape == (height, width, 3)
        assert np.isfinite(image).all()
        assert image.std() > 0.01, "blank image"
    print(f"{name}: {time.monotonic() - start:.1f}s")


def _check_animation(client, result, graph: dict) -> None:
    node_id = next(i for i, node in graph.items() if node["class_type"] == "SaveAnimatedWEBP")
    outputs = client.history(result.prompt_id)["outputs"][str(node_id)]
    assert outputs.get("animated") == [True] and len(outputs["images"]) == 1
    reference = outputs["images"][0]
    assert reference["filename"].endswith(".webp") and reference["type"] == "output"
    path = client.server.dirs["output"] / reference["subfolder"] / reference["filename"]
    frames_expected = next(n["inputs"]["frames"] for n in graph.values() if n["class_type"] == "PIDMInterpolatePoses")
    with Image.open(path) as animation:
        assert animation.is_animated and animation.n_frames == frames_expected
        assert animation.size == SOURCE_SIZE
        frames = []
        for index in range(animation.n_frames):
            animation.seek(index)
            frames.append(np.asarray(animation.convert("RGB"), np.float32) / 255.0)
    assert all(frame.std() > 0.01 for frame in frames), "blank frame"
    assert np.abs(frames[-1] - frames[0]).mean() > 0.005, "the person does not move"


def _check_video(client, result, graph: dict) -> None:
    """The saved video has the driving video's frame count, frame rate and sound, and the person moves."""
    import av

    node_id = next(i for i, node in graph.items() if node["class_type"] == "SaveVideo")
    reference = client.history(result.prompt_id)["outputs"][str(node_id)]["images"][0]
    path = client.server.dirs["output"] / reference["subfolder"] / reference["filename"]
    with av.open(str(ASSETS / "pidm_driving_walk.mp4")) as driving:
        expected_frames = sum(1 for _ in driving.decode(video=0))
        expected_rate = driving.streams.video[0].average_rate
    with av.open(str(path)) as video:
        stream = video.streams.video[0]
        assert stream.average_rate == expected_rate
        assert (stream.width, stream.height) == EXPECTED_SIZES["video_motion_transfer"]
        assert len(video.streams.audio) == 1, "the driving video's sound"
        frames = [frame.to_ndarray(format="rgb24").astype(np.float32) / 255.0 for frame in video.decode(video=0)]
    assert len(frames) == expected_frames
    assert all(frame.std() > 0.01 for frame in frames), "blank frame"
    assert np.abs(frames[len(frames) // 2] - frames[0]).mean() > 0.005, "the person does not move"


def test_demo_script_writes_the_image_and_exits(tmp_path):
    _needs_embedded()
    output = tmp_path / "demo.png"
    env = dict(os.environ, PIDM_DEMO_DIR=str(tmp_path / "demo"), PIDM_DEMO_EXIT="1", PIDM_DEMO_PORT="0")
    start = time.monotonic()
    done = subprocess.run(["bash", str(REPO / "scripts" / "demo.sh"), "--output", str(output)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=DEMO_TIMEOUT_S)
    assert done.returncode == 0, f"{done.stdout[-4000:]}\n{done.stderr[:1500]}\n...\n{done.stderr[-3000:]}"
    assert f"demo: wrote {output}" in done.stdout
    assert "http://127.0.0.1:" in done.stdout
    image = np.asarray(Image.open(output).convert("RGB"), np.float32) / 255.0
    assert image.shape == (SOURCE_SIZE[1], SOURCE_SIZE[0], 3)
    assert image.std() > 0.01
    print(f"demo.sh --exit took {time.monotonic() - start:.1f}s")
