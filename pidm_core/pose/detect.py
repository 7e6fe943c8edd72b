"""Pose from a photo: OpenPose (controlnet_aux, multi-person) or MediaPipe Pose (one person), offline.

Backends:

* ``"openpose"``: ``controlnet_aux.open_pose.Body`` with ``body_pose_model.pth`` found in a directory
  the caller names (ComfyUI's ``models/openpose``, comfyui_controlnet_aux's
  ``ckpts/lllyasviel/Annotators``...). Nothing is downloaded unless ``allow_download=True`` (then via
  huggingface_hub from ``lllyasviel/Annotators``). Finds every person. Install:
  ``pip install controlnet-aux==0.0.10``.
* ``"mediapipe"``: MediaPipe Pose (BlazePose full) through the Tasks API of the official package, with
  the model bundle the pack ships, or the legacy ``solutions`` API of older builds (:mod:`.mediapipe_pose`).
  Finds at most one person. Install: ``pip install mediapipe`` (install.py does it without a second cv2).
* ``"auto"``: openpose when controlnet_aux is installed and its weights are found locally, else
  mediapipe when it can run. A backend that cannot run is skipped with a log line saying why; when
  none can, :class:`PoseDetectorUnavailableError` says in one sentence what to install.

Both packages are imported lazily, inside the functions that use them, and no model outlives a call.

Output joints: COCO-18 in pixels of the input image; a joint is present when the detector's score
(OpenPose heat-map peak, MediaPipe visibility) is >= ``threshold`` and it lies on the image (a point
guessed beyond the border is not something the photo shows). A person counts as found when at least
one limb has both ends present; otherwise :class:`NoPersonFoundError` says which image and what to
try, never an empty or NaN pose.

Person masks (:func:`detect_people`, :func:`person_mask`): MediaPipe's segmentation of the chosen person,
float32 [H, W] in [0, 1] with a soft edge, cut down to the regions that touch that person's skeleton.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

import cv2
import numpy as np

from ..pixels import pixel_scale, warn_0_255
from . import mediapipe_pose
from .formats import coco18_from_mediapipe33
from .keypoints import LIMBS, NUM_JOINTS, Pose

LOG = logging.getLogger(__name__)

BACKENDS = ("auto", "openpose", "mediapipe")
OPENPOSE_WEIGHTS = "body_pose_model.pth"
OPENPOSE_REPO = "lllyasviel/Annotators"
# Where the file sits below the usual roots (a models/openpose folder, comfyui_controlnet_aux's ckpts).
OPENPOSE_SUBDIRS = ("", "lllyasviel/Annotators", "ckpts/lllyasviel/Annotators", "annotator/ckpts", "openpose")
MEDIAPIPE_PIP = mediapipe_pose.INSTALL
OPENPOSE_PIP = "pip install controlnet-aux"


def _suggestions(backend: str) -> str:
    other = "mediapipe" if backend == "openpose" else "openpose"
    return (
        f"try backend='{other}', a larger or clearer photo with the whole person in view, "
        "or pass a POSE_KEYPOINT from a pose estimator instead"
    )


# A detector maps an RGB uint8 image [H, W, 3] to raw people, each [18, 3] (x_px, y_px, score).
Detector = Callable[[np.ndarray], list]


class NoPersonFoundError(ValueError):
    """No usable person in an image (or not the requested one); the message names the image."""


class PoseDetectorUnavailableError(RuntimeError):
    """The requested backend cannot run here: package not installed or weights not found."""


# --------------------------------------------------------------------------------------------------
# input images


def to_rgb_uint8(image: np.ndarray, where: str = "image") -> np.ndarray:
    """RGB uint8 ``[H, W, 3]`` from ``[H, W]`` / ``[H, W, 1]`` grey, ``[H, W, 3]`` RGB or ``[H, W, 4]``
    RGBA (alpha dropped), either uint8 or float in [0, 1] (ComfyUI IMAGE values)."""
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (3, 4)) or min(image.shape[:2]) < 1:
        raise ValueError(f"{where}: expected [H, W], [H, W, 3] or [H, W, 4], got shape {image.shape}")
    if image.dtype != np.uint8:
        # the pack's IMAGE rule (pixels.pixel_scale): 0-255 is decided by the whole image, never by one value;
        # NaN/inf and values above 255 are errors; the rest is clipped
        integer = np.issubdtype(image.dtype, np.integer)
        if not (np.issubdtype(image.dtype, np.floating) or integer):
            raise ValueError(f"{where}: expected uint8 or float in [0, 1], got dtype {image.dtype}")
        if not np.isfinite(image).all():
            raise ValueError(f"{where}: pixel values must be finite numbers (floats in [0, 1] or 0-255)")
        if pixel_scale(image, where, integer=integer) == 255:
            warn_0_255(where, str(image.dtype), float(image.max()))
            image = image / 255
        image = np.round(np.clip(image, 0, 1) * 255).astype(np.uint8)
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_RGBA2RGB)
    return np.ascontiguousarray(image)


# --------------------------------------------------------------------------------------------------
# backends


def find_openpose_weights(directories: Sequence[str | Path]) -> Path | None:
    """First ``body_pose_model.pth`` in the given directories (or their usual sub-folders), else None.
    Looks only where it is told; never searches the disk or the network."""
    for directory in directories:
        for sub in OPENPOSE_SUBDIRS:
            candidate = Path(directory) / sub / OPENPOSE_WEIGHTS
            if candidate.is_file():
                return candidate
    return None


def _package_installed(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


def why_unavailable(backend: str, openpose_dirs: Sequence[str | Path] = ()) -> str | None:
    """None when ``backend`` ("openpose" or "mediapipe") can run here without a download, else why not."""
    if backend == "mediapipe":
        return mediapipe_pose.why_unavailable()
    if not _package_installed("controlnet_aux"):
        return f"controlnet_aux is not installed ({OPENPOSE_PIP})"
    if find_openpose_weights(openpose_dirs) is None:
        return f"no {OPENPOSE_WEIGHTS} in {[str(d) for d in openpose_dirs]}"
    return None


def resolve_backend(backend: str, openpose_dirs: Sequence[str | Path] = ()) -> str:
    """``"openpose"`` or ``"mediapipe"`` for a requested backend (``"auto"`` decided here: each backend
    that cannot run is skipped with a log line saying why)."""
    if backend not in BACKENDS:
        raise ValueError(f"pose backend must be one of {BACKENDS}, got {backend!r}")
    if backend != "auto":
        return backend
    reasons = {}
    for candidate in ("openpose", "mediapipe"):
        reasons[candidate] = why_unavailable(candidate, openpose_dirs)
        if reasons[candidate] is None:
            return candidate
        LOG.info("pose backend auto: skipping %s: %s", candidate, reasons[candidate])
    raise PoseDetectorUnavailableError(
        f"no pose detector can run here (openpose: {reasons['openpose']}; mediapipe: {reasons['mediapipe']}); "
        f"install MediaPipe with `{MEDIAPIPE_PIP}`, or put OpenPose's {OPENPOSE_WEIGHTS} in ComfyUI's "
        "models/openpose folder"
    )


def _openpose_weights_path(openpose_dirs: Sequence[str | Path], allow_download: bool) -> Path:
    found = find_openpose_weights(openpose_dirs)
    if found is not None:
        return found
    searched = [str(d) for d in openpose_dirs] or "(no folders given)"
    if not allow_download:
        raise PoseDetectorUnavailableError(
            f"OpenPose weights {OPENPOSE_WEIGHTS} not found in {searched}; put the file in one of them "
            "(comfyui_controlnet_aux keeps it in ckpts/lllyasviel/Annotators/), use backend='mediapipe', "
            "or allow the download from the Hugging Face hub (allow_download=True)"
        )
    try:
        from huggingface_hub import hf_hub_download

        local_dir = str(openpose_dirs[0]) if openpose_dirs else None
        return Path(hf_hub_download(OPENPOSE_REPO, OPENPOSE_WEIGHTS, local_dir=local_dir))
    except Exception as error:  # network, proxy, auth or disk errors all end the same way for the user
        raise PoseDetectorUnavailableError(
            f"could not download {OPENPOSE_WEIGHTS} from the Hugging Face hub ({OPENPOSE_REPO}): {error}; "
            f"download it by hand into one of {searched} or use backend='mediapipe'"
        ) from error


def _load_openpose_body(weights: Path, device: object | None):
    """controlnet_aux's OpenPose body network (imported here: the package is optional and slow to import)."""
    try:
        from controlnet_aux.open_pose import Body
    except ImportError as error:
        raise PoseDetectorUnavailableError(f"the openpose backend needs controlnet_aux: {OPENPOSE_PIP}") from error
    body = Body(str(weights))
    return body.to(device) if device is not None else body


