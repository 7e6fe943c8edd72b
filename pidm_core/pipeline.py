"""From photos and poses to images: fit, encode once, sample, restore.

Two levels:

- :func:`generate_from_tensors` works on model-canvas tensors (images [-1, 1], pose maps [0, 1]);
  the trainer, the evaluator and the benchmarks use it.
- :func:`encode_source` + :func:`sample` (and :func:`generate`, both at once) take images of any size
  as float [B, H, W, 3] in [0, 1] (ComfyUI's IMAGE layout) and :class:`~pidm_core.pose.Pose` objects,
  and return images in the source's size and aspect.

Every option of a run is one :class:`~pidm_core.samplers.SamplingSettings`, passed on unchanged.
How photos, masks and poses are put on the model's square canvas and back: one
:class:`~pidm_core.placement.Placement` per source photo, made by the fit (pad, stretch, person), in
:attr:`SourceTexture.placements`; input checks: :mod:`pidm_core.checks`.

Framing (``fit_mode="person"``, the default when a source pose is given): each source photo is cropped
around its person the way the model's training data framed people (:mod:`pidm_core.framing`); target
poses are framed with the source person's size, and the sampler returns the framed canvas (in the
training photos' aspect) for Put Back Into Photo.

Batch rules: B sources and N poses give max(B, N) images when B == N (pairwise), B == 1 (one
person, many poses: a sequence becomes frames) or N == 1 (one pose, many people); anything else is
an error naming both sizes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable, Iterator, Optional, Sequence

import numpy as np
import torch

from . import diffusion, guidance, memory, samplers
from .checks import check_images, check_mask, check_masks, check_pose_in_photo, check_poses, pose_on_photo
from .config import PIDMConfig
from .errors import check_choice, explain_out_of_memory, plural
from .fit_modes import FIT_MODES
from .framing import Framing, frame_checked_person, framing_for, photo_thumbnail, targets_placement
from .network import PIDMNetwork, TextureKV, concat_texture, repeat_texture
from .plan import SamplingPlan, following_settings, frame_chunks, output_count, plan_sampling
from .placement import Placement, fitted_placement, pose_maps
from .pose.keypoints import Pose
from .samplers import DEFAULT_SETTINGS, SamplingSettings

LOG = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------
# Tensor level


def appearance_blend(schedule: diffusion.Schedule, reference: torch.Tensor, mask: torch.Tensor,
                     noise: samplers.BatchNoise) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """RePaint-style appearance control, as the official loop applies it after every step:
    x ← x·mask + q_sample(reference, t)·(1 − mask). mask [B, 1, H, W]: 1 = generate, 0 = keep reference."""

    def blend(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return x * mask + diffusion.q_sample(schedule, reference, t, noise(x)) * (1 - mask)

    return blend


@torch.no_grad()
def encode_texture_pair(network: PIDMNetwork, source: torch.Tensor) -> tuple[TextureKV, TextureKV]:
    """Texture keys/values of the sources [B, 3, S, S] and of the null source (a zero image, batch 1)."""
    dtype = next(network.parameters()).dtype
    source = source.to(dtype)
    return network.encode_texture(source), network.encode_texture(torch.zeros_like(source[:1]))


@torch.no_grad()
def sample_tensors(network: PIDMNetwork, texture: TextureKV, null_texture: TextureKV, pose_map: torch.Tensor,
                   settings: SamplingSettings = DEFAULT_SETTINGS, *, seeds: Optional[Sequence[int]] = None,
                   init: Optional[torch.Tensor] = None, mask: Optional[torch.Tensor] = None,
                   reference: Optional[torch.Tensor] = None, callback: samplers.Callback = None,
                   noise_as_full_run: bool = False) -> torch.Tensor:
    """Sample images [B, 3, S, S] in [-1, 1] for pose maps [B, 20, S, S] and textures of batch B.

    seeds: one per item; by default every item gets ``settings.seed`` (the same noise, so a pose
    sequence keeps a steady look). init: img2img start [B, 3, S, S] (``settings.denoise`` < 1 keeps
    that fraction of the schedule). mask/reference: appearance editing ([B, 1, S, S], 1 = generate;
    reference [B, 3, S, S]). noise_as_full_run (img2img): the init is noised with the draw a run from pure
    noise starts with, and each later step gets the draw that run's step would get, so frames that start from
    the previous frame see the noise the first frame saw at every step (a different draw there shows as a jump).
    """
    b, device = pose_map.shape[0], pose_map.device
    noise = samplers.BatchNoise([settings.seed] * b if seeds is None else [int(s) for s in seeds], device)
    schedule = diffusion.linear_schedule()
    sampler = settings.sampler_record
    timesteps = sampler.timesteps(schedule, settings.steps, 1.0 if init is None else settings.denoise)
    if init is None:
        x = noise(torch.empty((b, 3, pose_map.shape[2], pose_map.shape[3]), device=device))
    elif not timesteps:
        return init.float().clone()
    else:
        start_noise = noise(init.float())
        if noise_as_full_run:
            skipped = len(sampler.timesteps(schedule, settings.steps)) - len(timesteps)
            per_step = sampler.noise_draws(**settings.sampler_options()) + (mask is not None)
            noise.skip(skipped * per_step, init)
        x = diffusion.q_sample(schedule, init.float(), torch.full((b,), timesteps[0], device=device), start_noise)
    denoiser = guidance.build_denoiser(settings.guidance, network, pose_map.to(next(network.parameters()).dtype),
                                       texture, repeat_texture(null_texture, b), pose_scale=settings.pose_scale,
                                       appearance_scale=settings.appearance_scale,
                                       interval=settings.guidance_interval)
    denoiser = diffusion.eps_denoiser(denoiser, schedule, network.config.prediction)
    blend = None
    if mask is not None:
        if reference is None:
            raise ValueError("an appearance mask needs a reference image")
        blend = appearance_blend(schedule, reference.float(), mask.float(), noise)
    return sampler.loop(denoiser, x, timesteps, schedule=schedule, noise=noise, callback=callback, blend=blend,
                        **settings.sampler_options())


def generate_from_tensors(network: PIDMNetwork, source: torch.Tensor, pose_map: torch.Tensor,
                          settings: SamplingSettings = DEFAULT_SETTINGS, *,
                          seeds: Optional[Sequence[int]] = None) -> torch.Tensor:
    """Encode sources [B, 3, S, S] and sample for pose maps [B, 20, S, S]; see :func:`sample_tensors`."""
    texture, null_texture = encode_texture_pair(network, source)
    return sample_tensors(network, texture, null_texture, pose_map, settings, seeds=seeds)


# ---------------------------------------------------------------------------------------------
# Images of any size


@dataclass
class SourceTexture:
    """Everything computed once per source batch: texture keys/values for the sources and for the
    null source, the fitted sources, and where each source photo lies on the canvas (its placement)."""

    texture: TextureKV
    null_texture: TextureKV
    source: torch.Tensor  # [B, 3, S, S] in [-1, 1]
    placements: tuple[Placement, ...]  # one per source: photo ↔ canvas
    config: Optional[PIDMConfig] = None  # of the network that encoded it: another network cannot read it
    photo_thumbnails: Optional[np.ndarray] = None  # fit "person": [B, 16, 16, 3], which photo each source was

    @property
    def batch_size(self) -> int:
        return self.source.shape[0]

    @property
    def fit_mode(self) -> str:
        return self.placements[0].fit

    @property
    def size(self) -> int:
        """The model canvas's side."""
        return self.placements[0].size

    @property
    def framing(self) -> Optional[Framing]:
        """Fit "person": how the model frames people (None for pad and stretch)."""
        return self.placements[0].framing


