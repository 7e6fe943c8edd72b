"""ComfyUI-PIDM: pose-guided person image synthesis (PIDM, Bhunia et al., CVPR 2023) for ComfyUI.

ComfyUI imports this file as the node pack. On hosts with the V3 node API (``comfy_api``) the
pack registers through ``comfy_entrypoint``; older hosts get ``NODE_CLASS_MAPPINGS`` built from
the same node classes (see ``nodes/compat.py``). Imported anywhere else it registers nothing, so
tools and tests can import the library (``pidm_core``) without a ComfyUI installation.

Inside ComfyUI, loading also copies the example workflows' inputs (assets/pidm_*) into the input
folder where absent, never replacing a file, and creates ``models/pidm`` (``nodes/folders.py``), so
that an example opened from the template browser runs right after installing.
"""

import importlib.util

WEB_DIRECTORY = "./js"


def _host_api():
    """"v3", "v1" or None (not inside ComfyUI)."""
    if importlib.util.find_spec("comfy_api") is not None:
        return "v3"
    if importlib.util.find_spec("folder_paths") is not None and importlib.util.find_spec("comfy") is not None:
        return "v1"
    return None


_API = _host_api()
if _API == "v3":
    # Only comfy_entrypoint: a host that finds NODE_CLASS_MAPPINGS takes it and ignores the entrypoint.
    from .nodes import comfy_entrypoint

    __all__ = ["WEB_DIRECTORY", "comfy_entrypoint"]
elif _API == "v1":
    from .nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS

    __all__ = ["WEB_DIRECTORY", "NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]
else:
    __all__ = ["WEB_DIRECTORY"]

if _API is not None:
    from .nodes.folders import provide_at_load

    provide_at_load()