def _openpose_people(body, image_rgb: np.ndarray) -> list[np.ndarray]:
    """Every person Body finds, as raw ``[18, 3]`` (x_px, y_px, heat-map score); score 0 = missing."""
    import torch

    with torch.no_grad():
        # Body was written for cv2.imread images: BGR.
        candidate, subset = body(np.ascontiguousarray(image_rgb[:, :, ::-1]))
    people = []
    for row in np.asarray(subset).reshape(-1, 20):
        indices = row[:NUM_JOINTS].astype(int)
        joints = np.zeros((NUM_JOINTS, 3), dtype=np.float64)
        found = indices >= 0
        joints[found] = np.asarray(candidate)[indices[found], :3]
        people.append(joints)
    return people


class _MediaPipeDetector:
    """MediaPipe Pose as a Detector (the one person it finds, or none, raw ``[18, 3]`` x_px, y_px,
    visibility) that keeps the segmentation mask of its last call (``last_mask``)."""

    def __init__(self, run_pose):
        self.run_pose, self.last_mask = run_pose, None

    def __call__(self, image_rgb: np.ndarray) -> list[np.ndarray]:
        landmarks, self.last_mask = self.run_pose(image_rgb)
        return [] if landmarks is None else [coco18_from_mediapipe33(landmarks)]


