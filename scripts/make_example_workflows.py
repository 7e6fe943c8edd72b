"""Write the example workflows: UI format in example_workflows/ (the template browser), and API-format
twins in example_workflows/api/ (posted by scripts/demo.py and the host tests).

    python scripts/make_example_workflows.py          # rewrite both
    python scripts/make_example_workflows.py --check  # exit 1 when a file differs from what this writes

Each workflow is one spec (nodes, their widget values and links), so the two formats cannot drift.
Widget order follows each node's schema (the order the web UI serialises widgets_values in).
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import json
import os
import sys
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from pidm_core.samplers import DEFAULT_SETTINGS  # noqa: E402
UI_DIR = ROOT / "example_workflows"
API_DIR = UI_DIR / "api"

# ComfyUI's own nodes: class -> (socket inputs [(name, type)], widget names in schema order, outputs [(name, type)]).
# The pack's nodes are read from their schemas (pack_node_types).
CORE_NODE_TYPES = {
    "LoadImage": ([], ["image"], [("IMAGE", "IMAGE"), ("MASK", "MASK")]),
    "LoadImageMask": ([], ["image", "channel"], [("MASK", "MASK")]),
    "ImageScaleBy": ([("image", "IMAGE")], ["upscale_method", "scale_by"], [("IMAGE", "IMAGE")]),
    "MaskToImage": ([("mask", "MASK")], [], [("IMAGE", "IMAGE")]),
    "PreviewImage": ([("images", "IMAGE")], [], []),
    "SaveImage": ([("images", "IMAGE")], ["filename_prefix"], []),
    "SaveAnimatedWEBP": ([("images", "IMAGE")], ["filename_prefix", "fps", "lossless", "quality", "method"], []),
    "LoadVideo": ([], ["file"], [("VIDEO", "VIDEO")]),
    "SaveVideo": ([("video", "VIDEO")], ["filename_prefix", "format", "codec"], []),
}
# Widgets the web UI stores an extra value after (the upload button; for the pack's nodes, a widget with
# control_after_generate, read from the schema).
EXTRA_WIDGET_VALUES = {("LoadImage", "image"): "image", ("LoadImageMask", "channel"): "image",
                       ("LoadVideo", "file"): "image"}
WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"}
HOST = Path(os.environ.get("PIDM_COMFYUI", Path.home() / ".cache" / "comfyui-pidm" / "comfyui-0.3.75"))


def _pack_nodes() -> list:
    """The pack's node classes, imported the way ComfyUI imports them (as a package, with the host's
    ``comfy`` on the path), without running the pack's load-time side effects (its ``__init__``)."""
    if not (HOST / "comfy").is_dir():
        raise SystemExit(f"make_example_workflows: no ComfyUI host at {HOST} (run scripts/setup_env.sh, or set "
                         "PIDM_COMFYUI); the pack's node schemas are read from the nodes themselves")
    sys.path.insert(0, str(HOST))
    from comfy.cli_args import args  # the host's defaults (no argv parsing outside main.py)

    args.cpu = True  # reading schemas needs no device; without this, comfy looks for CUDA on import
    package = types.ModuleType("pidm_pack")
    package.__path__ = [str(ROOT)]
    sys.modules.setdefault("pidm_pack", package)
    return importlib.import_module("pidm_pack.nodes").NODES


def _io_type(item) -> str:
    return str(item.io_type)


@functools.lru_cache(maxsize=None)
def pack_node_types() -> dict:
    """class -> (sockets [(name, type, optional)], widgets [(name, extra value or None)], outputs [(name, type)])
    for every node of the pack, from its schema."""
    types_ = {}
    for node in _pack_nodes():
        schema = node.define_schema()
        sockets = [(i.id, _io_type(i), bool(i.optional)) for i in schema.inputs if _io_type(i) not in WIDGET_TYPES]
        widgets = [(i.id, "fixed" if getattr(i, "control_after_generate", None) else None)
                   for i in schema.inputs if _io_type(i) in WIDGET_TYPES]
        outputs = [(o.display_name or o.id, _io_type(o)) for o in schema.outputs]
        types_[schema.node_id] = (sockets, widgets, outputs)
    return types_


