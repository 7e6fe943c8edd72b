"""The POSE_KEYPOINT socket format (comfyui_controlnet_aux) and OpenPose JSON, to and from poses.

A POSE_KEYPOINT is a list of frames ``{"people": [{"pose_keypoints_2d": [x, y, c, ...]}],
"canvas_width": W, "canvas_height": H}``; coordinates are pixels or normalised to [0, 1]
(:func:`is_normalized` tells which). Every list is bounded before it is read (:mod:`.bounded`).
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence

import numpy as np

from .bounded import MAX_FRAMES, MAX_KEYPOINT_NUMBERS, MAX_PEOPLE_PER_FRAME
from .joint_sets import apply_threshold, coco18_from_body25
from .keypoints import NUM_JOINTS, Pose, canvas_side



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
    keep_empty: bool = False,
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
    without any joint above the threshold. With ``keep_empty``, a frame without people or whose
    chosen person has no joint gives a pose without joints instead (a video frame where nobody was
    found keeps its place in the sequence); it still needs its canvas.
    """
    frames = _frame_list(data, name)
    poses = []
    for index, frame in enumerate(frames):
        where = f"{name} frame {index + 1} of {len(frames)}"  # 1-based: read by people
        if not isinstance(frame, dict) or not isinstance(frame.get("people"), list):
            found = type(frame).__name__ if not isinstance(frame, dict) else f"keys {_key_list(frame)}"
            raise ValueError(f"{where}: expected a dict with a 'people' list, got {found}")
        if not frame["people"]:
            if keep_empty:
                poses.append(Pose(np.zeros((NUM_JOINTS, 3)), *_canvas(frame, canvas_size, where)))
                continue
            raise ValueError(f"{where} has no people: the pose estimator found nobody in that image")
        if len(frame["people"]) > MAX_PEOPLE_PER_FRAME:
            raise ValueError(f"{where} holds {len(frame['people'])} people; at most {MAX_PEOPLE_PER_FRAME} per frame are read")
        width, height = _canvas(frame, canvas_size, where)
        people = [
            apply_threshold(_person_joints(p, f"{where}, person {i + 1} of {len(frame['people'])}"), threshold)
            for i, p in enumerate(frame["people"])
        ]
        unusable = [_drop_unusable_joints(joints) for joints in people]
        scale_to_px = is_normalized(people, width, height) if normalized is None else normalized
        frame_poses = []
        for joints in people:
            if scale_to_px:
                joints[:, :2] *= (width, height)
            frame_poses.append(Pose(joints, width, height))
        if keep_empty and not any(pose.present.any() for pose in frame_poses):
            poses.append(frame_poses[0])  # nobody with a joint: an empty pose on the frame's canvas
            continue
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
