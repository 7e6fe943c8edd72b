"""Bad inputs through a real ComfyUI server: each ends as a node error in the UI, never a dead server.

The library-level catalogue is tests/test_bad_inputs.py (see docs/robustness.md); here the same
kinds of faults arrive the way a user meets them, as files in the input and models/pidm folders of
a shared workflow, and the test checks what the websocket reports: an ``execution_error`` naming
our node and carrying our message, after which the server still runs a good prompt. The last test
checks that nothing was written outside the server's input/output/temp/models/user folders.

Interrupt-then-run-again is covered by test_workflows.py::test_interrupt_stops_sampling_and_server_serves_the_next_prompt.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tests.graphs import one_step_sampler_graph
from tests.poses import standing_pose
from tests.tiny_model import save_tiny_model
from pidm_core.pose.formats import pose_keypoint_from_poses

pytestmark = pytest.mark.host

REPO_ROOT = Path(__file__).resolve().parents[2]
MODEL = "bad_inputs_tiny.safetensors"
SOURCE_W, SOURCE_H = 24, 32
ALLOWED_DIRS = ("input", "output", "temp", "models", "user")  # where ComfyUI and the pack may write
SKIPPED_PARTS = {".git", "__pycache__", ".pytest_cache"}


class Trap:
    """Pickles into a call that creates ``marker``: what a booby-trapped model file would run.
    A plain function pickles as a global (os.mkdir); a method as getattr(Path, "touch")."""

    def __init__(self, marker: Path, method: bool):
        self.marker, self.method = marker, method

    def __reduce__(self):
        return (Path.touch, (self.marker,)) if self.method else (os.mkdir, (str(self.marker),))


def _tiny_model(path: Path) -> Path:
    return save_tiny_model(path, "tiny random bad-input model")


def _files(root: Path, skip_top: tuple[str, ...] = ()) -> set[str]:
    """Every file below root (links not followed), relative, without caches and the skipped top folders."""
    found = set()
    for folder, dirs, files in os.walk(root):
        relative = Path(folder).relative_to(root)
        if relative.parts[:1] and relative.parts[0] in skip_top:
            dirs[:] = []
            continue
        dirs[:] = [d for d in dirs if d not in SKIPPED_PARTS]
        found.update(str(relative / name) for name in files)
    return found


def _snapshot(server) -> dict[str, set[str]]:
    return {"repo": _files(REPO_ROOT), "host": _files(server.host_dir),
            "server": _files(server.root, ALLOWED_DIRS + ("custom_nodes",)),
            "custom_nodes": {p.name for p in server.dirs["custom_nodes"].iterdir()}}


@pytest.fixture(scope="module")
def bad(comfy):
    """The client, with the inputs written into its server's tree, and a snapshot of the files outside
    the folders ComfyUI may write to, taken before any of this module's prompts."""
    server = comfy.server
    before = _snapshot(server)
    inputs, models = server.dirs["input"], server.models_pidm
    photo = np.zeros((SOURCE_H, SOURCE_W, 3), np.uint8)
    photo[4:30, 6:18] = (180, 40, 40)
    Image.fromarray(photo).save(inputs / "bad_source.png")
    Image.new("RGB", (96, 96), (0, 0, 0)).save(inputs / "bad_black.png")
    Image.new("RGB", (1, 1), (128, 128, 128)).save(inputs / "bad_1x1.png")

    good = pose_keypoint_from_poses([standing_pose(SOURCE_W, SOURCE_H)])
    files = {
        "bad_good.json": good,
        "bad_three.json": good * 3,
        "bad_empty.json": [],
        "bad_no_people.json": [{"people": [], "canvas_width": 24, "canvas_height": 32}],
        "bad_nesting.json": [good],
        "bad_17_joints.json": [{**good[0], "people": [{"pose_keypoints_2d": [5.0, 5.0, 1.0] * 17}]}],
        "bad_off_canvas.json": [{**good[0], "people": [{"pose_keypoints_2d": [900.0, 900.0, 1.0] * 18}]}],
    }
    for name, data in files.items():
        (inputs / name).write_text(json.dumps(data))
    (inputs / "bad_not_json.json").write_text('[{"people": [{"pose_keypoints_2d": [1, 2')

    _tiny_model(models / MODEL)
    (models / "bad_zeros.safetensors").write_bytes(bytes(64 * 1024))
    data = (models / MODEL).read_bytes()
    (models / "bad_truncated.safetensors").write_bytes(data[: len(data) // 2])
    from safetensors.torch import save_file

    save_file({"model.diffusion_model.out.2.weight": torch.zeros(4, 4)}, str(models / "bad_sd.safetensors"))
    torch.save({"ema": Trap(server.root / "pwned", method=False)}, models / "bad_trap.pt")
    torch.save({"ema": Trap(server.root / "pwned", method=True)}, models / "bad_trap_method.pt")
    yield comfy, before


# --- graphs ------------------------------------------------------------------------------------


def _sampler_graph(model: str = MODEL, photo: str = "bad_source.png", poses: str = "bad_good.json",
                   sources: int = 1, **sampler) -> dict:
    return one_step_sampler_graph(model, photo, poses, sources, **sampler)


def _run_ok(client, graph: dict):
    result = client.run(graph, timeout=180)
    assert result.error is None, f"{result.error}\n{client.server.log_tail()}"
    images = client.output_images(result, "preview")
    assert images and all(np.isfinite(np.asarray(image, np.float32)).all() for image in images)
    return images


# --- photos ------------------------------------------------------------------------------------


def test_no_person_in_a_black_photo_then_a_good_prompt(bad):
    client, _ = bad
    graph = {
        "photo": {"class_type": "LoadImage", "inputs": {"image": "bad_black.png"}},
        "detect": {"class_type": "PIDMPoseFromImage", "inputs": {
            "image": ["photo", 0], "backend": "mediapipe", "person_index": -1, "threshold": 0.3,
            "allow_download": False}},
        "show": {"class_type": "PreviewImage", "inputs": {"images": ["detect", 1]}},
    }
    client.node_error(graph, "PIDMPoseFromImage", "no person found in image 1 of 1", "POSE_KEYPOINT")
    images = _run_ok(client, _sampler_graph())
    assert [image.size for image in images] == [(SOURCE_W, SOURCE_H)]


def test_1x1_source_photo(bad):
    client, _ = bad
    client.node_error(_sampler_graph(photo="bad_1x1.png"), "PIDMEncodeTexture",
                "source image is 1x1 pixels; it must be at least 8x8")


# --- masks -------------------------------------------------------------------------------------


def _add_mask(graph: dict, masks: int = 1, value=None) -> list:
    """Adds a MASK to graph and returns the link to it: ``masks`` copies of the photo's red channel, or a
    SolidMask of ``value`` in the photo's size (a /prompt may send "nan": FLOAT inputs are converted with
    float() and NaN passes the min/max checks)."""
    if value is not None:
        graph["mask"] = {"class_type": "SolidMask", "inputs": {"value": value, "width": SOURCE_W, "height": SOURCE_H}}
    else:
        graph["mask_photos"] = {"class_type": "RepeatImageBatch", "inputs": {"image": ["photo", 0], "amount": masks}}
        graph["mask"] = {"class_type": "ImageToMask", "inputs": {"image": ["mask_photos", 0], "channel": "red"}}
    return ["mask", 0]


MASK_INPUTS = {  # node id, input, node type, the name in messages
    "person": ("texture", "mask", "PIDMEncodeTexture", "source mask"),
    "appearance": ("sample", "appearance_mask", "PIDMSampler", "appearance mask"),
}


@pytest.mark.parametrize("which", sorted(MASK_INPUTS))
def test_mask_batch_against_image_batch(bad, which):
    client, _ = bad
    node, name, node_type, called = MASK_INPUTS[which]
    graph = _sampler_graph(sources=2)
    graph[node]["inputs"][name] = _add_mask(graph, masks=3)
    of = "source images" if which == "person" else "output images"
    client.node_error(graph, node_type, f"{called} has 3 masks for 2 {of}: give 1 mask (used for every image) or 2")
    for masks in (1, 2):  # one mask for all, or one per image: the next prompts run
        graph = _sampler_graph(sources=2)
        graph[node]["inputs"][name] = _add_mask(graph, masks=masks)
        assert len(_run_ok(client, graph)) == 2


@pytest.mark.parametrize("which", sorted(MASK_INPUTS))
def test_nan_mask_names_the_mask(bad, which):
    client, _ = bad
    node, name, node_type, called = MASK_INPUTS[which]
    graph = _sampler_graph()
    graph[node]["inputs"][name] = _add_mask(graph, value="nan")  # (-inf is below SolidMask's min: refused)
    error = client.node_error(graph, node_type, f"{called} contains NaN or infinite values (mask 1 of 1)")
    assert "guidance" not in error["exception_message"] and "model file" not in error["exception_message"]
    graph[node]["inputs"][name] = _add_mask(graph, value=0.5)
    assert len(_run_ok(client, graph)) == 1


# --- models ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("model", "message"), [
    ("bad_zeros.safetensors", "first 4096 bytes are all zeros"),
    ("bad_truncated.safetensors", "truncated"),
    ("bad_sd.safetensors", "looks like a Stable Diffusion checkpoint, not PIDM"),
    ("bad_trap.pt", "holds no PIDM state dict"),
    ("bad_trap_method.pt", "is a damaged, truncated or unsupported torch checkpoint"),
])
def test_broken_model_files(bad, model, message):
    client, _ = bad
    error = client.node_error(_sampler_graph(model=model), "PIDMLoadModel", message, model)
    assert error["exception_type"].endswith("CheckpointError")
    assert not (client.server.root / "pwned").exists()  # the trap's __reduce__ never ran