def default_fit_mode(model) -> str:
    return str(getattr(model.info, "extra", {}).get("fit", "pad")) if hasattr(model, "info") else "pad"


def _network(model) -> PIDMNetwork:
    return model.network if hasattr(model, "network") else model


SOURCE_FIT_MODES = ("auto", "person", *FIT_MODES)


def encode_source(model, images: torch.Tensor, mask: Optional[torch.Tensor] = None, fit_mode: str = "auto",
                  source_poses: Optional[Sequence[Pose]] = None, framing: Optional[Framing] = None) -> SourceTexture:
    """Fit source IMAGE [B, H, W, 3] to the model and run the texture encoder once.

    mask [B, H, W] (optional): 1 = the person; elsewhere the source is replaced by the null value
    (0 in [-1, 1]) so the background does not leak into the texture features (with fit "person" and a
    white/colour framing, by that colour instead). One mask for every image or one per image, in the
    image's size or aspect ratio (resized).
    fit_mode: "person" crops each photo around the person of ``source_poses`` (one per image, in its
    pixels) as the model's ``framing`` says (default: :func:`~pidm_core.framing.framing_for` the model);
    "auto" is "person" when source poses are given, else the model's own pad/stretch.
    """
    check_choice("fit", fit_mode, SOURCE_FIT_MODES)
    network = _network(model)
    if fit_mode == "auto" and source_poses is not None:
        source_poses = list(source_poses)
        if all(isinstance(p, Pose) and p.present.any() for p in source_poses):
            fit_mode = "person"
        else:
            LOG.warning("a source pose has no person: the photo is fitted whole (fit %s), not framed",
                        default_fit_mode(model))
    if fit_mode == "person":
        return _encode_framed(model, network, images, mask, source_poses, framing)
    mode = default_fit_mode(model) if fit_mode == "auto" else fit_mode
    photos = check_images(images, "source image")
    count, height, width = photos.shape[:3]
    placement = fitted_placement(height, width, network.config.image_size, mode)
    masks = None if mask is None else check_masks(mask, "source mask", count, "source image", (width, height))
    source = placement.canvas_images(photos, masks).to(next(network.parameters()).device)
    return _encode(network, source, (placement,) * count)


