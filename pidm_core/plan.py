"""The sampling plan: what one sampler run will do, worked out once before any work.

How many images the sources and poses give, how they are split into chunks that fit the free memory,
which seed each image draws its noise from, how many network rows a step runs, and the memory a chunk
needs. The library (:func:`pidm_core.pipeline.sample`) follows a plan; the ComfyUI node asks for the plan
first, tells the host how much memory to make room for, and hands the same plan to the sampler.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Optional

import torch

from . import chunk_timing, diffusion, guidance, memory
from .config import PIDMConfig
from .errors import plural
from .samplers import SamplingSettings


@dataclass(frozen=True)
class SamplingPlan:
    """``frames`` output images, sampled ``chunks`` at a time (output indices), each drawing its noise from
    ``seeds[i]``; ``guidance_rows`` network rows per image in the largest step (a guided one, unless the guidance
    interval holds no step); ``steps`` loop steps of a chunk from noise; ``image_rows``: network rows per image over all the
    steps (:func:`network_rows`); ``memory_bytes``: the activations of the largest chunk (what to make room for).

    ``follow_steps``: None, or (a pose sequence with ``sequence_denoise`` below 1) every frame after the first starts
    from the previous frame's image and runs this many steps, ``follow_rows`` network rows; the chunks are then one
    frame each, sampled one after another."""

    frames: int
    chunks: tuple[tuple[int, ...], ...]
    seeds: tuple[int, ...]
    guidance_rows: int
    steps: int
    image_rows: int
    memory_bytes: int
    follow_steps: Optional[int] = None
    follow_rows: int = 0

    @property
    def follows_previous(self) -> bool:
        """Frames after the first start from the previous frame's image (and so run one after another)."""
        return self.follow_steps is not None

    def batch(self, chunk: tuple[int, ...]) -> list[int]:
        """The output indices one chunk runs as a batch. A chunk of one frame from a longer run is two identical
        rows: CPU convolutions take another algorithm for a batch of one, whose last bits differ, and a frame's
        image must not depend on the chunking (frames that follow the previous one have no chunking to depend on)."""
        return list(chunk) * 2 if len(chunk) == 1 and self.frames > 1 and not self.follows_previous else list(chunk)

    def chunk_steps(self, number: int) -> int:
        """Loop steps of chunk ``number``."""
        return self.follow_steps if self.follows_previous and number > 0 else self.steps

    @property
    def total_steps(self) -> int:
        """Loop steps of the whole run (the progress bar's length)."""
        return sum(self.chunk_steps(number) for number in range(len(self.chunks)))

    @property
    def run_rows(self) -> int:
        """Network rows of the whole run, per image summed over the images (:func:`network_rows`)."""
        if self.follows_previous:
            return self.image_rows + (self.frames - 1) * self.follow_rows
        return self.image_rows * self.frames

    @property
    def largest_batch(self) -> int:
        return max(len(self.batch(chunk)) for chunk in self.chunks)


def output_count(n_sources: int, n_poses: int) -> int:
    """How many images B sources and N poses give: one source for every pose, one pose for every source, or
    pairs; ValueError naming both otherwise."""
    if n_sources == n_poses or n_poses == 1 or n_sources == 1:
        return max(n_sources, n_poses)
    raise ValueError(f"{n_sources} source images and {n_poses} poses: give one source, one pose, or as many poses "
                     "as sources")


