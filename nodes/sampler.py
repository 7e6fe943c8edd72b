"""PIDM Sampler: the source person in each target pose, with progress, previews and interrupts."""

from __future__ import annotations

import comfy.model_management as mm
import comfy.utils

from ..pidm_core import guidance, memory, pipeline, samplers
from ..pidm_core.pose import formats
from .compat import PIDMModelType, PIDMTextureType, PoseKeypointType, io
from .pose import person_choice
from .previews import preview_images_ui
from .texture import loaded_model

PREVIEW_MAX_SIZE = 512


class PIDMSampler(io.ComfyNode):
    """Runs PIDM's diffusion loop for every pose in the POSE_KEYPOINT input (one image per pose)."""

    @classmethod
    def define_schema(cls):
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
                io.Int.Input("seed", default=0, min=0, max=0xFFFFFFFFFFFFFFFF, control_after_generate=True,
                             tooltip="Noise seed. Every frame uses the same seed, so a pose sequence keeps a "
                                     "steady look."),
                io.Int.Input("steps", default=50, min=1, max=1000,
                             tooltip="Denoising steps (respaced from the 1000 training steps); the official "
                                     "model used 50 DDIM steps; more is slower and rarely better."),
                io.Combo.Input("sampler", options=list(samplers.SAMPLERS), default="ddpm",
                               tooltip="ddpm: ancestral with the learned variance (best for the embedded model); ddim: deterministic, the official choice for the official model; "
                                       "dpmpp_2m: fewer steps for well-trained models."),
                io.Combo.Input("guidance", options=list(guidance.GUIDANCE_MODES), default="official",
                               tooltip="official: appearance guidance only, as the released model was trained; "
                                       "disentangled: the paper's separate pose and appearance guidance (needs "
                                       "a model trained with both conditions dropped)."),
                io.Float.Input("appearance_scale", default=2.0, min=0.0, max=20.0, step=0.1,
                               tooltip="Strength of appearance (source texture) guidance; 1 = no guidance, "
                                       "the official model used 2."),
                io.Float.Input("pose_scale", default=2.0, min=0.0, max=20.0, step=0.1,
                               tooltip="Strength of pose guidance, used by 'disentangled' guidance only; "
                                       "1 = no guidance, the paper used 2."),
                io.Int.Input("person_index", default=-1, min=-1, max=63,
                             tooltip="Which person of each pose frame to use when it holds several: -1 = the "
                                     "largest, 0.. = position in the POSE_KEYPOINT list."),
                io.Image.Input("init_image", optional=True,
                               tooltip="Optional start image (img2img): sampling starts from it, noised by "
                                       "'denoise'. Leave unconnected to start from pure noise."),
                io.Float.Input("denoise", default=1.0, min=0.0, max=1.0, step=0.01,
                               tooltip="With an init image: the part of the schedule that is re-run (1 = ignore "
                                       "the init image entirely, 0 = return it unchanged). Ignored without one."),
                io.Mask.Input("appearance_mask", optional=True,
                              tooltip="Optional mask in the source frame: 1 = generate, 0 = keep the reference "
                                      "image there (appearance editing). Leave unconnected to generate everywhere. "
                                      "One mask for every output image or one per image, in the source's size or "
                                      "aspect ratio."),
                io.Image.Input("reference", optional=True,
                               tooltip="Image kept where the appearance mask is 0; defaults to the source photo."),
            ],
            outputs=[io.Image.Output(display_name="images", tooltip="One image per target pose, in the "
                                                                     "source's size.")],
        )

    @classmethod
    def execute(cls, model, texture, pose, seed: int, steps: int, sampler: str, guidance: str,
                appearance_scale: float, pose_scale: float, person_index: int, denoise: float,
                init_image=None, appearance_mask=None, reference=None) -> io.NodeOutput:
        poses = formats.poses_from_pose_keypoint(pose, person_choice(person_index), name="pose")
        if not isinstance(texture, pipeline.SourceTexture):  # a hand-written /prompt can put any value here
            raise ValueError("texture must be linked to Encode Source Texture's output, "
                             f"got a {type(texture).__name__} value")
        # all poses are sampled in one call: ComfyUI must make room for all of their activations
        pidm = loaded_model(model, max(len(poses), texture.batch_size), memory.guidance_rows(guidance, appearance_scale))
        if texture.fit.size != pidm.config.image_size:
            raise ValueError(
                f"the texture was encoded for a {texture.fit.size}px model but this model is "
                f"{pidm.config.image_size}px: encode the source with the same model"
            )
        progress = comfy.utils.ProgressBar(steps)

        def on_step(info: dict) -> None:
            mm.throw_exception_if_processing_interrupted()
            preview = ("JPEG", pipeline.preview_image(info["x0"]), PREVIEW_MAX_SIZE)
            progress.update_absolute(info["i"] + 1, info["total"], preview)

        mm.throw_exception_if_processing_interrupted()
        images = pipeline.sample(
            pidm, texture, poses, steps=steps, sampler=sampler, guidance=guidance,
            appearance_scale=appearance_scale, pose_scale=pose_scale, seed=seed,
            init_image=init_image, denoise=denoise, appearance_mask=appearance_mask, reference=reference,
            callback=on_step,
        )
        images = images.to(mm.intermediate_device())
        return io.NodeOutput(images, ui=preview_images_ui(images))  # the final images, shown on the node


NODES = [PIDMSampler]