def node_type(class_type: str) -> tuple[list, list, list]:
    """(sockets [(name, type, optional)], widgets [(name, extra value or None)], outputs) of any node used."""
    if class_type in CORE_NODE_TYPES:
        sockets, widgets, outputs = CORE_NODE_TYPES[class_type]
        return ([(name, kind, False) for name, kind in sockets],
                [(name, EXTRA_WIDGET_VALUES.get((class_type, name))) for name in widgets], outputs)
    return pack_node_types()[class_type]
NODE_SIZES = {"PIDMSampler": [320, 330], "PIDMPasteIntoPhoto": [300, 240], "PIDMPoseFromImage": [300, 330],
              "LoadImage": [260, 340], "LoadImageMask": [260, 340], "SaveImage": [300, 340], "SaveAnimatedWEBP": [300, 380]}

# every example samples with the library's defaults, chosen from the quality-for-compute table (docs/compute.md)
STEPS = DEFAULT_SETTINGS.steps
SAMPLER = DEFAULT_SETTINGS.sampler


def _model():
    return {"class_type": "PIDMLoadModel", "inputs": {"model_name": "embedded", "dtype": "auto"}}


def _image(name):
    return {"class_type": "LoadImage", "inputs": {"image": name}}


def _texture(model="model", image="photo", mask=None):
    inputs = {"model": [model, 0], "image": [image, 0], "fit": "auto"}
    if mask:
        inputs["mask"] = [mask, 0]
    return {"class_type": "PIDMEncodeTexture", "inputs": inputs}


def _load_pose(file):
    return {"class_type": "PIDMLoadPose", "inputs": {"file": file, "person_index": -1, "canvas_width": 0,
                                                     "canvas_height": 0}}


def _pose_from(image, backend="auto"):
    return {"class_type": "PIDMPoseFromImage", "inputs": {"image": [image, 0], "backend": backend, "person_index": -1,
                                                          "threshold": 0.3, "allow_download": False}}


def _widget_defaults(node_id: str, optional: bool = False) -> dict:
    """The schema default of every required (and with ``optional``, optional) widget of one of the pack's nodes."""
    node = next(n for n in _pack_nodes() if n.define_schema().node_id == node_id)
    return {i.id: i.default for i in node.define_schema().inputs
            if _io_type(i) in WIDGET_TYPES and (optional or not i.optional)}


def _sampler(pose="pose", texture="texture", sampler=SAMPLER, node="PIDMSampler", steps=STEPS, **optional):
    """A sampler node with the library's default settings (for every settings widget the node has);
    ``optional``: input name -> node id (its first output) or [node id, output index]."""
    widgets = [name for name, _extra in pack_node_types()[node][1]]
    settings = {name: value for name, value in dataclasses.asdict(DEFAULT_SETTINGS).items() if name in widgets}
    inputs = {"model": ["model", 0], "texture": [texture, 0], "pose": [pose, 0], **settings, "steps": steps,
              "sampler": sampler, "person_index": -1}
    inputs.update({name: value for name, value in _widget_defaults(node).items() if name not in inputs})
    inputs.update({name: link if isinstance(link, list) else [link, 0] for name, link in optional.items()})
    return {"class_type": node, "inputs": inputs}


def _save(prefix, images="sample"):
    return {"class_type": "SaveImage", "inputs": {"images": [images, 0], "filename_prefix": prefix}}


ANIMATION_FRAMES = 16
ANIMATION_FPS = 8.0


def _save_animation(prefix, images="sample"):
    """ComfyUI's own animated WebP output (lossy: a 16-frame 256 px strip stays small)."""
    return {"class_type": "SaveAnimatedWEBP", "inputs": {"images": [images, 0], "filename_prefix": prefix,
                                                         "fps": ANIMATION_FPS, "lossless": False, "quality": 90,
                                                         "method": "default"}}




