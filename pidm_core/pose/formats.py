"""Pose formats in and out: POSE_KEYPOINT, OpenPose JSON, COCO keypoints JSON, PIDM .txt, DeepFashion .csv, numpy.

Pose files are read and written through :data:`POSE_FORMATS`, one :class:`PoseFormat` (file-name
ending, description, reader, writer) per format; a new format is one entry there.

Everything is converted to :class:`~pidm_core.pose.keypoints.Pose` (COCO-18 ``[18, 3]`` of
``(x_px, y_px, confidence)`` plus the canvas size). Rules shared by every reader:

* A joint is present when its confidence is > 0 and >= ``threshold``. Missing joints stay missing
  (they become ``(0, 0, 0)`` inside a Pose and are written back as each format's "missing" marker),
  they never turn into a joint at (0, 0).
* A row whose coordinates are both exactly ``-1`` is missing whatever its confidence (the official
  PIDM / GFLA marker); in the 2-column formats either coordinate at ``-1`` marks it missing, as in
  the official loader.
* NaN or infinite coordinates make that joint missing (documented in :class:`Pose`), not an error.
* Structural problems raise ``ValueError`` naming the input and the frame / person index.
* Everything is bounded before it is read (files and editor text are hostile; limits in
  :mod:`.bounded`): file and text sizes, JSON nesting, frames, people per frame, joints per person,
  the shape a ``.npy`` header declares, and canvas sizes (whole numbers in 1..16384). Errors say
  which limit and what to do.

Joint sets other than COCO-18 are converted: OpenPose BODY_25, COCO-17 (MS-COCO, MMPose, YOLO) and
MediaPipe's 33 landmarks.
"""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from ..paths import read_bounded
from .bounded import (  # noqa: F401 - the limits are part of this module's interface
    MAX_FRAMES,
    MAX_JSON_DEPTH,
    MAX_KEYPOINT_NUMBERS,
    MAX_PEOPLE_PER_FRAME,
    MAX_POSE_FILE_BYTES,
    npy_header,
    parse_pose_json,
)
from .geometry import resize_canvas
from .keypoints import NUM_JOINTS, Pose, canvas_side

# The DeepFashion images the GFLA annotations and the official .txt files describe are 176 wide and
# 256 high; the official .txt x coordinates are in the original 256-wide frame, 40 px to the right.
DEEPFASHION_WIDTH = 176
DEEPFASHION_HEIGHT = 256
PIDM_TXT_X_OFFSET = 40.0

# COCO-18 joint i is taken from joint BODY25_TO_COCO18[i] of BODY_25 (which adds mid-hip at 8, feet 19-24).
BODY25_TO_COCO18 = (0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18)
# COCO-17 has no neck (synthesised from the shoulders) and lists left before right.
COCO17_TO_COCO18 = (0, None, 6, 8, 10, 5, 7, 9, 12, 14, 16, 11, 13, 15, 2, 1, 4, 3)
COCO17_SHOULDERS = (5, 6)
COCO18_TO_COCO17 = tuple(COCO17_TO_COCO18.index(j) for j in range(17))  # the way back (the neck is dropped)
COCO17_VALUES = 51  # 17 joints of (x, y, visibility)
MEDIAPIPE33_TO_COCO18 = (0, None, 12, 14, 16, 11, 13, 15, 24, 26, 28, 23, 25, 27, 5, 2, 8, 7)
MEDIAPIPE33_SHOULDERS = (11, 12)


# --------------------------------------------------------------------------------------------------
# joint-set conversions on raw arrays [N, 3] of (x, y, confidence); confidence <= 0 = missing


def _remap(joints: np.ndarray, table: Sequence[int | None], shoulders: tuple[int, int] | None) -> np.ndarray:
    """COCO-18 ``[18, 3]`` from another joint set via an index table; the neck (None) is the midpoint
    of the two shoulders with the lower of their confidences, and missing unless both are present."""
    joints = np.asarray(joints, dtype=np.float64)
    out = np.zeros((NUM_JOINTS, 3), dtype=np.float64)
    for i, j in enumerate(table):
        if j is not None:
            out[i] = joints[j]
    if shoulders is not None:
        a, b = joints[list(shoulders)]
        if a[2] > 0 and b[2] > 0:
            out[1] = ((a[0] + b[0]) / 2, (a[1] + b[1]) / 2, min(a[2], b[2]))
    return out


