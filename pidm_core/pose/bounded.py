"""Limits for untrusted pose data, checked before anything large is allocated.

Pose files and the editor's JSON text arrive with requests, so each reader checks its input against
these limits first. Real pose files are kilobytes (a 1000-frame POSE_KEYPOINT is about 1 MB): every
limit is far above real use and far below what could hurt a server.
"""

from __future__ import annotations

import gc
import io
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from ..paths import size_text

MAX_POSE_FILE_BYTES = 16 << 20  # pose files and the editor's JSON text
MAX_JSON_DEPTH = 16             # a POSE_KEYPOINT nests 6 deep (frames, frame, people, person, keypoints, rows)
MAX_FRAMES = 10_000
MAX_PEOPLE_PER_FRAME = 100
MAX_KEYPOINT_NUMBERS = 25 * 3   # BODY_25 is the largest joint set read


def parse_pose_json(text: str | bytes, name: str,
                    hint: str = "expected a POSE_KEYPOINT list or an OpenPose JSON dict") -> Any:
    """JSON text of a pose (a file's bytes or the editor's widget), parsed within the limits: at most
    MAX_POSE_FILE_BYTES and MAX_JSON_DEPTH levels of nesting. ValueError naming ``name`` (and ending
    with ``hint``, what to do) otherwise."""
    size = len(text)  # characters: a lower bound of the bytes, enough to refuse without encoding
    if isinstance(text, str) and size <= MAX_POSE_FILE_BYTES:
        size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_POSE_FILE_BYTES:
        raise ValueError(f"{name} is {size_text(size)} of JSON; pose JSON is read up to {size_text(MAX_POSE_FILE_BYTES)}: "
                         f"split the sequence into several files")
    collecting = gc.isenabled()
    gc.disable()  # millions of tiny containers would trigger collection after collection (seconds)
    try:
        data = json.loads(text)
    except RecursionError:  # the C decoder stops at the interpreter's recursion limit; clean, but say it plainly
        data = None
        deep = True
    except json.JSONDecodeError as error:
        raise ValueError(f"{name} is not valid JSON ({error.msg} at line {error.lineno}, column {error.colno}); "
                         f"{hint}") from None
    except (ValueError, UnicodeDecodeError) as error:  # e.g. an integer of more than 4300 digits, bad UTF-8
        raise ValueError(f"{name} is not valid JSON ({type(error).__name__}); {hint}") from None
    else:
        deep = nesting_exceeds(data, MAX_JSON_DEPTH)
    finally:
        if collecting:
            gc.enable()
    if deep:
        raise ValueError(f"{name} nests lists or dicts more than {MAX_JSON_DEPTH} levels deep; a POSE_KEYPOINT needs "
                         f"6 (frames, frame, people, person, keypoints, rows): this is not a pose; {hint}")
    return data


def nesting_exceeds(data: Any, limit: int) -> bool:
    """Whether ``data`` nests lists/dicts more than ``limit`` deep. Level by level: no recursion to
    exhaust, and each container is visited once inside a comprehension (millions take well under a second)."""
    containers = (dict, list, tuple)
    level = [data] if isinstance(data, containers) else []
    for _depth in range(limit):
        level = [child for item in level for child in (item.values() if isinstance(item, dict) else item)
                 if isinstance(child, containers)]
        if not level:
            return False
    return True


def npy_header(data: bytes, path: Path) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype a .npy file declares, checked against the bytes it really holds, before any
    array is allocated (a 200-byte file can declare a shape of hundreds of GiB)."""
    handle = io.BytesIO(data)
    try:
        version = np.lib.format.read_magic(handle)
        if version == (1, 0):
            shape, _fortran, dtype = np.lib.format.read_array_header_1_0(handle)
        elif version == (2, 0):
            shape, _fortran, dtype = np.lib.format.read_array_header_2_0(handle)
        else:
            raise ValueError(f"format version {version}")
    except (ValueError, EOFError, SyntaxError, TypeError):
        raise ValueError(f"{path} is not a plain numpy keypoint array (its .npy header cannot be read); save "
                         f"keypoints with numpy.save as float numbers") from None
    if dtype.hasobject or dtype.fields is not None or dtype.kind not in "fiu":
        # a pickled (object) array could run code when loaded: never loaded
        raise ValueError(f"{path} is not a plain numpy keypoint array (dtype {dtype.str}, not numbers); save keypoints "
                         f"as float numbers")
    declared = math.prod(shape) * dtype.itemsize
    held = len(data) - handle.tell()
    if held < declared:
        raise ValueError(f"{path} declares an array of shape {tuple(shape)} ({size_text(declared)}) but holds only "
                         f"{size_text(held)} of data: the file is truncated or damaged")
    return tuple(shape), dtype
