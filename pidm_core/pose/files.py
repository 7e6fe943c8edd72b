"""Pose files in and out: POSE_KEYPOINT / OpenPose JSON, COCO keypoints JSON, PIDM .txt, DeepFashion .csv, numpy.

Pose files are read and written through :data:`POSE_FORMATS`, one :class:`PoseFormat` (file-name
ending, description, reader, encoder) per format; a new format is one entry there. The rules every
reader shares are in :mod:`.formats`.

A ``.json`` pose file may carry its sequence's frame rate: each frame dict of the POSE_KEYPOINT list
gets a ``"frame_rate"`` number (frames per second), a key other readers of the list ignore, so the
file stays a plain POSE_KEYPOINT for every other tool. :func:`read_pose_file` gives it back.
"""

from __future__ import annotations

import io
import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ..paths import read_bounded, size_text
from .bounded import MAX_FRAMES, MAX_PEOPLE_PER_FRAME, MAX_POSE_FILE_BYTES, npy_header, parse_pose_json
from .geometry import resize_canvas
from .joint_sets import COCO17_VALUES, COCO18_TO_COCO17, coco18_from_coco17, pose_from_array, pose_to_array
from .keypoint_socket import pose_keypoint_from_poses, poses_from_pose_keypoint
from .keypoints import NUM_JOINTS, Pose, canvas_side

# The DeepFashion images the GFLA annotations and the official .txt files describe are 176 wide and
# 256 high; the official .txt x coordinates are in the original 256-wide frame, 40 px to the right.
DEEPFASHION_WIDTH = 176
DEEPFASHION_HEIGHT = 256
PIDM_TXT_X_OFFSET = 40.0

# The rate a sequence whose file stores none is played at (ComfyUI's CreateVideo default), and the
# highest rate a file may store (ComfyUI's video savers accept up to 1000 fps).
DEFAULT_FRAME_RATE = 30.0
MAX_FRAME_RATE = 1000.0


# --------------------------------------------------------------------------------------------------
# official PIDM .txt and DeepFashion (GFLA) annotation .csv


def load_pidm_txt(path: str | Path, x_offset_px: float = PIDM_TXT_X_OFFSET) -> Pose:
    """Pose from an official PIDM keypoint file (``np.loadtxt``: 18 rows ``x y``, ``-1`` = missing).

    The official x values are in the original 256-wide DeepFashion frame; the loader subtracts 40 to
    reach the 176×256 image, and so does this function: the result lives on a 176 × 256 canvas. Use
    ``resize_canvas(pose, 256, 256)`` for the network's canvas, exactly as the official loader.
    """
    return _pidm_txt_pose(path, path, x_offset_px)


def _pidm_txt_pose(source: Any, path: str | Path, x_offset_px: float = PIDM_TXT_X_OFFSET) -> Pose:
    # numpy's own message quotes the text it could not read; this one names the file only.
    try:
        keypoints = np.loadtxt(source, dtype=np.float64, ndmin=2)
    except (ValueError, UnicodeDecodeError):
        raise ValueError(f"{path}: expected 18 rows of 'x y' numbers (official PIDM keypoints, -1 -1 = missing)") from None
    if keypoints.shape != (NUM_JOINTS, 2):
        raise ValueError(f"{path}: expected 18 rows of 'x y' (official PIDM keypoints), got shape {keypoints.shape}")
    present = ~(keypoints == -1).any(axis=1)
    keypoints[:, 0] -= x_offset_px
    # Built directly: a present x of 39 becomes -1 after the shift and must not read as "missing".
    return Pose(np.concatenate([keypoints, present[:, None]], axis=1), DEEPFASHION_WIDTH, DEEPFASHION_HEIGHT)


def save_pidm_txt(path: str | Path, pose: Pose, x_offset_px: float = PIDM_TXT_X_OFFSET) -> None:
    """Write the official PIDM .txt layout; the pose is first stretched to the 176×256 DeepFashion
    canvas (the inverse of the official 176→256 mapping) and shifted by +40 px in x."""
    Path(path).write_text(_pidm_txt_text(pose, x_offset_px))


