"""Classifier-free guidance: builds the ``denoise(x, t) -> (eps, v)`` callable the samplers loop over.

Texture features (keys/values of every cross-attention block) are computed by the caller once per
source image and once for the null source; each step runs ONE batched network call holding all the
guidance branches, in which branches with the same pose share the layers before the first
cross-attention (they differ only in texture).

- ``official`` (the released code): out = f(pose, ∅) + w_s·(f(pose, src) − f(pose, ∅)), null source =
  encoder features of a zero image, applied to all 6 output channels; w_s = 2 in the official code.
- ``disentangled`` (the paper, Eq. 7): out = f(∅, ∅) + w_p·(f(pose, ∅) − f(∅, ∅)) + w_s·(f(∅, src) − f(∅, ∅)),
  null pose = a zero pose map. Only meaningful for models trained with both conditions dropped.
"""

from __future__ import annotations

import torch

from .network import PIDMNetwork, TextureKV, concat_texture

GUIDANCE_MODES = ("official", "disentangled")


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


def official_guidance(network: PIDMNetwork, pose_map: torch.Tensor, texture: TextureKV, null_texture: TextureKV,
                      appearance_scale: float = 2.0):
    """Denoiser with the released code's source-only guidance. pose_map [B, 20, H, W]; texture and
    null_texture with batch B. A scale of 1 needs no null branch and runs a single pass."""
    if appearance_scale == 1.0:
        def denoise(x, t):
            (out,) = _call(network, x, pose_map, t, texture, [0])
            return _split(out)
        return denoise

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


def build_denoiser(mode: str, network: PIDMNetwork, pose_map: torch.Tensor, texture: TextureKV, null_texture: TextureKV,
                   *, pose_scale: float, appearance_scale: float):
    if mode == "official":
        return official_guidance(network, pose_map, texture, null_texture, appearance_scale)
    if mode == "disentangled":
        return disentangled_guidance(network, pose_map, texture, null_texture, pose_scale, appearance_scale)
    raise ValueError(f"unknown guidance mode {mode!r}; choose one of {GUIDANCE_MODES}")