def _poses_from_video(video):
    """Poses From Video with its defaults."""
    return {"class_type": "PIDMPosesFromVideo", "inputs": {"video": [video, 0], **_widget_defaults("PIDMPosesFromVideo")}}


# name -> (title, [(node id, API node)] in layout order: columns left to right)
WORKFLOWS = {
    "photo_to_new_pose": ("PIDM: photo to a new pose", [
        ("model", _model()), ("photo", _image("pidm_person.png")), ("pose", _load_pose("pidm_pose_arms_raised.json")),
        ("texture", _texture()), ("sample", _sampler()), ("save", _save("pidm/photo_to_new_pose")),
    ]),
    "pose_sequence_to_frames": ("PIDM: pose sequence to frames", [
        ("model", _model()), ("photo", _image("pidm_person.png")), ("pose", _load_pose("pidm_pose_sequence.json")),
        ("texture", _texture()), ("sample", _sampler()), ("save", _save("pidm/pose_sequence")),
    ]),
    "pose_sequence_to_animation": ("PIDM: two poses to an animated WebP (arms raised, then lowered)", [
        ("model", _model()), ("photo", _image("pidm_person.png")),
        ("pose_a", _load_pose("pidm_pose_arms_raised.json")), ("pose_b", _load_pose("pidm_pose_sequence.json")),
        ("texture", _texture()),
        ("poses", {"class_type": "PIDMInterpolatePoses", "inputs": {
            "a": ["pose_a", 0], "b": ["pose_b", 0], "frames": ANIMATION_FRAMES, "mode": "angular", "person_index": -1}}),
        # ddim: the steadiest sampler over held-out synthetic sequences (README, "Long pose sequences")
        ("sample", _sampler(pose="poses")), ("save", _save_animation("pidm/pose_animation")),
    ]),
    "appearance_edit_with_mask": ("PIDM: appearance edit with a mask (person2's top on person)", [
        ("model", _model()), ("photo", _image("pidm_person.png")), ("garment", _image("pidm_person2.png")),
        ("mask", {"class_type": "LoadImageMask", "inputs": {"image": "pidm_mask_upper.png", "channel": "red"}}),
        ("pose", _pose_from("photo")), ("texture", _texture(image="garment")),
        ("sample", _sampler(appearance_mask="mask", reference="photo")), ("save", _save("pidm/appearance_edit")),
    ]),
    "pose_from_second_photo_retargeted": ("PIDM: pose from a second photo, retargeted", [
        ("model", _model()), ("photo", _image("pidm_person.png")), ("other", _image("pidm_person2.png")),
        ("source_pose", _pose_from("photo")), ("other_pose", _pose_from("other")),
        ("texture", _texture()),
        ("retarget", {"class_type": "PIDMRetargetPose", "inputs": {
            "target": ["other_pose", 0], "source": ["source_pose", 0], "anchor": "neck", "person_index": -1}}),
        ("sample", _sampler(pose="retarget")), ("save", _save("pidm/pose_retargeted")),
    ]),
    # A person small at the side of a room: framed like the training data (fit 'person', from the pose and
    # the mask of Pose From Image), drawn in the second photo's pose retargeted onto them, upscaled with
    # ComfyUI's own node, and put back into the photo at full resolution; the filled area is shown too.
    "photo_from_the_wild": ("PIDM: photo from the wild, framed, upscaled and put back", [
        ("model", _model()), ("photo", _image("pidm_scene.png")), ("other", _image("pidm_person2.png")),
        ("source_pose", _pose_from("photo", "mediapipe")), ("other_pose", _pose_from("other", "mediapipe")),
        ("texture", {"class_type": "PIDMEncodeTexture", "inputs": {
            "model": ["model", 0], "image": ["photo", 0], "fit": "person", "mask": ["source_pose", 2],
            "pose": ["source_pose", 0]}}),
        ("retarget", {"class_type": "PIDMRetargetPose", "inputs": {
            "target": ["other_pose", 0], "source": ["source_pose", 0], "anchor": "neck", "person_index": -1}}),
        ("sample", _sampler(pose="retarget")),
        ("upscale", {"class_type": "ImageScaleBy", "inputs": {"image": ["sample", 0], "upscale_method": "lanczos",
                                                              "scale_by": 4.0}}),
        ("paste", {"class_type": "PIDMPasteIntoPhoto", "inputs": {
            "texture": ["texture", 0], "images": ["upscale", 0], "photo": ["photo", 0], "pose": ["retarget", 0],
            "person_index": -1, "place": "pose", "inpaint": "telea", "mask": ["source_pose", 2]}}),
        ("save", _save("pidm/photo_from_the_wild", images="paste")),
        ("filled", {"class_type": "MaskToImage", "inputs": {"mask": ["paste", 1]}}),
        ("show_filled", {"class_type": "PreviewImage", "inputs": {"images": ["filled", 0]}}),
    ]),
    # The bundled driving video's motion on the person of a scene photo: poses followed through the video,
    # retargeted as one motion onto the person's proportions and spot, sampled at the driving rate, each frame put
    # back into the photo, written with the driving video's sound.
    "video_motion_transfer": ("PIDM: motion from a video into a photo, with its sound", [
        ("model", _model()), ("photo", _image("pidm_scene.png")),
        ("video", {"class_type": "LoadVideo", "inputs": {"file": "pidm_driving_walk.mp4"}}),
        ("source_pose", _pose_from("photo", "mediapipe")), ("driving", _poses_from_video("video")),
        # the driving poses kept in output/, where Load Pose lists them: a long video is read once
        ("keep_poses", {"class_type": "PIDMSavePose", "inputs": {
            "pose": ["driving", 0], "filename_prefix": "pidm/driving_poses", "person_index": -1,
            "frame_rate": ["driving", 1]}}),
        ("texture", {"class_type": "PIDMEncodeTexture", "inputs": {
            "model": ["model", 0], "image": ["photo", 0], "fit": "person", "mask": ["source_pose", 2],
            "pose": ["source_pose", 0]}}),
        ("retarget", {"class_type": "PIDMRetargetPose", "inputs": {
            "target": ["driving", 0], "source": ["source_pose", 0], "anchor": "motion", "person_index": -1}}),
        ("sample", _sampler(pose="retarget", node="PIDMSampleVideo", frame_rate=["driving", 1], audio=["driving", 2],
                            photo="photo", mask=["source_pose", 2])),
        ("save", {"class_type": "SaveVideo", "inputs": {"video": ["sample", 0], "filename_prefix":
                                                        "pidm/video_motion_transfer", "format": "auto", "codec": "auto"}}),
    ]),
}


