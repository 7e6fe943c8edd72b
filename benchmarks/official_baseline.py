"""The official PIDM sampling algorithm, re-implemented faithfully over our network's modules.

This is the baseline every speed-up is measured against. It reproduces what ankanbhunia/PIDM does
at inference (``diffusion.py`` ``ddim_steps``, ``models/unet_autoenc.py`` ``forward`` and
``forward_with_cond_scale``, ``models/blocks.py`` ``AttentionBlock`` / ``QKVAttentionLegacy``):

- the texture encoder runs once per source image and once for the null source (a zero image), and
  its multi-scale features are kept;
- each guided step makes TWO separate fp32 forward passes (source, then null source) and combines
  them as null + w·(cond − null) with w = 2, on all 6 output channels;
- inside every forward, each cross-attention block projects keys/values from the raw encoder
  feature again (``to_kv`` is a 1×1 Conv1d on [B, C, T]), and attends with the legacy QKV attention:
  q and k each scaled by ch^-1/4, einsum, softmax in fp32, einsum;
- feature wiring: input block k reads feature k, the middle block the last feature, output block k
  feature −k−1;
- DDIM (η = 0) over ``range(0, 1000, 1000 // n)`` with ᾱ looked up with a leading 1 for t = −1 and
  x̂_0 not clipped.

The keyword switches of :func:`official_forward` (``kv``, ``sdpa``) turn single optimisations on so
that ``bench_sampler.py`` can measure each alone; with none of them it is the official algorithm.
"""

from __future__ import annotations

import math
from typing import Dict, List, Optional, Sequence

import torch
import torch.nn.functional as F

from pidm_core.network import CrossAttentionBlock, GroupNorm32, PIDMNetwork, ResBlock, timestep_embedding

GUIDANCE_SCALE = 2.0  # hard-coded in the official ddim_steps (cond_scale=2)

# Per cross-attention block (named "input_blocks.11", "middle_block", "output_blocks.1", ...):
# keys and values already projected, official layout [B, 2C, T].
OfficialKV = Dict[str, torch.Tensor]


def official_norms(network: PIDMNetwork) -> PIDMNetwork:
    """Make every GroupNorm of ``network`` take the official fp32 round trip (``x.float()``, then
    back) also for fp16/bf16 activations, instead of our direct half-precision kernel call."""
    for module in network.modules():
        if isinstance(module, GroupNorm32):
            module.upcast = True
    return network


def legacy_qkv_attention(qkv: torch.Tensor, num_heads: int) -> torch.Tensor:
    """``QKVAttentionLegacy``: qkv [B, heads·3·ch, T] → [B, heads·ch, T]."""
    bs, width, length = qkv.shape
    ch = width // (3 * num_heads)
    q, k, v = qkv.reshape(bs * num_heads, ch * 3, length).split(ch, dim=1)
    scale = 1 / math.sqrt(math.sqrt(ch))
    weight = torch.einsum("bct,bcs->bts", q * scale, k * scale)
    weight = torch.softmax(weight.float(), dim=-1).type(weight.dtype)
    a = torch.einsum("bts,bcs->bct", weight, v)
    return a.reshape(bs, -1, length)


def project_kv(block: CrossAttentionBlock, feature: torch.Tensor) -> torch.Tensor:
    """The official ``to_kv(cond)``: encoder feature [B, C, H, W] → keys and values [B, 2C, H·W]."""
    b, c = feature.shape[:2]
    return F.conv1d(feature.reshape(b, c, -1), block.to_kv.weight, block.to_kv.bias)