def _encode(network: PIDMNetwork, source: torch.Tensor, placements: tuple[Placement, ...],
            thumbnails: Optional[np.ndarray] = None) -> SourceTexture:
    """Texture keys/values of fitted sources [B, 3, S, S] (on the model's device) and of the null source."""
    device = source.device
    parameter = next(network.parameters())
    # the encoder is the denoiser's down path on one row: a sampling chunk of one guidance row bounds it
    chunk = memory.auto_chunk_size(network.config, 1, parameter.dtype, memory.free_memory_bytes(device), device)
    parts = []
    for frames in frame_chunks(source.shape[0], chunk):
        what = f"encoding {plural(len(frames), 'source image')} at {source.shape[-1]}x{source.shape[-1]}"
        with explain_out_of_memory(what, parameter.dtype):
            parts.append(network.encode_texture(source[frames[0]:frames[-1] + 1].to(parameter.dtype)))
    texture = parts[0] if len(parts) == 1 else concat_texture(*parts)
    with explain_out_of_memory("encoding the null source", parameter.dtype):
        null_texture = network.encode_texture(torch.zeros_like(source[:1], dtype=parameter.dtype))
    return SourceTexture(texture, null_texture, source, placements, network.config, thumbnails)


def _encode_framed(model, network: PIDMNetwork, images: torch.Tensor, mask: Optional[torch.Tensor],
                   source_poses: Optional[Sequence[Pose]], framing: Optional[Framing]) -> SourceTexture:
    """Fit "person": each photo cropped around its person (pidm_core.framing), then encoded."""
    size = network.config.image_size
    framing = framing_for(model if hasattr(model, "info") else network.config) if framing is None else framing
    if (framing.canvas_width, framing.canvas_height) != (size, size):
        framing = framing.resized(size, size)
    if source_poses is None:
        raise ValueError("fit 'person' needs the source person's pose: connect Pose From Image (run on the source "
                         "photo) to the pose input, or choose fit 'pad' or 'stretch'")
    # shapes, counts and poses first: a large photo is read only once they hold
    count, height, width = _framed_batch_shape(images)
    poses = list(source_poses)
    if len(poses) != count:
        raise ValueError(f"{plural(len(poses), 'source pose')} for {plural(count, 'source image')}: give one pose "
                         "per source image (Pose From Image on the same batch)")
    poses = [pose_on_photo(pose, i, count, width, height) for i, pose in enumerate(poses)]
    masks = None if mask is None else check_masks(mask, "source mask", count, "source image").cpu().numpy()
    photos = check_images(images, "source image")
    placements, canvases = [], []
    for i in range(count):
        person_mask = None if masks is None else masks[i if len(masks) == count else 0]
        placement, person_mask = _frame_source(poses[i], person_mask, i, count, framing)
        canvases.append(placement.canvas_images(photos[i:i + 1], None if person_mask is None else [person_mask]))
        placements.append(placement)
    source = torch.cat(canvases).to(next(network.parameters()).device)
    thumbnails = np.stack([photo_thumbnail(photo.cpu().numpy()) for photo in photos])
    return _encode(network, source, tuple(placements), thumbnails)


