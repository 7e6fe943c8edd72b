"""Pose nodes: detect, load, save, render, retarget and interpolate COCO-18 poses as POSE_KEYPOINT.

POSE_KEYPOINT is comfyui_controlnet_aux's format (a list, one entry per frame, of
``{"people": [{"pose_keypoints_2d": [x, y, c] * 18}], "canvas_width", "canvas_height"}``), so
these nodes connect to its preprocessors and pose editors. Our outputs hold one person per frame,
in pixels.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import PurePosixPath, PureWindowsPath

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


def poses_from_input(data, person_index: int, name: str, keep_empty: bool = False) -> list:
    """A POSE_KEYPOINT input as Pose objects, one per frame, with the person that ``person_index`` picks;
    ``keep_empty``: a frame where nobody was found is a pose without joints instead of an error."""
    return formats.poses_from_pose_keypoint(data, person_choice(person_index), name=name, keep_empty=keep_empty)


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


# ComfyUI's annotated-name convention (folder_paths.annotated_filepath, core LoadImage): "name [output]"
# names a file of the output folder. Load Pose lists the output folder's .json files that way: what
# Save Pose writes there is reused without copying it to input/.
OUTPUT_MARK = " [output]"
INPUT_MARK = " [input]"
OUTPUT_LISTED_SUFFIXES = (".json",)  # Save Pose's format; the output folder holds other packs' .txt and .npy


def _files_in(root: str, suffixes: tuple[str, ...]) -> list[str]:
    """Relative names (with '/') of the files under ``root`` with one of ``suffixes``; hidden files and
    links leading out of ``root`` are not offered (and refused if named anyway)."""
    real_root = os.path.realpath(root)
    found = []
    for folder, _dirs, files in os.walk(root):
        for name in files:
            path = os.path.join(folder, name)
            if (name.lower().endswith(suffixes) and not name.startswith(".")
                    and os.path.commonpath([os.path.realpath(path), real_root]) == real_root):
                found.append(os.path.relpath(path, root).replace(os.sep, "/"))
    return sorted(found, key=formats.natural_sort_key)


def _pose_files() -> list[str]:
    inputs = _files_in(folder_paths.get_input_directory(), formats.POSE_FILE_SUFFIXES)
    outputs = _files_in(folder_paths.get_output_directory(), OUTPUT_LISTED_SUFFIXES)
    return inputs + [name + OUTPUT_MARK for name in outputs]


def _pose_file_path(file: str) -> str:
    """The real path of a pose file inside ComfyUI's input folder, or its output folder for a name that
    ends in " [output]". The name comes from a request (the host does not check combo values), so
    absolute names, '..' and links leading out are refused, and nothing of any file is quoted."""
    name, folder, where = file, folder_paths.get_input_directory(), "input"
    if isinstance(file, str) and file.endswith(OUTPUT_MARK):
        name, folder, where = file[:-len(OUTPUT_MARK)], folder_paths.get_output_directory(), "output"
    elif isinstance(file, str) and file.endswith(INPUT_MARK):
        name = file[:-len(INPUT_MARK)]
    path = resolve_inside(name, [folder], "Load Pose file")
    if path is None:
        raise ValueError(f"Load Pose file {quoted(file)} is not in ComfyUI's {where} folder ({folder}); put the pose "
                         f"file there and choose it from the list (press R to refresh the list after a save)")
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
            description="Loads poses from a file in the input folder, or a .json file in the output folder "
                        "(listed as 'name [output]', e.g. what Save Pose wrote): "
                        + "; ".join(f"{kind.suffix}: {kind.description}" for kind in formats.POSE_FORMATS) + ".",
            inputs=[
                io.Combo.Input("file", options=_pose_files(),
                               tooltip=f"Pose file in ComfyUI's input folder ({', '.join(formats.POSE_FILE_SUFFIXES)}), "
                                       "or a .json file in the output folder, listed as 'name [output]' (what Save "
                                       "Pose wrote; press R to refresh the list after a save). Every frame or row "
                                       "becomes one pose."),
                person_input(),
                io.Int.Input("canvas_width", default=0, min=0, max=16384,
                             tooltip="Canvas width in pixels for files that do not store one (.npy, OpenPose "
                                     "JSON without canvas fields); 0 = take it from the file."),
                io.Int.Input("canvas_height", default=0, min=0, max=16384,
                             tooltip="Canvas height in pixels for files that do not store one; 0 = take it "
                                     "from the file."),
            ],
            outputs=[
                PoseKeypointType.Output(display_name="pose", tooltip="The file's poses, one frame each."),
                io.Float.Output(display_name="frame_rate",
                                tooltip=f"Frames per second the file stores (Save Pose writes it), else "
                                        f"{formats.DEFAULT_FRAME_RATE:g} (CreateVideo's default)."),
            ],
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
        # a video's frame without the person keeps its place (Save Pose writes such frames)
        read = formats.read_pose_file(_pose_file_path(file), canvas, person_choice(person_index), keep_empty=True)
        pose = formats.pose_keypoint_from_poses(read.poses)
        frame_rate = formats.DEFAULT_FRAME_RATE if read.frame_rate is None else read.frame_rate
        return io.NodeOutput(pose, frame_rate, ui=pose_ui(pose))


def _is_plain_prefix(prefix: str) -> bool:
    """A relative name without '..' parts, NUL or hidden (dot) file name: the names get_save_image_path
    keeps inside the output folder, and Load Pose lists."""
    if not prefix.strip() or "\x00" in prefix:
        return False
    for flavour in (PurePosixPath, PureWindowsPath):  # "C:\\x" and "\\\\server\\x" are absolute too
        path = flavour(prefix)
        if path.is_absolute() or path.anchor or ".." in path.parts or not path.parts or path.parts[-1].startswith("."):
            return False
    return True


def _inside_output(folder: str, output: str) -> bool:
    """Whether ``folder`` (or, while it does not exist, its nearest existing parent) really lies in the
    output folder: a linked subfolder leading out is refused before anything is created through it."""
    while not os.path.exists(folder) and os.path.dirname(folder) != folder:
        folder = os.path.dirname(folder)
    real_output = os.path.realpath(output)
    return os.path.commonpath([os.path.realpath(folder), real_output]) == real_output


def _save_pose_path(prefix: str) -> tuple[str, str, int]:
    """(folder, file name stem, first counter) for a Save Pose prefix, by ComfyUI's own rule
    (folder_paths.get_save_image_path: subfolders, %date% fields and the counter as SaveImage)."""
    what = "Save Pose filename_prefix"
    output = folder_paths.get_output_directory()
    advice = "use a name, or subfolder/name, inside ComfyUI's output folder (absolute paths and '..' are refused)"
    if not isinstance(prefix, str) or not _is_plain_prefix(prefix):
        raise ValueError(f"{what} {quoted(prefix)} is not a file name inside the output folder; {advice}")
    if not _inside_output(os.path.join(output, os.path.dirname(os.path.normpath(prefix))), output):
        raise ValueError(f"{what} {quoted(prefix)} names a linked folder that leads outside the output folder; {advice}")
    try:
        folder, stem, counter, _subfolder, _prefix = folder_paths.get_save_image_path(prefix, output)
    except Exception:  # noqa: BLE001 - core raises a bare Exception (and logs the paths) for a folder outside
        raise ValueError(f"{what} {quoted(prefix)} cannot be saved to; {advice}") from None
    if not _inside_output(folder, output):
        raise ValueError(f"{what} {quoted(prefix)} names a linked folder that leads outside the output folder; {advice}")
    return folder, stem, counter


class PIDMSavePose(io.ComfyNode):
    """Writes POSE_KEYPOINT frames to ComfyUI's output folder as JSON, with the frame rate."""

    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="PIDMSavePose",
            display_name="Save Pose",
            category="PIDM/pose",
            description="Writes a pose or a pose sequence into ComfyUI's output folder as POSE_KEYPOINT / "
                        "OpenPose JSON with its frame rate, so that a video's poses are found once and reused: "
                        "Load Pose lists the file as 'name [output]'.",
            is_output_node=True,
            inputs=[
                PoseKeypointType.Input("pose", tooltip="The pose frames to save (one person per frame is written)."),
                io.String.Input("filename_prefix", default="pidm_poses",
                                tooltip="File name start, as in Save Image: 'name' or 'subfolder/name' inside "
                                        "the output folder; a counter and .json are added (name_00001_.json)."),
                person_input(),
                io.Float.Input("frame_rate", default=0.0, min=0.0, max=formats.MAX_FRAME_RATE, step=0.01,
                               optional=True,
                               tooltip="Frames per second stored with the poses (connect Poses From Video's "
                                       "frame_rate); 0 = none stored, Load Pose then gives "
                                       f"{formats.DEFAULT_FRAME_RATE:g}."),
            ],
            outputs=[],
        )

    @classmethod
    def validate_inputs(cls, frame_rate=None):
        return check_numbers(cls, frame_rate=frame_rate)

    @classmethod
    def execute(cls, pose, filename_prefix: str, person_index: int, frame_rate: float | None = None) -> io.NodeOutput:
        poses = poses_from_input(pose, person_index, "pose", keep_empty=True)  # a video's frame keeps its place
        rate = formats.frame_rate_value(frame_rate, "Save Pose frame_rate") if frame_rate else None
        folder, stem, counter = _save_pose_path(filename_prefix)
        for _attempt in range(1000):  # another save may take a name between the count and the write
            path = os.path.join(folder, f"{stem}_{counter:05}_.json")
            try:
                formats.save_pose_file(path, poses, frame_rate=rate, overwrite=False)
                break
            except FileExistsError:
                counter += 1
            except OSError as error:  # e.g. a name too long for the file system, a full disk, no permission
                raise ValueError(f"Save Pose filename_prefix {quoted(filename_prefix)}: the file cannot be written "
                                 f"({error.strerror}); choose a shorter prefix or check the output folder") from None
        else:
            raise ValueError(f"Save Pose filename_prefix {quoted(filename_prefix)}: no free file name after "
                             f"{stem}_{counter:05}_.json; choose another prefix")
        output = folder_paths.get_output_directory()
        name = os.path.relpath(path, output).replace(os.sep, "/")
        subfolder, filename = os.path.split(name)
        ui = pose_ui(formats.pose_keypoint_from_poses(poses))
        ui["pidm_saved"] = [{"filename": filename, "subfolder": subfolder, "type": "output",
                             "load_pose_file": name + OUTPUT_MARK}]
        return io.NodeOutput(ui=ui)


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
                        "its motion across the canvas; anchor 'motion' retargets a driving video as one motion "
                        "(one scale, feet on the ground).",
            inputs=[
                PoseKeypointType.Input("target", tooltip="The pose(s) to reach: their limb directions are kept."),
                PoseKeypointType.Input("source", tooltip="The source person's pose (first frame): their bone "
                                                         "lengths, canvas and position are used."),
                io.Combo.Input("anchor", options=list(retarget.ANCHORS), default="neck",
                               tooltip="Where the new figure is placed: 'neck' on the source's neck, 'center' on "
                                       "the source's bounding-box centre, 'target' where the target stands. "
                                       "'motion' for a driving video: the whole sequence as one motion, with one "
                                       "scale, the feet on the source's ground line and the driving person's "
                                       "path across the frame kept."),
                person_input(),
            ],
            outputs=[PoseKeypointType.Output(display_name="pose", tooltip="Retargeted pose(s) on the source's "
                                                                          "canvas.")],
        )

    @classmethod
    def execute(cls, target, source, anchor: str, person_index: int) -> io.NodeOutput:
        targets = poses_from_input(target, person_index, "target", keep_empty=anchor == "motion")
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


NODES = [PIDMPoseFromImage, PIDMLoadPose, PIDMSavePose, PIDMRenderPose, PIDMRetargetPose, PIDMInterpolatePoses]