def _pidm_txt_text(pose: Pose, x_offset_px: float = PIDM_TXT_X_OFFSET) -> str:
    pose = resize_canvas(pose, DEEPFASHION_WIDTH, DEEPFASHION_HEIGHT)
    xy = pose_to_array(pose).astype(np.float64)
    xy[pose.present, 0] += x_offset_px
    text = io.StringIO()
    np.savetxt(text, xy, fmt="%.3f")
    return text.getvalue()


def _parse_int_list(text: str, where: str) -> list[float]:
    # The field is not quoted back: the message names the line and what was expected.
    try:
        values = json.loads(text)
    except (ValueError, RecursionError):
        raise ValueError(f"{where}: expected a list like [12, -1, ...] of 18 coordinates") from None
    if not isinstance(values, list) or len(values) != NUM_JOINTS:
        raise ValueError(f"{where}: expected a list of 18 coordinates like [12, -1, ...]")
    return values


def read_deepfashion_csv(path: str | Path) -> dict[str, Pose]:
    """Poses by image name from a GFLA ``fasion-annotation-*.csv``.

    Layout (``:``-separated, header ``name:keypoints_y:keypoints_x``): each row is an image name, then
    the 18 **y** coordinates, then the 18 **x** coordinates, as JSON lists in the 176 × 256 image,
    ``-1`` = missing. Poses are on a 176 × 256 canvas.
    """
    return _deepfashion_poses(Path(path).read_text(), path)


def _deepfashion_poses(text: str, path: str | Path, max_rows: int | None = None) -> dict[str, Pose]:
    poses: dict[str, Pose] = {}
    for line_number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split(":")
        where = f"{path} line {line_number}"
        if len(fields) != 3:
            raise ValueError(f"{where}: expected 'name:keypoints_y:keypoints_x', got {len(fields)} fields")
        name = fields[0].strip()
        if line_number == 1 and name == "name":
            continue  # header
        ys, xs = _parse_int_list(fields[1], where), _parse_int_list(fields[2], where)
        if name in poses:
            raise ValueError(f"{where}: an image name appears twice (first on an earlier line)")
        if max_rows is not None and len(poses) >= max_rows:
            raise ValueError(f"{path} holds more than {max_rows} rows; at most {max_rows} poses are read at once: "
                             f"split the file")
        poses[name] = pose_from_array(np.stack([xs, ys], axis=1), DEEPFASHION_WIDTH, DEEPFASHION_HEIGHT, name=where)
    return poses


def deepfashion_csv_row(name: str, pose: Pose) -> str:
    """One ``name: [y...]: [x...]`` row; the pose is stretched to 176 × 256 and rounded to whole pixels
    as the GFLA files store them."""
    pose = resize_canvas(pose, DEEPFASHION_WIDTH, DEEPFASHION_HEIGHT)
    xy = np.where(pose.present[:, None], np.round(pose.xy), -1).astype(int)
    return f"{name}: {json.dumps(xy[:, 1].tolist())}: {json.dumps(xy[:, 0].tolist())}"


def write_deepfashion_csv(path: str | Path, named_poses: dict[str, Pose]) -> None:
    """Write a GFLA-style annotation file (header plus one row per pose)."""
    Path(path).write_text(_deepfashion_csv_text(named_poses))


def _deepfashion_csv_text(named_poses: dict[str, Pose]) -> str:
    rows = ["name:keypoints_y:keypoints_x"] + [deepfashion_csv_row(n, p) for n, p in named_poses.items()]
    return "\n".join(rows) + "\n"


# --------------------------------------------------------------------------------------------------
# COCO keypoints JSON (MS-COCO annotations; MMPose and YOLO export it too): COCO-17 joints


def _coco_id(value: Any, where: str, key: str) -> int | str:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(f"{where}: '{key}' must be a number or a name, got {type(value).__name__}")
    return value


def _coco_joints(annotation: Any, where: str) -> np.ndarray:
    """COCO-18 ``[18, 3]`` of one annotation; visibility 0 (not labelled) is missing, 1 and 2 are present."""
    flat = annotation.get("keypoints")
    message = f"{where}: 'keypoints' must be a list of {COCO17_VALUES} numbers (17 joints of x, y, visibility)"
    if not isinstance(flat, list) or len(flat) != COCO17_VALUES:
        raise ValueError(message)
    try:
        joints = np.asarray(flat, dtype=np.float64).reshape(17, 3)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(message) from None
    joints[:, 2] = joints[:, 2] > 0
    return coco18_from_coco17(joints)