def _frame_source(pose: Pose, mask: Optional[np.ndarray], index: int, count: int,
                  framing: Framing) -> tuple[Placement, Optional[np.ndarray]]:
    """The placement of source photo ``index`` of ``count`` around its person, and its person mask checked
    (float32 of the photo's size); errors name the source image."""
    try:
        check_pose_in_photo(pose)
        if mask is not None:
            mask = check_mask(mask, pose.width, pose.height, "person mask")
        return frame_checked_person(pose, mask, framing), mask
    except ValueError as err:
        where = "source image" if count == 1 else f"source image {index + 1} of {count}"
        raise ValueError(f"{where}: {err}") from None


def _framed_batch_shape(images) -> tuple[int, int, int]:
    """(count, height, width) of a source IMAGE batch, read from its shape (check_images checks the rest)."""
    shape = getattr(images, "shape", None)
    if isinstance(images, torch.Tensor) and images.dim() == 4 and images.shape[0] > 0:
        return int(shape[0]), int(shape[1]), int(shape[2])
    photos = check_images(images, "source image")  # raises the documented error for any other value
    return photos.shape[0], photos.shape[1], photos.shape[2]


def target_placements(texture: SourceTexture, poses: Sequence[Pose]) -> list[Placement]:
    """The placement of every output image's target pose (its canvas ↔ the model canvas): fit person frames
    the targets like the source person, pad and stretch put them where the source photo lies.

    One source: one placement for the whole pose sequence (framed together, so a walk still walks). One per
    output otherwise (source i with pose i, or every source with the one pose). Put Back Into Photo uses the
    same placements to put the results into the photo."""
    poses = list(poses)
    b, n = texture.batch_size, len(poses)
    if b == 1:
        return [targets_placement(poses, texture.placements[0])] * n
    if n == 1:
        return [targets_placement(poses, placement) for placement in texture.placements]
    output_count(b, n)  # ValueError naming both sizes
    return [targets_placement([pose], placement) for pose, placement in zip(poses, texture.placements)]


def _rows(batch: torch.Tensor, frames: list[int]) -> torch.Tensor:
    """The items of a batch (1 item = shared by every output, or one per output) that ``frames`` read."""
    return batch.expand(len(frames), *batch.shape[1:]) if batch.shape[0] == 1 else batch[frames]


def _texture_rows(texture: TextureKV, frames: list[int]) -> TextureKV:
    """Texture keys/values for the output images ``frames``: one source is repeated, several are picked."""
    batch = next(iter(texture.values()))[0].shape[0]
    if batch == 1:
        return repeat_texture(texture, len(frames))
    index = torch.tensor(frames, device=next(iter(texture.values()))[0].device)
    return {name: tuple(t.index_select(0, index) for t in kv) for name, kv in texture.items()}


def _fitted_inputs(texture: SourceTexture, n: int, init_image: Optional[torch.Tensor],
                   appearance_mask: Optional[torch.Tensor], reference: Optional[torch.Tensor]):
    """init, mask and reference of :func:`sample` on the model canvas, each of 1 item (for every output)
    or n (or None); checked here, before the first chunk, so that a bad input loses no work."""
    def fitted(images, name):
        if images is None:
            return None
        images = check_images(images, name, n, "output image", (source.photo_width, source.photo_height))
        return fitted_placement(images.shape[1], images.shape[2], source.size, source.fit).canvas_images(images)

    source = texture.placements[0]
    if texture.framing is not None and any(v is not None for v in (init_image, appearance_mask, reference)):
        raise ValueError("init image, appearance mask and reference are not supported with fit 'person' yet: "
                         "encode the source with fit 'pad' or 'stretch' to use them")
    init, ref, mask = fitted(init_image, "init image"), fitted(reference, "reference image"), None
    if appearance_mask is not None:
        frame = (source.photo_width, source.photo_height)
        mask = source.canvas_masks(check_masks(appearance_mask, "appearance mask", n, "output image", frame))
        if ref is None:
            ref = texture.source if texture.batch_size in (1, n) else None
    return init, mask, ref


