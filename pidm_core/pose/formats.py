"""Pose formats in and out: POSE_KEYPOINT, OpenPose JSON, COCO keypoints JSON, PIDM .txt, DeepFashion .csv, numpy.

One import for callers; the code lives in three modules: :mod:`.joint_sets` (other skeletons to
COCO-18, raw arrays), :mod:`.keypoint_socket` (the POSE_KEYPOINT socket format) and :mod:`.files`
(pose files, one :class:`PoseFormat` per format in :data:`POSE_FORMATS`; a new format is one entry there).

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

# the limits are part of this module's interface
from .bounded import (
    MAX_FRAMES,
    MAX_JSON_DEPTH,
    MAX_KEYPOINT_NUMBERS,
    MAX_PEOPLE_PER_FRAME,
    MAX_POSE_FILE_BYTES,
    npy_header,
    parse_pose_json,
)
from .files import (
    DEEPFASHION_HEIGHT,
    DEEPFASHION_WIDTH,
    DEFAULT_FRAME_RATE,
    MAX_FRAME_RATE,
    PIDM_TXT_X_OFFSET,
    POSE_FILE_SUFFIXES,
    POSE_FORMATS,
    PoseFile,
    PoseFormat,
    ReadRequest,
    coco_keypoints_from_poses,
    deepfashion_csv_row,
    frame_rate_value,
    load_pidm_txt,
    load_pose_file,
    load_pose_sequence,
    natural_sort_key,
    pose_format,
    pose_keypoint_json,
    read_deepfashion_csv,
    read_pose_file,
    save_pidm_txt,
    save_pose_file,
    write_deepfashion_csv,
)
from .joint_sets import (
    BODY25_TO_COCO18,
    COCO17_SHOULDERS,
    COCO17_TO_COCO18,
    COCO17_VALUES,
    COCO18_TO_COCO17,
    MEDIAPIPE33_SHOULDERS,
    MEDIAPIPE33_TO_COCO18,
    apply_threshold,
    coco18_from_body25,
    coco18_from_coco17,
    coco18_from_mediapipe33,
    pose_from_array,
    pose_to_array,
)
from .keypoint_socket import (
    FLOAT32_MAX,
    is_normalized,
    pose_keypoint_from_poses,
    poses_from_pose_keypoint,
)

__all__ = [
    "BODY25_TO_COCO18", "COCO17_SHOULDERS", "COCO17_TO_COCO18", "COCO17_VALUES", "COCO18_TO_COCO17",
    "DEEPFASHION_HEIGHT", "DEEPFASHION_WIDTH", "DEFAULT_FRAME_RATE", "FLOAT32_MAX", "MAX_FRAMES",
    "MAX_FRAME_RATE", "MAX_JSON_DEPTH", "MAX_KEYPOINT_NUMBERS", "MAX_PEOPLE_PER_FRAME", "MAX_POSE_FILE_BYTES",
    "MEDIAPIPE33_SHOULDERS", "MEDIAPIPE33_TO_COCO18", "PIDM_TXT_X_OFFSET", "POSE_FILE_SUFFIXES", "POSE_FORMATS",
    "PoseFile", "PoseFormat", "ReadRequest", "apply_threshold", "coco18_from_body25", "coco18_from_coco17",
    "coco18_from_mediapipe33", "coco_keypoints_from_poses", "deepfashion_csv_row", "frame_rate_value",
    "is_normalized", "load_pidm_txt", "load_pose_file", "load_pose_sequence", "natural_sort_key", "npy_header",
    "parse_pose_json", "pose_format", "pose_from_array", "pose_keypoint_from_poses", "pose_keypoint_json",
    "pose_to_array", "poses_from_pose_keypoint", "read_deepfashion_csv", "read_pose_file", "save_pidm_txt",
    "save_pose_file", "write_deepfashion_csv",
]  # fmt: skip
