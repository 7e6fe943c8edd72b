"""An open checkpoint, whatever its format: what the loader and the converter read from."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from .metadata import ModelInfo


@dataclass
class OpenedCheckpoint:
    """An open checkpoint: tensor shapes, a way to read each tensor, and the model description."""

    path: Path
    shapes: dict[str, tuple[int, ...]]
    get: Callable[[str], torch.Tensor]
    info: ModelInfo
    description: str
    default_dtype: torch.dtype | None
    close: Callable[[], None]
    hint: str = ""  # appended to shape errors