def _sdpa(q: torch.Tensor, kv: torch.Tensor, num_heads: int) -> torch.Tensor:
    """scaled_dot_product_attention on the official layout: q [B, C, T], kv [B, 2C, T] → [B, C, T]."""
    b, c, t = q.shape
    k, v = kv.chunk(2, dim=1)

    def heads(x):  # [B, C, T] → [B, heads, T, C/heads]
        return x.reshape(b, num_heads, c // num_heads, -1).transpose(2, 3)

    out = F.scaled_dot_product_attention(heads(q), heads(k), heads(v))
    return out.transpose(2, 3).reshape(b, c, t)


def cross_attention(block: CrossAttentionBlock, x: torch.Tensor, feature: Optional[torch.Tensor],
                    kv: Optional[torch.Tensor] = None, sdpa: bool = False) -> torch.Tensor:
    """The official ``AttentionBlock._forward`` (cross-attention branch) on our block's weights.
    ``kv`` given: keys/values precomputed (optimisation 1); ``sdpa``: fused attention (optimisation 2)."""
    b, c, *spatial = x.shape
    x = x.reshape(b, c, -1)
    if kv is None:
        kv = project_kv(block, feature)
    q = F.conv1d(block.norm(x), block.to_q.weight, block.to_q.bias)
    kv = kv.to(q.dtype)
    if sdpa:
        h = _sdpa(q, kv, block.num_heads)
    else:
        h = legacy_qkv_attention(torch.cat([q, kv], 1), block.num_heads)
    h = F.conv1d(h, block.proj_out2.weight, block.proj_out2.bias)
    return (x + h).reshape(b, c, *spatial)


def _attention_names(network: PIDMNetwork) -> Dict[str, int]:
    """Cross-attention block name → index of the encoder feature it reads (official wiring)."""
    n = len(network.input_blocks)
    names = {}
    for k, block in enumerate(network.input_blocks):
        if any(isinstance(m, CrossAttentionBlock) for m in block):
            names[f"input_blocks.{k}"] = k
    names["middle_block"] = n - 1
    for k, block in enumerate(network.output_blocks):
        if any(isinstance(m, CrossAttentionBlock) for m in block):
            names[f"output_blocks.{k}"] = n - 1 - k
    return names


@torch.no_grad()
def encoder_features(network: PIDMNetwork, source: torch.Tensor) -> List[torch.Tensor]:
    """``model.encode(x_cond)['cond']``: the texture encoder's feature after every input block."""
    return network.encoder(source.to(network.out[2].weight.dtype))


@torch.no_grad()
def project_all_kv(network: PIDMNetwork, features: Sequence[torch.Tensor]) -> OfficialKV:
    """Keys/values of every cross-attention block, projected once (optimisation 1)."""
    return {name: project_kv(_block_attention(network, name), features[idx])
            for name, idx in _attention_names(network).items()}


def _block_attention(network: PIDMNetwork, name: str) -> CrossAttentionBlock:
    return next(m for m in network.get_submodule(name) if isinstance(m, CrossAttentionBlock))


def _run(block, name: str, h, emb, feature, kv: Optional[OfficialKV], sdpa: bool):
    for layer in block:
        if isinstance(layer, ResBlock):
            h = layer(h, emb)
        elif isinstance(layer, CrossAttentionBlock):
            h = cross_attention(layer, h, feature, None if kv is None else kv[name], sdpa)
        else:
            h = layer(h)
    return h


@torch.no_grad()
def official_forward(network: PIDMNetwork, x_t: torch.Tensor, pose_map: torch.Tensor, t: torch.Tensor,
                     features: Optional[Sequence[torch.Tensor]], *, kv: Optional[OfficialKV] = None,
                     sdpa: bool = False) -> torch.Tensor:
    """One forward pass as ``BeatGANsAutoencModel.forward`` with ``cond`` given: x_t [B, 3, H, W],
    pose_map [B, 20, H, W], t [B], encoder features of batch B → [B, 6, H, W] in the weights' dtype.
    Runs in the network's dtype (the official code: fp32)."""
    dtype = network.out[2].weight.dtype
    emb = network.time_embed(timestep_embedding(t.float(), network.config.model_channels).to(dtype))
    h = torch.cat([x_t, pose_map.to(x_t.dtype)], dim=1).to(dtype)
    n = len(network.input_blocks)

    def feature(i):
        return None if features is None else features[i]

    skips = []
    for k, block in enumerate(network.input_blocks):
        h = _run(block, f"input_blocks.{k}", h, emb, feature(k), kv, sdpa)
        skips.append(h)
    h = _run(network.middle_block, "middle_block", h, emb, feature(n - 1), kv, sdpa)
    for k, block in enumerate(network.output_blocks):
        h = _run(block, f"output_blocks.{k}", torch.cat([h, skips.pop()], dim=1), emb, feature(n - 1 - k), kv, sdpa)
    return network.out(h)


@torch.no_grad()
def official_guided(network: PIDMNetwork, x_t: torch.Tensor, pose_map: torch.Tensor, t: torch.Tensor,
                    features, null_features, *, kv: Optional[OfficialKV] = None,
                    null_kv: Optional[OfficialKV] = None, sdpa: bool = False,
                    scale: float = GUIDANCE_SCALE) -> torch.Tensor:
    """``forward_with_cond_scale``: two separate forward passes, null + (cond − null)·scale → [B, 6, H, W] fp32."""
    cond = official_forward(network, x_t, pose_map, t, features, kv=kv, sdpa=sdpa).float()
    if scale == 1:
        return cond
    null = official_forward(network, x_t, pose_map, t, null_features, kv=null_kv, sdpa=sdpa).float()
    return null + (cond - null) * scale


@torch.no_grad()
def batched_guided(network: PIDMNetwork, x_t: torch.Tensor, pose_map: torch.Tensor, t: torch.Tensor,
                   features_2, *, kv_2: Optional[OfficialKV] = None, sdpa: bool = False,
                   scale: float = GUIDANCE_SCALE) -> torch.Tensor:
    """The same guidance as ONE forward pass of batch 2B (optimisation 3). ``features_2`` /
    ``kv_2``: source and null-source conditioning concatenated along the batch, built once."""
    out = official_forward(network, x_t.repeat(2, 1, 1, 1), pose_map.repeat(2, 1, 1, 1), t.repeat(2),
                           features_2, kv=kv_2, sdpa=sdpa).float()
    cond, null = out.chunk(2)
    return null + (cond - null) * scale


def concat_features(a: Sequence[torch.Tensor], b: Sequence[torch.Tensor]) -> List[torch.Tensor]:
    return [torch.cat([x, y]) for x, y in zip(a, b)]


def compute_alpha(betas: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """The official ``compute_alpha``: ᾱ_t with a leading 1 for t = −1, shaped [B, 1, 1, 1]."""
    betas = torch.cat([torch.zeros(1, dtype=betas.dtype), betas])
    return (1 - betas).cumprod(dim=0).index_select(0, t.long().cpu() + 1).view(-1, 1, 1, 1)


@torch.no_grad()
def official_ddim_sample(network: PIDMNetwork, source: torch.Tensor, pose_map: torch.Tensor, x_T: torch.Tensor,
                         steps: int, scale: float = GUIDANCE_SCALE) -> torch.Tensor:
    """``ddim_steps`` (η = 0): encode the source and the zero image once, then per step two separate
    forward passes and the DDIM update. source [B, 3, S, S] in [-1, 1], pose_map [B, 20, S, S],
    x_T [B, 3, S, S] → x_0 [B, 3, S, S] (fp32, not clipped)."""
    betas = torch.linspace(1e-4, 2e-2, 1000, dtype=torch.float64)  # the official linear schedule
    features = encoder_features(network, source)
    null_features = encoder_features(network, torch.zeros_like(source))
    seq = list(range(0, 1000, 1000 // steps))
    seq_next = [-1] + seq[:-1]
    x = x_T.float()
    n = x.shape[0]
    for i, j in zip(reversed(seq), reversed(seq_next)):
        t = torch.full((n,), float(i), device=x.device)
        at = compute_alpha(betas, torch.full((n,), i)).float().to(x.device)
        at_next = compute_alpha(betas, torch.full((n,), j)).float().to(x.device)
        out = official_guided(network, x, pose_map, t, features, null_features, scale=scale)
        et = out[:, :3]
        if network.config.prediction == "v":  # the official code knows only ε; our v-models' output is converted
            et = at.sqrt() * et + (1 - at).sqrt() * x
        x0 = (x - et * (1 - at).sqrt()) / at.sqrt()
        c2 = (1 - at_next).sqrt()  # η = 0: c1 = 0
        x = at_next.sqrt() * x0 + c2 * et
    return x


def official_unused_tensors(network: PIDMNetwork) -> Dict[str, tuple]:
    """Shapes of the tensors that the official checkpoint holds but the forward pass never uses
    (184 tensors, 17.98 M parameters for deepfashion_256): each residual block's
    ``cond_emb_layers.1`` [C, C], the encoder blocks' ``emb_layers.1`` [2C, E], every attention
    block's self-attention ``qkv`` [3C, C, 1] and ``proj_out1`` [C, C, 1], and the encoder's
    ``time_embed``. Used to measure what dropping them at load saves."""
    config = network.config
    emb = config.embed_channels
    shapes: Dict[str, tuple] = {}
    for name, module in network.named_modules():
        if isinstance(module, ResBlock):
            c = module.out_layers[-1].out_channels
            shapes[f"{name}.cond_emb_layers.1.weight"] = (c, c)
            shapes[f"{name}.cond_emb_layers.1.bias"] = (c,)
            if name.startswith("encoder."):
                shapes[f"{name}.emb_layers.1.weight"] = (2 * c, emb)
                shapes[f"{name}.emb_layers.1.bias"] = (2 * c,)
        elif isinstance(module, CrossAttentionBlock):
            c = module.to_q.out_channels
            shapes[f"{name}.qkv.weight"] = (3 * c, c, 1)
            shapes[f"{name}.qkv.bias"] = (3 * c,)
            shapes[f"{name}.proj_out1.weight"] = (c, c, 1)
            shapes[f"{name}.proj_out1.bias"] = (c,)
    mc = config.model_channels
    shapes.update({"encoder.time_embed.0.weight": (emb, mc), "encoder.time_embed.0.bias": (emb,),
                   "encoder.time_embed.2.weight": (emb, emb), "encoder.time_embed.2.bias": (emb,)})
    return shapes
