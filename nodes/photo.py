"""Put Back Into Photo: the generated person pasted into the original photo, the old person's area filled."""

from __future__ import annotations

import comfy.model_management as mm
import torch

from ..pidm_core import composite, pipeline
from .compat import PIDMTextureType, PoseKeypointType, io
from .pose import person_input, poses_from_input


class PIDMPasteIntoPhoto(io.ComfyNode):
    """Pastes each sampler output into the source photo at the target pose's place, in the photo's resolution."""

    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="PIDMPasteIntoPhoto",
            display_name="Put Back Into Photo",
            category="PIDM/photo",
            description="Puts the person the sampler drew (framed with Encode Source Texture's fit 'person') back "
                        "into the full-resolution photo where the target pose stands, cut out with a soft edge; the "
                        "area the old person leaves uncovered is filled by inpainting and returned as a mask.",
            inputs=[
                PIDMTextureType.Input("texture", tooltip="From Encode Source Texture with fit 'person': it carries "
                                                         "the crop that framed the person."),
                io.Image.Input("images", tooltip="PIDM Sampler's output (one image per pose), upscaled or not."),
                io.Image.Input("photo", tooltip="The source photo the texture was encoded from, or a larger copy of "
                                                "it (same aspect ratio): the result has its resolution."),
                PoseKeypointType.Input("pose", tooltip="The target pose(s) given to PIDM Sampler."),
                person_input(),
                io.Mask.Input("mask", optional=True,
                              tooltip="The source person's mask in the photo (Pose From Image's mask): that area is "
                                      "filled before the new person is pasted. Unconnected: the old person stays "
                                      "under the new one."),
                io.Combo.Input("place", options=list(composite.PLACES), default="pose",
                               tooltip="Where the new person stands: 'pose' = where the target pose is in the photo "
                                       "(a pose drawn on another canvas is fitted onto the photo first; retarget it "
                                       "onto the source pose to keep the person's spot); 'source' = where the source "
                                       "person stood, at their size."),
                io.Combo.Input("inpaint", options=list(composite.METHODS), default="telea",
                               tooltip="cv2 inpainting of the uncovered area: 'telea' (fast marching, the usual "
                                       "choice) or 'ns' (Navier-Stokes). Refine it with the filled mask downstream."),
            ],
            outputs=[
                io.Image.Output(display_name="image", tooltip="The photo with the new person, one per pose."),
                io.Mask.Output(display_name="filled", tooltip="The inpainted area left visible (1 = filled): "
                                                              "connect it to an inpainting model to refine it."),
                io.Mask.Output(display_name="person", tooltip="The pasted person's soft mask in the photo."),
            ],
        )

    @classmethod
    def execute(cls, texture, images, photo, pose, person_index: int, place: str, inpaint: str,
                mask=None) -> io.NodeOutput:
        if not isinstance(texture, pipeline.SourceTexture):  # a hand-written /prompt can put any value here
            raise ValueError("texture must be linked to Encode Source Texture's output, "
                             f"got a {type(texture).__name__} value")
        poses = poses_from_input(pose, person_index, "pose")
        mm.throw_exception_if_processing_interrupted()
        result = composite.paste_from_texture(texture, photo, images, poses, mask, place, inpaint)
        device = mm.intermediate_device()
        return io.NodeOutput(*(torch.from_numpy(array).to(device) for array in (result.images, result.filled,
                                                                                 result.person)))


NODES = [PIDMPasteIntoPhoto]
