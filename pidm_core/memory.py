"""How much memory a sampling call needs beyond the weights, estimated from the model config.

ComfyUI frees other models before it loads ours only if told how much room sampling needs
(``load_models_gpu(..., memory_required=...)``). One sampling call runs every pose at once, each
guided step in one batched network call of ``batch × guidance_rows`` rows, so the need grows with
the number of poses: about 0.27 GB per pose at 256 px in bf16 (measured on CPU, see
``tests/test_device_paths.py``), far above ComfyUI's default allowance for a 32-frame sequence.

The estimate follows the network's structure: the skip tensors the down path keeps for the up path
(rows before the first cross-attention are shared by branches that differ only in texture, so they
hold ``batch`` or ``2 × batch`` rows), the largest residual block's working tensors, attention, the
texture keys/values of every row, and the sampler's own fp32 tensors. It is meant to be an upper
bound of the allocated peak: the tests check it against a measured peak on CPU (never below it,
never more than twice it), and ``scripts/gpu_check.sh`` against ``torch.cuda.max_memory_allocated``.
"""

from __future__ import annotations

import torch

from .config import PIDMConfig

# Allocator rounding and fragmentation, convolution workspaces and the channels-last copies a
# backend may make: unmeasured on GPUs so far, so generous.
SAFETY_FACTOR = 1.25
SAMPLER_STATE_TENSORS = 10  # x, ε, x̂_0, noise, the update's temporaries and the blend, in fp32


def guidance_rows(mode: str, appearance_scale: float) -> int:
    """Network rows per image in one guided step: official guidance runs the conditional and the
    null-source branch (one row when its scale is 1), disentangled guidance three branches."""
    if mode == "disentangled":
        return 3
    return 1 if appearance_scale == 1.0 else 2


def _distinct_inputs(rows: int) -> int:
    # disentangled guidance feeds two pose maps (zero and real) to its three branches
    return 2 if rows == 3 else 1


def _levels(config: PIDMConfig, canvas: int):
    """(resolution, channels after each input block, has cross-attention) for the down path."""
    mc = config.model_channels
    ch = mc * config.channel_mult[0]
    blocks = [(canvas, ch, False)]
    resolution, native = canvas, config.image_size
    for level, mult in enumerate(config.channel_mult):
        for block_id in range(config.num_res_blocks):
            ch = mc * mult
            attention = native in config.attention_resolutions and block_id == config.num_res_blocks - 1
            blocks.append((resolution, ch, attention))
        if level != len(config.channel_mult) - 1:
            blocks.append((max(1, resolution // 2), ch, False))
            resolution, native = max(1, resolution // 2), native // 2
    return blocks


def sampling_memory_bytes(config: PIDMConfig, batch: int, guidance_rows: int, dtype: torch.dtype,
                          canvas: int | None = None) -> int:
    """Estimated peak bytes a sampling call allocates beyond the weights: ``batch`` images on a
    ``canvas``-pixel square (default the model's), ``guidance_rows`` network rows per image (see
    :func:`guidance_rows`), activations in ``dtype`` (the weights' dtype)."""
    if batch < 1 or guidance_rows not in (1, 2, 3):
        raise ValueError(f"batch must be ≥ 1 and guidance_rows 1, 2 or 3; got {batch} and {guidance_rows}")
    canvas = canvas or config.image_size
    size = torch.empty((), dtype=dtype).element_size()
    rows = batch * guidance_rows
    narrow = batch * _distinct_inputs(guidance_rows)

    blocks = _levels(config, canvas)
    first_attention = next((i for i, b in enumerate(blocks) if b[2]), len(blocks))
    skips = sum(ch * res * res * (narrow if i < first_attention else rows) for i, (res, ch, _) in enumerate(blocks))

    # Working tensors of the widest residual block: the up path's concatenated input (block input
    # plus skip), its normalised copy, two output-sized tensors and the previous output.
    working, attention, texture = 0, 0, 0
    ch = blocks[-1][1]
    for res, skip_ch, _ in reversed(blocks):  # the up path takes the skips back in reverse
        cin, cout = ch + skip_ch, skip_ch
        working = max(working, (2 * cin + 3 * cout) * res * res * rows)
        ch = cout
    for res, ch, has_attention in [*blocks, (blocks[-1][0], blocks[-1][1], True)]:
        if has_attention:
            tokens = res * res
            # q, the attended output and its projection; the score matrix if the backend materialises it
            attention = max(attention, rows * (3 * ch * tokens + config.num_heads * tokens * tokens))
            # keys and values of the texture (and the null texture) for every row, held all along;
            # each cross-attention block appears on the down and the up path
            texture += 2 * 2 * ch * tokens * rows

    activations = (skips + working + attention + texture) * size
    outputs = (2 * rows + 3 * batch) * config.out_channels * canvas * canvas * 4  # model output in fp32, guided mix
    sampler = SAMPLER_STATE_TENSORS * batch * config.image_channels * canvas * canvas * 4
    return int(SAFETY_FACTOR * (activations + outputs + sampler))
