"""Network configurations, by name.

One dataclass describes every PIDM network this package can build. ``deepfashion_256`` reproduces
the official DeepFashion model (ankanbhunia/PIDM, ``config/diffconfig.py``); the smaller ones use the
same code with fewer channels, levels or pixels.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

from .checks import short_repr

POSE_CHANNELS = 20  # 3 RGB skeleton channels + 17 limb distance maps
PREDICTIONS = ("eps", "v")


# Accepted ranges. The upper bounds are far above any PIDM network (the official values are 256, 128,
# 2, 512 and 1) and low enough that a config read from a file cannot make building the network take
# long; memory is bounded separately, by matching every tensor against the file's real shapes.
LIMITS = {
    "image_size": (8, 2048),
    "model_channels": (1, 1024),
    "num_res_blocks": (1, 8),
    "embed_channels": (1, 8192),
    "num_heads": (1, 1024),
    "image_channels": (3, 3),  # RGB: the pipeline feeds RGB images
    "pose_channels": (POSE_CHANNELS, POSE_CHANNELS),  # the rendered pose map
}
MAX_LEVELS = 8
MAX_CHANNEL_MULT = 16


def json_object(text, what: str, max_chars: int, known: set[str]) -> dict:
    """Parse metadata read from a weights file (hostile): a JSON object of at most ``max_chars``
    characters whose keys are all in ``known``; ValueError naming ``what`` otherwise."""
    if not isinstance(text, str) or len(text) > max_chars:
        raise ValueError(f"{what} must be a JSON text of at most {max_chars} characters")
    try:
        raw = json.loads(text)
    except (ValueError, RecursionError) as err:
        raise ValueError(f"{what} is not valid JSON: {str(err)[:100]}") from None
    if not isinstance(raw, dict):
        raise ValueError(f"{what} must be a JSON object")
    unknown = set(raw) - known
    if unknown:
        raise ValueError(f"{what} has unknown fields {sorted(unknown)[:5]}; known: {sorted(known)}")
    return raw


def _check_int(name: str, value, low: int, high: int) -> None:
    if type(value) is not int:  # bool is an int subclass, and 1.5 or "2" are not integers
        raise ValueError(f"{name} must be an integer from {low} to {high}, got {short_repr(value)}")
    if not low <= value <= high:
        raise ValueError(f"{name} must be from {low} to {high}, got {value}")


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
        # Types first, so that no check below can fail with TypeError or ZeroDivisionError.
        for name in ("image_size", "model_channels", "num_res_blocks", "embed_channels", "num_heads",
                     "image_channels", "pose_channels"):
            low, high = LIMITS[name]
            _check_int(name, getattr(self, name), low, high)
        for name in ("channel_mult", "attention_resolutions"):
            value = getattr(self, name)
            if not isinstance(value, tuple):
                raise ValueError(f"{name} must be a list of integers, got {short_repr(value)}")
        if not 1 <= len(self.channel_mult) <= MAX_LEVELS:
            raise ValueError(f"channel_mult must have 1 to {MAX_LEVELS} entries (one per resolution level), "
                             f"got {len(self.channel_mult)}")
        for mult in self.channel_mult:
            _check_int("each channel_mult entry", mult, 1, MAX_CHANNEL_MULT)
        for resolution in self.attention_resolutions:
            _check_int("each attention_resolutions entry", resolution, 1, LIMITS["image_size"][1])
        if not (isinstance(self.dropout, (int, float)) and not isinstance(self.dropout, bool)
                and 0 <= self.dropout < 1):
            raise ValueError(f"dropout must be a number in [0, 1), got {short_repr(self.dropout)}")
        if not isinstance(self.learn_sigma, bool):
            raise ValueError(f"learn_sigma must be true or false, got {short_repr(self.learn_sigma)}")
        if self.prediction not in PREDICTIONS:
            raise ValueError(f"prediction must be one of {PREDICTIONS}, got {short_repr(self.prediction)}")

        levels = len(self.channel_mult)
        if self.image_size % (2 ** (levels - 1)):
            raise ValueError(
                f"image_size {self.image_size} must be divisible by 2**{levels - 1} "
                f"for {levels} resolution levels"
            )
        reachable = [self.image_size // 2**i for i in range(levels)]
        if not set(self.attention_resolutions) <= set(reachable):
            raise ValueError(
                f"attention_resolutions {self.attention_resolutions} must be among the "
                f"resolutions {sorted(reachable)} of image_size {self.image_size}"
            )
        if len(set(self.attention_resolutions)) != len(self.attention_resolutions):
            raise ValueError(f"attention_resolutions {self.attention_resolutions} repeats a resolution")
        widths = [self.model_channels * mult for mult in self.channel_mult]
        attention = {w for w, r in zip(widths, reachable) if r in self.attention_resolutions} | {widths[-1]}
        if any(w % self.num_heads for w in attention):
            raise ValueError(f"num_heads {self.num_heads} must divide the channels of every attention block "
                             f"({sorted(attention)})")
        bad = sorted(w for w in self._norm_widths() if w % min(32, w))
        if bad:
            raise ValueError(f"model_channels {self.model_channels} with channel_mult {list(self.channel_mult)} gives "
                             f"GroupNorm widths {bad[:4]} that are neither below 32 nor multiples of 32; use a "
                             "model_channels that is a multiple of 32")

    def _norm_widths(self) -> set[int]:
        """Channel counts of every GroupNorm in the network (they need 32 groups or fewer channels)."""
        mc, levels = self.model_channels, len(self.channel_mult)
        skips = [mc * self.channel_mult[0]]
        for level, mult in enumerate(self.channel_mult):
            skips += [mc * mult] * (self.num_res_blocks + (level != levels - 1))
        widths, ch = set(skips), skips[-1]
        for mult in reversed(self.channel_mult):
            for _ in range(self.num_res_blocks + 1):
                widths.add(ch + skips.pop())
                ch = mc * mult
                widths.add(ch)
        return widths

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
        raw = json_object(text, "network config", 100_000, {f.name for f in dataclasses.fields(cls)})
        for name in ("channel_mult", "attention_resolutions"):
            if name in raw:
                if not isinstance(raw[name], list):
                    raise ValueError(f"{name} must be a list of integers, got {short_repr(raw[name])}")
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
