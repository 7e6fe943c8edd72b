"""Procedural people in pose pairs: training data for the small embedded PIDM model.

PIDM learns to redraw the person of a source image in a target pose. Real pairs (DeepFashion) are
large and licensed, so the embedded model trains on procedural ones instead: :func:`make_pair` draws
one *identity* (body proportions, skin, hair, clothes with patterns, shoes and a low-frequency studio
background) and renders it in two *poses*. Everything follows from one integer seed through
``numpy.random.default_rng(seed)``; nothing touches a global random state. The random draws do not
depend on the canvas size, so ``make_pair(s, 64)`` and ``make_pair(s, 256)`` show the same scene.

Geometry. A figure is a 2.5-D puppet: joints are placed in a body frame (units: the standing figure
measures 1 from head top to sole), limbs are aimed by abduction/flexion angles, the body is turned
by a yaw angle (0 = facing the camera, ±90° = profile, 180° = back) and projected orthographically.
Depth decides the draw order (the far arm of a side view goes behind the torso). Body parts are
filled polygons (capsules for limbs, a tapered torso, ellipses for the head), clothes are textures
clipped to their part, and the whole figure is drawn at ``SUPERSAMPLE``× and shrunk with
``cv2.INTER_AREA``, which anti-aliases every edge.

Keypoints are COCO-18 ``(x_px, y_px, confidence)`` with (0, 0) at the centre of the top-left pixel
(the cv2 convention of :mod:`pidm_core.pose.keypoints`); every coordinate is the centre of the joint
as drawn. A joint is reported the way a detector would see it, confidence 1 or 0:

* the far shoulder and far hip of a side view (``|sin yaw| > SIDE_VIEW_SIN``) are missing;
* an elbow, wrist, knee or ankle covered by a part drawn over it that is not its own limb (the
  far leg behind the near one, a hand behind the back) is missing;
* nose, eyes and ears follow the head's yaw: a back view has no nose and eyes, a profile has
  only the near eye and ear;
* a joint outside the canvas stays present, with its outside coordinates, while it lies within
  ``OUT_OF_FRAME_MARGIN`` × the canvas side of the border (its limb still shows at the edge);
  further out it is missing.

About one pose in ten is deliberately framed too tight (feet below the bottom edge or a side
cut off); :attr:`FigurePose.out_of_frame` says so. Otherwise the whole figure fits the canvas and
its height (head top to sole, raised hands included) is about 70–95 % of the canvas height.

Speed, in CPU seconds of one thread (the 2-core machine it was measured on was shared and loaded,
so wall time there was 2–3× longer):
``python -c "import time,cv2,torch; cv2.setNumThreads(1); torch.set_num_threads(1);
from pidm_core.data.synthetic import SyntheticPairs, make_pair; d=SyntheticPairs(10**6);
[d[i] for i in range(20)]; t=time.process_time(); [d[i] for i in range(500)];
print((time.process_time()-t)/500*1e3, 'ms/item'); t=time.process_time();
[make_pair(i) for i in range(500)]; print((time.process_time()-t)/500*1e3, 'ms/make_pair')"``
gives 4.8 ms per 64×64 dataset item (both images, both 20-channel pose maps, tensors) and 2.7 ms
per ``make_pair`` (both images and keypoints); the two pose maps take about 1.3 ms. At 256×256 a
pair takes about 4 ms and an item about 18 ms, most of it the pose maps' distance transforms.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from ...pose.render import render_pose_map
from .. import to_image_tensor
from .figure import sample_pose, sample_pose_and_parts
from .identity import (
    BACKGROUND_KINDS,
    BOTTOM_KINDS,
    HAIR_STYLES,
    PATTERNS,
    SLEEVES,
    Background,
    Body,
    Colour,
    Garment,
    Identity,
    sample_identity,
)
from .pose import OUT_OF_FRAME_MARGIN, POSE_KINDS, SIDE_VIEW_SIN, FigurePose
from .render import SUPERSAMPLE, render_background, render_parts, render_person

__all__ = [
    "BACKGROUND_KINDS",
    "BOTTOM_KINDS",
    "HAIR_STYLES",
    "HELD_OUT_SEED_OFFSET",
    "OUT_OF_FRAME_MARGIN",
    "PATTERNS",
    "POSE_KINDS",
    "SIDE_VIEW_SIN",
    "SLEEVES",
    "SUPERSAMPLE",
    "TRAIN_SEED_OFFSET",
    "Background",
    "Body",
    "Colour",
    "FigurePose",
    "Garment",
    "Identity",
    "PersonPair",
    "SyntheticPairs",
    "make_pair",
    "render_background",
    "render_person",
    "sample_identity",
    "sample_pose",
]

TRAIN_SEED_OFFSET = 0
HELD_OUT_SEED_OFFSET = 10_000_000  # far above any training length, so the splits never share a seed


@dataclass(frozen=True)
class PersonPair:
    """One identity in two poses. Images uint8 RGB ``[H, W, 3]``, keypoints float32 ``[18, 3]`` px."""

    source_image: np.ndarray
    source_keypoints: np.ndarray
    target_image: np.ndarray
    target_keypoints: np.ndarray
    identity: Identity
    source_pose: FigurePose
    target_pose: FigurePose


def _canvas_size(size: int | tuple[int, int]) -> tuple[int, int]:
    height, width = (size, size) if isinstance(size, (int, np.integer)) else size
    if height < 8 or width < 8:
        raise ValueError(f"size must be at least 8 pixels (an int or (height, width)), got {size!r}")
    return int(height), int(width)


def make_pair(seed: int, size: int | tuple[int, int] = 64) -> PersonPair:
    """The pair for ``seed``: one identity and background, two independently drawn poses.

    ``size`` is the side of a square canvas or ``(height, width)``. Deterministic in ``seed``.
    """
    height, width = _canvas_size(size)
    rng = np.random.default_rng(seed)
    identity = sample_identity(rng)
    source, source_parts = sample_pose_and_parts(rng, identity, height, width, None)
    target, target_parts = sample_pose_and_parts(rng, identity, height, width, None)
    return PersonPair(
        source_image=render_parts(identity.background, source_parts, source),
        source_keypoints=source.keypoints,
        target_image=render_parts(identity.background, target_parts, target),
        target_keypoints=target.keypoints,
        identity=identity,
        source_pose=source,
        target_pose=target,
    )


class SyntheticPairs(Dataset):
    """``length`` procedural pairs; item ``i`` is :func:`make_pair` of seed ``seed_offset + i``.

    Use ``seed_offset=TRAIN_SEED_OFFSET`` for training and ``HELD_OUT_SEED_OFFSET`` for evaluation.
    Each item is a dict of float32 tensors: ``source_image`` / ``target_image`` ``[3, H, W]`` in
    [-1, 1], ``source_pose`` / ``target_pose`` ``[20, H, W]`` in [0, 1] (official pose map), and
    ``source_keypoints`` / ``target_keypoints`` ``[18, 3]`` (x_px, y_px, confidence).
    """

    def __init__(self, length: int, size: int | tuple[int, int] = 64, seed_offset: int = TRAIN_SEED_OFFSET):
        if length < 0:
            raise ValueError(f"length must be >= 0, got {length}")
        self.length = int(length)
        self.height, self.width = _canvas_size(size)
        self.seed_offset = int(seed_offset)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if not -self.length <= index < self.length:
            raise IndexError(f"index {index} out of range for {self.length} pairs")
        pair = make_pair(self.seed_offset + index % self.length, (self.height, self.width))
        return {
            "source_image": to_image_tensor(pair.source_image),
            "target_image": to_image_tensor(pair.target_image),
            "source_pose": torch.from_numpy(render_pose_map(pair.source_keypoints, self.height, self.width)),
            "target_pose": torch.from_numpy(render_pose_map(pair.target_keypoints, self.height, self.width)),
            "source_keypoints": torch.from_numpy(pair.source_keypoints.copy()),
            "target_keypoints": torch.from_numpy(pair.target_keypoints.copy()),
        }
