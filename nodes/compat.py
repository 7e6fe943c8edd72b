"""One node definition for two kinds of ComfyUI host.

Nodes are written once, against ComfyUI's V3 schema API (``define_schema`` + ``execute``, see
``comfy_api.latest.io``). On a host that has it (ComfyUI 0.3.4x and later) ``io`` *is* that
module and the classes are registered as they are. On an older host (V1 nodes only, e.g. the
March-2024 ComfyUI) ``io`` is the small stand-in below, with the same names for the subset our
nodes use, and :func:`v1_node` turns each class into a V1 node (``INPUT_TYPES``,
``RETURN_TYPES``, ``FUNCTION``, ...), the shape those hosts load from ``NODE_CLASS_MAPPINGS``.

:data:`HOST_API` is the pack's one host check; the root ``__init__.py`` and ``nodes/__init__.py``
read it. This module imports nothing from ComfyUI unless it is there.
"""

from __future__ import annotations

import importlib.util
import math
import types
from typing import Any, Optional


def _detect_host() -> tuple[Optional[str], Any, Any]:
    """("v3", ComfyExtension, io) when ``comfy_api.latest`` imports; ("v1", None, None) inside a ComfyUI
    without it (``folder_paths`` and ``comfy`` importable), even one that has an older ``comfy_api``;
    (None, None, None) outside ComfyUI."""
    try:
        from comfy_api.latest import ComfyExtension, io

        return "v3", ComfyExtension, io
    except ImportError:
        pass
    if importlib.util.find_spec("folder_paths") is not None and importlib.util.find_spec("comfy") is not None:
        return "v1", None, None
    return None, None, None


HOST_API, ComfyExtension, io = _detect_host()


# --- stand-in for comfy_api.latest.io on V1 hosts --------------------------------------------

# V3 keyword -> V1 widget option name, where they differ.
_V1_OPTION_NAMES = {"dynamic_prompts": "dynamicPrompts", "force_input": "forceInput", "display_mode": "display"}


class _Input:
    def __init__(self, id: str, display_name: str | None = None, optional: bool = False,
                 tooltip: str | None = None, **options: Any):
        self.id = id
        self.display_name = display_name
        self.optional = optional
        self.tooltip = tooltip
        self.options = options

    def v1(self) -> tuple:
        extra = {_V1_OPTION_NAMES.get(k, k): v for k, v in self.options.items() if v is not None}
        if self.tooltip is not None:
            extra["tooltip"] = self.tooltip
        if self.display_name is not None:
            extra["display_name"] = self.display_name
        return (self.io_type, extra)


class _ComboInput(_Input):
    def __init__(self, id: str, options: list | None = None, **kwargs: Any):
        super().__init__(id, **kwargs)
        self.choices = list(options or [])

    def v1(self) -> tuple:
        extra = super().v1()[1]
        upload = extra.pop("upload", None)
        if upload is not None:  # V3 passes an UploadType enum; V1 wants {"image_upload": True}
            extra[getattr(upload, "value", upload)] = True
        return (self.choices, extra)


class _Output:
    def __init__(self, id: str | None = None, display_name: str | None = None,
                 tooltip: str | None = None, is_output_list: bool = False):
        self.id = id
        self.display_name = display_name
        self.tooltip = tooltip
        self.is_output_list = is_output_list


def _comfy_type(io_type: str, input_base: type = _Input) -> type:
    name = io_type.title().replace("_", "")
    return type(name, (), {
        "io_type": io_type,
        "Input": type("Input", (input_base,), {"io_type": io_type}),
        "Output": type("Output", (_Output,), {"io_type": io_type}),
    })


class _Schema:
    def __init__(self, node_id: str, display_name: str | None = None, category: str = "sd",
                 inputs: list | None = None, outputs: list | None = None, description: str = "",
                 is_output_node: bool = False, not_idempotent: bool = False, **_ignored: Any):
        self.node_id = node_id
        self.display_name = display_name
        self.category = category
        self.inputs = inputs or []
        self.outputs = outputs or []
        self.description = description
        self.is_output_node = is_output_node
        self.not_idempotent = not_idempotent


class _NodeOutput:
    def __init__(self, *args: Any, ui: dict | None = None):
        self.args = args
        self.ui = ui

    def __getitem__(self, index: int) -> Any:
        return self.args[index]


class _ComfyNode:
    @classmethod
    def define_schema(cls) -> _Schema:
        raise NotImplementedError

    @classmethod
    def execute(cls, **kwargs: Any) -> _NodeOutput:
        raise NotImplementedError