def frame_chunks(n: int, chunk_size: int) -> list[list[int]]:
    """Output indices 0..n-1 split into runs of at most ``chunk_size``, as even as possible (7 by 3 → 3, 2, 2),
    so that a lone last frame is rare (see :meth:`SamplingPlan.batch`)."""
    count = -(-n // max(1, chunk_size))
    sizes = [n // count + (k < n % count) for k in range(count)]
    starts = [sum(sizes[:k]) for k in range(count)]
    return [list(range(start, start + size)) for start, size in zip(starts, sizes)]


def frame_seeds(settings: SamplingSettings, n: int) -> list[int]:
    """The noise seed of each output image: the same for all (shared noise: a steady look along a pose
    sequence), or the seed plus the frame's index (independent noise)."""
    if settings.frame_noise == "shared":
        return [settings.seed] * n
    return [(settings.seed + index) % 2**64 for index in range(n)]


def run_timesteps(settings: SamplingSettings, img2img: bool = False) -> list[int]:
    """The timesteps a run's loop steps through (``settings.denoise`` shortens them with an init image)."""
    return settings.sampler_record.timesteps(diffusion.linear_schedule(), settings.steps,
                                             settings.denoise if img2img else 1.0)


def follows_previous(settings: SamplingSettings, n_sources: int, n_poses: int, img2img: bool = False) -> bool:
    """Whether frames start from the previous frame's image: a pose sequence (one source, several poses) with
    ``sequence_denoise`` below 1 and no init image (an init image is where every frame starts)."""
    return settings.sequence_denoise < 1 and n_sources == 1 and n_poses > 1 and not img2img


def following_settings(settings: SamplingSettings) -> SamplingSettings:
    """The settings a frame that starts from the previous frame runs with: img2img at ``sequence_denoise``."""
    return replace(settings, denoise=settings.sequence_denoise)


def step_rows(settings: SamplingSettings, img2img: bool = False) -> list[int]:
    """Network rows per image at each step of a run: the guided rows inside the guidance interval, one outside
    (every sampler loop calls the denoiser once per step)."""
    return [guidance.rows_per_step(settings.guidance, settings.appearance_scale, t, settings.guidance_interval)
            for t in run_timesteps(settings, img2img)]


def network_rows(settings: SamplingSettings, img2img: bool = False) -> int:
    """Network rows one output image costs over a whole run (rows per step summed over the steps run; the texture
    encoder's one pass per source is not counted). What the quality-for-compute comparison counts; a lone frame
    of a longer run is sampled as two identical rows (:meth:`SamplingPlan.batch`), not counted here."""
    return sum(step_rows(settings, img2img))


def largest_step_rows(settings: SamplingSettings, img2img: bool = False) -> int:
    """Rows per image of the largest step of a run: what a chunk's memory is sized for."""
    return max(step_rows(settings, img2img), default=1)


def chunk_size_for(network, settings: SamplingSettings, n: int, free_bytes: Optional[int] = None,
                   steps: Optional[int] = None, rows: Optional[int] = None) -> int:
    """Frames sampled at once: ``settings.chunk_size`` (ValueError on the CPU if its estimated activations
    exceed the free memory), or (0) automatic: on the CPU, for a run of at least
    :data:`chunk_timing.MIN_FRAME_STEPS` frames × ``steps`` (None = ``settings.steps``), the size timed fastest
    per frame on this machine among those that fit the free memory, found from the memory rule's chunk
    (:mod:`pidm_core.chunk_timing`, timed once per process); otherwise that memory rule: the most frames whose
    activations fit the free memory (:func:`memory.auto_chunk_size`). ``free_bytes`` None = read it for the
    network's device. ``rows``: network rows per image of the largest step (None = :func:`largest_step_rows`
    without an init image)."""
    network = getattr(network, "network", network)
    parameter = next(network.parameters())
    rows = largest_step_rows(settings) if rows is None else rows
    if free_bytes is None:
        free_bytes = memory.free_memory_bytes(parameter.device)
    if settings.chunk_size:
        chunk = min(settings.chunk_size, n)
        if parameter.device.type == "cpu":
            check_cpu_chunk(network.config, settings.chunk_size, chunk, n, rows, parameter.dtype, free_bytes)
        return chunk
    steps = settings.steps if steps is None else steps
    by_memory = min(n, memory.auto_chunk_size(network.config, rows, parameter.dtype, free_bytes, parameter.device))
    if parameter.device.type == "cpu" and n * steps >= chunk_timing.MIN_FRAME_STEPS:
        budget = memory.chunk_budget_bytes(free_bytes)
        limit = min(n, memory.largest_chunk(network.config, rows, parameter.dtype, budget, memory.MAX_CHUNK_FRAMES))
        if limit >= 2:
            # the largest step is timed: a guided one, or the conditional row when the interval holds no step
            mode, scale = (settings.guidance, settings.appearance_scale) if rows > 1 else ("official", 1.0)
            return chunk_timing.measured_chunk_size(network, mode, scale, settings.pose_scale, rows, limit,
                                                    by_memory, n * steps)
    return by_memory


def check_cpu_chunk(config: PIDMConfig, chunk_size: int, chunk: int, n: int, rows: int, dtype: torch.dtype,
                    free_bytes: int) -> None:
    """An explicit chunk_size on the CPU may take the part of the free RAM an automatic chunk may
    (:data:`memory.FREE_FRACTION`, without the automatic chunk's speed cap): beyond it, refused before it runs,
    since there an overrun makes Linux kill the server with no message, or the allocation fails mid-run (a GPU
    raises a catchable out-of-memory error instead, and ComfyUI may still free other models)."""
    budget = memory.chunk_budget_bytes(free_bytes)
    needed = memory.sampling_memory_bytes(config, max(chunk, 2 if n > 1 else 1), rows, dtype)
    if needed <= budget:
        return
    fits = memory.largest_chunk(config, rows, dtype, budget)
    advice = f"set chunk_size to {fits} or lower" if fits else "free memory (close other programs, unload models)"
    raise ValueError(f"chunk_size {chunk_size} needs about {needed / 2**30:.1f} GiB for sampling "
                     f"{plural(chunk, 'frame')} at once, but a chunk may take at most {budget / 2**30:.1f} GiB on the "
                     f"CPU (half of the {free_bytes / 2**30:.1f} GiB free): {advice}, or set it to 0 (automatic)")


def plan_sampling(network, settings: SamplingSettings, n_sources: int, n_poses: int, *, img2img: bool = False,
                  free_bytes: Optional[int] = None) -> SamplingPlan:
    """The plan for sampling ``n_poses`` poses of ``n_sources`` encoded sources with ``network`` (or a loaded
    model holding one). ``img2img``: an init image is given (``settings.denoise`` then shortens the loop).
    ``free_bytes``: memory free for activations (None = read it for the network's device)."""
    network = getattr(network, "network", network)
    n = output_count(n_sources, n_poses)
    per_step = step_rows(settings, img2img)
    rows, steps = max(per_step, default=1), len(per_step)
    seeds = tuple(frame_seeds(settings, n))
    if follows_previous(settings, n_sources, n_poses, img2img):
        # each frame waits for the one before it: one frame at a time, no chunk to choose
        per_follow = step_rows(following_settings(settings), img2img=True)
        plan = SamplingPlan(n, tuple((k,) for k in range(n)), seeds, rows, steps, sum(per_step), memory_bytes=0,
                            follow_steps=len(per_follow), follow_rows=sum(per_follow))
    else:
        chunk = chunk_size_for(network, settings, n, free_bytes, steps, rows)
        chunks = tuple(tuple(frames) for frames in frame_chunks(n, chunk))
        plan = SamplingPlan(n, chunks, seeds, rows, steps, sum(per_step), memory_bytes=0)
    dtype = next(network.parameters()).dtype
    return replace(plan, memory_bytes=memory.sampling_memory_bytes(network.config, plan.largest_batch, rows, dtype))