def coco18_from_body25(joints: np.ndarray) -> np.ndarray:
    """OpenPose BODY_25 ``[25, 3]`` → COCO-18 ``[18, 3]`` (drops mid-hip and the six foot points)."""
    return _remap(_check_joints(joints, 25, "BODY_25 keypoints"), BODY25_TO_COCO18, None)


def coco18_from_coco17(joints: np.ndarray) -> np.ndarray:
    """MS-COCO 17 ``[17, 3]`` → COCO-18 ``[18, 3]``; neck = midpoint of the shoulders when both are present."""
    return _remap(_check_joints(joints, 17, "COCO-17 keypoints"), COCO17_TO_COCO18, COCO17_SHOULDERS)


def coco18_from_mediapipe33(landmarks: np.ndarray) -> np.ndarray:
    """MediaPipe Pose ``[33, 3]`` of ``(x, y, visibility)`` → COCO-18 ``[18, 3]``; neck = shoulder midpoint.

    Coordinates pass through unchanged: scale MediaPipe's normalised landmarks to pixels first.
    """
    return _remap(_check_joints(landmarks, 33, "MediaPipe landmarks"), MEDIAPIPE33_TO_COCO18, MEDIAPIPE33_SHOULDERS)


def _check_joints(joints: np.ndarray, count: int, name: str) -> np.ndarray:
    joints = np.asarray(joints, dtype=np.float64)
    if joints.ndim != 2 or joints.shape[0] != count or joints.shape[1] < 3:
        raise ValueError(f"{name} must have shape ({count}, 3) (x, y, confidence), got {joints.shape}")
    return joints[:, :3]


# --------------------------------------------------------------------------------------------------
# numpy arrays


def _apply_threshold(joints: np.ndarray, threshold: float) -> np.ndarray:
    joints = np.array(joints, dtype=np.float64)
    marker = (joints[:, 0] == -1) & (joints[:, 1] == -1)
    joints[marker | (joints[:, 2] < threshold)] = 0.0
    return joints


def pose_from_array(
    keypoints: np.ndarray, width: int, height: int, threshold: float = 0.0, name: str = "keypoint array"
) -> Pose:
    """Pose from ``[18, 2]`` pixel ``(x, y)`` with ``-1`` = missing (official layout; either coordinate
    at -1 marks the joint missing) or ``[18, 3]`` ``(x, y, confidence)``, on a ``width × height`` canvas."""
    keypoints = np.asarray(keypoints, dtype=np.float64)
    if keypoints.shape == (NUM_JOINTS, 2):
        missing = (keypoints == -1).any(axis=1)
        keypoints = np.concatenate([keypoints, (~missing)[:, None].astype(np.float64)], axis=1)
    elif keypoints.shape != (NUM_JOINTS, 3):
        raise ValueError(f"{name}: expected shape (18, 2) with -1 = missing or (18, 3) (x, y, confidence), got {keypoints.shape}")
    return Pose(_apply_threshold(keypoints, threshold), width, height)


def pose_to_array(pose: Pose, with_confidence: bool = False) -> np.ndarray:
    """float32 ``[18, 2]`` with ``-1`` for missing joints (official layout), or ``[18, 3]`` with
    confidence 0 for missing joints when ``with_confidence``."""
    if with_confidence:
        return pose.keypoints.copy()
    xy = pose.keypoints[:, :2].copy()
    xy[~pose.present] = -1.0
    return xy


# --------------------------------------------------------------------------------------------------
# POSE_KEYPOINT (comfyui_controlnet_aux) and OpenPose JSON


def _frame_list(data: Any, name: str) -> list:
    """POSE_KEYPOINT frames; one dict (an OpenPose JSON file, one frame) is accepted as a list of one."""
    if isinstance(data, dict):
        return [data]
    if not isinstance(data, (list, tuple)):
        raise ValueError(f"{name}: expected a list of frames (dicts with 'people'), got {type(data).__name__}")
    if len(data) == 0:
        raise ValueError(f"{name} is empty: it holds no frames; connect a pose estimator's POSE_KEYPOINT output")
    if len(data) > MAX_FRAMES:
        raise ValueError(f"{name} holds {len(data)} frames; at most {MAX_FRAMES} are read at once: split the sequence")
    return list(data)