@pytest.mark.parametrize("which", sorted(MASK_INPUTS))
def test_mask_of_another_size(bad, which):
    client, _ = bad
    node, name, node_type, called = MASK_INPUTS[which]
    graph = _sampler_graph()
    graph[node]["inputs"][name] = _add_mask(graph, value=0.5)
    graph["mask"]["inputs"].update(width=40, height=40)
    client.node_error(graph, node_type, f"{called} is 40x40 pixels but the source image is 24x32")
    graph["mask"]["inputs"].update(width=SOURCE_W // 2, height=SOURCE_H // 2)  # the same aspect: resized
    assert len(_run_ok(client, graph)) == 1


def test_texture_from_another_model(bad):
    import dataclasses

    from pidm_core.checkpoint import ModelInfo, save_model
    from pidm_core.config import get_config
    from pidm_core.network import PIDMNetwork

    client, _ = bad
    wider = dataclasses.replace(get_config("tiny_32"), model_channels=64, embed_channels=64)  # same 32 px canvas
    save_model(client.server.models_pidm / "bad_wider.safetensors", PIDMNetwork(wider).eval(),
               ModelInfo("wider", wider, source_drop_prob=0.1, pose_drop_prob=0.1))
    graph = _sampler_graph()
    graph["other"] = {"class_type": "PIDMLoadModel", "inputs": {"model_name": "bad_wider.safetensors", "dtype": "fp32"}}
    graph["sample"]["inputs"]["model"] = ["other", 0]
    client.node_error(graph, "PIDMSampler", "texture was encoded by another model")


# --- poses -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("poses", "node", "message"), [
    ("bad_empty.json", "PIDMLoadPose", "bad_empty.json is empty: it holds no frames"),
    # Load Pose keeps a frame where nobody was found (a video's frame keeps its place); the sampler refuses it
    ("bad_no_people.json", "PIDMSampler", "frame 1 of 1: the chosen person has no joint"),
    ("bad_nesting.json", "PIDMLoadPose", "frame 1 of 1: expected a dict with a 'people' list, got list"),
    ("bad_17_joints.json", "PIDMLoadPose", "'pose_keypoints_2d' has 17 joints; expected 18"),
    ("bad_not_json.json", "PIDMLoadPose", "bad_not_json.json is not valid JSON"),
])
def test_empty_and_malformed_pose_files(bad, poses, node, message):
    client, _ = bad
    client.node_error(_sampler_graph(poses=poses), node, message)