def api_graph(name: str) -> dict:
    """The API-format graph of a workflow (node ids are strings, as in ComfyUI's API)."""
    return {node_id: json.loads(json.dumps(node)) for node_id, node in WORKFLOWS[name][1]}


def _columns(nodes: list) -> dict:
    """Column of each node: one past the deepest node it reads from."""
    depth: dict[str, int] = {}
    for node_id, node in nodes:
        sources = [v[0] for v in node["inputs"].values() if isinstance(v, list)]
        depth[node_id] = 1 + max((depth[s] for s in sources), default=-1)
    return depth


def _input_slots(node: dict, nodes: list) -> list[tuple[str, str]]:
    """A node's input slots in the UI, (name, type): its sockets, then each widget a link feeds (the UI turns
    such a widget into a socket, typed like the output feeding it)."""
    sockets, widgets, _outputs = node_type(node["class_type"])
    slots = [(name, kind) for name, kind, _optional in sockets]
    classes = dict((node_id, other["class_type"]) for node_id, other in nodes)
    for widget, _extra in widgets:
        value = node["inputs"][widget]
        if isinstance(value, list):
            slots.append((widget, node_type(classes[value[0]])[2][value[1]][1]))
    return slots


def ui_workflow(name: str) -> dict:
    """The web UI's workflow JSON (litegraph, version 0.4) for the same graph."""
    title, nodes = WORKFLOWS[name]
    numbers = {node_id: index + 1 for index, (node_id, _node) in enumerate(nodes)}
    columns = _columns(nodes)
    rows: dict[int, int] = {}
    links, ui_nodes = [], []
    outputs_links: dict[tuple[str, int], list[int]] = {}
    for node_id, node in nodes:
        for index, (socket_name, _type) in enumerate(_input_slots(node, nodes)):
            if not isinstance(node["inputs"].get(socket_name), list):
                continue
            source, slot = node["inputs"][socket_name]
            link_id = len(links) + 1
            links.append([link_id, numbers[source], slot, numbers[node_id], index,
                          node_type(nodes[numbers[source] - 1][1]["class_type"])[2][slot][1]])
            outputs_links.setdefault((source, slot), []).append(link_id)
    link_of = {(link[3], link[4]): link[0] for link in links}
    for order, (node_id, node) in enumerate(nodes):
        class_type = node["class_type"]
        sockets, widgets, outputs = node_type(class_type)
        values = []
        for widget, extra in widgets:
            value = node["inputs"][widget]
            # a widget fed by a link keeps its default as the value the UI shows once it is unlinked
            values.append(_widget_defaults(class_type, optional=True)[widget] if isinstance(value, list) else value)
            if extra is not None:
                values.append(extra)
        column = columns[node_id]
        row = rows.get(column, 0)
        size = NODE_SIZES.get(class_type, [280, 130])
        rows[column] = row + size[1] + 60
        inputs = []
        for index, (socket_name, socket_type, optional) in enumerate(sockets):
            entry = {"name": socket_name, "type": socket_type, "link": link_of.get((numbers[node_id], index))}
            if optional:
                entry["shape"] = 7
            inputs.append(entry)
        for index, (widget, widget_type) in enumerate(_input_slots(node, nodes)[len(sockets):], start=len(sockets)):
            inputs.append({"name": widget, "type": widget_type, "widget": {"name": widget},
                           "link": link_of[(numbers[node_id], index)]})
        ui_nodes.append({
            "id": numbers[node_id], "type": class_type, "pos": [40 + 360 * column, 60 + row], "size": size,
            "flags": {}, "order": order, "mode": 0, "inputs": inputs,
            "outputs": [{"name": out_name, "type": out_type, "links": outputs_links.get((node_id, slot)),
                         "slot_index": slot} for slot, (out_name, out_type) in enumerate(outputs)],
            "properties": {"Node name for S&R": class_type}, "widgets_values": values,
        })
    return {
        "last_node_id": len(nodes), "last_link_id": len(links), "nodes": ui_nodes, "links": links, "groups": [],
        "config": {}, "extra": {"ds": {"scale": 1, "offset": [0, 0]}, "pidm_title": title}, "version": 0.4,
    }


def rendered() -> dict[Path, str]:
    files = {}
    for name in WORKFLOWS:
        files[UI_DIR / f"{name}.json"] = json.dumps(ui_workflow(name), indent=1) + "\n"
        files[API_DIR / f"{name}.json"] = json.dumps(api_graph(name), indent=1) + "\n"
    return files


def main(argv: list[str]) -> int:
    files = rendered()
    if "--check" in argv:
        stale = [str(p) for p, text in files.items() if not p.is_file() or p.read_text() != text]
        for path in stale:
            print(f"out of date: {path} (run python scripts/make_example_workflows.py)")
        return 1 if stale else 0
    API_DIR.mkdir(parents=True, exist_ok=True)
    for path, text in files.items():
        path.write_text(text)
        print(path.relative_to(ROOT))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
