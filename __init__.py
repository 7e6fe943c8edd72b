"""ComfyUI-PIDM: pose-guided person image synthesis (PIDM, Bhunia et al., CVPR 2023) for ComfyUI.

ComfyUI imports this file as the node pack. On hosts with the V3 node API (``comfy_api.latest``)
the pack registers through ``comfy_entrypoint``; older hosts get ``NODE_CLASS_MAPPINGS`` built from
the same node classes (``nodes/compat.py`` tells them apart, once). Imported anywhere else it registers nothing, so
tools and tests can import the library (``pidm_core``) without a ComfyUI installation.

Inside ComfyUI, loading also copies the example workflows' inputs (assets/pidm_*) into the input
folder where absent, never replacing a file, and creates ``models/pidm`` (``nodes/folders.py``), so
that an example opened from the template browser runs right after installing.
"""

from .nodes.compat import HOST_API

WEB_DIRECTORY = "./js"

if HOST_API == "v3":
    # Only comfy_entrypoint: a host that finds NODE_CLASS_MAPPINGS takes it and ignores the entrypoint.
    from .nodes import comfy_entrypoint

    __all__ = ["WEB_DIRECTORY", "comfy_entrypoint"]
elif HOST_API == "v1":
    from .nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS

    __all__ = ["WEB_DIRECTORY", "NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]
else:
    __all__ = ["WEB_DIRECTORY"]

if HOST_API is not None:
    from .nodes.folders import provide_at_load

    provide_at_load()