def test_pose_off_the_canvas(bad):
    client, _ = bad
    client.node_error(_sampler_graph(poses="bad_off_canvas.json"), "PIDMSampler",
                "target pose 1 of 1 has no joint inside its 24x32 canvas")


def test_pose_batch_against_source_batch(bad):
    client, _ = bad
    client.node_error(_sampler_graph(poses="bad_three.json", sources=2), "PIDMSampler",
                "2 source images and 3 poses")
    assert len(_run_ok(client, _sampler_graph(poses="bad_three.json"))) == 3  # one source, three poses


# --- sampling settings -------------------------------------------------------------------------


@pytest.mark.parametrize(("setting", "value"), [("steps", 10000), ("steps", 0), ("appearance_scale", 1e6),
                                                ("denoise", 1.5), ("guidance_end", 1.5),
                                                ("sequence_denoise", 1.5), ("sequence_denoise", -0.1)])
def test_out_of_range_settings_are_refused_before_running(bad, setting, value):
    client, _ = bad
    with pytest.raises(Exception) as rejected:  # conftest.PromptRejected: HTTP 400 with the server's answer
        client.post_prompt(_sampler_graph(**{setting: value}))
    errors = rejected.value.body["node_errors"]["sample"]["errors"]
    assert any(e["extra_info"]["input_name"] == setting for e in errors), errors
    assert client.server.alive()