def plan_for(model, texture: SourceTexture, poses: Sequence[Pose], settings: SamplingSettings = DEFAULT_SETTINGS,
             *, img2img: bool = False, free_bytes: Optional[int] = None) -> SamplingPlan:
    """The :class:`~pidm_core.plan.SamplingPlan` of :func:`sample` for these inputs (ask for it first to know
    the memory a chunk needs; then pass it to :func:`sample`)."""
    return plan_sampling(model, settings, texture.batch_size, len(poses), img2img=img2img, free_bytes=free_bytes)


def sample_chunks(model, texture: SourceTexture, poses: Sequence[Pose],
                  settings: SamplingSettings = DEFAULT_SETTINGS, *, init_image: Optional[torch.Tensor] = None,
                  appearance_mask: Optional[torch.Tensor] = None, reference: Optional[torch.Tensor] = None,
                  callback: samplers.Callback = None, free_bytes: Optional[int] = None,
                  output_device: Optional[torch.device] = None,
                  plan: Optional[SamplingPlan] = None) -> Iterator[tuple[list[int], torch.Tensor]]:
    """:func:`sample` one chunk at a time: yields ``(frames, images)`` as each chunk of the plan finishes, the
    output indices and their images [len(frames), H, W, 3] in [0, 1], in order. Nothing is kept between chunks,
    so a consumer that writes each chunk away (a video file) holds one chunk whatever the sequence's length.

    The arguments are :func:`sample`'s. Every input is checked (and the plan made) in this call, before the
    first chunk runs; the frames are those :func:`sample` returns, bit for bit."""
    network = _network(model)
    _check_texture_for(model, network, texture, settings)
    if plan is None:
        plan = plan_for(model, texture, poses, settings, img2img=init_image is not None, free_bytes=free_bytes)
    n = plan.frames
    if n != output_count(texture.batch_size, len(poses)):
        raise ValueError(f"the sampling plan is for {plural(n, 'image')}, but these inputs give "
                         f"{output_count(texture.batch_size, len(poses))}: make the plan for the inputs you sample")
    check_poses(poses)
    fitted = _fitted_inputs(texture, n, init_image, appearance_mask, reference)
    placements = target_placements(texture, poses)  # framed before the first chunk: no work lost
    return _run_chunks(network, texture, poses, settings, plan, fitted, placements, callback, output_device)


def _run_chunks(network: PIDMNetwork, texture: SourceTexture, poses: Sequence[Pose], settings: SamplingSettings,
                plan: SamplingPlan, fitted, placements: list[Placement], callback: samplers.Callback,
                output_device: Optional[torch.device]) -> Iterator[tuple[list[int], torch.Tensor]]:
    device, dtype = next(network.parameters()).device, next(network.parameters()).dtype
    size, n = texture.size, plan.frames
    done, previous = 0, None
    for number, chunk in enumerate(plan.chunks):
        frames, rows = list(chunk), plan.batch(chunk)
        row_poses = [poses[i] if len(poses) > 1 else poses[0] for i in rows]
        maps = pose_maps([placements[i] for i in rows], row_poses).to(device)
        init, mask, reference = [None if x is None else _rows(x, rows).to(device) for x in fitted]
        chunk_settings = settings
        if previous is not None:  # img2img along the sequence: this frame starts from the one before it
            init, chunk_settings = previous, following_settings(settings)
        with explain_out_of_memory(f"sampling {plural(len(rows), 'image')} at {size}x{size}", dtype,
                                   _chunk_hint(frames, n, plan)):
            out = _finite(sample_tensors(
                network, _texture_rows(texture.texture, rows), texture.null_texture, maps, chunk_settings,
                seeds=[plan.seeds[i] for i in rows], init=init, mask=mask, reference=reference,
                callback=_chunk_callback(callback, done, plan.total_steps, frames),
                noise_as_full_run=previous is not None))
        done += plan.chunk_steps(number)
        if plan.follows_previous:
            previous = out.clamp(-1, 1)
        yield frames, texture.placements[0].output_images(out[:len(frames)]).to(output_device or device)


