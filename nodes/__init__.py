"""The ComfyUI nodes of ComfyUI-PIDM: thin adapters from node inputs to ``pidm_core``.

Each module holds one topic's nodes and lists them in ``NODES``; this package registers them on
a V3 host (``comfy_entrypoint``) or, on a V1-only host, as ``NODE_CLASS_MAPPINGS``. Outside
ComfyUI it holds only :data:`compat.HOST_API` (the node modules import ComfyUI).
"""

from .compat import HOST_API, ComfyExtension, v1_mappings

if HOST_API is not None:
    from . import model, photo, pose, pose_editor, sampler, texture, video_poses, video_sampler

    NODES = [
        *model.NODES,
        *texture.NODES,
        *pose.NODES,
        *pose_editor.NODES,
        *sampler.NODES,
        *photo.NODES,
        *video_poses.NODES,
        *video_sampler.NODES,
    ]

if HOST_API == "v3":

    class PIDMExtension(ComfyExtension):
        async def get_node_list(self) -> list:
            return list(NODES)

    async def comfy_entrypoint() -> PIDMExtension:
        return PIDMExtension()

elif HOST_API == "v1":
    NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS = v1_mappings(NODES)