def _keypoint_values(flat: Any, where: str) -> np.ndarray:
    """The numbers of 'pose_keypoints_2d' (flat, or rows of [x, y, c]), refusing long lists before converting."""
    if isinstance(flat, np.ndarray):
        if flat.size > MAX_KEYPOINT_NUMBERS:
            raise ValueError(f"{where}: 'pose_keypoints_2d' has {flat.size} numbers; expected 54 (COCO-18) or 75 (BODY_25)")
        rows = [flat]
    elif isinstance(flat, (list, tuple)):
        if len(flat) > MAX_KEYPOINT_NUMBERS:
            raise ValueError(f"{where}: 'pose_keypoints_2d' has {len(flat)} entries; expected 54 numbers (COCO-18) or 75 "
                             f"(BODY_25)")
        rows = flat
    else:
        raise ValueError(f"{where}: 'pose_keypoints_2d' must be a flat list of numbers [x, y, c, ...], got "
                         f"{type(flat).__name__}")
    for row in rows:  # rows of [x, y, c]: each short, or the total could be anything
        if hasattr(row, "__len__") and not isinstance(row, (str, bytes)) and len(row) > MAX_KEYPOINT_NUMBERS:
            raise ValueError(f"{where}: 'pose_keypoints_2d' has a row of {len(row)} entries; expected [x, y, c] rows")
    try:
        values = np.asarray(flat, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"{where}: 'pose_keypoints_2d' must be a flat list of numbers [x, y, c, ...]") from None
    if values.size > MAX_KEYPOINT_NUMBERS:
        raise ValueError(f"{where}: 'pose_keypoints_2d' has {values.size} numbers; expected 54 (COCO-18) or 75 (BODY_25)")
    return values


def _person_joints(person: Any, where: str) -> np.ndarray:
    """Raw ``[18, 3]`` (x, y, c) of one ``people`` entry, converting BODY_25 to COCO-18."""
    if not isinstance(person, dict) or "pose_keypoints_2d" not in person:
        raise ValueError(f"{where}: expected a dict with 'pose_keypoints_2d', got {type(person).__name__}")
    flat = person["pose_keypoints_2d"]
    if flat is None:
        raise ValueError(f"{where}: 'pose_keypoints_2d' is empty (no body keypoints)")
    values = _keypoint_values(flat, where)
    if values.size % 3:
        raise ValueError(f"{where}: 'pose_keypoints_2d' has {values.size} numbers, not a multiple of 3 (x, y, c)")
    joints = values.reshape(-1, 3)
    if len(joints) == NUM_JOINTS:
        return joints
    if len(joints) == 25:
        return coco18_from_body25(joints)
    raise ValueError(f"{where}: 'pose_keypoints_2d' has {len(joints)} joints; expected 18 (COCO-18) or 25 (BODY_25)")


def _canvas(frame: dict, canvas_size: tuple[int, int] | None, where: str) -> tuple[int, int]:
    width, height = frame.get("canvas_width"), frame.get("canvas_height")
    if width is None or height is None:
        if canvas_size is None:
            raise ValueError(
                f"{where} has no canvas_width/canvas_height (plain OpenPose JSON); pass canvas_size=(width, height)"
            )
        width, height = canvas_size
    return canvas_side(width, f"{where}: canvas_width"), canvas_side(height, f"{where}: canvas_height")


def is_normalized(people_joints: Iterable[np.ndarray], width: int, height: int) -> bool:
    """The rule that tells normalised POSE_KEYPOINT coordinates from pixels.

    comfyui_controlnet_aux's OpenPose preprocessor writes coordinates in [0, 1], DWPose writes pixels,
    and neither says which. A frame is taken as normalised when every present coordinate (over all
    of its people) lies within [0, 1] and the canvas is larger than 4×4 pixels: a real person drawn in
    pixels never fits inside one pixel. A frame without present joints counts as pixels.
    """
    values = [j[j[:, 2] > 0, :2] for j in people_joints]
    values = np.concatenate(values) if values else np.zeros((0, 2))
    values = values[np.isfinite(values).all(axis=1)]
    if len(values) == 0 or width <= 4 or height <= 4:
        return False
    return bool(((values >= 0) & (values <= 1)).all())


