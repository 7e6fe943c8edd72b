"""Poses edited by hand in the web UI: the JSON that the Edit Pose node keeps in its workflow widget.

The browser editor (``js/pose_editor.js``) writes the whole edited POSE_KEYPOINT list as JSON text
into a widget, so a saved or shared workflow carries the pose itself. This module reads that text
back: an empty widget means "no edit, pass the input through"; anything else must be a valid
POSE_KEYPOINT, and a broken one is an error that names the widget rather than a silent fallback.
"""

from __future__ import annotations

import json
from typing import Any

from . import formats


def parse_edited_pose(text: str | None, widget: str = "edited_pose") -> list[dict] | None:
    """The POSE_KEYPOINT list held by an editor widget, or None when the widget is empty.

    ``text``: JSON of a POSE_KEYPOINT list (or of one frame dict, taken as a list of one). Every
    frame is checked the way the pose nodes read it (people, 18 or 25 joints, canvas size, at least
    one present joint). Raises ValueError naming ``widget`` for text that is not JSON or not a pose.
    """
    if text is None or not str(text).strip():
        return None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(
            f"{widget}: the edited pose is not valid JSON ({error.msg} at line {error.lineno}, column "
            f"{error.colno}); press Reset in the pose editor, or paste a POSE_KEYPOINT list"
        ) from error
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


def _builtin(value: Any) -> Any:
    # numpy scalars and arrays (other packs' POSE_KEYPOINT may hold them) -> plain Python.
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def jsonable(data: Any) -> Any:
    """A deep copy of ``data`` made of JSON types only, as the server's websocket needs."""
    return json.loads(json.dumps(data, default=_builtin))