@contextlib.contextmanager
def open_detector(
    backend: str,
    openpose_dirs: Sequence[str | Path] = (),
    allow_download: bool = False,
    device: object | None = None,
    segmentation: bool = False,
) -> Iterator[Detector]:
    """A detector for one batch: ``with open_detector("mediapipe") as detect: people = detect(rgb)``.
    ``backend`` must already be resolved (``"openpose"`` or ``"mediapipe"``). ``segmentation``: the
    mediapipe detector also keeps the person mask of each call in ``detect.last_mask``."""
    if backend == "openpose":
        body = _load_openpose_body(_openpose_weights_path(openpose_dirs, allow_download), device)
        yield lambda image: _openpose_people(body, image)
    elif backend == "mediapipe":
        with _mediapipe_opened(lambda: mediapipe_pose.open_pose(segmentation)) as run_pose:
            yield _MediaPipeDetector(run_pose)
    else:
        raise ValueError(f"open_detector needs 'openpose' or 'mediapipe', got {backend!r}")


@contextlib.contextmanager
def _mediapipe_opened(open_model: Callable[[], contextlib.AbstractContextManager]):
    """Enters a MediaPipe model, turning "cannot run here" into PoseDetectorUnavailableError."""
    try:
        opened = open_model()
    except ImportError as error:
        raise PoseDetectorUnavailableError(f"the mediapipe backend cannot run: {error}") from error
    with opened as model:
        yield model


# --------------------------------------------------------------------------------------------------
# people → one pose per image


def _keep_visible(joints: np.ndarray, width: int, height: int, threshold: float) -> Pose:
    """Pose from raw detector joints: below-threshold, off-image or non-finite joints become missing."""
    joints = np.array(joints, dtype=np.float64)
    x, y, score = joints.T
    with np.errstate(invalid="ignore"):
        keep = (score > 0) & (score >= threshold) & (x >= -0.5) & (x <= width - 0.5) & (y >= -0.5) & (y <= height - 0.5)
    joints[~keep] = 0.0
    return Pose(joints, width, height)


def has_limb(pose: Pose) -> bool:
    """True when at least one of the 17 limbs has both ends present."""
    a, b = np.array(LIMBS).T
    return bool((pose.present[a] & pose.present[b]).any())


def choose_person(people: Sequence[Pose], person: int | str, where: str, backend: str) -> Pose:
    """``person="largest"`` (largest bounding box of present joints) or an index into the people
    ordered left to right (by the centre of their bounding boxes). People without a complete limb
    are ignored."""
    usable = [p for p in people if has_limb(p)]
    if not usable:
        found = (
            f"{backend} found nobody"
            if not people
            else f"{backend} found {len(people)} candidate(s) but no complete limb with score >= threshold"
        )
        raise NoPersonFoundError(f"no person found in {where}: {found}; {_suggestions(backend)}")
    if person == "largest":
        return max(usable, key=lambda p: p.bbox_area())
    if isinstance(person, bool) or not isinstance(person, (int, np.integer)):
        raise ValueError(f"person must be 'largest' or a 0-based index, got {person!r}")
    ordered = sorted(usable, key=lambda p: (p.bbox()[0] + p.bbox()[2]) / 2)
    if not 0 <= person < len(ordered):
        note = " (MediaPipe finds one person at most; use the openpose backend for more)" if backend == "mediapipe" else ""
        raise NoPersonFoundError(
            f"person {person} requested in {where}, but {backend} found {len(ordered)} "
            f"(0-based, left to right){note}; pick another person index or 'largest'"
        )
    return ordered[person]


