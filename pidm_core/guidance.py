"""Classifier-free guidance: builds the ``denoise(x, t) -> (eps, v)`` callable the samplers loop over.

Texture features (keys/values of every cross-attention block) are computed by the caller once per
source image and once for the null source; each step runs ONE batched network call holding all the
guidance branches, in which branches with the same pose share the layers before the first
cross-attention (they differ only in texture).

- ``official`` (the released code): out = f(pose, ∅) + w_s·(f(pose, src) − f(pose, ∅)), null source =
  encoder features of a zero image, applied to all 6 output channels; w_s = 2 in the official code.
- ``disentangled`` (the paper, Eq. 7): out = f(∅, ∅) + w_p·(f(pose, ∅) − f(∅, ∅)) + w_s·(f(∅, src) − f(∅, ∅)),
  null pose = a zero pose map. Only meaningful for models trained with both conditions dropped.

Guidance in a limited interval (Kynkäänniemi et al., NeurIPS 2024): the guided rows run only at steps whose
noise level lies inside ``interval`` = (start, end), in fractions of the schedule from pure noise (0, t = T-1)
to the clean image (1, t = 0), as ComfyUI's start/end percent; outside it one row runs, the fully
conditional prediction f(pose, src) (guidance weight 1). The full interval (0, 1) is the guided denoiser
itself, unchanged.
"""

from __future__ import annotations

import torch

from . import memory
from .diffusion import NUM_TIMESTEPS
from .network import PIDMNetwork, TextureKV, concat_texture

GUIDANCE_MODES = ("official", "disentangled")
FULL_INTERVAL = (0.0, 1.0)


def schedule_progress(t: int, num_timesteps: int = NUM_TIMESTEPS) -> float:
    """How far timestep ``t`` lies along the denoising schedule: 0 at pure noise (t = T-1), 1 at the clean
    image (t = 0); ComfyUI's start/end percent (``percent_to_sigma``) measures the same way."""
    return 1.0 - int(t) / (num_timesteps - 1)


def guided_at(t: int, interval: tuple[float, float] = FULL_INTERVAL) -> bool:
    """Whether the step at timestep ``t`` runs guidance: start ≤ progress ≤ end (both ends included)."""
    start, end = interval
    return start <= schedule_progress(t) <= end


def covers_schedule(interval: tuple[float, float]) -> bool:
    """Whether ``interval`` holds every timestep (guidance at every step, as before the interval existed)."""
    return interval[0] <= 0.0 and interval[1] >= 1.0


