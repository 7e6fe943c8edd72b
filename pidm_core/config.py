"""Network configurations, by name.

One dataclass describes every PIDM network this package can build. ``deepfashion_256`` reproduces
the official DeepFashion model (ankanbhunia/PIDM, ``config/diffconfig.py``); the smaller ones use the
same code with fewer channels, levels or pixels.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

POSE_CHANNELS = 20  # 3 RGB skeleton channels + 17 limb distance maps
PREDICTIONS = ("eps", "v")


@dataclass(frozen=True)
class PIDMConfig:
    """Shape of a PIDM denoiser and its texture encoder.

    The denoiser sees the noisy image (3 channels) concatenated with the 20-channel pose map and
    predicts ε, or v (see ``prediction``), in 3 channels plus the learned-range variance
    interpolation in 3 more. The texture encoder is a copy of the denoiser's down path fed the source image; its features enter the
    denoiser only through cross-attention at ``attention_resolutions``.
    """

    image_size: int = 256
    model_channels: int = 128
    channel_mult: tuple[int, ...] = (1, 1, 2, 2, 4, 4)
    num_res_blocks: int = 2
    attention_resolutions: tuple[int, ...] = (32, 16, 8)
    embed_channels: int = 512  # width of the time embedding fed to every residual block
    dropout: float = 0.1
    num_heads: int = 1
    image_channels: int = 3
    pose_channels: int = POSE_CHANNELS
    learn_sigma: bool = True  # 6 output channels: ε and the variance interpolation v
    # What the first 3 output channels hold: "eps" (the official model) or "v" = √ᾱ·ε − √(1−ᾱ)·x_0
    # (Salimans & Ho 2022). v keeps x̂_0 well conditioned at high noise, where ε-prediction divides
    # by √ᾱ ≈ 0.006; a small model trained on CPU learns source colours with it.
    prediction: str = "eps"

    def __post_init__(self) -> None:
        levels = len(self.channel_mult)
        if self.image_size % (2 ** (levels - 1)):
            raise ValueError(
                f"image_size {self.image_size} must be divisible by 2**{levels - 1} "
                f"for {levels} resolution levels"
            )
        reachable = {self.image_size // 2**i for i in range(levels)}
        if not set(self.attention_resolutions) <= reachable:
            raise ValueError(
                f"attention_resolutions {self.attention_resolutions} must be among the "
                f"resolutions {sorted(reachable)} of image_size {self.image_size}"
            )
        if self.prediction not in PREDICTIONS:
            raise ValueError(f"prediction must be one of {PREDICTIONS}, got {self.prediction!r}")
        if self.model_channels * min(self.channel_mult) % min(32, self.model_channels):
            raise ValueError("model_channels must be a multiple of 32 or smaller than 32")

    @property
    def in_channels(self) -> int:
        return self.image_channels + self.pose_channels

    @property
    def out_channels(self) -> int:
        return self.image_channels * (2 if self.learn_sigma else 1)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "PIDMConfig":
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(f"network config is not valid JSON: {err}") from None
        if not isinstance(raw, dict):
            raise ValueError("network config must be a JSON object")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(raw) - known
        if unknown:
            raise ValueError(f"network config has unknown fields {sorted(unknown)}; known: {sorted(known)}")
        for name in ("channel_mult", "attention_resolutions"):
            if name in raw:
                raw[name] = tuple(raw[name])
        return cls(**raw)


CONFIGS: dict[str, PIDMConfig] = {
    # The official DeepFashion 256×256 model (852 tensors in the official state dict).
    "deepfashion_256": PIDMConfig(),
    # The embedded default model: same architecture, 64×64 pixels, narrower and shallower, and
    # v-prediction (with ε it learns the pose but not the source's colours; README, embedded model).
    "synthetic_64": PIDMConfig(
        image_size=64,
        model_channels=32,
        channel_mult=(1, 2, 2, 4),
        num_res_blocks=1,
        attention_resolutions=(16, 8),
        embed_channels=128,
        dropout=0.0,
        prediction="v",
    ),
    # A tiny network for unit tests: builds and runs in milliseconds.
    "tiny_32": PIDMConfig(
        image_size=32,
        model_channels=32,
        channel_mult=(1, 1),
        num_res_blocks=1,
        attention_resolutions=(16,),
        embed_channels=32,
        dropout=0.0,
    ),
}


def get_config(name: str) -> PIDMConfig:
    try:
        return CONFIGS[name]
    except KeyError:
        raise ValueError(f"unknown network config {name!r}; known: {sorted(CONFIGS)}") from None