def _coco_frames(data: Any, path: Path) -> list[dict]:
    """A COCO keypoints file as POSE_KEYPOINT frames: one per image, in file order, its annotations as people."""
    if not isinstance(data, dict) or not isinstance(data.get("images"), list) or not isinstance(data.get("annotations"), list):
        raise ValueError(f"{path}: expected a COCO keypoints dict with 'images' and 'annotations' lists")
    images, annotations = data["images"], data["annotations"]
    if len(images) > MAX_FRAMES or len(annotations) > MAX_FRAMES * MAX_PEOPLE_PER_FRAME:
        raise ValueError(f"{path} holds {len(images)} images and {len(annotations)} annotations; at most {MAX_FRAMES} "
                         f"images of {MAX_PEOPLE_PER_FRAME} people are read at once: split the file")
    frames: dict[int | str, dict] = {}
    for index, image in enumerate(images):
        where = f"{path} image {index + 1} of {len(images)}"
        if not isinstance(image, dict):
            raise ValueError(f"{where}: expected a dict with 'id', 'width' and 'height', got {type(image).__name__}")
        image_id = _coco_id(image.get("id"), where, "id")
        if image_id in frames:
            raise ValueError(f"{where}: its id {image_id!r} is given to an earlier image too")
        frames[image_id] = {"people": [], "canvas_width": image.get("width"), "canvas_height": image.get("height")}
    for index, annotation in enumerate(annotations):
        where = f"{path} annotation {index + 1} of {len(annotations)}"
        if not isinstance(annotation, dict):
            raise ValueError(f"{where}: expected a dict with 'image_id' and 'keypoints', got {type(annotation).__name__}")
        frame = frames.get(_coco_id(annotation.get("image_id"), where, "image_id"))
        if frame is None:
            raise ValueError(f"{where}: its 'image_id' names no image of the file")
        frame["people"].append({"pose_keypoints_2d": _coco_joints(annotation, where).ravel().tolist()})
    return list(frames.values())


def coco_keypoints_from_poses(poses: Sequence[Pose]) -> dict:
    """A COCO keypoints dict: one image (id i + 1, the pose's canvas) and one annotation per pose, in
    pixels, visibility 2 for present joints and (0, 0, 0) for missing ones."""
    images, annotations = [], []
    for index, pose in enumerate(poses):
        present = pose.present[list(COCO18_TO_COCO17)]
        xy = pose.keypoints[list(COCO18_TO_COCO17), :2]
        rows = np.where(present[:, None], np.concatenate([xy, np.full((17, 1), 2.0)], axis=1), 0.0)
        images.append({"id": index + 1, "width": pose.width, "height": pose.height})
        annotations.append({"id": index + 1, "image_id": index + 1, "category_id": 1,
                            "num_keypoints": int(present.sum()), "keypoints": rows.ravel().tolist()})
    return {"images": images, "annotations": annotations, "categories": [{"id": 1, "name": "person"}]}


# --------------------------------------------------------------------------------------------------
# files: one PoseFormat per kind of file


@dataclass(frozen=True)
class ReadRequest:
    """What a reader may need besides the file: a canvas for files without one, the person to take
    from frames of several, the confidence below which a joint is missing, and whether a frame where
    nobody was found is kept as a pose without joints (else it is an error)."""

    canvas_size: tuple[int, int] | None = None
    person_index: int | str = 0
    threshold: float = 0.0
    keep_empty: bool = False


@dataclass(frozen=True)
class PoseFile:
    """What a pose file holds: one pose per frame, and the frames per second when the file stores it."""

    poses: list[Pose]
    frame_rate: float | None = None


@dataclass(frozen=True)
class PoseFormat:
    """One pose file format: the file-name ending it is known by, what it holds (Load Pose lists it),
    ``read(data, path, request) -> PoseFile`` (one pose per frame), ``encode(path, poses, normalized,
    frame_rate) -> bytes`` (the file's content; ``path`` names it in errors and rows) and whether the
    format stores a frame rate."""

    suffix: str
    description: str
    read: Callable[[bytes, Path, ReadRequest], PoseFile]
    encode: Callable[[Path, Sequence[Pose], bool, float | None], bytes]
    keeps_frame_rate: bool = False


