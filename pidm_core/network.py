"""The PIDM denoiser UNet and its texture encoder.

Module and parameter names follow the official checkpoint (ankanbhunia/PIDM,
``BeatGANsAutoencModel``) so that its state dict loads by name and shape. Only tensors that the
forward pass uses exist here; the official file's unused ones (``cond_emb_layers``, the
cross-attention blocks' ``qkv`` / ``proj_out1``, the encoder's time embedding and ``emb_layers``)
are accepted and reported by :mod:`pidm_core.checkpoint`.

Tensor conventions: images in [-1, 1], pose maps in [0, 1], channels first.
"""

from __future__ import annotations

import math
from typing import Dict, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from .config import PIDMConfig

# For every cross-attention block: keys and values precomputed from one source image's
# texture features, shape [B, heads, tokens, head_dim] each.
TextureKV = Dict[str, Tuple[torch.Tensor, torch.Tensor]]


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding [B, dim] of (possibly fractional) timesteps [B]: cos half, then sin half."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t.float()[:, None] * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        emb = torch.cat([emb, torch.zeros_like(emb[:, :1])], dim=-1)
    return emb


class GroupNorm32(nn.GroupNorm):
    """GroupNorm with fp32 statistics whatever the activations' dtype, as the official code wants.

    With fp16/bf16 weights and inputs the kernel gets the half tensors directly: on CPU and CUDA it
    accumulates mean and variance in fp32 itself, so the official ``x.float()`` round trip only adds
    two full-size copies (measured 4x slower at 256 px on CPU; same result to one bf16 ulp in 2e-5
    of the elements). fp32 weights (training under autocast) keep the fp32 path; ``upcast = True``
    forces the official round trip (the benchmarks' baseline).
    """

    upcast = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (not self.upcast and x.dtype in (torch.float16, torch.bfloat16)
                and (self.weight is None or self.weight.dtype == x.dtype)):
            return F.group_norm(x, self.num_groups, self.weight, self.bias, self.eps)
        weight = None if self.weight is None else self.weight.float()
        bias = None if self.bias is None else self.bias.float()
        return F.group_norm(x.float(), self.num_groups, weight, bias, self.eps).to(x.dtype)


def normalization(channels: int) -> GroupNorm32:
    return GroupNorm32(min(32, channels), channels)


def zero_module(module: nn.Module) -> nn.Module:
    for p in module.parameters():
        p.detach().zero_()
    return module


