"""Pose nodes: detect, load, render, retarget and interpolate COCO-18 poses as POSE_KEYPOINT.

POSE_KEYPOINT is comfyui_controlnet_aux's format (a list, one entry per frame, of
``{"people": [{"pose_keypoints_2d": [x, y, c] * 18}], "canvas_width", "canvas_height"}``), so
these nodes connect to its preprocessors and pose editors. Our outputs hold one person per frame,
in pixels.
"""

from __future__ import annotations

import hashlib
import os

import comfy.model_management as mm
import folder_paths
import numpy as np
import torch

from ..pidm_core.paths import quoted, read_bounded, resolve_inside
from ..pidm_core.pose import detect, formats, interpolate, retarget
from ..pidm_core.pose.geometry import fit_to_canvas
from ..pidm_core.pose.render import check_render_budget, pose_map_grid, pose_map_grid_size, render_skeleton_image
from .compat import PoseKeypointType, check_numbers, io
from .previews import pose_ui

LARGEST = -1


def person_choice(person_index: int):
    """Node value -> pidm_core argument: -1 means the largest person."""
    return "largest" if person_index == LARGEST else int(person_index)


def person_input(name: str = "person_index"):
    """The person-choice input every node that reads a POSE_KEYPOINT shares."""
    return io.Int.Input(name, default=LARGEST, min=LARGEST, max=63,
                        tooltip="Which person to use when a frame holds several: -1 = the largest, "
                                "0.. = position in the POSE_KEYPOINT list.")


def poses_from_input(data, person_index: int, name: str) -> list:
    """A POSE_KEYPOINT input as Pose objects, one per frame, with the person that ``person_index`` picks."""
    return formats.poses_from_pose_keypoint(data, person_choice(person_index), name=name)


def _images(arrays: list[np.ndarray]) -> torch.Tensor:
    """uint8 [H, W, 3] arrays of one size -> IMAGE [N, H, W, 3] in [0, 1]."""
    return torch.from_numpy(np.stack(arrays)).float().div(255.0)


def _put_image(batch: torch.Tensor, index: int, array: np.ndarray) -> None:
    """Write a uint8 [H, W] or [H, W, 3] array into IMAGE batch[index] in place (no stacked copies)."""
    values = torch.from_numpy(array)
    batch[index].copy_(values[:, :, None] if values.ndim == 2 else values).div_(255.0)


def _openpose_dirs() -> list[str]:
    """Folders that may hold body_pose_model.pth: models/openpose and comfyui_controlnet_aux's ckpts."""
    dirs = [os.path.join(folder_paths.models_dir, "openpose")]
    for custom_nodes in folder_paths.get_folder_paths("custom_nodes"):
        dirs.append(os.path.join(custom_nodes, "comfyui_controlnet_aux", "ckpts"))
    return dirs


class PIDMPoseFromImage(io.ComfyNode):
    """Detects one person's COCO-18 keypoints in each image."""

    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="PIDMPoseFromImage",
            display_name="Pose From Image",
            category="PIDM/pose",
            description="Finds a person's body keypoints (COCO-18) in each photo, offline. OpenPose weights "
                        "(body_pose_model.pth) are read from models/openpose or comfyui_controlnet_aux's ckpts.",
            inputs=[
                io.Image.Input("image", tooltip="Photo(s) to read the pose from; one pose per image."),
                io.Combo.Input("backend", options=list(detect.BACKENDS), default="auto",
                               tooltip="auto: OpenPose when its weights are on disk, else MediaPipe. openpose "
                                       "finds several people; mediapipe finds one."),
                person_input(),
                io.Float.Input("threshold", default=0.3, min=0.0, max=1.0, step=0.01,
                               tooltip="Minimum detector confidence for a joint to count (0 = keep every joint "
                                       "found); low-confidence joints are left missing, never guessed."),
                io.Boolean.Input("allow_download", default=False,
                                 tooltip="Let the openpose backend download its weights from the Hugging Face "
                                         "hub when they are not on disk. Off = never touch the network."),
            ],
            outputs=[
                PoseKeypointType.Output(display_name="pose", tooltip="Keypoints in pixels, one frame per image."),
                io.Image.Output(display_name="skeleton", tooltip="The detected skeleton drawn on black."),
                io.Mask.Output(display_name="mask",
                               tooltip="The chosen person's mask (1 = person, soft edge), one per image, from "
                                       "MediaPipe's segmentation (needs MediaPipe; without it the whole image). "
                                       "Connect it to Encode Source Texture's mask for a clean framed crop."),
            ],
        )

    @classmethod
    def validate_inputs(cls, threshold=None):
        return check_numbers(cls, threshold=threshold)

    @classmethod
    def execute(cls, image, backend: str, person_index: int, threshold: float, allow_download: bool) -> io.NodeOutput:
        found = detect.detect_people(
            list(image.cpu().numpy()), backend=backend, person=person_choice(person_index), threshold=threshold,
            openpose_dirs=_openpose_dirs(), allow_download=allow_download, device=mm.get_torch_device(),
        )
        poses = [d.pose for d in found]
        skeletons = [render_skeleton_image(p.keypoints, p.height, p.width) for p in poses]
        masks = torch.stack([torch.ones(p.height, p.width) if d.mask is None else torch.from_numpy(d.mask)
                             for d, p in zip(found, poses)])
        pose = formats.pose_keypoint_from_poses(poses)
        return io.NodeOutput(pose, _images(skeletons), masks, ui=pose_ui(pose, image))