FLOAT32_MAX = float(np.finfo(np.float32).max)  # a Pose holds float32: larger coordinates would become inf


def _drop_unusable_joints(joints: np.ndarray) -> int:
    """Joints with confidence whose coordinates are NaN, inf or beyond float32 (1e308) become missing here, as
    a Pose would make them; returns how many, so that an error can say why a person has no joint left."""
    xy = joints[:, :2]
    unusable = (joints[:, 2] > 0) & ~(np.isfinite(xy).all(axis=1) & (np.abs(xy) <= FLOAT32_MAX).all(axis=1))
    joints[unusable] = 0.0
    return int(unusable.sum())


def _select_person(poses: list[Pose], person_index: int | str, threshold: float, where: str,
                   unusable: Sequence[int] = ()) -> Pose:
    if person_index == "largest":
        # max() keeps the first of equals, so people without joints only win when nobody has any.
        chosen = max(poses, key=lambda pose: (pose.present.any(), pose.bbox_area()))
    elif not isinstance(person_index, (int, np.integer)) or isinstance(person_index, bool):
        raise ValueError(f"person_index must be an int or 'largest', got {person_index!r}")
    elif not -len(poses) <= person_index < len(poses):
        raise ValueError(f"{where} has {len(poses)} people, person index {person_index} (0-based) does not exist")
    else:
        chosen = poses[person_index]
    if not chosen.present.any():
        # An empty pose would render as a blank pose map; better to say so than to draw nothing.
        dropped = next((unusable[i] for i, pose in enumerate(poses) if pose is chosen), 0) if unusable else 0
        if dropped:
            raise ValueError(f"{where}: the chosen person has no usable joint: {dropped} joints have a confidence but "
                             "coordinates that are not finite numbers of a sensible size (NaN, inf or 1e308); fix "
                             "the pose's coordinates (pixels of its canvas, or 0..1 normalised)")
        raise ValueError(f"{where}: the chosen person has no joint with confidence > 0 and >= {threshold}")
    return chosen


def poses_from_pose_keypoint(
    data: Any,
    person_index: int | str = 0,
    threshold: float = 0.0,
    normalized: bool | None = None,
    canvas_size: tuple[int, int] | None = None,
    name: str = "POSE_KEYPOINT",
) -> list[Pose]:
    """One :class:`Pose` per frame of a ComfyUI ``POSE_KEYPOINT`` (or one OpenPose JSON dict).

    ``data``: a list, one entry per image, of ``{"people": [{"pose_keypoints_2d": [x, y, c] * 18 (or
    * 25 for BODY_25)}], "canvas_width": W, "canvas_height": H}``. ``person_index``: which entry of
    ``people`` (file order; negative counts from the end) or ``"largest"`` (largest bounding box of
    present joints). ``threshold``: joints with confidence below it are missing.
    ``normalized``: None detects per frame with :func:`is_normalized`; True/False forces it.
    ``canvas_size``: ``(width, height)`` used when a frame has no canvas fields (plain OpenPose JSON).

    Raises ValueError naming the frame (1-based: "frame 2 of 5") and person for an empty list, a frame
    without people, a wrong nesting, a person with a wrong number of joints, or a chosen person
    without any joint above the threshold.
    """
    frames = _frame_list(data, name)
    poses = []
    for index, frame in enumerate(frames):
        where = f"{name} frame {index + 1} of {len(frames)}"  # 1-based: read by people
        if not isinstance(frame, dict) or not isinstance(frame.get("people"), list):
            found = type(frame).__name__ if not isinstance(frame, dict) else f"keys {_key_list(frame)}"
            raise ValueError(f"{where}: expected a dict with a 'people' list, got {found}")
        if not frame["people"]:
            raise ValueError(f"{where} has no people: the pose estimator found nobody in that image")
        if len(frame["people"]) > MAX_PEOPLE_PER_FRAME:
            raise ValueError(f"{where} holds {len(frame['people'])} people; at most {MAX_PEOPLE_PER_FRAME} per frame are read")
        width, height = _canvas(frame, canvas_size, where)
        people = [
            _apply_threshold(_person_joints(p, f"{where}, person {i + 1} of {len(frame['people'])}"), threshold)
            for i, p in enumerate(frame["people"])
        ]
        unusable = [_drop_unusable_joints(joints) for joints in people]
        scale_to_px = is_normalized(people, width, height) if normalized is None else normalized
        frame_poses = []
        for joints in people:
            if scale_to_px:
                joints[:, :2] *= (width, height)
            frame_poses.append(Pose(joints, width, height))
        poses.append(_select_person(frame_poses, person_index, threshold, where, unusable))
    return poses