class TimeEmbed(nn.Module):
    """Official name: ``time_embed.time_embed.{0,2}``."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.time_embed = nn.Sequential(nn.Linear(in_channels, out_channels), nn.SiLU(), nn.Linear(out_channels, out_channels))

    def forward(self, t_emb: torch.Tensor) -> torch.Tensor:
        return self.time_embed(t_emb)


class ResBlock(nn.Module):
    """Residual block with optional up/down sampling and scale-shift (AdaGN) time conditioning.

    ``emb_channels=None`` builds the texture encoder's variant, which sees no time embedding.
    """

    def __init__(self, channels: int, out_channels: int, emb_channels: int | None, dropout: float, resample: str | None = None):
        super().__init__()
        self.resample = resample  # None, "up" or "down": applied to both paths, before the first conv
        self.in_layers = nn.Sequential(normalization(channels), nn.SiLU(), nn.Conv2d(channels, out_channels, 3, padding=1))
        if emb_channels is not None:
            self.emb_layers = nn.Sequential(nn.SiLU(), nn.Linear(emb_channels, 2 * out_channels))
        self.out_layers = nn.Sequential(
            normalization(out_channels),
            nn.SiLU(),
            nn.Dropout(p=dropout),
            zero_module(nn.Conv2d(out_channels, out_channels, 3, padding=1)),
        )
        self.skip_connection = nn.Identity() if out_channels == channels else nn.Conv2d(channels, out_channels, 1)

    def _resample(self, x: torch.Tensor) -> torch.Tensor:
        if self.resample == "up":
            return F.interpolate(x, scale_factor=2, mode="nearest")
        if self.resample == "down":
            return F.avg_pool2d(x, kernel_size=2, stride=2)
        return x

    def forward(self, x: torch.Tensor, emb: torch.Tensor | None) -> torch.Tensor:
        # Same maths as the Sequentials, with the elementwise work fused or done in place where no
        # gradient needs the overwritten tensors: these passes are memory-bound, and at 256 px in
        # bf16 they cost as much as a quarter of what the convolutions do.
        inplace = not torch.is_grad_enabled()
        h = F.silu(self.in_layers[0](x), inplace=inplace)
        h = self.in_layers[2](self._resample(h))
        x = self._resample(x)
        h = self.out_layers[0](h)
        if emb is not None and hasattr(self, "emb_layers"):
            scale, shift = self.emb_layers(emb).to(h.dtype)[..., None, None].chunk(2, dim=1)
            h = torch.addcmul(shift, h, 1 + scale)
        h = self.out_layers[3](self.out_layers[2](F.silu(h, inplace=inplace)))
        skip = self.skip_connection(x)
        return h.add_(skip) if inplace else skip + h


class CrossAttentionBlock(nn.Module):
    """Queries from GroupNorm(x); keys/values from the texture encoder's feature at the same
    resolution (not normalised). The output projection starts at zero, so an untrained block is
    the identity. Official names: ``norm``, ``to_q``, ``to_kv``, ``proj_out2`` (1×1 Conv1d weights).
    """

    def __init__(self, channels: int, num_heads: int = 1):
        super().__init__()
        if channels % num_heads:
            raise ValueError(f"channels {channels} not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.norm = normalization(channels)
        self.to_q = nn.Conv1d(channels, channels, 1)
        self.to_kv = nn.Conv1d(channels, channels * 2, 1)
        self.proj_out2 = zero_module(nn.Conv1d(channels, channels, 1))

    def _split_heads(self, tokens: torch.Tensor) -> torch.Tensor:
        b, n, c = tokens.shape
        return tokens.view(b, n, self.num_heads, c // self.num_heads).transpose(1, 2)

    def texture_kv(self, feature: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Keys and values [B, heads, H·W, C/heads] from a texture feature [B, C, H, W]."""
        tokens = feature.flatten(2).transpose(1, 2)
        kv = F.linear(tokens, self.to_kv.weight[..., 0], self.to_kv.bias)
        k, v = kv.chunk(2, dim=-1)
        return self._split_heads(k), self._split_heads(v)

    def forward(self, x: torch.Tensor, kv: Tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        b, c, h, w = x.shape
        tokens = self.norm(x).flatten(2).transpose(1, 2)
        q = self._split_heads(F.linear(tokens, self.to_q.weight[..., 0], self.to_q.bias))
        k, v = (t.to(q.dtype) for t in kv)
        attended = F.scaled_dot_product_attention(q, k, v)
        attended = attended.transpose(1, 2).reshape(b, h * w, c)
        out = F.linear(attended, self.proj_out2.weight[..., 0], self.proj_out2.bias)
        return x + out.transpose(1, 2).reshape(b, c, h, w)


def _down_path(config: PIDMConfig, in_channels: int, emb_channels: int | None, with_attention: bool):
    """Blocks of the down path, shared by the denoiser and the texture encoder.

    Returns (blocks, channels of each block's output, resolution after the last block).
    """
    mc = config.model_channels
    ch = mc * config.channel_mult[0]
    blocks = nn.ModuleList([nn.ModuleList([nn.Conv2d(in_channels, ch, 3, padding=1)])])
    chans = [ch]
    resolution = config.image_size
    for level, mult in enumerate(config.channel_mult):
        for block_id in range(config.num_res_blocks):
            layers = nn.ModuleList([ResBlock(ch, mc * mult, emb_channels, config.dropout)])
            ch = mc * mult
            if with_attention and resolution in config.attention_resolutions and block_id == config.num_res_blocks - 1:
                layers.append(CrossAttentionBlock(ch, config.num_heads))
            blocks.append(layers)
            chans.append(ch)
        if level != len(config.channel_mult) - 1:
            blocks.append(nn.ModuleList([ResBlock(ch, ch, emb_channels, config.dropout, resample="down")]))
            chans.append(ch)
            resolution //= 2
    return blocks, chans, resolution


class TextureEncoder(nn.Module):
    """The denoiser's down path without time conditioning, fed the source image [B, 3, H, W]."""

    def __init__(self, config: PIDMConfig):
        super().__init__()
        self.input_blocks, _, _ = _down_path(config, config.image_channels, None, with_attention=False)

    def forward(self, source: torch.Tensor) -> list[torch.Tensor]:
        features = []
        h = source
        for block in self.input_blocks:
            for layer in block:
                h = layer(h, None) if isinstance(layer, ResBlock) else layer(h)
            features.append(h)
        return features


class PIDMNetwork(nn.Module):
    """Noise-predicting UNet f(x_t ⊕ pose_map, t; texture) → [B, 6, H, W] (ε and variance v)."""

    def __init__(self, config: PIDMConfig):
        super().__init__()
        self.config = config
        mc, emb_ch = config.model_channels, config.embed_channels
        self.time_embed = TimeEmbed(mc, emb_ch)
        self.input_blocks, skip_chans, resolution = _down_path(config, config.in_channels, emb_ch, with_attention=True)
        ch = skip_chans[-1]
        self.middle_block = nn.ModuleList([
            ResBlock(ch, ch, emb_ch, config.dropout),
            CrossAttentionBlock(ch, config.num_heads),
            ResBlock(ch, ch, emb_ch, config.dropout),
        ])
        self.output_blocks = nn.ModuleList()
        for level, mult in reversed(list(enumerate(config.channel_mult))):
            for i in range(config.num_res_blocks + 1):
                layers = nn.ModuleList([ResBlock(ch + skip_chans.pop(), mc * mult, emb_ch, config.dropout)])
                ch = mc * mult
                if resolution in config.attention_resolutions and i == config.num_res_blocks - 1:
                    layers.append(CrossAttentionBlock(ch, config.num_heads))
                if level and i == config.num_res_blocks:
                    layers.append(ResBlock(ch, ch, emb_ch, config.dropout, resample="up"))
                    resolution *= 2
                self.output_blocks.append(layers)
        self.out = nn.Sequential(normalization(ch), nn.SiLU(), zero_module(nn.Conv2d(ch, config.out_channels, 3, padding=1)))
        self.encoder = TextureEncoder(config)
        # Which texture feature each cross-attention block reads (official wiring: input block k
        # reads feature k, the middle block the last one, output block k feature N-1-k).
        n = len(self.input_blocks)
        self.texture_sources: dict[str, int] = {}
        for k, block in enumerate(self.input_blocks):
            if any(isinstance(m, CrossAttentionBlock) for m in block):
                self.texture_sources[f"input_blocks.{k}"] = k
        self.texture_sources["middle_block"] = n - 1
        for k, block in enumerate(self.output_blocks):
            if any(isinstance(m, CrossAttentionBlock) for m in block):
                self.texture_sources[f"output_blocks.{k}"] = n - 1 - k

    def _attention(self, name: str) -> CrossAttentionBlock:
        block = self.get_submodule(name)
        return next(m for m in block if isinstance(m, CrossAttentionBlock))

    def encode_texture(self, source: torch.Tensor) -> TextureKV:
        """Run the texture encoder once on source images [B, 3, H, W] in [-1, 1] and project every
        cross-attention block's keys and values, so that sampling never repeats this work."""
        features = self.encoder(source)
        return {name: self._attention(name).texture_kv(features[idx]) for name, idx in self.texture_sources.items()}

    @staticmethod
    def _run(block: nn.ModuleList, h: torch.Tensor, emb: torch.Tensor, kv) -> torch.Tensor:
        for layer in block:
            if isinstance(layer, ResBlock):
                h = layer(h, emb)
            elif isinstance(layer, CrossAttentionBlock):
                h = layer(h, kv)
            else:
                h = layer(h)
        return h

    def forward(self, x_t: torch.Tensor, pose_map: torch.Tensor, t: torch.Tensor, texture: TextureKV,
                branch_rows: torch.Tensor | None = None) -> torch.Tensor:
        """x_t [B, 3, H, W], pose_map [B, 20, H, W] in [0, 1], t [B] or [1] (may be fractional),
        texture from :meth:`encode_texture`. Returns [N, 6, H, W] with N the texture's batch.

        ``branch_rows`` serves guidance branches that differ only in their texture: everything before
        the first cross-attention is the same for them, so it runs once on the B distinct inputs
        and is then gathered to the N rows, row i reading input ``branch_rows[i]``. Without it
        N = B, one input per row.
        """
        param = self.out[2].weight
        if t.shape[0] > 1 and bool((t == t[0]).all()):
            # One timestep for every row (a sampling step): one time embedding, broadcast over the
            # rows. Cheaper, and a row's result then does not depend on how many rows the call
            # holds: the embedding's matrix products run on one row whatever the batch (chunked
            # sampling equals one big batch bit for bit).
            t = t[:1]
        emb = self.time_embed(timestep_embedding(t, self.config.model_channels).to(param.dtype))
        h = torch.cat([x_t, pose_map.to(x_t.dtype)], dim=1)
        shared = branch_rows is not None  # h, emb (and the skips below) still hold only the B inputs

        def widen(tensor: torch.Tensor) -> torch.Tensor:
            if tensor is emb and emb.shape[0] == 1:
                return emb  # broadcast to every row
            return tensor[branch_rows]  # advanced indexing keeps channels-last (index_select does not)

        skips = []
        for k, block in enumerate(self.input_blocks):
            kv = texture.get(f"input_blocks.{k}")
            if shared and kv is not None:
                h, emb, shared = widen(h), widen(emb), False
            h = self._run(block, h, emb, kv)
            skips.append((h, shared))
        if shared:
            h, emb = widen(h), widen(emb)
        h = self._run(self.middle_block, h, emb, texture["middle_block"])
        for k, block in enumerate(self.output_blocks):
            skip, narrow = skips.pop()
            h = self._run(block, torch.cat([h, widen(skip) if narrow else skip], dim=1), emb, texture.get(f"output_blocks.{k}"))
        return self.out(h)


def concat_texture(*textures: TextureKV) -> TextureKV:
    """Join texture key/value sets along the batch dimension (for batched guidance)."""
    return {name: tuple(torch.cat([tex[name][i] for tex in textures]) for i in range(2)) for name in textures[0]}


def repeat_texture(texture: TextureKV, repeats: int) -> TextureKV:
    """Repeat each item of a texture batch ``repeats`` times (one source, several poses)."""
    return {name: tuple(t.repeat_interleave(repeats, dim=0) for t in kv) for name, kv in texture.items()}
