"""Encode Source Texture: run PIDM's texture encoder once per source photo."""

from __future__ import annotations

from ..pidm_core import memory, pipeline
from ..pidm_core.pose import formats
from .compat import PIDMModelType, PIDMTextureType, PoseKeypointType, io
from .model import LoadedPIDM

FIT_MODES = pipeline.SOURCE_FIT_MODES  # auto, person, pad, stretch


def loaded_model(model, memory_bytes: int | None = None):
    """The PIDM model on a PIDM_MODEL input, on its compute device, with ``memory_bytes`` of room made for
    the activations (None: one image of one network row, enough to encode). The host checks the types of
    links only: a hand-written /prompt can put any JSON value in this input."""
    if not isinstance(model, LoadedPIDM):
        raise ValueError(f"model must be linked to Load PIDM Model's output, got a {type(model).__name__} value")
    if memory_bytes is None:
        memory_bytes = memory.sampling_memory_bytes(model.model.config, 1, 1, model.model.dtype)
    return model.load(memory_bytes)


class PIDMEncodeTexture(io.ComfyNode):
    """Texture features of the source person, computed once and reused by every sampler step."""

    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="PIDMEncodeTexture",
            display_name="Encode Source Texture",
            category="PIDM/sampling",
            description="Fits the source photo to the model's square canvas (fit 'person': crops it around the person "
                        "the way the model's training data framed people) and encodes the person's appearance "
                        "(texture features). Connect the result to PIDM Sampler; encode once, sample many poses.",
            inputs=[
                PIDMModelType.Input("model", tooltip="The PIDM model from Load PIDM Model."),
                io.Image.Input("image", tooltip="Photo(s) of the source person; one image, or one per output frame."),
                io.Mask.Input(
                    "mask", optional=True,
                    tooltip="Optional person mask (1 = person). The background outside it is blanked before "
                            "encoding so it does not leak into the texture; leave unconnected to use the whole photo. "
                            "One mask for every photo or one per photo, in the photo's size or aspect ratio.",
                ),
                io.Combo.Input(
                    "fit", options=list(FIT_MODES), default="auto",
                    tooltip="How the photo is put on the model's square canvas: 'person' crops it around the person "
                            "(needs the pose input) the way the model's training data framed people, and the sampler "
                            "returns that framed crop (Put Back Into Photo puts it into the photo); 'pad' keeps the "
                            "aspect and pads the sides, 'stretch' resizes both sides (the official DeepFashion setup), "
                            "both restored to the photo's size; 'auto' = 'person' when a pose is connected, else the "
                            "model's own pad or stretch.",
                ),
                PoseKeypointType.Input(
                    "pose", optional=True,
                    tooltip="The source person's pose (Pose From Image on the same photo): where to crop for fit "
                            "'person'. One frame per photo.",
                ),
            ],
            outputs=[PIDMTextureType.Output(display_name="texture", tooltip="Encoded source texture for PIDM Sampler.")],
        )

    @classmethod
    def execute(cls, model, image, fit: str, mask=None, pose=None) -> io.NodeOutput:
        poses = None if pose is None else formats.poses_from_pose_keypoint(pose, "largest", name="pose")
        texture = pipeline.encode_source(loaded_model(model), image, mask, fit_mode=fit, source_poses=poses)
        return io.NodeOutput(texture)


NODES = [PIDMEncodeTexture]
