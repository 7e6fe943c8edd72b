"""Poses edited by hand in the web UI: the JSON that the Edit Pose node keeps in its workflow widget.

The browser editor (``js/pose_editor.js``) writes the whole edited POSE_KEYPOINT list as JSON text
into a widget, so a saved or shared workflow carries the pose itself. This module reads that text
back: an empty widget means "no edit, pass the input through"; anything else must be a valid
POSE_KEYPOINT, and a broken one is an error that names the widget rather than a silent fallback.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from . import formats


def parse_edited_pose(text: str | None, widget: str = "edited_pose") -> list[dict] | None:
    """The POSE_KEYPOINT list held by an editor widget, or None when the widget is empty.

    ``text``: JSON of a POSE_KEYPOINT list (or of one frame dict, taken as a list of one). Every
    frame is checked the way the pose nodes read it (people, 18 or 25 joints, canvas size, at least
    one present joint). Raises ValueError naming ``widget`` for text that is not JSON or not a pose.
    """
    if text is None or not str(text).strip():
        return None
    # Bounded like a pose file: at most 16 MiB of text, nested at most 16 deep.
    data = formats.parse_pose_json(str(text), f"{widget}: the edited pose",
                                   "press Reset in the pose editor, or paste a POSE_KEYPOINT list")
    frames = [data] if isinstance(data, dict) else data
    # Reading every frame is the check: it raises ValueError("<widget> frame 2 of 3: ...").
    formats.poses_from_pose_keypoint(frames, "largest", name=widget)
    return frames


def choose_pose(edited_text: str | None, input_pose: Any, widget: str = "edited_pose") -> list[dict]:
    """What the Edit Pose node outputs: the edited pose when its widget holds one, else the input."""
    edited = parse_edited_pose(edited_text, widget)
    if edited is not None:
        return edited
    if input_pose is None:
        raise ValueError(
            f"Edit Pose has no pose: connect a POSE_KEYPOINT to its 'pose' input, or press 'New' in the "
            f"editor to start from a standing figure ({widget} is empty)"
        )
    return input_pose


UI_MAX_DEPTH = 32  # deeper values are dropped from what the browser is sent


def jsonable(data: Any, _depth: int = 0) -> Any:
    """A deep copy of ``data`` made of strict JSON only, as the browser needs: dicts, lists, strings,
    booleans, None and finite numbers. numpy and torch values become plain Python; NaN, infinities,
    unknown objects and anything nested deeper than UI_MAX_DEPTH become None, since one NaN in a
    node's ui makes the server's /history unreadable to ``JSON.parse`` for every client."""
    if data is None or isinstance(data, (bool, str)):
        return data
    if isinstance(data, np.bool_):
        return bool(data)
    if isinstance(data, (int, np.integer)):
        return int(data) if abs(int(data)) <= 1 << 63 else None  # a 5000-digit int cannot even be printed
    if isinstance(data, (float, np.floating)):
        return float(data) if math.isfinite(data) else None
    if _depth >= UI_MAX_DEPTH:
        return None
    if isinstance(data, dict):
        return {str(key): jsonable(value, _depth + 1) for key, value in data.items()}
    if isinstance(data, (list, tuple)):
        return [jsonable(value, _depth + 1) for value in data]
    if hasattr(data, "tolist"):  # numpy arrays, torch tensors
        return jsonable(data.tolist(), _depth + 1)
    return None


def _finite(value: Any) -> int | float | None:
    """A finite JSON number (ints stay ints), or None for anything else."""
    if isinstance(value, (bool, np.bool_)):
        return None
    if isinstance(value, (int, np.integer)):
        return int(value) if abs(int(value)) <= 1 << 53 else None
    if isinstance(value, (float, np.floating)) and math.isfinite(value):
        return float(value)
    return None


def _preview_keypoints(flat: Any) -> list[float] | None:
    """A person's flat keypoint list for the browser: at most 75 numbers, and a joint with any
    non-finite or non-numeric value becomes (0, 0, 0), missing, so it is never drawn at the origin."""
    if isinstance(flat, np.ndarray):
        flat = flat.reshape(-1)[: formats.MAX_KEYPOINT_NUMBERS + 1].tolist()
    if not isinstance(flat, (list, tuple)) or len(flat) > formats.MAX_KEYPOINT_NUMBERS or len(flat) % 3:
        return None
    values = []
    for start in range(0, len(flat), 3):
        joint = [_finite(v) for v in flat[start:start + 3]]
        values.extend([0.0, 0.0, 0.0] if None in joint else joint)
    return values


def preview_frames(frames: Any, count: int) -> list[dict]:
    """The first ``count`` frames of a POSE_KEYPOINT reduced to what the browser draws and edits
    (``people[].pose_keypoints_2d`` and the canvas), as strict, bounded JSON whatever the input holds."""
    if isinstance(frames, dict):
        frames = [frames]
    if not isinstance(frames, (list, tuple)):
        return []
    previews = []
    for frame in list(frames[:count]):
        frame = frame if isinstance(frame, dict) else {}
        people = frame.get("people") if isinstance(frame.get("people"), (list, tuple)) else []
        previews.append({
            "people": [
                {"pose_keypoints_2d": _preview_keypoints(person.get("pose_keypoints_2d")) if isinstance(person, dict) else None,
                 "face_keypoints_2d": None, "hand_left_keypoints_2d": None, "hand_right_keypoints_2d": None}
                for person in list(people[: formats.MAX_PEOPLE_PER_FRAME])
            ],
            "canvas_width": _finite(frame.get("canvas_width")),
            "canvas_height": _finite(frame.get("canvas_height")),
        })
    return previews