def _pose_files() -> list[str]:
    root = folder_paths.get_input_directory()
    real_root = os.path.realpath(root)
    found = []
    for folder, _dirs, files in os.walk(root):
        for name in files:
            path = os.path.join(folder, name)
            # links leading out of the input folder are not offered (and refused if named anyway)
            if (name.lower().endswith(formats.POSE_FILE_SUFFIXES) and not name.startswith(".")
                    and os.path.commonpath([os.path.realpath(path), real_root]) == real_root):
                found.append(os.path.relpath(path, root).replace(os.sep, "/"))
    return sorted(found, key=formats.natural_sort_key)


def _pose_file_path(file: str) -> str:
    """The real path of a pose file inside ComfyUI's input folder. The name comes from a request (the
    host does not check combo values), so absolute names, '..' and links leading out are refused,
    and nothing of any file is quoted."""
    folder = folder_paths.get_input_directory()
    path = resolve_inside(file, [folder], "Load Pose file")
    if path is None:
        raise ValueError(f"Load Pose file {quoted(file)} is not in ComfyUI's input folder ({folder}); put the pose "
                         f"file there and choose it from the list")
    if not path.lower().endswith(formats.POSE_FILE_SUFFIXES):
        raise ValueError(f"Load Pose file {quoted(file)} is not a pose file; expected one of "
                         f"{', '.join(formats.POSE_FILE_SUFFIXES)}")
    return path


class PIDMLoadPose(io.ComfyNode):
    """Reads poses from a file in ComfyUI's input folder."""

    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="PIDMLoadPose",
            display_name="Load Pose",
            category="PIDM/pose",
            description="Loads poses from a file in the input folder: "
                        + "; ".join(f"{kind.suffix}: {kind.description}" for kind in formats.POSE_FORMATS) + ".",
            inputs=[
                io.Combo.Input("file", options=_pose_files(),
                               tooltip=f"Pose file in ComfyUI's input folder ({', '.join(formats.POSE_FILE_SUFFIXES)}); "
                                       "every frame or row becomes one pose."),
                person_input(),
                io.Int.Input("canvas_width", default=0, min=0, max=16384,
                             tooltip="Canvas width in pixels for files that do not store one (.npy, OpenPose "
                                     "JSON without canvas fields); 0 = take it from the file."),
                io.Int.Input("canvas_height", default=0, min=0, max=16384,
                             tooltip="Canvas height in pixels for files that do not store one; 0 = take it "
                                     "from the file."),
            ],
            outputs=[PoseKeypointType.Output(display_name="pose", tooltip="The file's poses, one frame each.")],
        )

    @classmethod
    def fingerprint_inputs(cls, file: str, **_other):
        # Re-run when the file's content changes, not only its name. It reads only what execute may
        # read, bounded the same way, and never raises: the host would record NaN for this node in
        # /history. A refused name fingerprints as a fixed text and execute reports why.
        try:
            data = read_bounded(_pose_file_path(file), formats.MAX_POSE_FILE_BYTES, "pose file")
        except Exception:  # noqa: BLE001 - any failure is execute's to report
            return "unreadable pose file"
        return hashlib.sha256(data).hexdigest()

    @classmethod
    def execute(cls, file: str, person_index: int, canvas_width: int, canvas_height: int) -> io.NodeOutput:
        canvas = (canvas_width, canvas_height) if canvas_width > 0 and canvas_height > 0 else None
        if (canvas_width > 0) != (canvas_height > 0):
            raise ValueError(f"give both canvas_width and canvas_height, or neither (got {canvas_width}x{canvas_height})")
        poses = formats.load_pose_file(_pose_file_path(file), canvas, person_choice(person_index))
        pose = formats.pose_keypoint_from_poses(poses)
        return io.NodeOutput(pose, ui=pose_ui(pose))


