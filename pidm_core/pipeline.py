"""From photos and poses to images: fit, encode once, sample, restore.

Two levels:

- :func:`generate_from_tensors` works on model-canvas tensors (images [-1, 1], pose maps [0, 1]);
  the trainer, the evaluator and the benchmarks use it.
- :func:`encode_source` + :func:`sample` (and :func:`generate`, both at once) take images of any size
  as float [B, H, W, 3] in [0, 1] (ComfyUI's IMAGE layout) and :class:`~pidm_core.pose.Pose` objects,
  and return images in the source's size and aspect.

Fitting: the source is placed on the model's square canvas either by ``pad`` (scale the longest side
to the canvas, pad the rest by repeating the border; our models) or ``stretch`` (resize both sides;
what the official test script does with DeepFashion's 176×256 images). A target pose drawn on
another canvas is first fitted into the source frame (aspect kept, centred), then mapped like the
source. Output is cropped/resized back, so a 176×256 source comes back 176×256.

Batch rules: B sources and N poses give max(B, N) images when B == N (pairwise), B == 1 (one
person, many poses: a sequence becomes frames) or N == 1 (one pose, many people); anything else is
an error naming both sizes.
"""

from __future__ import annotations

import contextlib
import logging
import math
from dataclasses import dataclass
from typing import Callable, Iterator, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from . import diffusion, guidance, samplers
from .config import PIDMConfig
from .guidance import GUIDANCE_MODES
from .network import PIDMNetwork, TextureKV, repeat_texture
from .pose.keypoints import Pose
from .pose.render import render_pose_map

FIT_MODES = ("pad", "stretch")
LOG = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------
# Tensor level


def sampling_timesteps(schedule: diffusion.Schedule, sampler: str, steps: int, denoise: float = 1.0) -> list[int]:
    """Descending timesteps for ``steps`` steps, keeping the last ``denoise`` fraction (img2img).
    DDIM and DDPM use the official spacing; DPM-Solver++ uses even log-SNR spacing."""
    if not 0.0 <= denoise <= 1.0:
        raise ValueError(f"denoise must be in [0, 1], got {denoise}")
    if sampler == "dpmpp_2m":
        full = diffusion.logsnr_timesteps(schedule, steps)[::-1]
    else:
        full = diffusion.official_timesteps(steps, schedule.num_timesteps)[::-1]
    keep = int(round(len(full) * denoise))
    return full[len(full) - keep:]


