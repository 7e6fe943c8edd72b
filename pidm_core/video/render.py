"""A pose sequence sampled straight into a video file: each chunk of frames is sampled, put back into the scene
photo when one is given, encoded, and let go, so memory holds one chunk whatever the sequence's length.

:func:`render_video` runs :func:`pidm_core.pipeline.sample_chunks` into a :class:`~.write.VideoWriter`. Put back
(a source framed from a scene photo): the crop that puts the person into the photo is worked out once for the
whole sequence, as the sampler framed it (one crop, so a walk still walks), and each chunk is pasted through it
with :func:`pidm_core.composite.paste_into_photo`, a few frames at a time (:data:`PASTE_FRAMES`), so the photo-sized
frames of a long chunk are never all held at once. The old person's area of the photo and the source person on the
canvas are inpainted once for the sequence (a :class:`pidm_core.composite.Backdrop`), not once per chunk and frame.
Every input is checked before the first chunk runs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable, Optional, Sequence, Union

import numpy as np
import torch

from .. import composite, pipeline, samplers
from ..checks import image_batch, mask_batch
from ..errors import check_choice
from ..plan import SamplingPlan
from ..pose.keypoints import Pose
from ..samplers import DEFAULT_SETTINGS, SamplingSettings
from .write import DEFAULT_CRF, Audio, VideoWriter, WrittenVideo, check_audio, exact_frame_rate

PASTE_FRAMES = 8  # frames pasted into the photo at once: bounds the photo-sized float frames held

ChunkCallback = Optional[Callable[[list[int], torch.Tensor], None]]


@dataclass(frozen=True)
class PutBack:
    """Put Back Into Photo for every frame: ``photo`` IMAGE [1, H, W, 3] (the photo the source was framed from,
    or another size of it), ``mask`` the old person's MASK in it (None: the old person is not removed),
    ``place`` and ``inpaint`` as in :func:`pidm_core.composite.paste_from_texture`."""

    photo: torch.Tensor
    mask: Optional[torch.Tensor] = None
    place: str = "pose"
    inpaint: str = "telea"


class _Paster:
    """The whole sequence's paste crop and target keypoints, worked out and checked once, and its backdrop (the
    inpainted photo and source canvas) worked out at the first paste; pastes any frames."""

    def __init__(self, texture, poses: Sequence[Pose], put_back: PutBack):
        crops = getattr(texture, "placements", None)
        if not crops or crops[0].framing is None:
            raise ValueError("photo: the texture was not framed (Encode Source Texture fit 'person'), so there is no "
                             "crop to put the person back through; encode the source with fit 'person' and its "
                             "pose, or leave photo unconnected")
        if len(crops) != 1:
            raise ValueError(f"photo: a video is put back from one source person, but the texture holds "
                             f"{len(crops)} source images: encode one photo")
        check_choice("place", put_back.place, composite.PLACES)
        check_choice("inpainting method", put_back.inpaint, composite.METHODS)
        photos = image_batch(put_back.photo, "photo")
        if photos.shape[0] != 1:
            raise ValueError(f"photo holds {photos.shape[0]} images: give the one photo the source was framed from")
        height, width = photos.shape[1:3]
        paste, self.keypoints = composite.paste_crops(crops, poses, put_back.place)  # one crop: the sequence's
        self.crop = paste[0].for_photo_size(width, height)
        composite.check_targets_in_photo(self.keypoints, [self.crop] * len(self.keypoints))
        composite.check_output_size(PASTE_FRAMES, height, width)
        self.reference_mask = None
        if put_back.mask is not None:
            masks = mask_batch(put_back.mask, width, height, "person mask")
            if masks.shape[0] != 1:
                raise ValueError(f"person mask holds {masks.shape[0]} masks: give the one mask of the photo")
            self.reference_mask = crops[0].crop_mask(masks[0])  # the source person on the canvas the model saw
        self.reference = ((texture.source[:1].detach().float().cpu() + 1) / 2).clamp(0, 1).permute(0, 2, 3, 1)
        self.put_back = put_back
        # Held for the whole sequence: the old person's fill (its window: uint8 colours and a bool hole, less than
        # the float32 photo) and one canvas-sized image, so the peak stays the small multiple of the photo that
        # docs/robustness.md gives; made at the first paste, when the sampler's image size is known.
        self.backdrop: Optional[composite.Backdrop] = None

    def _backdrop(self, images: torch.Tensor) -> composite.Backdrop:
        size = (images.shape[2], images.shape[1])
        if self.backdrop is None or self.backdrop.image_size != size:
            self.backdrop = composite.photo_backdrop(
                self.put_back.photo, size, old_masks=self.put_back.mask, reference=self.reference,
                reference_mask=self.reference_mask, method=self.put_back.inpaint)
        return self.backdrop

    def paste(self, frames: list[int], images: torch.Tensor):
        """The frames ``frames`` of the sequence (their sampler images [n, h, w, 3]) in the photo, a few at a time:
        yields float32 arrays [k, H, W, 3]."""
        backdrop = self._backdrop(images)
        for start in range(0, len(frames), PASTE_FRAMES):
            part = frames[start:start + PASTE_FRAMES]
            result = composite.paste_into_photo(
                self.put_back.photo, images[start:start + len(part)].cpu(), self.crop, self.keypoints[part],
                old_masks=self.put_back.mask, reference=self.reference, reference_mask=self.reference_mask,
                method=self.put_back.inpaint, backdrop=backdrop)
            yield result.images


def render_video(model, texture, poses: Sequence[Pose], path: Union[str, os.PathLike], frame_rate,
                 settings: SamplingSettings = DEFAULT_SETTINGS, *, audio: Optional[Audio] = None,
                 put_back: Optional[PutBack] = None, callback: samplers.Callback = None,
                 on_chunk: ChunkCallback = None, plan: Optional[SamplingPlan] = None,
                 free_bytes: Optional[int] = None, crf: int = DEFAULT_CRF) -> WrittenVideo:
    """Sample ``poses`` of the encoded source ``texture`` into an mp4 at ``path`` (H.264, ``frame_rate`` kept
    exact, ``audio`` (float32 [channels, samples], rate) cut at the video's duration), one chunk at a time.

    put_back: paste every frame into the scene photo (:class:`PutBack`); the video then has the photo's size.
    callback: the sampler's per-step callback (progress over all chunks; raise there to stop: the partial file
    is deleted). on_chunk(frames, images): each chunk's final frames as written (float [n, H, W, 3] in [0, 1]),
    e.g. to keep a preview. plan / free_bytes: as in :func:`pidm_core.pipeline.sample`. Returns what was
    written (:class:`~.write.WrittenVideo`: frame count, rate, size, whether it has sound).
    """
    rate = exact_frame_rate(frame_rate)
    audio = check_audio(audio)
    poses = list(poses)
    paster = None if put_back is None else _Paster(texture, poses, put_back)
    chunks = pipeline.sample_chunks(model, texture, poses, settings, callback=callback, free_bytes=free_bytes,
                                    output_device=torch.device("cpu"), plan=plan)  # checks every input first
    with VideoWriter(path, rate, audio=audio, crf=crf) as writer:
        for frames, images in chunks:
            if paster is None:
                writer.write(images)
                if on_chunk is not None:
                    on_chunk(frames, images)
                continue
            done = 0
            for pasted in paster.paste(frames, images):
                writer.write(pasted)
                if on_chunk is not None:
                    on_chunk(frames[done:done + len(pasted)], torch.from_numpy(np.asarray(pasted)))
                done += len(pasted)
    return writer.result