class PIDMRenderPose(io.ComfyNode):
    """Draws POSE_KEYPOINT frames as skeleton images (and the model's 20-channel pose maps)."""

    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="PIDMRenderPose",
            display_name="Render Pose",
            category="PIDM/pose",
            description="Draws each pose frame as an OpenPose-coloured skeleton, and shows the 20-channel pose "
                        "map PIDM is conditioned on (skeleton RGB + 17 limb distance maps).",
            inputs=[
                PoseKeypointType.Input("pose", tooltip="Pose frames to draw."),
                io.Int.Input("width", default=0, min=0, max=8192,
                             tooltip="Output width in pixels; 0 = the first frame's canvas. Frames on other "
                                     "canvases are fitted in, aspect kept. One run may use 1 GiB (one frame of "
                                     "about 6000x6000, or 100 frames of 512x512); larger requests are refused."),
                io.Int.Input("height", default=0, min=0, max=8192,
                             tooltip="Output height in pixels; 0 = the first frame's canvas."),
                person_input(),
            ],
            outputs=[
                io.Image.Output(display_name="skeleton", tooltip="Skeleton images, one per frame."),
                io.Image.Output(display_name="pose_map_grid",
                                tooltip="The 20 pose-map channels of each frame as a 4x5 grid of grey tiles, "
                                        "each at most 128 px on its longer side."),
            ],
        )

    @classmethod
    def execute(cls, pose, width: int, height: int, person_index: int) -> io.NodeOutput:
        poses = poses_from_input(pose, person_index, "pose")
        width = width or poses[0].width
        height = height or poses[0].height
        check_render_budget(len(poses), height, width)  # before anything is allocated
        skeletons = torch.empty((len(poses), height, width, 3))
        grids = torch.empty((len(poses), *pose_map_grid_size(height, width), 3))
        poses = [fit_to_canvas(p, width, height) for p in poses]
        for index, fitted in enumerate(poses):
            _put_image(skeletons, index, render_skeleton_image(fitted.keypoints, height, width))
            _put_image(grids, index, pose_map_grid(fitted.keypoints, height, width))
        return io.NodeOutput(skeletons, grids, ui=pose_ui(formats.pose_keypoint_from_poses(poses)))


class PIDMRetargetPose(io.ComfyNode):
    """Moves target poses onto the source person's body proportions."""

    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="PIDMRetargetPose",
            display_name="Retarget Pose",
            category="PIDM/pose",
            description="Keeps the target pose's limb directions but uses the source person's bone lengths, so "
                        "a pose taken from somebody else does not stretch the source person. A sequence keeps "
                        "its motion across the canvas.",
            inputs=[
                PoseKeypointType.Input("target", tooltip="The pose(s) to reach: their limb directions are kept."),
                PoseKeypointType.Input("source", tooltip="The source person's pose (first frame): their bone "
                                                         "lengths, canvas and position are used."),
                io.Combo.Input("anchor", options=list(retarget.ANCHORS), default="neck",
                               tooltip="Where the new figure is placed: 'neck' on the source's neck, 'center' on "
                                       "the source's bounding-box centre, 'target' where the target stands."),
                person_input(),
            ],
            outputs=[PoseKeypointType.Output(display_name="pose", tooltip="Retargeted pose(s) on the source's "
                                                                          "canvas.")],
        )

    @classmethod
    def execute(cls, target, source, anchor: str, person_index: int) -> io.NodeOutput:
        targets = poses_from_input(target, person_index, "target")
        source_pose = poses_from_input(source, person_index, "source")[0]
        pose = formats.pose_keypoint_from_poses(retarget.retarget_sequence(targets, source_pose, anchor))
        return io.NodeOutput(pose, ui=pose_ui(pose))


class PIDMInterpolatePoses(io.ComfyNode):
    """In-between frames from one pose to another."""

    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="PIDMInterpolatePoses",
            display_name="Interpolate Poses",
            category="PIDM/pose",
            description="Builds a pose sequence from pose a to pose b (both included), turning limbs about "
                        "their joints so they keep their length. Feed it to PIDM Sampler for an animation.",
            inputs=[
                PoseKeypointType.Input("a", tooltip="Start pose (its last frame, so sequences can be chained)."),
                PoseKeypointType.Input("b", tooltip="End pose (its first frame); fitted onto a's canvas if "
                                                    "they differ."),
                io.Int.Input("frames", default=8, min=2, max=1000,
                             tooltip="Number of output frames, both end poses included (2 = just a and b)."),
                io.Combo.Input("mode", options=list(interpolate.MODES), default="angular",
                               tooltip="angular: rotate limbs (bones keep their length); linear: move every "
                                       "joint in a straight line."),
                person_input(),
            ],
            outputs=[PoseKeypointType.Output(display_name="poses", tooltip="The sequence, one frame per pose.")],
        )

    @classmethod
    def execute(cls, a, b, frames: int, mode: str, person_index: int) -> io.NodeOutput:
        start = poses_from_input(a, person_index, "a")[-1]
        end = poses_from_input(b, person_index, "b")[0]
        if (end.width, end.height) != (start.width, start.height):
            end = fit_to_canvas(end, start.width, start.height)
        poses = formats.pose_keypoint_from_poses(interpolate.interpolate_poses(start, end, frames, mode))
        return io.NodeOutput(poses, ui=pose_ui(poses))


NODES = [PIDMPoseFromImage, PIDMLoadPose, PIDMRenderPose, PIDMRetargetPose, PIDMInterpolatePoses]