def _split(out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    out = out.float()
    return out[:, :3], out[:, 3:]


def _call(network: PIDMNetwork, x: torch.Tensor, inputs: torch.Tensor, t: torch.Tensor, texture: TextureKV,
          branch_inputs: list[int]):
    """One network call for all branches; branch j reads input ``branch_inputs[j]`` of ``inputs``
    (pose maps [P·B, 20, H, W], input-major). The layers before the first cross-attention run once
    per distinct input, not once per branch. Returns the branches' outputs in order."""
    dtype = next(network.parameters()).dtype
    b = x.shape[0]
    copies = inputs.shape[0] // b
    rows = torch.cat([torch.arange(b, device=x.device) + j * b for j in branch_inputs])
    out = network(x.to(dtype).repeat(copies, 1, 1, 1), inputs, t.repeat(copies), texture, branch_rows=rows)
    return out.float().chunk(len(branch_inputs))


def conditional_denoiser(network: PIDMNetwork, pose_map: torch.Tensor, texture: TextureKV):
    """The fully conditional prediction f(pose, src) alone: one row per image (no guidance)."""
    def denoise(x, t):
        (out,) = _call(network, x, pose_map, t, texture, [0])
        return _split(out)
    return denoise


def official_guidance(network: PIDMNetwork, pose_map: torch.Tensor, texture: TextureKV, null_texture: TextureKV,
                      appearance_scale: float = 2.0):
    """Denoiser with the released code's source-only guidance. pose_map [B, 20, H, W]; texture and
    null_texture with batch B. A scale of 1 needs no null branch and runs a single pass."""
    if appearance_scale == 1.0:
        return conditional_denoiser(network, pose_map, texture)

    texture_2 = concat_texture(texture, null_texture)  # built once, reused every step

    def denoise(x, t):
        cond, uncond = _call(network, x, pose_map, t, texture_2, [0, 0])
        return _split(uncond + appearance_scale * (cond - uncond))

    return denoise


def disentangled_guidance(network: PIDMNetwork, pose_map: torch.Tensor, texture: TextureKV, null_texture: TextureKV,
                          pose_scale: float = 2.0, appearance_scale: float = 2.0):
    """Denoiser with the paper's disentangled guidance (three branches in one batched call)."""
    poses = torch.cat([torch.zeros_like(pose_map), pose_map])
    texture_3 = concat_texture(null_texture, null_texture, texture)

    def denoise(x, t):
        uncond, pose_only, source_only = _call(network, x, poses, t, texture_3, [0, 1, 0])
        return _split(uncond + pose_scale * (pose_only - uncond) + appearance_scale * (source_only - uncond))

    return denoise


def require_supported(mode: str, info) -> None:
    """ValueError when ``mode`` cannot work with the model described by ``info`` (a
    :class:`~pidm_core.checkpoint.ModelInfo`; None = a bare network, not checked)."""
    if mode == "disentangled" and info is not None and not info.supports_disentangled_guidance:
        raise ValueError(f"model {info.name!r} was trained without dropping the pose, so disentangled guidance "
                         "cannot work with it; use guidance 'official' (appearance guidance only)")


def interval_guidance(make_guided, conditional, interval: tuple[float, float]):
    """Denoiser running ``make_guided()``'s denoiser (built on the first guided step, so that an interval holding
    no step never builds the guided batch's textures) at steps inside ``interval`` (:func:`guided_at`) and
    ``conditional`` outside it. The samplers give every row the same t; rows with differing t (not used by any
    loop) get each its own side, both computed."""
    guided = None

    def denoise(x, t):
        nonlocal guided
        inside = [guided_at(step, interval) for step in t.tolist()]
        if not any(inside):
            return conditional(x, t)
        if guided is None:
            guided = make_guided()
        if all(inside):
            return guided(x, t)
        mask = torch.tensor(inside, device=x.device).view(-1, *([1] * (x.dim() - 1)))
        return tuple(torch.where(mask, g, c) for g, c in zip(guided(x, t), conditional(x, t)))

    return denoise


def build_denoiser(mode: str, network: PIDMNetwork, pose_map: torch.Tensor, texture: TextureKV, null_texture: TextureKV,
                   *, pose_scale: float, appearance_scale: float, interval: tuple[float, float] = FULL_INTERVAL):
    """The ``denoise(x, t)`` of guidance ``mode``; with an ``interval`` short of the full schedule, guided inside
    it and fully conditional (one row) outside (:func:`interval_guidance`)."""
    if mode == "official":
        make = lambda: official_guidance(network, pose_map, texture, null_texture, appearance_scale)  # noqa: E731
    elif mode == "disentangled":
        make = lambda: disentangled_guidance(network, pose_map, texture, null_texture,  # noqa: E731
                                             pose_scale, appearance_scale)
    else:
        raise ValueError(f"unknown guidance mode {mode!r}; choose one of {GUIDANCE_MODES}")
    if covers_schedule(interval):
        return make()  # guidance at every step: the denoiser as before the interval existed
    if mode == "official" and appearance_scale == 1.0:
        return conditional_denoiser(network, pose_map, texture)  # guided and conditional are the same row
    return interval_guidance(make, conditional_denoiser(network, pose_map, texture), interval)


def rows_per_step(mode: str, appearance_scale: float, t: int, interval: tuple[float, float] = FULL_INTERVAL) -> int:
    """Network rows per image that the step at timestep ``t`` runs: the guided rows inside ``interval``
    (official: 2, or 1 at scale 1; disentangled: 3), one outside."""
    return memory.guidance_rows(mode, appearance_scale) if guided_at(t, interval) else 1
