"""The CPU chunk size of a long sequence, chosen by timing the network on this machine.

Why a bigger chunk can be slower per frame on the CPU: a chunk's activations are a few large tensors per
layer, allocated and freed at every network call. glibc's malloc serves a block above its mmap threshold
(adaptive, at most 32 MiB on 64-bit Linux) with a fresh mmap and gives it back with munmap when it is freed,
so every page of it is faulted in and zeroed again at every call. Once a chunk's tensors pass that size, time
goes into page faults instead of arithmetic: the embedded model in fp32 on a 2-core AMD EPYC took 223,000 minor
page faults per 17-frame chunk-step against 35,000 per 8-frame one, and 66 against 46 ms per frame; with the
threshold pinned high (``MALLOC_MMAP_THRESHOLD_``) the 17-frame chunk took 3,900 faults and 38 ms per frame
(docs/video_output.md). Where the cliff lies depends on the network, the canvas, the dtype, the allocator and
the cache sizes, so it is measured, not assumed: :func:`measured_chunk_size` times one guided network call at
a few batch sizes (smallest first, stopping once they get clearly slower) and keeps the fastest per frame.

Measured once per process for each network config, dtype, device, guidance rows and thread count (a
ComfyUI server measures on its first long run and reuses it); used by :func:`pidm_core.plan.chunk_size_for`
when ``chunk_size`` is 0 on the CPU and the run is long enough for the measurement (a few seconds) to pay.
The images do not depend on the chunk (every frame draws its own noise), only the time does.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Optional

import torch

from . import guidance
from .network import repeat_texture

LOG = logging.getLogger(__name__)

CANDIDATES = (2, 4, 8, 12, 16, 24, 32, 48, 64)  # batch sizes timed, smallest first
MIN_FRAME_STEPS = 1000  # frames × steps of a run that is worth measuring for (the measurement: ~200 frame-calls)
STOP_RATIO = 1.3  # a size this much slower per frame than the best so far ends the search
SAME_WITHIN = 0.05  # sizes within this share of the fastest count as ties: the smallest of them is taken

_measured: dict[tuple, dict[int, float]] = {}  # key -> {batch: seconds per frame}
_stopped: set[tuple] = set()  # keys whose search ended because sizes got slower (larger ones are not timed)
_lock = threading.Lock()


def _key(network, mode: str, rows: int) -> tuple:
    parameter = next(network.parameters())
    return (network.config, parameter.dtype, str(parameter.device), mode, rows, torch.get_num_threads())


@torch.no_grad()
def seconds_per_frame(network, mode: str, appearance_scale: float, pose_scale: float, batch: int,
                      calls: int = 1, warmup: bool = True) -> float:
    """Wall time of one guided network call (what one sampler step costs) for ``batch`` frames, divided by
    ``batch``: the fastest of ``calls`` timed calls, after an untimed one when ``warmup`` (a new shape: oneDNN
    builds its kernels). Inputs are zeros and fixed noise: the time does not depend on their values."""
    parameter = next(network.parameters())
    config, device, dtype = network.config, parameter.device, parameter.dtype
    size = config.image_size
    null = network.encode_texture(torch.zeros((1, config.image_channels, size, size), device=device, dtype=dtype))
    texture = repeat_texture(null, batch)
    pose = torch.zeros((batch, config.pose_channels, size, size), device=device, dtype=dtype)
    denoise = guidance.build_denoiser(mode, network, pose, texture, texture, pose_scale=pose_scale,
                                      appearance_scale=appearance_scale)
    x = torch.randn((batch, config.image_channels, size, size), generator=torch.Generator().manual_seed(0)).to(device)
    t = torch.full((batch,), 500, device=device)
    best = float("inf")
    for call in range(calls + int(warmup)):
        start = time.perf_counter()
        denoise(x, t)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if call or not warmup:
            best = min(best, time.perf_counter() - start)
    return best / batch


def measured_chunk_size(network, mode: str, appearance_scale: float, pose_scale: float, rows: int,
                        limit: int) -> int:
    """The batch size (at most ``limit``, the most that fits the memory) with the least time per frame on this
    machine; sizes are timed once per process (module docstring). ``limit`` < 2 gives ``limit``.

    Two passes: the sizes in ascending order (each after an untimed call), stopping at one :data:`STOP_RATIO`
    slower than the best, then each of them once more, keeping its faster time. Other work on the machine
    that comes and goes during the first pass then moves one measurement, not the choice."""
    if limit < 2:
        return max(1, limit)
    key = _key(network, mode, rows)
    with _lock:  # one measurement at a time: two at once would time each other
        found = _measured.setdefault(key, {})
        timed = []
        for batch in (b for b in CANDIDATES if b <= limit):
            if key in _stopped:
                break
            if batch in found:
                continue
            found[batch] = seconds_per_frame(network, mode, appearance_scale, pose_scale, batch)
            timed.append(batch)
            if found[batch] > STOP_RATIO * min(found.values()):
                _stopped.add(key)
        for batch in timed:
            again = seconds_per_frame(network, mode, appearance_scale, pose_scale, batch, warmup=False)
            found[batch] = min(found[batch], again)
        usable = {b: s for b, s in found.items() if b <= limit}
    fastest = min(usable.values())
    chosen = min(b for b, s in usable.items() if s <= fastest * (1 + SAME_WITHIN))
    LOG.info("PIDM chunk size %d (ms per frame-step by batch: %s; limit %d)", chosen,
             ", ".join(f"{b}: {1e3 * s:.1f}" for b, s in sorted(usable.items())), limit)
    return chosen


def timings(network, mode: str, rows: int) -> Optional[dict[int, float]]:
    """The seconds per frame measured so far for this network and guidance in this process (None: none)."""
    found = _measured.get(_key(network, mode, rows))
    return dict(found) if found else None


def forget() -> None:
    """Drop every measurement (tests; a machine whose load changed)."""
    with _lock:
        _measured.clear()
        _stopped.clear()