def _stand_in_io() -> types.SimpleNamespace:
    return types.SimpleNamespace(
        Schema=_Schema,
        ComfyNode=_ComfyNode,
        NodeOutput=_NodeOutput,
        Boolean=_comfy_type("BOOLEAN"),
        Int=_comfy_type("INT"),
        Float=_comfy_type("FLOAT"),
        String=_comfy_type("STRING"),
        Combo=_comfy_type("COMBO", _ComboInput),
        Image=_comfy_type("IMAGE"),
        Mask=_comfy_type("MASK"),
        Audio=_comfy_type("AUDIO"),
        Video=_comfy_type("VIDEO"),  # no V1 host has a node that makes one; listed so the schemas read the same
        Custom=_comfy_type,
        UploadType=types.SimpleNamespace(image="image_upload", model="file_upload"),
    )


if io is None:
    io = _stand_in_io()


# --- V1 adapter --------------------------------------------------------------------------------

def v1_node(node_cls: type) -> type:
    """A V1 node class that runs ``node_cls`` (written against the stand-in ``io``)."""
    schema = node_cls.define_schema()

    def input_types(cls) -> dict:
        # Re-read the schema each time: combo options such as model files change between calls.
        required, optional = {}, {}
        for i in node_cls.define_schema().inputs:
            (optional if i.optional else required)[i.id] = i.v1()
        return {"required": required, "optional": optional}

    def run(self, **inputs: Any):
        output = node_cls.execute(**inputs)
        if output.ui is not None:
            return {"ui": output.ui, "result": output.args}
        return output.args

    attributes = {
        "__doc__": node_cls.__doc__,
        "INPUT_TYPES": classmethod(input_types),
        "RETURN_TYPES": tuple(o.io_type for o in schema.outputs),
        "RETURN_NAMES": tuple(o.display_name or o.io_type for o in schema.outputs),
        "OUTPUT_IS_LIST": tuple(o.is_output_list for o in schema.outputs),
        "OUTPUT_TOOLTIPS": tuple(o.tooltip for o in schema.outputs),
        "FUNCTION": "run",
        "run": run,
        "CATEGORY": schema.category,
        "DESCRIPTION": schema.description,
        "OUTPUT_NODE": schema.is_output_node,
    }
    if "fingerprint_inputs" in vars(node_cls):
        attributes["IS_CHANGED"] = classmethod(lambda cls, **kw: node_cls.fingerprint_inputs(**kw))
    elif schema.not_idempotent:
        attributes["IS_CHANGED"] = classmethod(lambda cls, **kw: float("nan"))
    if "validate_inputs" in vars(node_cls):
        attributes["VALIDATE_INPUTS"] = classmethod(lambda cls, **kw: node_cls.validate_inputs(**kw))
    return type(node_cls.__name__, (), attributes)


def v1_mappings(node_classes: list[type]) -> tuple[dict, dict]:
    """``NODE_CLASS_MAPPINGS`` and ``NODE_DISPLAY_NAME_MAPPINGS`` for a V1 host."""
    classes, names = {}, {}
    for node_cls in node_classes:
        schema = node_cls.define_schema()
        classes[schema.node_id] = v1_node(node_cls)
        names[schema.node_id] = schema.display_name or schema.node_id
    return classes, names


# --- hand-written numbers ----------------------------------------------------------------------

def check_numbers(node_cls: type, **values: Any) -> bool | str:
    """A node's ``validate_inputs``: each FLOAT/INT input named is a finite number inside its widget's range.

    ComfyUI 0.3.75 turns a posted "nan" into float('nan'), which passes its min/max checks, and keeps the
    prompt in /history, where one NaN breaks every browser's JSON.parse. Refusing it here rejects the
    prompt before it is queued. Naming an input in ``validate_inputs`` turns the host's own range check
    off for it, so the range is checked here too. ``None`` is a linked input: it is checked when it runs."""
    inputs = {i.id: i for i in node_cls.define_schema().inputs}
    for name, value in values.items():
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"{name} must be a number, got {type(value).__name__}"
        if not math.isfinite(value):
            return f"{name} must be a finite number, got {value}"
        low, high = getattr(inputs[name], "min", None), getattr(inputs[name], "max", None)
        if (low is not None and value < low) or (high is not None and value > high):
            return f"{name} must be between {low} and {high}, got {value}"
    return True


# --- socket types shared by the nodes ----------------------------------------------------------

PIDMModelType = io.Custom("PIDM_MODEL")        # nodes.model.LoadedPIDM: the model and its ModelPatcher
PIDMTextureType = io.Custom("PIDM_TEXTURE")    # pidm_core.pipeline.SourceTexture
PoseKeypointType = io.Custom("POSE_KEYPOINT")  # comfyui_controlnet_aux's format, one entry per frame
