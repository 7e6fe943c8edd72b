"""PIDM Sampler: the source person in each target pose, with progress, previews and interrupts."""

from __future__ import annotations

import dataclasses
from typing import Any

import comfy.model_management as mm
import comfy.utils

from ..pidm_core import guidance, memory, pipeline, samplers
from .compat import PIDMModelType, PIDMTextureType, PoseKeypointType, check_numbers, io
from .pose import person_input, poses_from_input
from .previews import preview_images_ui, step_preview
from .texture import loaded_model

PREVIEW_MAX_SIZE = 512
PREVIEW_IMAGES = 64  # final images written to the temp folder for the node's preview
DEFAULTS = samplers.DEFAULT_SETTINGS
HELP = samplers.setting_help


class PIDMSampler(io.ComfyNode):
    """Runs PIDM's diffusion loop for every pose in the POSE_KEYPOINT input (one image per pose)."""

    @classmethod
    def define_schema(cls):
        # Inputs named like a SamplingSettings field become that field; defaults, choices and tooltips come from it.
        return io.Schema(
            node_id="PIDMSampler",
            display_name="PIDM Sampler",
            category="PIDM/sampling",
            description="Renders the encoded source person in the target pose(s): one output image per pose "
                        "entry, in the source photo's size and aspect.",
            inputs=[
                PIDMModelType.Input("model", tooltip="The PIDM model from Load PIDM Model."),
                PIDMTextureType.Input("texture", tooltip="The source person, from Encode Source Texture "
                                                         "(encoded with the same model)."),
                PoseKeypointType.Input("pose", tooltip="Target pose(s); every frame of the POSE_KEYPOINT list "
                                                       "becomes one output image."),
                io.Int.Input("seed", default=DEFAULTS.seed, min=0, max=0xFFFFFFFFFFFFFFFF,
                             control_after_generate=True, tooltip=HELP("seed")),
                io.Int.Input("steps", default=DEFAULTS.steps, min=1, max=1000, tooltip=HELP("steps")),
                io.Combo.Input("sampler", options=list(samplers.SAMPLERS), default=DEFAULTS.sampler,
                               tooltip=HELP("sampler")),
                io.Combo.Input("guidance", options=list(guidance.GUIDANCE_MODES), default=DEFAULTS.guidance,
                               tooltip=HELP("guidance")),
                io.Float.Input("appearance_scale", default=DEFAULTS.appearance_scale, min=0.0, max=20.0, step=0.1,
                               tooltip=HELP("appearance_scale")),
                io.Float.Input("pose_scale", default=DEFAULTS.pose_scale, min=0.0, max=20.0, step=0.1,
                               tooltip=HELP("pose_scale")),
                person_input(),
                io.Image.Input("init_image", optional=True,
                               tooltip="Optional start image (img2img): sampling starts from it, noised by "
                                       "'denoise'. Leave unconnected to start from pure noise."),
                io.Float.Input("denoise", default=DEFAULTS.denoise, min=0.0, max=1.0, step=0.01,
                               tooltip=HELP("denoise")),
                io.Mask.Input("appearance_mask", optional=True,
                              tooltip="Optional mask in the source frame: 1 = generate, 0 = keep the reference "
                                      "image there (appearance editing). Leave unconnected to generate everywhere. "
                                      "One mask for every output image or one per image, in the source's size or "
                                      "aspect ratio."),
                io.Image.Input("reference", optional=True,
                               tooltip="Image kept where the appearance mask is 0; defaults to the source photo."),
                # last and optional, so that workflows saved before they existed keep their widget values
                io.Combo.Input("frame_noise", options=["shared", "independent"], default=DEFAULTS.frame_noise,
                               optional=True, tooltip=HELP("frame_noise")),
                io.Int.Input("chunk_size", default=DEFAULTS.chunk_size, min=0, max=4096, optional=True,
                             tooltip=HELP("chunk_size")),
            ],
            outputs=[io.Image.Output(display_name="images", tooltip="One image per target pose, in the "
                                                                     "source's size (fit 'person': the framed crop, "
                                                                     "for Put Back Into Photo).")],
        )

    @classmethod
    def validate_inputs(cls, appearance_scale=None, pose_scale=None, denoise=None):
        return check_numbers(cls, appearance_scale=appearance_scale, pose_scale=pose_scale, denoise=denoise)

    @classmethod
    def execute(cls, model, texture, pose, person_index: int, init_image=None, appearance_mask=None, reference=None,
                **settings: Any) -> io.NodeOutput:
        settings = samplers.SamplingSettings(**settings)  # the schema's SamplingSettings inputs, validated
        poses = poses_from_input(pose, person_index, "pose")
        if not isinstance(texture, pipeline.SourceTexture):  # a hand-written /prompt can put any value here
            raise ValueError("texture must be linked to Encode Source Texture's output, "
                             f"got a {type(texture).__name__} value")
        rows = memory.guidance_rows(settings.guidance, settings.appearance_scale)
        n = pipeline.output_count(texture.batch_size, len(poses))
        pidm = loaded_model(model, 1, rows)
        # the poses are sampled in chunks sized to the memory ComfyUI reports free once the model is loaded;
        # then ComfyUI is asked to make room for one chunk
        device = next(pidm.network.parameters()).device
        free = None if device.type == "cpu" else mm.get_free_memory(device)
        chunk = pipeline.chunk_size_for(pidm, settings, n, free)
        at_once = 2 if chunk == 1 and n > 1 else chunk  # a lone frame of a sequence runs as two rows
        pidm = loaded_model(model, at_once, rows) if at_once > 1 else pidm
        progress = comfy.utils.ProgressBar(settings.steps)

        def on_step(info: dict) -> None:
            mm.throw_exception_if_processing_interrupted()
            progress.update_absolute(info["i"] + 1, info["total"], ("JPEG", step_preview(info["x0"]), PREVIEW_MAX_SIZE))

        mm.throw_exception_if_processing_interrupted()
        settings = dataclasses.replace(settings, chunk_size=chunk)
        images = pipeline.sample(pidm, texture, poses, settings, init_image=init_image, appearance_mask=appearance_mask,
                                 reference=reference, callback=on_step, output_device=mm.intermediate_device())
        # the final images, shown on the node (the first ones of a long sequence)
        return io.NodeOutput(images, ui=preview_images_ui(images[:PREVIEW_IMAGES]))


NODES = [PIDMSampler]
