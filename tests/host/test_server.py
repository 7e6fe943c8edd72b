"""The pack loads into real ComfyUI servers: new (V3 API) and old (V1 only)."""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.host

# Every node the pack registers, with the inputs a workflow may set.
EXPECTED_NODES = {
    "PIDMLoadModel": {"model_name", "dtype"},
    "PIDMEncodeTexture": {"model", "image", "mask", "fit", "pose"},
    "PIDMPoseFromImage": {"image", "backend", "person_index", "threshold", "allow_download"},
    "PIDMLoadPose": {"file", "person_index", "canvas_width", "canvas_height"},
    "PIDMRenderPose": {"pose", "width", "height", "person_index"},
    "PIDMRetargetPose": {"target", "source", "anchor", "person_index"},
    "PIDMInterpolatePoses": {"a", "b", "frames", "mode", "person_index"},
    "PIDMPoseEditor": {"pose", "edited_pose"},
    "PIDMSampler": {"model", "texture", "pose", "seed", "steps", "sampler", "guidance", "appearance_scale",
                    "pose_scale", "person_index", "init_image", "denoise", "appearance_mask", "reference",
                    "frame_noise", "chunk_size", "guidance_start", "guidance_end", "sequence_denoise"},
    "PIDMPasteIntoPhoto": {"texture", "images", "photo", "pose", "person_index", "mask", "place", "inpaint"},
    "PIDMSavePose": {"pose", "filename_prefix", "person_index", "frame_rate"},
    "PIDMPosesFromVideo": {"video", "images", "frame_rate", "start_frame", "frame_count", "frame_step", "person_index",
                           "smoothing", "max_gap_seconds", "long_gaps", "backend", "smoothing_method", "threshold"},
    "PIDMSampleVideo": {"model", "texture", "pose", "seed", "steps", "sampler", "guidance", "appearance_scale",
                        "pose_scale", "person_index", "frame_rate", "place", "inpaint", "audio", "photo", "mask",
                        "frame_noise", "chunk_size", "guidance_start", "guidance_end", "sequence_denoise"},
}
V3_ONLY = {"PIDMSampleVideo"}  # its output is a VIDEO, a type V1-only hosts do not have


def _pack_import_problems(log: str) -> list[str]:
    """Log lines where ComfyUI reports that it could not import ComfyUI-PIDM."""
    return [line for line in log.splitlines()
            if "ComfyUI-PIDM" in line and re.search(r"IMPORT FAILED|Cannot import|Skip .* module", line)]


def _inputs(info: dict) -> set[str]:
    return set(info["input"].get("required", {})) | set(info["input"].get("optional", {}))


def _check_object_info(client, expected: dict = EXPECTED_NODES) -> dict:
    info = client.object_info()
    ours = {name: node for name, node in info.items() if name.startswith("PIDM")}
    assert set(ours) == set(expected), f"PIDM nodes listed: {sorted(ours)}"
    for name, inputs in expected.items():
        node = ours[name]
        assert _inputs(node) == inputs, f"{name} inputs: {sorted(_inputs(node))}"
        assert node["category"].startswith("PIDM/"), node["category"]
        assert node["display_name"] and node["display_name"] != name
        for group in ("required", "optional"):
            for input_name, spec in node["input"].get(group, {}).items():
                options = spec[1] if len(spec) > 1 else {}
                assert options.get("tooltip"), f"{name}.{input_name} has no tooltip"
    return ours


IMPORTED_PACK_LINE = r"seconds: .*ComfyUI-PIDM\s*$"


def test_pack_loads_without_import_errors(comfy):
    log = comfy.server.log()
    assert not _pack_import_problems(log), comfy.server.log_tail()
    # ComfyUI lists each custom node package it imported, after its import time ("0.4 seconds: .../ComfyUI-PIDM")
    assert re.search(IMPORTED_PACK_LINE, log, re.MULTILINE), comfy.server.log_tail()


def test_object_info_lists_every_pidm_node(comfy):
    ours = _check_object_info(comfy)
    assert "embedded" in ours["PIDMLoadModel"]["input"]["required"]["model_name"][1]["options"]


def test_pack_javascript_is_served(comfy):
    extensions = comfy.get("/extensions").json()
    for name in ("pose_draw.js", "pose_preview.js", "pose_editor.js"):
        assert f"/extensions/ComfyUI-PIDM/{name}" in extensions
    script = comfy.get("/extensions/ComfyUI-PIDM/pose_editor.js").text
    assert "registerExtension" in script


def test_v1_host_lists_every_pidm_node(comfy_v1):
    log = comfy_v1.server.log()
    assert not _pack_import_problems(log), comfy_v1.server.log_tail()
    ours = _check_object_info(comfy_v1, {name: inputs for name, inputs in EXPECTED_NODES.items() if name not in V3_ONLY})
    # V1 combos are plain lists of choices.
    assert "embedded" in ours["PIDMLoadModel"]["input"]["required"]["model_name"][0]
    assert "/extensions/ComfyUI-PIDM/pose_editor.js" in comfy_v1.get("/extensions").json()
