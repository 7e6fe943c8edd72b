"""PIDM Sampler: the source person in each target pose, with progress, previews and interrupts."""

from __future__ import annotations

import dataclasses
from typing import Any

import comfy.model_management as mm
import comfy.utils

from ..pidm_core import pipeline, samplers
from .compat import PIDMModelType, PIDMTextureType, PoseKeypointType, check_numbers, io
from .pose import person_input, poses_from_input
from .previews import preview_images_ui, step_preview
from .texture import loaded_model

PREVIEW_MAX_SIZE = 512
PREVIEW_IMAGES = 64  # final images written to the temp folder for the node's preview


def setting_input(name: str, optional: bool = False):
    """The input of one SamplingSettings field: its kind, default, choices or range, and tooltip all come
    from the field (pidm_core.samplers), so a new sampling option is one field there."""
    spec = samplers.setting_field(name)
    meta = spec.metadata
    common = {"default": spec.default, "optional": optional, "tooltip": meta["help"]}
    if "choices" in meta:
        return io.Combo.Input(name, options=list(meta["choices"]), **common)
    widget = dict(meta["widget"])
    bounds = {"min": widget.pop("min", meta.get("low")), "max": widget.pop("max", meta.get("high"))}
    return (io.Int if spec.type == "int" else io.Float).Input(name, **common, **bounds, **widget)


def setting_inputs(*names: str, optional: bool = False) -> list:
    return [setting_input(name, optional) for name in names]


# Settings widgets in the order saved workflows list their values; every other field the node shows
# follows them, optional, in declaration order (so an added field leaves old workflows' values in place).
FIRST_SETTINGS = ("seed", "steps", "sampler", "guidance", "appearance_scale", "pose_scale")
AFTER_PERSON = ("denoise",)


def later_settings() -> tuple[str, ...]:
    return tuple(spec.name for spec in dataclasses.fields(samplers.SamplingSettings)
                 if spec.metadata["node"] and spec.name not in FIRST_SETTINGS + AFTER_PERSON)


def model_and_texture_inputs() -> list:
    """The first two inputs of every sampler node."""
    return [PIDMModelType.Input("model", tooltip="The PIDM model from Load PIDM Model."),
            PIDMTextureType.Input("texture", tooltip="The source person, from Encode Source Texture (encoded with "
                                                     "the same model).")]


def checked_texture(texture) -> pipeline.SourceTexture:
    if not isinstance(texture, pipeline.SourceTexture):  # a hand-written /prompt can put any value here
        raise ValueError("texture must be linked to Encode Source Texture's output, "
                         f"got a {type(texture).__name__} value")
    return texture


def prepare_sampling(model, texture, poses: list, settings: samplers.SamplingSettings, img2img: bool = False):
    """What a sampler node does before sampling: the plan (chunks sized to the memory ComfyUI reports free once
    the weights are loaded), room made for one chunk, and the per-step callback that shows progress and previews
    and stops on Interrupt. Returns (loaded model, plan, callback); the sampler follows the same plan."""
    checked_texture(texture)
    pidm = loaded_model(model)
    device = next(pidm.network.parameters()).device
    plan = pipeline.plan_for(pidm, texture, poses, settings, img2img=img2img,
                             free_bytes=None if device.type == "cpu" else mm.get_free_memory(device))
    pidm = loaded_model(model, plan.memory_bytes)
    progress = comfy.utils.ProgressBar(plan.total_steps)

    def on_step(info: dict) -> None:
        mm.throw_exception_if_processing_interrupted()
        progress.update_absolute(info["i"] + 1, info["total"], ("JPEG", step_preview(info["x0"]), PREVIEW_MAX_SIZE))

    mm.throw_exception_if_processing_interrupted()
    return pidm, plan, on_step


class PIDMSampler(io.ComfyNode):
    """Runs PIDM's diffusion loop for every pose in the POSE_KEYPOINT input (one image per pose)."""

    @classmethod
    def define_schema(cls):
        # Inputs named like a SamplingSettings field are made from it and become that field; the widget order is
        # the order saved workflows list their values in, so new options go last (and optional)
        return io.Schema(
            node_id="PIDMSampler",
            display_name="PIDM Sampler",
            category="PIDM/sampling",
            description="Renders the encoded source person in the target pose(s): one output image per pose "
                        "entry, in the source photo's size and aspect.",
            inputs=[
                *model_and_texture_inputs(),
                PoseKeypointType.Input("pose", tooltip="Target pose(s); every frame of the POSE_KEYPOINT list "
                                                       "becomes one output image."),
                *setting_inputs(*FIRST_SETTINGS),
                person_input(),
                io.Image.Input("init_image", optional=True,
                               tooltip="Optional start image (img2img): sampling starts from it, noised by "
                                       "'denoise'. Leave unconnected to start from pure noise."),
                *setting_inputs(*AFTER_PERSON),
                io.Mask.Input("appearance_mask", optional=True,
                              tooltip="Optional mask in the source frame: 1 = generate, 0 = keep the reference "
                                      "image there (appearance editing). Leave unconnected to generate everywhere. "
                                      "One mask for every output image or one per image, in the source's size or "
                                      "aspect ratio."),
                io.Image.Input("reference", optional=True,
                               tooltip="Image kept where the appearance mask is 0; defaults to the source photo."),
                *setting_inputs(*later_settings(), optional=True),
            ],
            outputs=[io.Image.Output(display_name="images", tooltip="One image per target pose, in the "
                                                                     "source's size (fit 'person': the framed crop, "
                                                                     "for Put Back Into Photo).")],
        )

    @classmethod
    def validate_inputs(cls, appearance_scale=None, pose_scale=None, denoise=None, guidance_start=None,
                        guidance_end=None, sequence_denoise=None):
        return check_numbers(cls, appearance_scale=appearance_scale, pose_scale=pose_scale, denoise=denoise,
                             guidance_start=guidance_start, guidance_end=guidance_end,
                             sequence_denoise=sequence_denoise)

    @classmethod
    def execute(cls, model, texture, pose, person_index: int, init_image=None, appearance_mask=None, reference=None,
                **settings: Any) -> io.NodeOutput:
        settings = samplers.SamplingSettings(**settings)  # the schema's SamplingSettings inputs, validated
        poses = poses_from_input(pose, person_index, "pose")
        pidm, plan, on_step = prepare_sampling(model, texture, poses, settings, img2img=init_image is not None)
        images = pipeline.sample(pidm, texture, poses, settings, init_image=init_image, appearance_mask=appearance_mask,
                                 reference=reference, callback=on_step, output_device=mm.intermediate_device(), plan=plan)
        # the final images, shown on the node (the first ones of a long sequence)
        return io.NodeOutput(images, ui=preview_images_ui(images[:PREVIEW_IMAGES]))


NODES = [PIDMSampler]
