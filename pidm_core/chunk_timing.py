"""The CPU chunk size of a long sequence, chosen by timing the network on this machine.

Why a bigger chunk can be slower per frame on the CPU: a chunk's activations are a few large tensors per
layer, allocated and freed at every network call. glibc's malloc serves a block above its mmap threshold
(adaptive, at most 32 MiB on 64-bit Linux) with a fresh mmap and gives it back with munmap when it is freed,
so every page of it is faulted in and zeroed again at every call. The embedded model in fp32 on a 2-core AMD
EPYC: no minor page faults per chunk-step at 4 frames, about 2,000-32,000 at 8, 58,000 at 12, 142,000-183,000
at 17 and 335,000 at 24; none at any of these sizes with glibc's mmap and trim thresholds pinned high
(docs/video_output.md, ``benchmarks/video_output.py --alternate``). What that costs in time depends on the
machine (its page-fault cost, its caches, the dtype: bf16 halves the tensors), so the chunk is measured, not
assumed.

:func:`measured_chunk_size` starts from the chunk the memory rule gives (:func:`pidm_core.memory.auto_chunk_size`,
the automatic chunk before this module) and walks the list of :data:`CANDIDATES` towards smaller sizes while
they are clearly faster per frame, else towards larger ones while those are, timing one guided network call
per size (the cost of one sampler step). The timing may take at most :data:`BUDGET_SHARE` of the run's
estimated time, so a run just long enough to be timed tries one or two sizes and a long one more. Among the
sizes timed the fastest per frame is taken, the smallest of those within :data:`SAME_WITHIN` of it (less
memory for the same speed).

Timings are kept per process for each network config, dtype, device, guidance and thread count (a ComfyUI
server times on its first long run and reuses it); :func:`pidm_core.plan.chunk_size_for` asks when
``chunk_size`` is 0 on the CPU and the run has at least :data:`MIN_FRAME_STEPS` frames × steps. The images do
not depend on the chunk (every frame draws its own noise), only the time does.
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

# batch sizes the walk steps through: neighbours differ by more than the noise of one timing on a busy machine
CANDIDATES = (2, 4, 8, 16, 32, 64)
MIN_FRAME_STEPS = 1000  # frames × steps of a run worth timing for
BUDGET_SHARE = 0.05  # the timing may take this share of the run's estimated time
SAME_WITHIN = 0.05  # a size must be this much faster per frame to walk on; ties go to the smallest size
CALLS_PER_SIZE = 2  # network calls a size costs: an untimed one (oneDNN builds kernels for a new shape), one timed

_measured: dict[tuple, dict[int, float]] = {}  # key -> {batch: seconds per frame}
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
                        limit: int, start: int, frame_steps: int) -> int:
    """The batch size (at most ``limit``, the most that fits the memory) with the least time per frame on this
    machine, found by the walk of the module docstring from ``start`` (the memory rule's chunk) within the
    timing budget of a run of ``frame_steps`` frames × steps. ``limit`` < 2 gives ``limit``.

    The sizes the walk ended between are timed once more and keep their faster time: other work on the machine
    that comes and goes during the walk then moves one measurement less often than the choice."""
    if limit < 2:
        return max(1, limit)
    sizes = [b for b in CANDIDATES if b <= limit]
    begin = max([b for b in sizes if b <= start] or sizes[:1])
    key = _key(network, mode, rows)
    with _lock:  # one timing at a time: two at once would time each other
        found = _measured.setdefault(key, {})
        spent = 0.0  # seconds of network calls timed by this call (cached sizes cost nothing)

        def timed(batch: int) -> float:
            nonlocal spent
            if batch not in found:
                found[batch] = seconds_per_frame(network, mode, appearance_scale, pose_scale, batch)
                spent += CALLS_PER_SIZE * batch * found[batch]
            return found[batch]

        def affordable() -> bool:
            return spent < BUDGET_SHARE * frame_steps * min(found.values())

        here = sizes.index(begin)
        timed(begin)
        for step in (-1, 1):  # smaller sizes first: less memory
            at = here
            while 0 <= at + step < len(sizes) and affordable():
                if timed(sizes[at + step]) >= found[sizes[at]] * (1 - SAME_WITHIN):
                    break
                at += step
            if at != here:
                break
        usable = {b: t for b, t in found.items() if b <= limit}
        for batch in sorted(usable, key=usable.get)[:2]:  # the two fastest, once more
            if affordable():
                again = seconds_per_frame(network, mode, appearance_scale, pose_scale, batch, warmup=False)
                spent += batch * again
                usable[batch] = found[batch] = min(found[batch], again)
    fastest = min(usable.values())
    chosen = min(b for b, t in usable.items() if t <= fastest * (1 + SAME_WITHIN))
    LOG.info("PIDM chunk size %d (ms per frame-step by batch: %s; limit %d)", chosen,
             ", ".join(f"{b}: {1e3 * t:.1f}" for b, t in sorted(usable.items())), limit)
    return chosen


def timings(network, mode: str, rows: int) -> Optional[dict[int, float]]:
    """The seconds per frame measured so far for this network and guidance in this process (None: none)."""
    found = _measured.get(_key(network, mode, rows))
    return dict(found) if found else None


def forget() -> None:
    """Drop every measurement (tests; a machine whose load changed)."""
    with _lock:
        _measured.clear()