def _key_list(frame: dict, count: int = 6, chars: int = 24) -> str:
    """A few of a dict's keys, each cut short, for an error message."""
    keys = [repr(k[:chars]) for k in sorted(map(str, frame))[:count]]
    return "[" + ", ".join(keys) + (", ...]" if len(frame) > count else "]")


def pose_keypoint_from_poses(
    poses: Sequence[Pose], normalized: bool = False, keep_confidence: bool = False
) -> list[dict]:
    """ComfyUI ``POSE_KEYPOINT`` (list of frame dicts, one person each) from poses.

    Coordinates are pixels by default (as DWPose writes them), or divided by the canvas size when
    ``normalized``. Missing joints are written ``0, 0, 0``. Present joints get confidence 1.0 unless
    ``keep_confidence``: comfyui_controlnet_aux's own readers drop any joint whose confidence is < 1.
    """
    frames = []
    for pose in poses:
        keypoints = pose.keypoints.astype(np.float64)
        present = pose.present
        if normalized:
            keypoints[:, :2] /= (pose.width, pose.height)
        if not keep_confidence:
            keypoints[present, 2] = 1.0
        keypoints[~present] = 0.0
        person = {
            "pose_keypoints_2d": [float(v) for v in keypoints.reshape(-1)],
            "face_keypoints_2d": None,
            "hand_left_keypoints_2d": None,
            "hand_right_keypoints_2d": None,
        }
        frames.append({"people": [person], "canvas_width": pose.width, "canvas_height": pose.height})
    return frames


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
    pose = resize_canvas(pose, DEEPFASHION_WIDTH, DEEPFASHION_HEIGHT)
    xy = pose_to_array(pose).astype(np.float64)
    xy[pose.present, 0] += x_offset_px
    np.savetxt(path, xy, fmt="%.3f")


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
    rows = ["name:keypoints_y:keypoints_x"] + [deepfashion_csv_row(n, p) for n, p in named_poses.items()]
    Path(path).write_text("\n".join(rows) + "\n")


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
    from frames of several, and the confidence below which a joint is missing."""

    canvas_size: tuple[int, int] | None = None
    person_index: int | str = 0
    threshold: float = 0.0


@dataclass(frozen=True)
class PoseFormat:
    """One pose file format: the file-name ending it is known by, what it holds (Load Pose lists it),
    ``read(data, path, request) -> poses`` (one per frame) and ``write(path, poses, normalized)``."""

    suffix: str
    description: str
    read: Callable[[bytes, Path, ReadRequest], list[Pose]]
    write: Callable[[Path, Sequence[Pose], bool], None]


def _read_pose_keypoint_json(data: bytes, path: Path, request: ReadRequest) -> list[Pose]:
    return poses_from_pose_keypoint(parse_pose_json(data, str(path)), request.person_index, request.threshold,
                                    canvas_size=request.canvas_size, name=str(path))


def _write_pose_keypoint_json(path: Path, poses: Sequence[Pose], normalized: bool) -> None:
    path.write_text(json.dumps(pose_keypoint_from_poses(poses, normalized)))


def _read_coco_json(data: bytes, path: Path, request: ReadRequest) -> list[Pose]:
    frames = _coco_frames(parse_pose_json(data, str(path), "expected a COCO keypoints dict"), path)
    return poses_from_pose_keypoint(frames, request.person_index, request.threshold, normalized=False,
                                    canvas_size=request.canvas_size, name=str(path))


def _write_coco_json(path: Path, poses: Sequence[Pose], normalized: bool) -> None:
    path.write_text(json.dumps(coco_keypoints_from_poses(poses)))  # COCO keypoints are pixels, always


def _read_pidm_txt(data: bytes, path: Path, request: ReadRequest) -> list[Pose]:
    return [_pidm_txt_pose(io.BytesIO(data), path)]


def _write_pidm_txt(path: Path, poses: Sequence[Pose], normalized: bool) -> None:
    if len(poses) != 1:
        raise ValueError(f"{path}: a PIDM .txt file holds one pose, got {len(poses)}")
    save_pidm_txt(path, poses[0])


def _read_deepfashion_csv(data: bytes, path: Path, request: ReadRequest) -> list[Pose]:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"{path} is not a text file; expected GFLA rows 'name: [y, ...]: [x, ...]'") from None
    return list(_deepfashion_poses(text, path, MAX_FRAMES).values())


def _write_deepfashion_csv(path: Path, poses: Sequence[Pose], normalized: bool) -> None:
    write_deepfashion_csv(path, {f"{path.stem}_{i:05d}": pose for i, pose in enumerate(poses)})


def _read_npy(data: bytes, path: Path, request: ReadRequest) -> list[Pose]:
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
    return [pose_from_array(a, width, height, request.threshold, name=f"{path} frame {i + 1} of {len(array)}")
            for i, a in enumerate(array)]


def _write_npy(path: Path, poses: Sequence[Pose], normalized: bool) -> None:
    np.save(path, np.stack([pose.keypoints for pose in poses]))


POSE_FORMATS = (
    PoseFormat(".json", "POSE_KEYPOINT / OpenPose JSON", _read_pose_keypoint_json, _write_pose_keypoint_json),
    PoseFormat(".coco.json", "COCO keypoints (17 joints, one frame per image)", _read_coco_json, _write_coco_json),
    PoseFormat(".txt", "the official PIDM keypoints (one pose, 176x256)", _read_pidm_txt, _write_pidm_txt),
    PoseFormat(".csv", "DeepFashion (GFLA) annotations (one pose per row, 176x256)", _read_deepfashion_csv,
               _write_deepfashion_csv),
    PoseFormat(".npy", "numpy [frames, 18, 2|3] in pixels (needs a canvas size)", _read_npy, _write_npy),
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
    """Poses (one per frame) from a file, by its name's ending (:data:`POSE_FORMATS`).

    ``.json``: POSE_KEYPOINT list or one OpenPose JSON dict (``canvas_size`` when it has no canvas
    fields); ``.coco.json``: COCO keypoints, one frame per image; ``.txt``: official PIDM keypoints
    (176×256 canvas); ``.csv``: GFLA DeepFashion annotations, every row in file order (176×256);
    ``.npy``: ``[18, 2|3]`` or ``[frames, 18, 2|3]`` in pixels, ``canvas_size`` required.

    Files are untrusted: a file over MAX_POSE_FILE_BYTES (16 MiB), JSON nested over MAX_JSON_DEPTH, more
    than MAX_FRAMES frames, or a .npy header whose shape the file's bytes cannot hold is a ValueError,
    raised before anything large is allocated. The caller decides which folder a file may come from.
    """
    path = Path(path)
    kind = pose_format(path)
    if canvas_size is not None:
        canvas_size = (canvas_side(canvas_size[0], "canvas width"), canvas_side(canvas_size[1], "canvas height"))
    data = read_bounded(path, MAX_POSE_FILE_BYTES, f"pose file {path}")
    return kind.read(data, path, ReadRequest(canvas_size, person_index, threshold))


def save_pose_file(path: str | Path, poses: Sequence[Pose], normalized: bool = False) -> None:
    """Write poses by the name's ending: ``.json`` POSE_KEYPOINT list (pixels unless ``normalized``),
    ``.coco.json`` COCO keypoints, ``.txt`` official PIDM layout (exactly one pose), ``.csv`` GFLA rows
    named ``<stem>_<index>``, ``.npy`` float32 ``[frames, 18, 3]`` (confidence 0 = missing; the canvas
    size is not stored)."""
    path = Path(path)
    kind = pose_format(path)
    if not poses:
        raise ValueError(f"{path}: no poses to write")
    kind.write(path, poses, normalized)


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
