"""PIDM Sampler (video): a pose sequence sampled into an mp4 as its chunks finish, given out as ComfyUI's VIDEO.

The frames are never gathered into one IMAGE batch: each chunk goes from the sampler (through Put Back Into Photo
when a scene photo is given) into an H.264 file in ComfyUI's temp folder, with the sound cut at the video's
duration. The output is a ``VideoFromFile`` over that file, so SaveVideo (format and codec "auto") copies its
streams into the output folder without decoding a frame.

VIDEO exists on V3 hosts only (ComfyUI 0.3.4x and later, ``comfy_api.latest``); a V1-only host has no VIDEO type
and no node that could save one, so this node is not registered there (``NODES`` is empty).
"""

from __future__ import annotations

import os
import secrets
from typing import Any

import folder_paths

from ..pidm_core import composite, samplers
from ..pidm_core.video.render import PutBack, render_video
from ..pidm_core.video.write import MAX_FRAME_RATE, audio_from_comfy
from .compat import HOST_API, PoseKeypointType, check_numbers, io
from .pose import person_input, poses_from_input
from .previews import preview_images_ui
from .sampler import (FIRST_SETTINGS, checked_texture, later_settings, model_and_texture_inputs, prepare_sampling,
                      setting_inputs)

PREVIEW_FRAMES = 16  # first frames shown on the node


def _video_file() -> str:
    """A new mp4 path in ComfyUI's temp folder (emptied when the server starts)."""
    folder = folder_paths.get_temp_directory()
    os.makedirs(folder, exist_ok=True)
    return os.path.join(folder, f"PIDM_video_{secrets.token_hex(6)}.mp4")


class PIDMSampleVideo(io.ComfyNode):
    """PIDM Sampler whose frames go straight into a video file (VIDEO), chunk by chunk."""

    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="PIDMSampleVideo",
            display_name="PIDM Sampler (video)",
            category="PIDM/sampling",
            description="Renders the encoded source person in every pose of the sequence and writes the frames into "
                        "an H.264 video as each chunk finishes (memory holds one chunk, whatever the length), at the "
                        "given frame rate, with the sound if connected, put back into the scene photo if one is "
                        "given. Connect the VIDEO to Save Video.",
            inputs=[
                *model_and_texture_inputs(),
                PoseKeypointType.Input("pose", tooltip="The pose sequence: every frame of the POSE_KEYPOINT list "
                                                       "becomes one video frame."),
                *setting_inputs(*FIRST_SETTINGS),
                person_input(),
                io.Float.Input("frame_rate", default=24.0, min=0.01, max=float(MAX_FRAME_RATE), step=0.001,
                               tooltip="Frames per second of the video: connect Poses From Video's frame_rate (the "
                                       "driving video's, over its frame step). 29.97, 23.976 and 59.94 are written "
                                       "as the exact 30000/1001, 24000/1001 and 60000/1001."),
                io.Combo.Input("place", options=list(composite.PLACES), default="pose",
                               tooltip="With a photo: where the new person stands ('pose' = where the target pose "
                                       "is in the photo; 'source' = where the source person stood)."),
                io.Combo.Input("inpaint", options=list(composite.METHODS), default="telea",
                               tooltip="With a photo and its mask: how the old person's uncovered area is filled."),
                io.Audio.Input("audio", optional=True,
                               tooltip="Sound for the video: Poses From Video's audio (the driving video's sound "
                                       "over the frames read), or Load Audio; cut at the video's duration. "
                                       "Unconnected (or no sound): a silent video."),
                io.Image.Input("photo", optional=True,
                               tooltip="The scene photo the source person was framed from (Encode Source Texture fit "
                                       "'person'): every frame is put back into it (Put Back Into Photo) and the "
                                       "video has its size. Unconnected: the sampler's frames."),
                io.Mask.Input("mask", optional=True,
                              tooltip="With a photo: the source person's mask in it (Pose From Image's mask); that "
                                      "area is filled before the new person is pasted."),
                *setting_inputs(*later_settings(), optional=True),
            ],
            outputs=[io.Video.Output(display_name="video",
                                     tooltip="The video (H.264 mp4 in the temp folder): connect Save Video.")],
        )

    @classmethod
    def validate_inputs(cls, appearance_scale=None, pose_scale=None, frame_rate=None, guidance_start=None,
                        guidance_end=None, sequence_denoise=None):
        return check_numbers(cls, appearance_scale=appearance_scale, pose_scale=pose_scale, frame_rate=frame_rate,
                             guidance_start=guidance_start, guidance_end=guidance_end,
                             sequence_denoise=sequence_denoise)

    @classmethod
    def execute(cls, model, texture, pose, person_index: int, frame_rate: float, place: str, inpaint: str,
                audio=None, photo=None, mask=None, **settings: Any) -> io.NodeOutput:
        settings = samplers.SamplingSettings(**settings)
        poses = poses_from_input(pose, person_index, "pose")
        checked_texture(texture)
        sound = None if audio is None else audio_from_comfy(audio)
        if mask is not None and photo is None:
            raise ValueError("mask is connected but photo is not: the mask is the old person in the scene photo; "
                             "connect the photo too, or disconnect the mask")
        put_back = None if photo is None else PutBack(photo, mask, place, inpaint)
        pidm, plan, on_step = prepare_sampling(model, texture, poses, settings)

        first = []

        def keep_first(frames, images) -> None:
            if len(first) < PREVIEW_FRAMES:
                first.extend(images[:PREVIEW_FRAMES - len(first)].clone())

        path = _video_file()
        render_video(pidm, texture, poses, path, frame_rate, settings, audio=sound, put_back=put_back,
                     callback=on_step, on_chunk=keep_first, plan=plan)
        return io.NodeOutput(_video_from_file(path), ui=preview_images_ui(first))


def _video_from_file(path: str):
    from comfy_api.latest import InputImpl  # V3 hosts only (the module docstring)

    return InputImpl.VideoFromFile(path)


NODES = [PIDMSampleVideo] if HOST_API == "v3" else []