def frame_rate_value(value: Any, name: str) -> float:
    """``value`` as a frame rate in frames per second: a finite number in (0, MAX_FRAME_RATE];
    ValueError naming ``name`` otherwise (NaN, 0, "25", True)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name} must be a number of frames per second, got {type(value).__name__}")
    if not (math.isfinite(value) and 0 < value <= MAX_FRAME_RATE):
        raise ValueError(f"{name} must be a frame rate above 0 and at most {MAX_FRAME_RATE:g} frames per second, "
                         f"got {float(value):g}")
    return float(value)


def _stored_frame_rate(data: Any, path: Path) -> float | None:
    """The ``"frame_rate"`` the frames of a POSE_KEYPOINT file carry (they must agree), or None."""
    frames = data if isinstance(data, list) else [data]
    rates = [frame["frame_rate"] for frame in frames if isinstance(frame, dict) and "frame_rate" in frame]
    if not rates:
        return None
    first = frame_rate_value(rates[0], f"{path}: 'frame_rate'")
    for rate in rates[1:]:
        if frame_rate_value(rate, f"{path}: 'frame_rate'") != first:
            raise ValueError(f"{path}: its frames give different frame rates ({first:g} and {float(rate):g}); a "
                             f"sequence has one: keep one 'frame_rate' value")
    return first


def pose_keypoint_json(poses: Sequence[Pose], normalized: bool = False, frame_rate: float | None = None) -> str:
    """A POSE_KEYPOINT list as compact JSON text (one person per frame, pixels unless ``normalized``),
    each frame with ``"frame_rate"`` when one is given. Coordinates are rounded to 1/1000 px (1e-6 of
    the canvas when normalised), so 10000 frames stay well under MAX_POSE_FILE_BYTES."""
    digits = 6 if normalized else 3
    frames = pose_keypoint_from_poses(poses, normalized)
    for frame in frames:
        for person in frame["people"]:
            person["pose_keypoints_2d"] = [round(v, digits) for v in person["pose_keypoints_2d"]]
        if frame_rate is not None:
            frame["frame_rate"] = frame_rate_value(frame_rate, "frame_rate")
    return json.dumps(frames, separators=(",", ":"), allow_nan=False)


def _read_pose_keypoint_json(data: bytes, path: Path, request: ReadRequest) -> PoseFile:
    parsed = parse_pose_json(data, str(path))
    poses = poses_from_pose_keypoint(parsed, request.person_index, request.threshold,
                                     canvas_size=request.canvas_size, name=str(path), keep_empty=request.keep_empty)
    return PoseFile(poses, _stored_frame_rate(parsed, path))  # the frame list is bounded by now


def _encode_pose_keypoint_json(path: Path, poses: Sequence[Pose], normalized: bool, frame_rate: float | None) -> bytes:
    return pose_keypoint_json(poses, normalized, frame_rate).encode()


def _read_coco_json(data: bytes, path: Path, request: ReadRequest) -> PoseFile:
    frames = _coco_frames(parse_pose_json(data, str(path), "expected a COCO keypoints dict"), path)
    return PoseFile(poses_from_pose_keypoint(frames, request.person_index, request.threshold, normalized=False,
                                             canvas_size=request.canvas_size, name=str(path),
                                             keep_empty=request.keep_empty))


def _encode_coco_json(path: Path, poses: Sequence[Pose], normalized: bool, frame_rate: float | None) -> bytes:
    return json.dumps(coco_keypoints_from_poses(poses)).encode()  # COCO keypoints are pixels, always


def _read_pidm_txt(data: bytes, path: Path, request: ReadRequest) -> PoseFile:
    return PoseFile([_pidm_txt_pose(io.BytesIO(data), path)])


def _encode_pidm_txt(path: Path, poses: Sequence[Pose], normalized: bool, frame_rate: float | None) -> bytes:
    if len(poses) != 1:
        raise ValueError(f"{path}: a PIDM .txt file holds one pose, got {len(poses)}")
    return _pidm_txt_text(poses[0]).encode()


def _read_deepfashion_csv(data: bytes, path: Path, request: ReadRequest) -> PoseFile:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"{path} is not a text file; expected GFLA rows 'name: [y, ...]: [x, ...]'") from None
    return PoseFile(list(_deepfashion_poses(text, path, MAX_FRAMES).values()))


def _encode_deepfashion_csv(path: Path, poses: Sequence[Pose], normalized: bool, frame_rate: float | None) -> bytes:
    return _deepfashion_csv_text({f"{path.stem}_{i:05d}": pose for i, pose in enumerate(poses)}).encode()


def _read_npy(data: bytes, path: Path, request: ReadRequest) -> PoseFile:
    shape, _dtype = npy_header(data, path)
    if len(shape) == 3 and shape[0] > MAX_FRAMES:
        raise ValueError(f"{path} holds {shape[0]} frames; at most {MAX_FRAMES} are read at once: split the sequence")
    array = np.load(io.BytesIO(data), allow_pickle=False)  # bounded by the file size checked above
    if array.ndim == 3 and (array.shape[-1] == 20 or array.shape[0] == 20) and max(array.shape) > 20:
        raise ValueError(f"{path}: shape {array.shape} is a rendered 20-channel pose map, not keypoints")
    if request.canvas_size is None:
        raise ValueError(f"{path}: a .npy keypoint file has no canvas size; pass canvas_size=(width, height)")
    if array.ndim == 2:
        array = array[None]
    if array.ndim != 3:
        raise ValueError(f"{path}: expected keypoints [18, 2|3] or [frames, 18, 2|3], got shape {array.shape}")
    if len(array) == 0:
        raise ValueError(f"{path} holds no frames (shape {array.shape}); save at least one pose")
    width, height = request.canvas_size
    return PoseFile([pose_from_array(a, width, height, request.threshold, name=f"{path} frame {i + 1} of {len(array)}")
                     for i, a in enumerate(array)])


def _encode_npy(path: Path, poses: Sequence[Pose], normalized: bool, frame_rate: float | None) -> bytes:
    data = io.BytesIO()
    np.save(data, np.stack([pose.keypoints for pose in poses]))
    return data.getvalue()


POSE_FORMATS = (
    PoseFormat(".json", "POSE_KEYPOINT / OpenPose JSON (with the frame rate when saved by Save Pose)",
               _read_pose_keypoint_json, _encode_pose_keypoint_json, keeps_frame_rate=True),
    PoseFormat(".coco.json", "COCO keypoints (17 joints, one frame per image)", _read_coco_json, _encode_coco_json),
    PoseFormat(".txt", "the official PIDM keypoints (one pose, 176x256)", _read_pidm_txt, _encode_pidm_txt),
    PoseFormat(".csv", "DeepFashion (GFLA) annotations (one pose per row, 176x256)", _read_deepfashion_csv,
               _encode_deepfashion_csv),
    PoseFormat(".npy", "numpy [frames, 18, 2|3] in pixels (needs a canvas size)", _read_npy, _encode_npy),
)
POSE_FILE_SUFFIXES = tuple(f.suffix for f in POSE_FORMATS)


def pose_format(path: str | Path) -> PoseFormat:
    """The format of a pose file, by the longest known ending of its name (``x.coco.json`` is COCO)."""
    name = Path(path).name.lower()
    known = [f for f in POSE_FORMATS if name.endswith(f.suffix)]
    if not known:
        raise ValueError(f"{path}: unsupported pose file type {Path(path).suffix.lower()!r}; expected one of "
                         f"{', '.join(POSE_FILE_SUFFIXES)}")
    return max(known, key=lambda f: len(f.suffix))


def load_pose_file(
    path: str | Path,
    canvas_size: tuple[int, int] | None = None,
    person_index: int | str = 0,
    threshold: float = 0.0,
) -> list[Pose]:
    """Poses (one per frame) from a file: :func:`read_pose_file` without the frame rate."""
    return read_pose_file(path, canvas_size, person_index, threshold).poses


def read_pose_file(
    path: str | Path,
    canvas_size: tuple[int, int] | None = None,
    person_index: int | str = 0,
    threshold: float = 0.0,
    keep_empty: bool = False,
) -> PoseFile:
    """Poses (one per frame) and the stored frame rate (None when the file has none) from a file, by
    its name's ending (:data:`POSE_FORMATS`).

    ``.json``: POSE_KEYPOINT list or one OpenPose JSON dict (``canvas_size`` when it has no canvas
    fields; the frame rate from its frames' ``"frame_rate"``); ``.coco.json``: COCO keypoints, one
    frame per image; ``.txt``: official PIDM keypoints (176×256 canvas); ``.csv``: GFLA DeepFashion
    annotations, every row in file order (176×256); ``.npy``: ``[18, 2|3]`` or ``[frames, 18, 2|3]``
    in pixels, ``canvas_size`` required. Only ``.json`` stores a frame rate.

    Files are untrusted: a file over MAX_POSE_FILE_BYTES (16 MiB), JSON nested over MAX_JSON_DEPTH, more
    than MAX_FRAMES frames, or a .npy header whose shape the file's bytes cannot hold is a ValueError,
    raised before anything large is allocated. The caller decides which folder a file may come from.
    """
    path = Path(path)
    kind = pose_format(path)
    if canvas_size is not None:
        canvas_size = (canvas_side(canvas_size[0], "canvas width"), canvas_side(canvas_size[1], "canvas height"))
    data = read_bounded(path, MAX_POSE_FILE_BYTES, f"pose file {path}")
    return kind.read(data, path, ReadRequest(canvas_size, person_index, threshold, keep_empty))


def save_pose_file(path: str | Path, poses: Sequence[Pose], normalized: bool = False,
                   frame_rate: float | None = None, overwrite: bool = True) -> None:
    """Write poses by the name's ending: ``.json`` POSE_KEYPOINT list (pixels unless ``normalized``;
    ``frame_rate`` in every frame when given), ``.coco.json`` COCO keypoints, ``.txt`` official PIDM
    layout (exactly one pose), ``.csv`` GFLA rows named ``<stem>_<index>``, ``.npy`` float32
    ``[frames, 18, 3]`` (confidence 0 = missing; the canvas size is not stored).

    Only what :func:`read_pose_file` reads back is written: at most MAX_FRAMES poses and
    MAX_POSE_FILE_BYTES of file, else ValueError before anything is written. ``overwrite=False``
    never replaces a file: FileExistsError when ``path`` exists (a saver then tries its next name).
    """
    path = Path(path)
    kind = pose_format(path)
    if not poses:
        raise ValueError(f"{path}: no poses to write")
    if len(poses) > MAX_FRAMES:
        raise ValueError(f"{path}: {len(poses)} poses; a pose file holds at most {MAX_FRAMES} frames (what Load Pose "
                         f"reads at once): save the sequence in parts")
    if frame_rate is not None and not kind.keeps_frame_rate:
        raise ValueError(f"{path}: a {kind.suffix} file cannot store a frame rate; save as .json to keep it")
    data = kind.encode(path, poses, normalized, frame_rate)
    if len(data) > MAX_POSE_FILE_BYTES:
        raise ValueError(f"{path} would be {size_text(len(data))}; pose files are read up to "
                         f"{size_text(MAX_POSE_FILE_BYTES)}: save the sequence in parts")
    with open(path, "wb" if overwrite else "xb") as handle:
        try:
            handle.write(data)
        except BaseException:
            handle.close()
            os.unlink(path)  # no half-written pose file is left for Load Pose to list
            raise


def natural_sort_key(name: str) -> list:
    """Sort key that orders ``frame2`` before ``frame10``."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def load_pose_sequence(
    folder: str | Path,
    canvas_size: tuple[int, int] | None = None,
    person_index: int | str = 0,
    threshold: float = 0.0,
) -> list[Pose]:
    """Poses from every pose file in ``folder`` (not recursive, hidden files skipped), files in natural
    order (``frame2`` before ``frame10``); a multi-frame file contributes all its frames in order."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"pose sequence folder {folder} does not exist or is not a folder")
    files = [
        p for p in folder.iterdir()
        if p.is_file() and p.name.lower().endswith(POSE_FILE_SUFFIXES) and not p.name.startswith(".")
    ]  # fmt: skip
    if not files:
        raise ValueError(f"pose sequence folder {folder} holds no pose files ({', '.join(POSE_FILE_SUFFIXES)})")
    poses = []
    for path in sorted(files, key=lambda p: natural_sort_key(p.name)):
        poses.extend(load_pose_file(path, canvas_size, person_index, threshold))
        if len(poses) > MAX_FRAMES:
            raise ValueError(f"pose sequence folder {folder} holds more than {MAX_FRAMES} frames; at most {MAX_FRAMES} "
                             f"are read at once: split it")
    return poses
