"""What a weights file says about its model: :class:`ModelInfo`, as safetensors ``__metadata__``
strings and back, and the description of the official model."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from ..config import PIDMConfig, get_config
from ..errors import CheckpointError
from ..fit_modes import FIT_MODES

FORMAT_VERSION = "1"
OFFICIAL_CONFIG = "deepfashion_256"
# The official training zeroes the source image 10 % of the time and never drops the pose.
OFFICIAL_SOURCE_DROP_PROB = 0.1
OFFICIAL_POSE_DROP_PROB = 0.0

_RESERVED_METADATA = ("pidm_format", "config", "resolution", "source_drop_prob", "pose_drop_prob", "name")


@dataclass
class ModelInfo:
    """What a weights file says about its network and training.

    ``source_drop_prob`` / ``pose_drop_prob``: how often each condition was dropped in training
    (probabilities in [0, 1]); guidance along a condition needs a model trained with it dropped.
    ``extra``: the remaining metadata strings (e.g. ``training``, a JSON object).
    """

    name: str
    config: PIDMConfig
    source_drop_prob: float
    pose_drop_prob: float
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def framing(self):
        """How this model's training data framed people (:func:`pidm_core.framing.framing_for`): the file's
        ``framing`` metadata, else a default derived from its config."""
        from ..framing import framing_for

        return framing_for(self)

    @property
    def supports_disentangled_guidance(self) -> bool:
        """True when both conditions were dropped in training (the paper's disentangled CFG)."""
        return self.pose_drop_prob > 0 and self.source_drop_prob > 0

    def to_metadata(self) -> dict[str, str]:
        """The safetensors ``__metadata__`` of this model (all values are strings)."""
        clash = set(self.extra) & set(_RESERVED_METADATA)
        if clash:
            raise ValueError(f"ModelInfo.extra must not set the reserved metadata keys {sorted(clash)}")
        meta = {
            "pidm_format": FORMAT_VERSION,
            "config": self.config.to_json(),
            "resolution": str(self.config.image_size),
            "source_drop_prob": repr(float(self.source_drop_prob)),
            "pose_drop_prob": repr(float(self.pose_drop_prob)),
            "name": self.name,
        }
        for key, value in self.extra.items():
            meta[key] = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
        return meta

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, str], source: str = "metadata") -> "ModelInfo":
        """Parse and validate the metadata written by :meth:`to_metadata`; raises CheckpointError."""
        version = metadata.get("pidm_format")
        if version != FORMAT_VERSION:
            raise CheckpointError(
                f"{source}: unsupported pidm_format {version!r}; this version of ComfyUI-PIDM reads "
                f"pidm_format {FORMAT_VERSION!r} (update the node pack?)"
            )
        if "config" not in metadata:
            raise CheckpointError(f"{source}: the metadata has no 'config' (the network config as JSON)")
        try:
            config = PIDMConfig.from_json(metadata["config"])
        except (TypeError, ValueError) as err:
            raise CheckpointError(f"{source}: invalid network config in the metadata: {err}") from None
        if "resolution" in metadata and metadata["resolution"] != str(config.image_size):
            raise CheckpointError(
                f"{source}: metadata resolution {metadata['resolution']!r} does not match the "
                f"config's image_size {config.image_size}"
            )
        probs = {key: _parse_probability(metadata, key, source) for key in ("source_drop_prob", "pose_drop_prob")}
        extra = {k: v for k, v in metadata.items() if k not in _RESERVED_METADATA}
        _check_fit(extra, source)
        _check_framing(extra, source, config)
        name = metadata.get("name") or Path(source).stem
        return cls(name=name, config=config, extra=extra, **probs)


def _check_fit(extra: Mapping[str, str], source: str) -> None:
    """``fit`` (optional): the encoder's fit mode; checked here so a bad file fails at load."""
    if "fit" not in extra:
        return
    if extra["fit"] not in FIT_MODES:
        raise CheckpointError(f"{source}: metadata fit = {extra['fit'][:40]!r} is not one of {FIT_MODES} (how the "
                              "source photo is fitted to the model's canvas); fix the file's metadata or convert it again")


def _check_framing(extra: Mapping[str, str], source: str, config: PIDMConfig) -> None:
    """``framing`` (optional): how the model's training data framed people (pidm_core.framing), as JSON;
    checked here so a bad file fails at load. Files without it get a default derived from their config."""
    if "framing" not in extra:
        return
    from ..framing import Framing

    try:
        Framing.from_json(extra["framing"], config.image_size, config.image_size)
    except ValueError as err:
        raise CheckpointError(f"{source}: invalid framing metadata: {err}; fix the file's metadata or convert it "
                              "again") from None


def _parse_probability(metadata: Mapping[str, str], key: str, source: str) -> float:
    if key not in metadata:
        raise CheckpointError(f"{source}: the metadata has no {key!r} (a probability in [0, 1])")
    try:
        value = float(metadata[key])
    except ValueError:
        value = math.nan
    if not 0.0 <= value <= 1.0:
        raise CheckpointError(f"{source}: metadata {key} = {metadata[key]!r} is not a probability in [0, 1]")
    return value


def official_model_info(name: str = "pidm_deepfashion_256_official", state_dict: str = "ema",
                        config: PIDMConfig | None = None) -> ModelInfo:
    """ModelInfo of the official DeepFashion model (its pickled ``conf`` is not trusted or read).

    ``config`` other than deepfashion_256 describes a torch checkpoint of another PIDM size that
    was trained with the official recipe."""
    return ModelInfo(
        name=name,
        config=config or get_config(OFFICIAL_CONFIG),
        source_drop_prob=OFFICIAL_SOURCE_DROP_PROB,
        pose_drop_prob=OFFICIAL_POSE_DROP_PROB,
        extra={"source": "official ankanbhunia/PIDM checkpoint", "state_dict": state_dict},
    )