def detect_poses(
    images: Sequence[np.ndarray] | np.ndarray,
    backend: str = "auto",
    person: int | str = "largest",
    threshold: float = 0.3,
    openpose_dirs: Sequence[str | Path] = (),
    allow_download: bool = False,
    device: object | None = None,
) -> list[Pose]:
    """One COCO-18 :class:`Pose` per image, in that image's pixels.

    ``images``: a list of images or a batch ``[B, H, W(, C)]``, each accepted by :func:`to_rgb_uint8`.
    ``backend``: ``"auto"`` | ``"openpose"`` | ``"mediapipe"`` (see module doc). ``person``:
    ``"largest"`` or a 0-based index, left to right. ``threshold``: minimum detector score of a joint
    (0..1). ``openpose_dirs``: folders that may hold ``body_pose_model.pth``. ``allow_download``: let
    the openpose backend fetch missing weights from the Hugging Face hub. ``device``: torch device for
    the OpenPose network (default CPU).

    Raises :class:`NoPersonFoundError` (a ValueError) naming the image ("image 2 of 4", 1-based) when
    nobody usable is found, :class:`PoseDetectorUnavailableError` when the backend cannot run.
    """
    detections = detect_people(images, backend, person, threshold, openpose_dirs, allow_download, device, masks=False)
    return [d.pose for d in detections]


@dataclass(frozen=True)
class Detection:
    """The chosen person of one image: pose, and person mask float32 [H, W] in [0, 1] (None when none
    could be made: MediaPipe not installed)."""

    pose: Pose
    mask: np.ndarray | None


def detect_people(
    images: Sequence[np.ndarray] | np.ndarray,
    backend: str = "auto",
    person: int | str = "largest",
    threshold: float = 0.3,
    openpose_dirs: Sequence[str | Path] = (),
    allow_download: bool = False,
    device: object | None = None,
    masks: bool = True,
) -> list[Detection]:
    """:func:`detect_poses` plus each chosen person's mask (``masks=True``).

    The mask: with the mediapipe backend, the segmentation mask of the same MediaPipe call
    (``enable_segmentation=True``; its model ships in the wheel); with openpose, MediaPipe run on a crop
    around the chosen person (:func:`person_mask`). Either way only the parts of the mask that touch the
    chosen person's skeleton are kept, so another person beside them is not in it.
    """
    if isinstance(images, np.ndarray) and images.ndim != 4:
        raise ValueError(f"detect_poses: pass a list of images or a batch [B, H, W, C], got an array of shape {images.shape}")
    images = list(images)
    if not images:
        raise ValueError("detect_poses: no images given")
    count = len(images)
    rgb_images = [to_rgb_uint8(image, f"image {i + 1} of {count}") for i, image in enumerate(images)]
    name = resolve_backend(backend, openpose_dirs)
    poses, same_call_masks = [], []
    opened = open_detector(name, openpose_dirs, allow_download, device, True) if masks and name == "mediapipe" else (
        open_detector(name, openpose_dirs, allow_download, device))
    with opened as detect:
        for index, rgb in enumerate(rgb_images):
            height, width = rgb.shape[:2]
            people = [_keep_visible(joints, width, height, threshold) for joints in detect(rgb)]
            poses.append(choose_person(people, person, f"image {index + 1} of {count}", name))
            same_call_masks.append(getattr(detect, "last_mask", None) if masks else None)
    if not masks:
        return [Detection(pose, None) for pose in poses]
    out = []
    for rgb, pose, mask in zip(rgb_images, poses, same_call_masks):
        if mask is not None and mask.shape == rgb.shape[:2]:
            out.append(Detection(pose, isolate_person(mask, pose)))
        else:
            out.append(Detection(pose, None))
    missing = [i for i, d in enumerate(out) if d.mask is None]
    if missing:
        if (reason := mediapipe_pose.why_unavailable()) is not None:
            LOG.warning("person masks need MediaPipe, left out: %s", reason)
        else:
            with open_segmenter() as segment:
                for i in missing:
                    out[i] = Detection(out[i].pose, segment(rgb_images[i], out[i].pose))
    return out


