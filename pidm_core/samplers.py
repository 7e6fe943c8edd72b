"""Samplers: plain loops over a ``denoise(x, t) -> (eps, v)`` callable, one :class:`Sampler` record
each, and :class:`SamplingSettings`, every option of a sampling run in one validated object.

Every loop has the same shape::

    sample_<name>(denoise, x, timesteps, *, schedule, noise, callback=None, blend=None, <named options>)

``x`` is the starting sample at ``timesteps[0]``; ``timesteps`` are descending integer timesteps of
the full T = 1000 schedule (the record's :meth:`Sampler.timesteps`, or a tail of it for img2img).
``noise`` draws fresh Gaussian noise (see :class:`BatchNoise`). After each step the loop calls
``callback({"i", "total", "t", "x", "x0"})`` (progress, previews, cancellation by raising) and, if
given, ``blend(x, t)`` (appearance masking). Guidance lives in ``denoise``, never here.

Adding a sampler: write its loop and add one :class:`Sampler` record to :data:`SAMPLERS`; the node's
combo and tooltip and the command lines' choices read them from there.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np
import torch

from . import diffusion
from .diffusion import Schedule
from .errors import check_choice
from .guidance import GUIDANCE_MODES

Denoise = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
Callback = Optional[Callable[[dict], None]]
Blend = Optional[Callable[[torch.Tensor, torch.Tensor], torch.Tensor]]


class BatchNoise:
    """Gaussian noise drawn per batch item from its own seeded generator, so that an item's
    result does not depend on its position in the batch or on the batch size."""

    def __init__(self, seeds: list[int], device: torch.device | str = "cpu"):
        self.generators = [torch.Generator(device="cpu").manual_seed(int(s)) for s in seeds]
        self.device = device

    def skip(self, draws: int, like: torch.Tensor) -> None:
        """Advance every item's generator past ``draws`` draws shaped like ``like``'s items."""
        for generator in self.generators:
            for _ in range(draws):
                torch.randn(like.shape[1:], generator=generator, dtype=torch.float32)

    def __call__(self, like: torch.Tensor) -> torch.Tensor:
        if like.shape[0] != len(self.generators):
            raise ValueError(f"noise for a batch of {like.shape[0]} requested from {len(self.generators)} seeds")
        draws = [torch.randn(like.shape[1:], generator=g, dtype=torch.float32) for g in self.generators]
        return torch.stack(draws).to(device=like.device, dtype=like.dtype)


def _t_batch(t: int, x: torch.Tensor) -> torch.Tensor:
    return torch.full((x.shape[0],), t, dtype=torch.long, device=x.device)


def _after_step(x, x0, i, t, total, callback, blend):
    if blend is not None:
        x = blend(x, t)
    if callback is not None:
        callback({"i": i, "total": total, "t": int(t[0]), "x": x, "x0": x0})
    return x


@torch.no_grad()
def sample_ddim(denoise: Denoise, x, timesteps, *, schedule: Schedule, noise: BatchNoise, callback: Callback = None,
                blend: Blend = None, eta: float = 0.0, clip_x0: bool = False):
    """DDIM (Song et al. 2021) as the official PIDM loop runs it (``clip_x0=False``: x̂_0 is not clipped), and
    x_{t'} = √ᾱ_{t'} x̂_0 + c1·z + c2·ε with c1 = η·√((1-ᾱ_t/ᾱ_{t'})(1-ᾱ_{t'})/(1-ᾱ_t)), c2 = √(1-ᾱ_{t'}-c1²)."""
    total = len(timesteps)
    for i, step in enumerate(timesteps):
        t = _t_batch(step, x)
        t_next = _t_batch(timesteps[i + 1] if i + 1 < total else -1, x)
        eps, _ = denoise(x, t)
        a, a_next = diffusion.alpha_bar(schedule, t, x), diffusion.alpha_bar(schedule, t_next, x)
        x0 = diffusion.predict_x0(schedule, x, t, eps)
        if clip_x0:
            # keep ε consistent with the clipped x̂_0 so the update stays on the clipped trajectory
            x0 = x0.clamp(-1, 1)
            eps = diffusion.predict_eps(schedule, x, t, x0)
        c1 = eta * ((1 - a / a_next) * (1 - a_next) / (1 - a)).sqrt()
        c2 = ((1 - a_next) - c1**2).clamp(min=0).sqrt()
        x = a_next.sqrt() * x0 + c2 * eps
        if eta > 0:
            x = x + c1 * noise(x)
        x = _after_step(x, x0, i, t, total, callback, blend)
    return x


@torch.no_grad()
def sample_ddpm(denoise: Denoise, x, timesteps, *, schedule: Schedule, noise: BatchNoise, callback: Callback = None,
                blend: Blend = None, clip_x0: bool = True):
    """Ancestral sampling with the learned-range variance, on the schedule respaced to ``timesteps``
    (all 1000 steps reproduce the official ``p_sample_loop``, which clips x̂_0 to [-1, 1])."""
    ascending = sorted(timesteps)
    if ascending[0] != 0 or ascending != list(reversed(timesteps)):
        raise ValueError("ddpm needs descending timesteps that end at 0")
    respaced = diffusion.respace(schedule, ascending)
    total = len(timesteps)
    for i, step in enumerate(timesteps):
        t = _t_batch(step, x)
        idx = _t_batch(total - 1 - i, x)  # position in the respaced schedule
        eps, v = denoise(x, t)
        x0 = diffusion.predict_x0(respaced, x, idx, eps)
        if clip_x0:
            x0 = x0.clamp(-1, 1)
        mean = diffusion.posterior_mean(respaced, x0, x, idx)
        if i + 1 < total:
            log_var = diffusion.learned_log_variance(respaced, v.float(), idx)
            x = mean + torch.exp(0.5 * log_var).to(x.dtype) * noise(x)
        else:
            x = mean
        x = _after_step(x, x0, i, t, total, callback, blend)
    return x


@torch.no_grad()
def sample_dpmpp_2m(denoise: Denoise, x, timesteps, *, schedule: Schedule, noise: BatchNoise, callback: Callback = None,
                    blend: Blend = None):
    """DPM-Solver++(2M) (Lu et al. 2022), multistep second order in x̂_0, deterministic. The last
    step lands on the clean image (σ = 0), where the update reduces to x = x̂_0."""
    total = len(timesteps)
    x0_prev, h_prev = None, None
    for i, step in enumerate(timesteps):
        t = _t_batch(step, x)
        eps, _ = denoise(x, t)
        a = diffusion.alpha_bar(schedule, t, x)
        x0 = diffusion.predict_x0(schedule, x, t, eps)
        if i + 1 == total:
            x = x0
        else:
            a_next = diffusion.alpha_bar(schedule, _t_batch(timesteps[i + 1], x), x)
            lam, lam_next = 0.5 * torch.log(a / (1 - a)), 0.5 * torch.log(a_next / (1 - a_next))
            h = lam_next - lam
            if x0_prev is None:
                d = x0
            else:
                r = h_prev / h
                d = (1 + 1 / (2 * r)) * x0 - (1 / (2 * r)) * x0_prev
            x = ((1 - a_next) / (1 - a)).sqrt() * x - a_next.sqrt() * torch.expm1(-h) * d
            x0_prev, h_prev = x0, h
        x = _after_step(x, x0, i, t, total, callback, blend)
    return x


def official_spacing(schedule: Schedule, steps: int) -> list[int]:
    """Ascending timesteps as the official loop spaces them: range(0, T, T // steps)."""
    return diffusion.official_timesteps(steps, schedule.num_timesteps)


@dataclass(frozen=True)
class Sampler:
    """One sampler: its loop, its step spacing, the :class:`SamplingSettings` fields its loop takes
    as keyword options, and a one-line description (the node's tooltip and the CLI's help)."""

    name: str
    loop: Callable[..., torch.Tensor]
    spacing: Callable[[Schedule, int], list[int]]  # (schedule, steps) -> ascending timesteps
    options: tuple[str, ...]
    description: str
    noise_draws: Callable[..., int] = lambda **options: 0  # fresh noise draws per step but the last, given options

    def timesteps(self, schedule: Schedule, steps: int, denoise: float = 1.0) -> list[int]:
        """Descending timesteps for ``steps`` steps, keeping the last ``denoise`` ∈ [0, 1] fraction (img2img)."""
        full = self.spacing(schedule, steps)[::-1]
        keep = int(round(len(full) * denoise))
        return full[len(full) - keep:]


SAMPLERS = {sampler.name: sampler for sampler in (
    Sampler("ddim", sample_ddim, official_spacing, ("eta",),
            "deterministic, the official choice for the official model", lambda eta=0.0: int(eta > 0)),
    Sampler("ddpm", sample_ddpm, official_spacing, (),
            "ancestral with the learned variance (best for the embedded model)", lambda: 1),
    # even log-SNR spacing: the official uniform spacing in t puts one huge λ-step at the end
    Sampler("dpmpp_2m", sample_dpmpp_2m, diffusion.logsnr_timesteps, (),
            "DPM-Solver++(2M), fewer steps for well-trained models"),
)}


def get_sampler(name: str) -> Sampler:
    try:
        return SAMPLERS[name]
    except KeyError:
        raise ValueError(f"unknown sampler {name!r}; choose one of {sorted(SAMPLERS)}") from None


# ---------------------------------------------------------------------------------------------
# Settings of one sampling run


def _setting(default, help: str, widget: Optional[dict] = None, node: bool = True, **limits):
    """A :class:`SamplingSettings` field: its default, the help text that node tooltips and CLI help
    show, its ``choices`` or numeric ``low``/``high`` bounds (checked on creation), ``widget``: how the
    sampler node shows it (a narrower slider range ``min``/``max``, ``step``, ``control_after_generate``), and
    ``node``: whether the sampler node has an input for it (a new field gets one, last and optional)."""
    return field(default=default, metadata={"help": help, "widget": widget or {}, "node": node, **limits})


SCALE_LIMIT = 100.0  # |scale| and η beyond this only overflow


@dataclass(frozen=True)
class SamplingSettings:
    """Every option of one sampling run, validated on creation. The sampler node, the library
    (:mod:`pidm_core.pipeline`), both command lines and the evaluator build one and pass it on
    unchanged; defaults, choices and help text live here only."""

    seed: int = _setting(0, "Noise seed. Every frame uses the same seed, so a pose sequence keeps a steady look.",
                         widget={"control_after_generate": True}, low=0, high=2**64 - 1)
    # steps, guidance_start/end and sequence_denoise: the cheapest settings as good as ddpm at 50 steps guided
    # throughout, on held-out people with the embedded model (docs/compute.md, benchmarks/quality_compute.py)
    steps: int = _setting(6, "Denoising steps, respaced from the 1000 training steps (official spacing: every "
                             "1000 // steps, so 6 runs 7). 6 with guidance from 0.2 to 0.8 matches 50 steps guided "
                             "throughout on the embedded model (docs/compute.md); the official model used 50 DDIM "
                             "steps.", low=1, high=diffusion.NUM_TIMESTEPS)
    sampler: str = _setting("ddpm", "; ".join(f"{s.name}: {s.description}" for s in SAMPLERS.values()) + ".",
                            choices=tuple(SAMPLERS))
    guidance: str = _setting("official", "official: appearance guidance only, as the released model was trained; "
                                         "disentangled: the paper's separate pose and appearance guidance (needs a "
                                         "model trained with both conditions dropped).", choices=GUIDANCE_MODES)
    appearance_scale: float = _setting(2.0, "Strength of appearance (source texture) guidance; 1 = no guidance, "
                                            "the official model used 2.", low=-SCALE_LIMIT, high=SCALE_LIMIT,
                                       widget={"min": 0.0, "max": 20.0, "step": 0.1})
    pose_scale: float = _setting(2.0, "Strength of pose guidance, used by 'disentangled' guidance only; 1 = no "
                                      "guidance, the paper used 2.", low=-SCALE_LIMIT, high=SCALE_LIMIT,
                                 widget={"min": 0.0, "max": 20.0, "step": 0.1})
    eta: float = _setting(0.0, "DDIM noise (ddim only): 0 = deterministic, as the official loop.", node=False,
                          low=-SCALE_LIMIT, high=SCALE_LIMIT)
    denoise: float = _setting(1.0, "With an init image: the part of the schedule that is re-run (1 = ignore the "
                                   "init image entirely, 0 = return it unchanged). Ignored without one.", low=0.0, high=1.0,
                              widget={"step": 0.01})

    frame_noise: str = _setting("shared", "shared: every frame starts from the same noise (the seed), so a pose "
                                          "sequence keeps a steady look; independent: frame k uses seed + k.",
                                choices=("shared", "independent"))
    chunk_size: int = _setting(0, "Frames sampled at once (memory grows with it, the images do not change); 0 = "
                                  "automatic, from the model, canvas, dtype and the free memory (on a CPU, a run of "
                                  "1000 frame-steps or more times a few sizes and takes the fastest). Frames that "
                                  "start from the previous frame (sequence_denoise below 1) run one at a time.",
                               low=0, high=4096)
    guidance_start: float = _setting(0.2, "Guidance runs from this point of the schedule (0 = pure noise, 1 = the "
                                          "clean image; as ComfyUI's start percent); steps before it run the "
                                          "conditional prediction alone, one network row instead of 2 (3 "
                                          "disentangled). 0 = from the first step; 0 and 1 = every step.",
                                     low=0.0, high=1.0,
                                     widget={"step": 0.01})
    guidance_end: float = _setting(0.8, "Guidance runs up to this point of the schedule (0 = pure noise, 1 = the "
                                        "clean image; as ComfyUI's end percent); later steps run the conditional "
                                        "prediction alone, one network row. 1 = to the last step.", low=0.0,
                                   high=1.0, widget={"step": 0.01})
    sequence_denoise: float = _setting(0.6, "Pose sequences (one source, several poses): every frame after the first "
                                            "starts from the previous frame's image, noised to re-run this part of "
                                            "the schedule (img2img along the sequence: fewer steps per frame, and "
                                            "the frames run one after another instead of in chunks). 1 = every "
                                            "frame starts from noise, in chunks. Ignored with an init image.",
                                       low=0.0, high=1.0,
                                       widget={"step": 0.01})

    def __post_init__(self) -> None:
        for spec in dataclasses.fields(self):
            _check_setting(spec, getattr(self, spec.name))
        if self.guidance_start > self.guidance_end:
            raise ValueError(f"guidance_start ({self.guidance_start:g}) must not be after guidance_end "
                             f"({self.guidance_end:g}): the guidance interval runs from start to end (0 = pure noise, "
                             "1 = the clean image)")

    @property
    def guidance_interval(self) -> tuple[float, float]:
        """(guidance_start, guidance_end): where along the schedule guidance runs
        (:func:`pidm_core.guidance.guided_at`)."""
        return (float(self.guidance_start), float(self.guidance_end))

    @property
    def sampler_record(self) -> Sampler:
        return SAMPLERS[self.sampler]

    def sampler_options(self) -> dict:
        """The keyword options this run's sampler loop takes, e.g. ``{"eta": 0.0}`` for ddim."""
        return {name: getattr(self, name) for name in self.sampler_record.options}


def _check_setting(spec: dataclasses.Field, value) -> None:
    """ValueError naming the setting when ``value`` has the wrong kind or lies outside its choices or bounds."""
    name, choices, low, high = spec.name, spec.metadata.get("choices"), spec.metadata.get("low"), spec.metadata.get("high")
    if choices is not None:
        check_choice(name, value, choices)
        return
    kinds = {"bool": (bool,), "int": (int, np.integer), "float": (int, float, np.integer, np.floating)}[spec.type]
    if not isinstance(value, kinds) or (isinstance(value, bool) and spec.type != "bool"):
        raise ValueError(f"{name} must be a {spec.type}, got {value!r}")
    if low is None or (math.isfinite(value) and low <= value <= high):
        return
    if low == -high:
        raise ValueError(f"{name} must be a finite number within ±{high:g}, got {value}")
    if spec.type == "int":
        raise ValueError(f"{name} must be between {low} and {high}, got {value}")
    raise ValueError(f"{name} must be in [{low:g}, {high:g}], got {value}")


def add_settings_arguments(parser: argparse.ArgumentParser, skip: tuple[str, ...] = ()) -> None:
    """One ``--option`` per :class:`SamplingSettings` field (except ``skip``), with its default,
    choices and help; :func:`settings_from_args` reads them back."""
    for spec in dataclasses.fields(SamplingSettings):
        if spec.name in skip:
            continue
        flag, help_text = "--" + spec.name.replace("_", "-"), spec.metadata["help"]
        if spec.type == "bool":
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=spec.default, help=help_text)
        else:
            parser.add_argument(flag, type={"int": int, "float": float, "str": str}[spec.type], default=spec.default,
                                choices=spec.metadata.get("choices"), help=help_text)


def settings_from_args(args: argparse.Namespace) -> SamplingSettings:
    names = [spec.name for spec in dataclasses.fields(SamplingSettings) if hasattr(args, spec.name)]
    return SamplingSettings(**{name: getattr(args, name) for name in names})


def setting_field(name: str) -> dataclasses.Field:
    """One :class:`SamplingSettings` field: default, help, choices or bounds, widget (the node's inputs)."""
    return next(spec for spec in dataclasses.fields(SamplingSettings) if spec.name == name)


def setting_help(name: str) -> str:
    """The help text of one :class:`SamplingSettings` field."""
    return setting_field(name).metadata["help"]


DEFAULT_SETTINGS = SamplingSettings()

# Every step guided and every frame from noise, as the official code runs (with ddim, 50 steps) and as this pack's
# defaults ran until 2026-12-07 (with ddpm, 50 steps): ``SamplingSettings(steps=50, **OFFICIAL_RUN)``.
OFFICIAL_RUN = {"guidance_start": 0.0, "guidance_end": 1.0, "sequence_denoise": 1.0}