def appearance_blend(schedule: diffusion.Schedule, reference: torch.Tensor, mask: torch.Tensor,
                     noise: samplers.BatchNoise) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """RePaint-style appearance control, as the official loop applies it after every step:
    x ← x·mask + q_sample(reference, t)·(1 − mask). mask [B, 1, H, W]: 1 = generate, 0 = keep reference."""

    def blend(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return x * mask + diffusion.q_sample(schedule, reference, t, noise(x)) * (1 - mask)

    return blend


def predicting_eps(denoise: samplers.Denoise, schedule: diffusion.Schedule, prediction: str) -> samplers.Denoise:
    """The samplers take ε; a v-predicting network's (guided) output is converted here. The map is
    linear in the output for fixed x_t and t, so converting after guidance equals guiding ε."""
    if prediction == "eps":
        return denoise

    def denoise_eps(x, t):
        v, variance = denoise(x, t)
        return diffusion.eps_from_v(schedule, x, t, v), variance

    return denoise_eps


@torch.no_grad()
def encode_texture_pair(network: PIDMNetwork, source: torch.Tensor) -> tuple[TextureKV, TextureKV]:
    """Texture keys/values of the sources [B, 3, S, S] and of the null source (a zero image, batch 1)."""
    dtype = next(network.parameters()).dtype
    source = source.to(dtype)
    return network.encode_texture(source), network.encode_texture(torch.zeros_like(source[:1]))


@torch.no_grad()
def sample_tensors(network: PIDMNetwork, texture: TextureKV, null_texture: TextureKV, pose_map: torch.Tensor, *,
                   steps: int = 50, sampler: str = "ddim", guidance_mode: str = "official",
                   appearance_scale: float = 2.0, pose_scale: float = 2.0, seed: int | Sequence[int] = 0,
                   eta: float = 0.0, init: Optional[torch.Tensor] = None, denoise: float = 1.0,
                   mask: Optional[torch.Tensor] = None, reference: Optional[torch.Tensor] = None,
                   callback: samplers.Callback = None) -> torch.Tensor:
    """Sample images [B, 3, S, S] in [-1, 1] for pose maps [B, 20, S, S] and textures of batch B.

    seed: one int (every item gets the same noise, so a pose sequence keeps a steady look) or one per item.
    init: img2img start [B, 3, S, S] (``denoise`` < 1 keeps that fraction of the schedule).
    mask/reference: appearance editing ([B, 1, S, S], 1 = generate; reference [B, 3, S, S]).
    """
    for name, value in (("appearance_scale", appearance_scale), ("pose_scale", pose_scale), ("eta", eta)):
        if not math.isfinite(value) or abs(value) > 100:
            raise ValueError(f"{name} must be a finite number within ±100, got {value}")
    device = pose_map.device
    b = pose_map.shape[0]
    seeds = [int(seed)] * b if isinstance(seed, (int, np.integer)) else [int(s) for s in seed]
    noise = samplers.BatchNoise(seeds, device)
    schedule = diffusion.linear_schedule()
    run = samplers.get_sampler(sampler)
    timesteps = sampling_timesteps(schedule, sampler, steps, 1.0 if init is None else denoise)
    shape = (b, 3, pose_map.shape[2], pose_map.shape[3])
    if init is None:
        x = noise(torch.empty(shape, device=device))
    elif not timesteps:
        return init.float().clone()
    else:
        x = diffusion.q_sample(schedule, init.float(), torch.full((b,), timesteps[0], device=device), noise(init.float()))
    denoiser = guidance.build_denoiser(guidance_mode, network, pose_map.to(next(network.parameters()).dtype), texture,
                                       repeat_texture(null_texture, b), pose_scale=pose_scale,
                                       appearance_scale=appearance_scale)
    denoiser = predicting_eps(denoiser, schedule, network.config.prediction)
    blend = None
    if mask is not None:
        if reference is None:
            raise ValueError("an appearance mask needs a reference image")
        blend = appearance_blend(schedule, reference.float(), mask.float(), noise)
    kwargs = {"eta": eta} if sampler == "ddim" else {}
    return run(denoiser, x, timesteps, schedule=schedule, noise=noise, callback=callback, blend=blend, **kwargs)


def generate_from_tensors(network: PIDMNetwork, source: torch.Tensor, pose_map: torch.Tensor, **options) -> torch.Tensor:
    """Encode sources [B, 3, S, S] and sample for pose maps [B, 20, S, S]; see :func:`sample_tensors`."""
    guidance_mode = options.pop("guidance", "official")
    texture, null_texture = encode_texture_pair(network, source)
    return sample_tensors(network, texture, null_texture, pose_map, guidance_mode=guidance_mode, **options)


# ---------------------------------------------------------------------------------------------
# Images of any size


@dataclass(frozen=True)
class FitInfo:
    """How a [H, W] image was placed on the model's S×S canvas: content scaled by (scale_x,
    scale_y) and placed at (offset_x, offset_y)."""

    height: int
    width: int
    size: int
    scale_x: float
    scale_y: float
    offset_x: int
    offset_y: int

    @property
    def content_width(self) -> int:
        return int(round(self.width * self.scale_x))

    @property
    def content_height(self) -> int:
        return int(round(self.height * self.scale_y))


def fit_info(height: int, width: int, size: int, mode: str = "pad") -> FitInfo:
    if mode not in FIT_MODES:
        raise ValueError(f"fit mode must be one of {FIT_MODES}, got {mode!r}")
    if mode == "stretch":
        return FitInfo(height, width, size, size / width, size / height, 0, 0)
    scale = size / max(height, width)
    cw, ch = max(1, int(round(width * scale))), max(1, int(round(height * scale)))
    return FitInfo(height, width, size, cw / width, ch / height, (size - cw) // 2, (size - ch) // 2)


# Checking IMAGE and MASK inputs: the rules of docs/robustness.md (Photos, Masks), in one place.

ZERO_TO_255_ABOVE = 1.5  # an IMAGE or MASK whose largest value is above this holds 0-255 pixel values
ASPECT_TOLERANCE = 0.02  # a mask/init/reference image of another size is resized if its aspect is this close


def check_choice(name: str, value, choices: Sequence[str]) -> None:
    """A combo's value. ComfyUI 0.3.75 does not check V3 combos against their options, so a /prompt can send
    any JSON value; it is named, shortened, in the error."""
    if not isinstance(value, str) or value not in choices:
        shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
        raise ValueError(f"{name} must be one of {', '.join(choices)}; got {shown}")


def _first(flags: torch.Tensor) -> int:
    """1-based index of the first batch item whose flag is set."""
    return int(flags.nonzero()[0, 0]) + 1


def values_in_unit_range(values: torch.Tensor, name: str, item: str, integer_is_255: bool) -> torch.Tensor:
    """Float values in [0, 1] of an IMAGE or MASK batch (batch first).

    ComfyUI's IMAGE and MASK hold floats in [0, 1]. A node that passes 0-255 pixel values instead would
    give an almost white photo, so 0-255 input (an integer IMAGE, or a largest value above 1.5) is divided
    by 255 with a logged warning. NaN/inf and values above 255 are errors; the rest is clipped to [0, 1].
    ``integer_is_255``: an integer IMAGE is 0-255 whatever it holds; an integer MASK of 0 and 1 is a mask.
    """
    if values.dtype == torch.bool:
        return values.float()
    if values.is_complex():
        raise ValueError(f"{name} holds complex numbers ({values.dtype}); connect a real {item} batch")
    dtype, integer = str(values.dtype).replace("torch.", ""), not values.is_floating_point()
    values = values.float()
    finite = torch.isfinite(values).flatten(1).all(1)
    if not finite.all():
        raise ValueError(f"{name} contains NaN or infinite values ({item} {_first(~finite)} of {len(finite)}): "
                         "fix or replace the node that made it, or disconnect the input")
    high = float(values.max())
    if high > 256:
        raise ValueError(f"{name} has values up to {high:.6g}; expected floats in [0, 1] (0-255 is read too): "
                         f"scale the {item} to [0, 1]")
    if high > ZERO_TO_255_ABOVE or (integer and integer_is_255):
        LOG.warning("%s holds 0-255 values (%s, largest %g), not ComfyUI's floats in [0, 1]: divided by 255",
                    name, dtype, high)
        values = values / 255
    return values.clamp(0, 1)


def _check_count(name: str, found: int, noun: str, count: int, of: str) -> None:
    """A per-image input holds one item for every image or one per image; checked before anything is copied,
    so 10,000 masks for 2 images are an error, not a copy."""
    if found not in (1, count):
        raise ValueError(f"{name} has {_plural(found, noun)} for {_plural(count, of)}: give 1 {noun} (used for "
                         f"every image) or {count} (one per image)")


def _check_frame(name: str, height: int, width: int, frame: Optional[FitInfo]) -> None:
    """Masks, init and reference images lie in the source frame: another size is resized to it if the aspect
    matches, and a 1x1 mask is one value for every pixel; another aspect would shift them against the source."""
    if frame is None or (height, width) in ((frame.height, frame.width), (1, 1)):
        return
    if abs(math.log(width * frame.height / (height * frame.width))) > ASPECT_TOLERANCE:
        raise ValueError(f"{name} is {width}x{height} pixels but the source image is {frame.width}x{frame.height}: "
                         "give it in the source image's size (another size of the same aspect ratio is resized)")


def _check_images(images: torch.Tensor, name: str, count: Optional[int] = None, of: str = "image",
                  frame: Optional[FitInfo] = None) -> torch.Tensor:
    if isinstance(images, (list, tuple)):
        raise ValueError(f"{name} is a list of {len(images)} images, not one batch [B, H, W, 3]: resize them to one "
                         "size (e.g. with an Upscale Image node) and batch them")
    if not isinstance(images, torch.Tensor) or images.dim() != 4 or images.shape[-1] not in (1, 3, 4):
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"{name} must be an image batch [B, H, W, 3] with values in [0, 1], got {shape}")
    if images.shape[0] == 0:
        raise ValueError(f"{name} is an empty batch")
    if count is not None:
        _check_count(name, images.shape[0], "image", count, of)
    if min(images.shape[1:3]) < 8:
        raise ValueError(f"{name} is {images.shape[2]}x{images.shape[1]} pixels; it must be at least 8x8")
    _check_frame(name, images.shape[1], images.shape[2], frame)
    if images.shape[-1] == 4:
        images = images[..., :3]  # alpha is dropped: PIDM sees RGB only
    images = values_in_unit_range(images, name, "image", integer_is_255=True)
    return images.expand(-1, -1, -1, 3) if images.shape[-1] == 1 else images


def _check_masks(masks: torch.Tensor, name: str, count: Optional[int], of: str, frame: FitInfo) -> torch.Tensor:
    if not isinstance(masks, torch.Tensor) or masks.dim() not in (2, 3):
        shape = tuple(masks.shape) if isinstance(masks, torch.Tensor) else type(masks).__name__
        raise ValueError(f"{name} must be a MASK [B, H, W] (or [H, W]) with values in [0, 1], got {shape}")
    masks = masks[None] if masks.dim() == 2 else masks
    if masks.shape[0] == 0:
        raise ValueError(f"{name} is an empty batch (0 masks)")
    if count is not None:
        _check_count(name, masks.shape[0], "mask", count, of)
    if 0 in masks.shape[1:]:
        raise ValueError(f"{name} is {masks.shape[2]}x{masks.shape[1]} pixels: it holds no values")
    _check_frame(name, masks.shape[1], masks.shape[2], frame)
    return values_in_unit_range(masks, name, "mask", integer_is_255=False)


def fit_images(images: torch.Tensor, size: int, mode: str = "pad", name: str = "image", count: Optional[int] = None,
               of: str = "image", frame: Optional[FitInfo] = None) -> tuple[torch.Tensor, FitInfo]:
    """IMAGE [B, H, W, 3] in [0, 1] → model canvas [B, 3, S, S] in [-1, 1], and how it was placed.
    count: B must be 1 or count (of what); frame: the image must have that frame's aspect ratio."""
    images = _check_images(images, name, count, of, frame)
    info = fit_info(images.shape[1], images.shape[2], size, mode)
    x = images.permute(0, 3, 1, 2) * 2 - 1
    x = F.interpolate(x, size=(info.content_height, info.content_width), mode="bicubic", align_corners=False, antialias=True)
    pad_l, pad_t = info.offset_x, info.offset_y
    pad_r, pad_b = size - info.content_width - pad_l, size - info.content_height - pad_t
    if pad_l or pad_r or pad_t or pad_b:
        x = F.pad(x, (pad_l, pad_r, pad_t, pad_b), mode="replicate")
    return x.clamp(-1, 1), info


def fit_masks(masks: torch.Tensor, info: FitInfo, name: str = "mask", count: Optional[int] = None,
              of: str = "image") -> torch.Tensor:
    """MASK [M, H, W] (or [H, W]) in the source frame (any size of its aspect, or 1x1) → [M, 1, S, S] on the
    model canvas. count: M must be 1 (one mask for every image) or count (one per image)."""
    masks = _check_masks(masks, name, count, of, info)
    m = F.interpolate(masks[:, None], size=(info.content_height, info.content_width), mode="bilinear",
                      align_corners=False, antialias=True)
    s = info.size
    m = F.pad(m, (info.offset_x, s - info.content_width - info.offset_x, info.offset_y, s - info.content_height - info.offset_y), value=1.0)
    return m.clamp(0, 1)


def restore_images(x: torch.Tensor, info: FitInfo) -> torch.Tensor:
    """Model canvas [B, 3, S, S] in [-1, 1] → IMAGE [B, H, W, 3] in [0, 1] in the source's size."""
    x = x[:, :, info.offset_y:info.offset_y + info.content_height, info.offset_x:info.offset_x + info.content_width]
    x = F.interpolate(x.float(), size=(info.height, info.width), mode="bicubic", align_corners=False)
    return ((x + 1) / 2).clamp(0, 1).permute(0, 2, 3, 1).contiguous()


def pose_to_canvas(pose: Pose, info: FitInfo) -> np.ndarray:
    """Keypoints [18, 3] of ``pose`` mapped onto the model canvas of a source placed by ``info``."""
    kp = pose.keypoints.copy()
    if (pose.width, pose.height) != (info.width, info.height):
        scale = min(info.width / pose.width, info.height / pose.height)
        kp[:, 0] = kp[:, 0] * scale + (info.width - pose.width * scale) / 2
        kp[:, 1] = kp[:, 1] * scale + (info.height - pose.height * scale) / 2
    kp[:, 0] = kp[:, 0] * info.scale_x + info.offset_x
    kp[:, 1] = kp[:, 1] * info.scale_y + info.offset_y
    return kp


def _check_on_canvas(pose: Pose, where: str) -> None:
    """A pose with no joint on its canvas renders an empty pose map: the model would get no pose at all."""
    if not pose.present.any():
        raise ValueError(f"{where} has no joints (every joint is missing); give a pose with at least one limb")
    x, y = pose.xy[pose.present].T
    if not ((x >= -0.5) & (x <= pose.width - 0.5) & (y >= -0.5) & (y <= pose.height - 0.5)).any():
        raise ValueError(
            f"{where} has no joint inside its {pose.width}x{pose.height} canvas (x {x.min():.4g}..{x.max():.4g}, "
            f"y {y.min():.4g}..{y.max():.4g}); the keypoints are probably pixels of another image: fix the canvas size "
            "or the coordinates"
        )


def pose_maps(poses: Sequence[Pose], info: FitInfo) -> torch.Tensor:
    """Pose maps [N, 20, S, S] for poses mapped like the source."""
    if len(poses) == 0:
        raise ValueError("no target pose given: the pose input is empty")
    for index, pose in enumerate(poses):
        _check_on_canvas(pose, f"target pose {index + 1} of {len(poses)}")
    return torch.from_numpy(np.stack([render_pose_map(pose_to_canvas(p, info), info.size, info.size) for p in poses]))


@dataclass
class SourceTexture:
    """Everything computed once per source batch: texture keys/values for the sources and for the
    null source, the fitted sources, and how they were fitted (to restore the output's aspect)."""

    texture: TextureKV
    null_texture: TextureKV
    source: torch.Tensor  # [B, 3, S, S] in [-1, 1]
    fit: FitInfo
    fit_mode: str
    config: Optional[PIDMConfig] = None  # of the network that encoded it: another network cannot read it

    @property
    def batch_size(self) -> int:
        return self.source.shape[0]


def default_fit_mode(model) -> str:
    return str(getattr(model.info, "extra", {}).get("fit", "pad")) if hasattr(model, "info") else "pad"


def _network(model) -> PIDMNetwork:
    return model.network if hasattr(model, "network") else model


def _is_out_of_memory(error: BaseException) -> bool:
    # torch.OutOfMemoryError covers CUDA/XPU/MPS; a failed CPU allocation is a plain RuntimeError.
    text = str(error).lower()
    return isinstance(error, (torch.cuda.OutOfMemoryError, MemoryError)) or (
        isinstance(error, RuntimeError) and ("out of memory" in text or "not enough memory" in text))


@contextlib.contextmanager
def _explain_out_of_memory(what: str, dtype: torch.dtype) -> Iterator[None]:
    """Re-raise an out-of-memory error with what to do, keeping its type (ComfyUI frees models on
    torch.OutOfMemoryError) and its original text."""
    try:
        yield
    except (RuntimeError, MemoryError) as error:
        if not _is_out_of_memory(error):
            raise
        dtype_name = {torch.float32: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16"}.get(dtype, str(dtype))
        advice = "give fewer poses or source images per run (a smaller batch)"
        if dtype == torch.float32:
            advice += ", or load the model in bf16 or fp16 (Load PIDM Model's dtype)"
        message = f"out of memory while {what} with {dtype_name} weights: {advice}\n({error})"
        try:
            replacement = type(error)(message)
        except Exception:
            replacement = RuntimeError(message)
        raise replacement from error


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def encode_source(model, images: torch.Tensor, mask: Optional[torch.Tensor] = None, fit_mode: str = "auto") -> SourceTexture:
    """Fit source IMAGE [B, H, W, 3] to the model and run the texture encoder once.

    mask [B, H, W] (optional): 1 = the person; elsewhere the source is replaced by the null value
    (0 in [-1, 1]) so the background does not leak into the texture features. One mask for every
    image or one per image, in the image's size or aspect ratio (resized).
    """
    check_choice("fit", fit_mode, ("auto", *FIT_MODES))
    network = _network(model)
    mode = default_fit_mode(model) if fit_mode == "auto" else fit_mode
    source, info = fit_images(images, network.config.image_size, mode, name="source image")
    device = next(network.parameters()).device
    source = source.to(device)
    if mask is not None:
        source = source * fit_masks(mask, info, "source mask", source.shape[0], "source image").to(device)
    what = f"encoding {_plural(source.shape[0], 'source image')} at {info.size}x{info.size}"
    with _explain_out_of_memory(what, next(network.parameters()).dtype):
        texture, null_texture = encode_texture_pair(network, source)
    return SourceTexture(texture, null_texture, source, info, mode, network.config)


def _broadcast(texture: SourceTexture, n_poses: int) -> tuple[TextureKV, int]:
    b = texture.batch_size
    if b == n_poses or n_poses == 1:
        return texture.texture, b
    if b == 1:
        return repeat_texture(texture.texture, n_poses), n_poses
    raise ValueError(f"{b} source images and {n_poses} poses: give one source, one pose, or as many poses as sources")


def sample(model, texture: SourceTexture, poses: Sequence[Pose], *, steps: int = 50, sampler: str = "ddim",
           guidance: str = "official", appearance_scale: float = 2.0, pose_scale: float = 2.0,
           seed: int = 0, eta: float = 0.0, init_image: Optional[torch.Tensor] = None, denoise: float = 1.0,
           appearance_mask: Optional[torch.Tensor] = None, reference: Optional[torch.Tensor] = None,
           callback: samplers.Callback = None) -> torch.Tensor:
    """Images [N, H, W, 3] in [0, 1] of the source person(s) in the target pose(s), in the source's size.

    init_image / reference: IMAGE batches (fitted like the source); appearance_mask: MASK [B, H, W] in
    the source frame, 1 = generate, 0 = keep the reference there. Each holds 1 item (for every output)
    or one per output image, in the source's size or aspect ratio (resized); see :func:`fit_masks`.
    """
    check_choice("sampler", sampler, tuple(samplers.SAMPLERS))
    check_choice("guidance", guidance, GUIDANCE_MODES)
    network = _network(model)
    if guidance == "disentangled" and hasattr(model, "info") and not model.info.supports_disentangled_guidance:
        raise ValueError(
            f"model {model.info.name!r} was trained without dropping the pose, so disentangled guidance "
            "cannot work with it; use guidance 'official' (appearance guidance only)"
        )
    if texture.config is not None and texture.config != network.config:
        raise ValueError("texture was encoded by another model (another network config): encode the source with "
                         "the model you sample with")
    device = next(network.parameters()).device
    tex, n = _broadcast(texture, len(poses))
    maps = pose_maps(poses, texture.fit).to(device)
    if maps.shape[0] != n:
        maps = maps.expand(n, -1, -1, -1)
    size, mode = texture.fit.size, texture.fit_mode

    def fitted(images, name):
        if images is None:
            return None
        x, _ = fit_images(images, size, mode, name, count=n, of="output image", frame=texture.fit)
        return x.expand(n, -1, -1, -1).to(device)

    init = fitted(init_image, "init image")
    ref = fitted(reference, "reference image")
    mask = None
    if appearance_mask is not None:
        mask = fit_masks(appearance_mask, texture.fit, "appearance mask", n, "output image")
        mask = mask.expand(n, -1, -1, -1).to(device)
        if ref is None:
            ref = texture.source.expand(n, -1, -1, -1) if texture.batch_size in (1, n) else None
    with _explain_out_of_memory(f"sampling {_plural(n, 'image')} at {size}x{size}", next(network.parameters()).dtype):
        out = sample_tensors(network, tex, texture.null_texture, maps, steps=steps, sampler=sampler,
                             guidance_mode=guidance, appearance_scale=appearance_scale, pose_scale=pose_scale,
                             seed=seed, eta=eta, init=init, denoise=denoise, mask=mask, reference=ref, callback=callback)
    if not torch.isfinite(out).all():
        raise FloatingPointError(
            "sampling produced NaN or infinite values; lower the guidance scales or use fp32 (dtype) for this model; "
            "if that does not help, the model file may be damaged (download or convert it again)"
        )
    return restore_images(out, texture.fit)


def generate(model, source_image: torch.Tensor, target_pose: Pose | Sequence[Pose], *, source_mask=None,
             fit_mode: str = "auto", **options) -> torch.Tensor:
    """Encode and sample in one call; ``options`` as for :func:`sample`."""
    poses = [target_pose] if isinstance(target_pose, Pose) else list(target_pose)
    return sample(model, encode_source(model, source_image, source_mask, fit_mode), poses, **options)


def preview_image(x0: torch.Tensor, index: int = 0):
    """PIL image of one item of a model-canvas batch [B, 3, S, S] in [-1, 1] (per-step previews)."""
    from PIL import Image

    array = ((x0[index].float().clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(array)