# --------------------------------------------------------------------------------------------------
# person masks

MASK_CROP_MARGIN = 0.3  # a crop for segmentation reaches this share of the skeleton's height past its box
MIN_MASK_CROP_PX = 32


def isolate_person(mask: np.ndarray, pose: Pose) -> np.ndarray:
    """The parts of a (soft) mask that touch the person's skeleton: the connected regions of mask ≥ 0.5
    under a joint or a limb of ``pose``, slightly grown so the soft edge stays. Another person who does
    not touch this one is dropped; a mask that touches no joint at all is returned as it is."""
    mask = np.clip(np.asarray(mask, dtype=np.float32), 0, 1)
    count, labels = cv2.connectedComponents((mask >= 0.5).astype(np.uint8), connectivity=8)
    if count <= 1:
        return mask
    skeleton = np.zeros(mask.shape, np.uint8)
    xy = np.round(pose.xy).astype(np.int32)
    for a, b in LIMBS:
        if pose.present[a] and pose.present[b]:
            cv2.line(skeleton, tuple(int(v) for v in xy[a]), tuple(int(v) for v in xy[b]), 1, 1)
    for i in np.nonzero(pose.present)[0]:
        cv2.circle(skeleton, tuple(int(v) for v in xy[i]), 1, 1, -1)
    touched = np.unique(labels[(skeleton > 0) & (labels > 0)])
    if len(touched) == 0:
        return mask
    keep = np.isin(labels, touched).astype(np.uint8)
    grow = max(3, int(round(0.01 * max(mask.shape))) | 1)
    keep = cv2.dilate(keep, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (grow, grow)))
    return mask * keep


def _mask_crop_box(pose: Pose, width: int, height: int) -> tuple[int, int, int, int]:
    x0, y0, x1, y1 = pose.bbox()
    margin = max(MIN_MASK_CROP_PX, MASK_CROP_MARGIN * max(y1 - y0, x1 - x0))
    return (max(0, int(x0 - margin)), max(0, int(y0 - margin)),
            min(width, int(x1 + margin) + 1), min(height, int(y1 + margin) + 1))


@contextlib.contextmanager
def open_segmenter() -> Iterator[Callable[[np.ndarray, Pose], np.ndarray]]:
    """``with open_segmenter() as segment: mask = segment(rgb, pose)``: the mask of the person of
    ``pose`` (float32 [H, W] in [0, 1]), from MediaPipe Pose (with segmentation) run on a crop around
    them; where it finds nobody there, MediaPipe's selfie segmentation of the crop."""
    with _mediapipe_opened(lambda: mediapipe_pose.open_pose(segmentation=True)) as run_pose, \
            _mediapipe_opened(mediapipe_pose.open_selfie) as selfie:

        def segment(image_rgb: np.ndarray, pose: Pose) -> np.ndarray:
            height, width = image_rgb.shape[:2]
            x0, y0, x1, y1 = _mask_crop_box(pose, width, height)
            crop = np.ascontiguousarray(image_rgb[y0:y1, x0:x1])
            _landmarks, crop_mask = run_pose(crop)
            if crop_mask is None:
                crop_mask = selfie(crop)
            mask = np.zeros((height, width), np.float32)
            mask[y0:y1, x0:x1] = crop_mask
            return isolate_person(mask, pose)

        yield segment


def person_mask(image: np.ndarray, pose: Pose) -> np.ndarray:
    """The mask of the person of ``pose`` in ``image`` (see :func:`open_segmenter`)."""
    rgb = to_rgb_uint8(image)
    if (pose.width, pose.height) != (rgb.shape[1], rgb.shape[0]):
        raise ValueError(f"the pose is on a {pose.width}x{pose.height} canvas but the image is "
                         f"{rgb.shape[1]}x{rgb.shape[0]}: give the pose detected on this image")
    if not pose.present.any():
        raise ValueError("the pose has no joints: there is no person to cut out")
    with open_segmenter() as segment:
        return segment(rgb, pose)
