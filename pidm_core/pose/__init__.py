"""Poses for PIDM: COCO-18 keypoints, the official 20-channel pose map, file formats, detection from
photos, one person followed through a video, retargeting to the source person's proportions and
in-between poses for animation.

Plain numpy/cv2 (torch only inside the optional OpenPose detector); never imports comfy.
"""

from .detect import (
    BACKENDS,
    NoPersonFoundError,
    PoseDetectorUnavailableError,
    detect_poses,
    find_openpose_weights,
    open_detector,
    resolve_backend,
    to_rgb_uint8,
)
from .formats import (
    POSE_FILE_SUFFIXES,
    coco18_from_body25,
    coco18_from_coco17,
    coco18_from_mediapipe33,
    deepfashion_csv_row,
    is_normalized,
    load_pidm_txt,
    load_pose_file,
    load_pose_sequence,
    natural_sort_key,
    pose_from_array,
    pose_keypoint_from_poses,
    pose_to_array,
    poses_from_pose_keypoint,
    read_deepfashion_csv,
    save_pidm_txt,
    save_pose_file,
    write_deepfashion_csv,
)
from .geometry import fit_to_canvas, flip_horizontal, resize_canvas, scale_pose, translate_pose
from .interpolate import blend_poses, interpolate_poses, interpolate_sequence, resample_sequence
from .keypoints import (
    COLORS,
    FLIP_PERMUTATION,
    JOINT_NAMES,
    LIMBS,
    NUM_JOINTS,
    Pose,
    empty_pose,
    visible,
)
from .render import render_pose_map, render_skeleton_image
from .retarget import bone_lengths, overall_ratio, retarget_motion, retarget_pose, retarget_sequence
from .video import VideoPoses, poses_from_frames

__all__ = [
    "BACKENDS", "COLORS", "FLIP_PERMUTATION", "JOINT_NAMES", "LIMBS", "NUM_JOINTS", "POSE_FILE_SUFFIXES",
    "NoPersonFoundError", "Pose", "PoseDetectorUnavailableError", "VideoPoses",
    "blend_poses", "bone_lengths", "coco18_from_body25", "coco18_from_coco17", "coco18_from_mediapipe33",
    "deepfashion_csv_row", "detect_poses", "empty_pose", "find_openpose_weights", "fit_to_canvas",
    "flip_horizontal", "interpolate_poses", "interpolate_sequence", "is_normalized", "load_pidm_txt",
    "load_pose_file", "load_pose_sequence", "natural_sort_key", "open_detector", "overall_ratio", "pose_from_array",
    "pose_keypoint_from_poses", "pose_to_array", "poses_from_frames", "poses_from_pose_keypoint", "read_deepfashion_csv",
    "render_pose_map", "render_skeleton_image", "resample_sequence", "resize_canvas", "resolve_backend",
    "retarget_motion", "retarget_pose", "retarget_sequence", "save_pidm_txt", "save_pose_file", "scale_pose",
    "to_rgb_uint8", "translate_pose", "visible", "write_deepfashion_csv",
]  # fmt: skip
