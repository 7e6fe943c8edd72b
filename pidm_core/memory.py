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


# Automatic chunk size (pidm_core.pipeline.sample): activations of one chunk may take this part of the
# free memory. A long CPU run takes the size timed fastest on the machine within that part
# (pidm_core.chunk_timing: past a size, every call page-faults its large tensors in again); a short one,
# not worth timing, also stays under CPU_CHUNK_MAX_BYTES: per frame, chunks of 8-16 frames of the embedded
# model (about 120-230 MiB) were the fastest and 34 frames (about 500 MiB) 1.2-1.6x slower
# (benchmarks/bench_sequence.py --chunk-size sweep), and the rest of the machine needs its memory.
FREE_FRACTION = {"cpu": 0.5, "other": 0.8}
CPU_CHUNK_MAX_BYTES = 256 << 20
MAX_CHUNK_FRAMES = 64
UNKNOWN_FREE_BYTES = 1 << 30  # where free memory cannot be read


def auto_chunk_size(config: PIDMConfig, guidance_rows: int, dtype: torch.dtype, free_bytes: int,
                    device: torch.device | str = "cpu", canvas: int | None = None) -> int:
    """Frames to sample at once: the most (up to MAX_CHUNK_FRAMES) whose estimated activations
    (:func:`sampling_memory_bytes`) fit in the part of ``free_bytes`` that a chunk may take on
    ``device``; at least 2 where 2 fit in the free memory (a chunk of one frame runs as two rows
    anyway, see :func:`pidm_core.pipeline.sample`), else 1."""
    cpu = torch.device(device).type == "cpu"
    budget = FREE_FRACTION["cpu" if cpu else "other"] * max(0, free_bytes)
    if cpu:
        budget = min(budget, CPU_CHUNK_MAX_BYTES)
    fits = [b for b in range(1, MAX_CHUNK_FRAMES + 1)
            if sampling_memory_bytes(config, b, guidance_rows, dtype, canvas) <= budget]
    floor = 2 if sampling_memory_bytes(config, 2, guidance_rows, dtype, canvas) <= free_bytes else 1
    return max(fits[-1] if fits else 1, floor)


def chunk_budget_bytes(free_bytes: int) -> int:
    """The most an explicit chunk's activations may take on the CPU: the automatic chunk's part of the free RAM
    (FREE_FRACTION), without its speed cap (CPU_CHUNK_MAX_BYTES); the rest is for the machine and the outputs."""
    return int(FREE_FRACTION["cpu"] * max(0, free_bytes))


def largest_chunk(config: PIDMConfig, guidance_rows: int, dtype: torch.dtype, budget: int,
                  limit: int = 4096) -> int:
    """The most frames (up to ``limit``) whose sampling fits ``budget`` bytes (:func:`sampling_memory_bytes`),
    0 when not even one does. The estimate grows with the frames: a binary search."""
    low, high = 0, limit
    while low < high:
        middle = (low + high + 1) // 2
        if sampling_memory_bytes(config, middle, guidance_rows, dtype) <= budget:
            low = middle
        else:
            high = middle - 1
    return low


def free_memory_bytes(device: torch.device | str) -> int:
    """Memory free for activations on ``device``: available RAM on the CPU (psutil, else
    /proc/meminfo), the CUDA allocator's free memory on a GPU (the ComfyUI node passes the host's
    own figure instead), UNKNOWN_FREE_BYTES where neither can be read."""
    device = torch.device(device)
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free)
    if device.type != "cpu":
        return UNKNOWN_FREE_BYTES
    try:
        import psutil
        return int(psutil.virtual_memory().available)
    except ImportError:
        pass
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return UNKNOWN_FREE_BYTES
