"""Pair sources for training and evaluation: ``len()`` and ``pair(i)`` → (source image, source
keypoints, target image, target keypoints), images uint8 [S, S, 3] on the model canvas."""

from __future__ import annotations

import numpy as np
import torch


def to_image_tensor(image: np.ndarray) -> torch.Tensor:
    """uint8 [H, W, 3] → float32 [3, H, W] in [-1, 1], the network's image range."""
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float() / 127.5 - 1.0


class SyntheticPairSource:
    """Procedural pairs: pair ``i`` is ``make_pair(seed_offset + i, size)``."""

    def __init__(self, size: int, seed_offset: int, length: int):
        from . import synthetic

        self.synthetic, self.size, self.seed_offset, self.length = synthetic, int(size), seed_offset, length

    def __len__(self) -> int:
        return self.length

    def names(self, index: int) -> tuple[str, str]:
        seed = self.seed_offset + index
        return f"synthetic:{seed}:source", f"synthetic:{seed}:target"

    def pair(self, index: int):
        p = self.synthetic.make_pair(self.seed_offset + index, self.size)
        return p.source_image, p.source_keypoints, p.target_image, p.target_keypoints


def open_pairs(spec: str, size: int, split: str = "test", fit: str = "stretch"):
    """``synthetic`` (train seeds, or the held-out seeds for any other split) or ``deepfashion:PATH``."""
    if spec == "synthetic":
        from . import synthetic

        if split == "train":
            return SyntheticPairSource(size, synthetic.TRAIN_SEED_OFFSET, 10**9)
        return SyntheticPairSource(size, synthetic.HELD_OUT_SEED_OFFSET, 10**6)
    if spec.startswith("deepfashion:"):
        from .deepfashion import DeepFashionPairs

        return DeepFashionPairs(spec.split(":", 1)[1], split=split, size=size, fit=fit)
    raise ValueError(f"--data must be 'synthetic' or 'deepfashion:PATH', got {spec!r}")