@pytest.mark.parametrize(("setting", "value"), [
    ("appearance_scale", "nan"), ("pose_scale", "NaN"), ("denoise", "nan"), ("appearance_scale", "inf"),
    ("guidance_start", "nan"), ("sequence_denoise", "nan"), ("sequence_denoise", "inf")])
def test_non_finite_numbers_are_refused_before_they_reach_the_history(bad, setting, value):
    # "nan" becomes float('nan'), which passes the host's min/max checks; the node's validate_inputs
    # refuses it, so the prompt is never queued and /history never holds it
    client, _ = bad
    with pytest.raises(Exception) as rejected:  # conftest.PromptRejected: HTTP 400 with the server's answer
        client.post_prompt(_sampler_graph(**{setting: value}))
    errors = rejected.value.body["node_errors"]["sample"]["errors"]
    assert any(e["extra_info"]["input_name"] == setting and "finite" in e["details"] for e in errors), errors


@pytest.mark.parametrize("value", ["nan", "-inf"])
def test_the_video_sampler_refuses_a_non_finite_sequence_denoise(bad, value):
    """PIDM Sampler (video)'s validate_inputs checks sequence_denoise too (refused before anything runs, so the
    graph needs no driving video)."""
    client, _ = bad
    graph = _sampler_graph()
    graph["sample"] = {"class_type": "PIDMSampleVideo", "inputs": {
        **{k: v for k, v in graph["sample"]["inputs"].items() if k != "denoise"},
        "frame_rate": 8.0, "place": "pose", "inpaint": "telea", "sequence_denoise": value}}
    graph["preview"] = {"class_type": "SaveVideo", "inputs": {"video": ["sample", 0], "filename_prefix": "bad",
                                                              "format": "auto", "codec": "auto"}}
    with pytest.raises(Exception) as rejected:  # conftest.PromptRejected: HTTP 400 with the server's answer
        client.post_prompt(graph)
    errors = rejected.value.body["node_errors"]["sample"]["errors"]
    assert any(e["extra_info"]["input_name"] == "sequence_denoise" and "finite" in e["details"]
               for e in errors), errors


def test_a_guidance_interval_that_ends_before_it_starts(bad):
    client, _ = bad
    client.node_error(_sampler_graph(guidance_start=0.8, guidance_end=0.2), "PIDMSampler",
                      "guidance_start (0.8) must not be after guidance_end (0.2)")


@pytest.mark.parametrize(("node", "inputs", "node_type", "message"), [
    # combos: 0.3.75 does not check a V3 combo's value against its options
    ("sample", {"sampler": "euler"}, "PIDMSampler", "sampler must be one of ddim, ddpm, dpmpp_2m; got 'euler'"),
    ("sample", {"guidance": {"mode": 1}}, "PIDMSampler", "guidance must be one of official, disentangled; got {'mode': 1}"),
    ("texture", {"fit": "crop"}, "PIDMEncodeTexture", "fit must be one of auto, person, pad, stretch; got 'crop'"),
    # a plain value where a link belongs reaches the node as it is
    ("sample", {"texture": 5}, "PIDMSampler", "texture must be linked to Encode Source Texture's output, got a int"),
    ("texture", {"model": "model.safetensors"}, "PIDMEncodeTexture", "model must be linked to Load PIDM Model's output"),
    ("texture", {"image": 3}, "PIDMEncodeTexture", "source image must be an image batch [B, H, W, 3]"),
    ("sample", {"appearance_mask": 0.5}, "PIDMSampler", "appearance mask must be a MASK [B, H, W] (or [H, W])"),
    ("sample", {"init_image": {"__value__": [[[0.5]]]}}, "PIDMSampler", "init image is a list of 1 images"),
])
def test_hand_written_prompt_values(bad, node, inputs, node_type, message):
    client, _ = bad
    graph = _sampler_graph()
    graph[node]["inputs"].update(inputs)
    client.node_error(graph, node_type, message)


# --- files -------------------------------------------------------------------------------------


def test_nothing_written_outside_the_comfy_folders(bad):
    client, before = bad
    after = _snapshot(client.server)
    assert after["custom_nodes"] == before["custom_nodes"]
    for place in ("server", "host", "repo"):
        assert after[place] - before[place] == set(), place
    assert not (client.server.root / "pwned").exists()