def sample(model, texture: SourceTexture, poses: Sequence[Pose], settings: SamplingSettings = DEFAULT_SETTINGS, *,
           init_image: Optional[torch.Tensor] = None, appearance_mask: Optional[torch.Tensor] = None,
           reference: Optional[torch.Tensor] = None, callback: samplers.Callback = None,
           free_bytes: Optional[int] = None, output_device: Optional[torch.device] = None,
           plan: Optional[SamplingPlan] = None) -> torch.Tensor:
    """Images [N, H, W, 3] in [0, 1] of the source person(s) in the target pose(s), in the source's size.

    init_image / reference: IMAGE batches (fitted like the source); appearance_mask: MASK [B, H, W] in
    the source frame, 1 = generate, 0 = keep the reference there. Each holds 1 item (for every output)
    or one per output image, in the source's size or aspect ratio (resized); see
    :meth:`~pidm_core.placement.Placement.canvas_masks`.

    The outputs are sampled in the chunks of a :class:`~pidm_core.plan.SamplingPlan` (``plan``, from
    :func:`plan_for` with the same inputs; None = made here, reading ``free_bytes``, None = the free memory),
    so memory stays bounded for a sequence of any length; every frame draws its noise from its own seed,
    so the images do not depend on the chunking (bit for bit on CPU in fp32). ``callback`` sees one progress
    count across all chunks (``i`` of ``total``) and the chunk's ``frames``. output_device: where the images
    are gathered (None = the model's device). :func:`sample_chunks` gives the same images chunk by chunk.
    """
    chunks = sample_chunks(model, texture, poses, settings, init_image=init_image, appearance_mask=appearance_mask,
                           reference=reference, callback=callback, free_bytes=free_bytes, output_device=output_device,
                           plan=plan)
    result, n = None, output_count(texture.batch_size, len(poses))
    for frames, images in chunks:
        if result is None:
            result = torch.empty((n, *images.shape[1:]), dtype=images.dtype, device=images.device)
        result[frames[0]:frames[-1] + 1] = images
    return result


def _check_texture_for(model, network: PIDMNetwork, texture: SourceTexture, settings: SamplingSettings) -> None:
    """The texture was encoded by this network, and the model supports the guidance asked for."""
    if texture.size != network.config.image_size:
        raise ValueError(f"the texture was encoded for a {texture.size}px model but this model is "
                         f"{network.config.image_size}px: encode the source with the same model")
    if texture.config is not None and texture.config != network.config:
        raise ValueError("texture was encoded by another model (another network config): encode the source with "
                         "the model you sample with")
    guidance.require_supported(settings.guidance, getattr(model, "info", None))


def _chunk_hint(frames: list[int], n: int, plan: SamplingPlan) -> str:
    """What to try when one chunk of a longer run does not fit in memory."""
    if n == 1:
        return ""
    if plan.follows_previous:
        return ("frames that start from the previous frame run one at a time: free memory, or use dtype bf16/fp16 "
                "(Load PIDM Model)")
    return (f"set a smaller chunk_size (frames sampled at once; this chunk held frames {frames[0] + 1}-{frames[-1] + 1} "
            f"of {n}), or give fewer poses or source images per run")


def _finite(out: torch.Tensor) -> torch.Tensor:
    if not torch.isfinite(out).all():
        raise FloatingPointError(
            "sampling produced NaN or infinite values; lower the guidance scales or use fp32 (dtype) for this "
            "model; if that does not help, the model file may be damaged (download or convert it again)"
        )
    return out


def _chunk_callback(callback: samplers.Callback, done: int, total: int, frames: list[int]):
    """The sampler's per-step callback, counting steps across all chunks (``done`` before this one, of ``total``)."""
    if callback is None:
        return None

    def on_step(info: dict) -> None:
        callback({**info, "i": done + info["i"], "total": total, "frames": frames})

    return on_step


def generate(model, source_image: torch.Tensor, target_pose: Pose | Sequence[Pose],
             settings: SamplingSettings = DEFAULT_SETTINGS, *, source_mask: Optional[torch.Tensor] = None,
             fit_mode: str = "auto", source_poses: Optional[Sequence[Pose]] = None) -> torch.Tensor:
    """Encode and sample in one call (:func:`encode_source`, then :func:`sample`)."""
    poses = [target_pose] if isinstance(target_pose, Pose) else list(target_pose)
    return sample(model, encode_source(model, source_image, source_mask, fit_mode, source_poses), poses, settings)
