"""Load PIDM Model: weights from the ``models/pidm`` folder (or the embedded model) under ComfyUI's
model management."""

from __future__ import annotations

import inspect
import itertools
import os
from dataclasses import dataclass

import comfy.model_management as mm
import comfy.model_patcher
import folder_paths
import torch

from ..pidm_core import checkpoint, devices
from ..pidm_core.paths import quoted, resolve_inside
from .compat import PIDMModelType, io

MODEL_FOLDER = "pidm"
MODEL_EXTENSIONS = {".pt", ".pth", ".safetensors"}
EMBEDDED = checkpoint.EMBEDDED_NAME
DTYPES = ("auto", "fp32", "fp16", "bf16")


def _register_model_folder() -> None:
    folder_paths.add_model_folder_path(MODEL_FOLDER, os.path.join(folder_paths.models_dir, MODEL_FOLDER))
    folder_paths.folder_names_and_paths[MODEL_FOLDER][1].update(MODEL_EXTENSIONS)


_register_model_folder()


@dataclass
class LoadedPIDM:
    """What travels on a PIDM_MODEL socket: the model and the patcher that lets ComfyUI move it."""

    model: checkpoint.PIDMModel
    patcher: comfy.model_patcher.ModelPatcher

    def load(self, memory_required: int = 0) -> checkpoint.PIDMModel:
        """Ask ComfyUI to put all the weights on the compute device, after offloading other models to
        leave ``memory_required`` bytes for the activations (``pidm_core.memory``).

        PIDM's layers are plain torch modules, which ComfyUI's low-VRAM mode cannot stream: a partial
        load would leave some on the offload device, where the activations never are. So the load is
        always full (``force_full_load``), and under ``--novram``, where the host moves no plain
        module at all, it is finished here: PIDM then runs on the GPU with its weights resident
        (310 MiB at 256 px in fp16) rather than silently on the CPU.
        """
        mm.load_models_gpu([self.patcher], memory_required=memory_required, **_full_load_option(mm.load_models_gpu))
        if off_device(self.patcher):
            _finish_full_load(self.patcher)
        stray = off_device(self.patcher)
        if stray:
            raise RuntimeError(
                f"ComfyUI left {len(stray)} PIDM weights (e.g. {stray[0]}) off {self.patcher.load_device}; "
                "restart ComfyUI without --lowvram/--novram or report this"
            )
        return self.model


def _full_load_option(load_models_gpu) -> dict:
    """``force_full_load=True`` where the host has it (ComfyUI 0.3.x; V1-era hosts load plain modules whole)."""
    parameters = inspect.signature(load_models_gpu).parameters.values()
    accepted = any(p.name == "force_full_load" or p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)
    return {"force_full_load": True} if accepted else {}


def _finish_full_load(patcher: comfy.model_patcher.ModelPatcher) -> None:
    if hasattr(patcher, "load"):  # ComfyUI 0.3.x: through the patcher, so its record of the loaded size stays right
        patcher.load(patcher.load_device, full_load=True)
    else:  # V1-era hosts
        patcher.patch_model(device_to=patcher.load_device)


def _on(tensor_device: torch.device, device: torch.device) -> bool:
    # torch.device("cuda") names the current GPU; a tensor's device always carries its index
    return tensor_device.type == device.type and (device.index is None or tensor_device.index == device.index)


def off_device(patcher: comfy.model_patcher.ModelPatcher) -> list[str]:
    """Names of the weights and buffers that are not on the patcher's load device."""
    network = patcher.model
    tensors = itertools.chain(network.named_parameters(), network.named_buffers())
    return [name for name, tensor in tensors if not _on(tensor.device, torch.device(patcher.load_device))]


def _auto_dtype(device: torch.device) -> torch.dtype:
    """dtype=auto: bf16 on a CPU that computes it (checked at run time, fp32 on the others); on a GPU
    the half type the host prefers for it (bf16 before fp16: its range suits PIDM's activations)."""
    if torch.device(device).type == "cpu":
        return devices.auto_dtype_cpu()
    if mm.should_use_bf16(device):
        return torch.bfloat16
    if mm.should_use_fp16(device):
        return torch.float16
    return torch.float32


def channels_last_for(device: torch.device) -> bool | None:
    """Channels-last conv weights only where they are measured to pay: on the CPU (the loader's
    default there, for fp16/bf16). On CUDA GroupNorm returns NCHW, so every GroupNorm → conv pair may
    convert twice; it stays off until ``scripts/gpu_check.sh`` measures otherwise."""
    return None if torch.device(device).type == "cpu" else False


def _model_path(model_name: str) -> str:
    if model_name == EMBEDDED:
        return EMBEDDED
    # The name comes from a request (the host does not check combo values): absolute names, '..' and
    # links whose real path leaves the folder are refused before anything is opened.
    path = resolve_inside(model_name, folder_paths.get_folder_paths(MODEL_FOLDER), "PIDM model_name",
                          f"copy the file there, or add its folder to extra_model_paths.yaml under '{MODEL_FOLDER}'")
    if path is None:
        raise ValueError(
            f"PIDM model {quoted(model_name)} is not in the models/{MODEL_FOLDER} folder; "
            f"choose one of {[EMBEDDED, *folder_paths.get_filename_list(MODEL_FOLDER)]}"
        )
    return path


class PIDMLoadModel(io.ComfyNode):
    """Load PIDM weights: the small embedded model, our .safetensors files, or the official last.pt."""

    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="PIDMLoadModel",
            display_name="Load PIDM Model",
            category="PIDM/model",
            description="Loads a PIDM denoiser with its texture encoder. Put weights in models/pidm "
                        "(.safetensors converted by ComfyUI-PIDM, or the official last.pt).",
            inputs=[
                io.Combo.Input(
                    "model_name", options=[EMBEDDED, *folder_paths.get_filename_list(MODEL_FOLDER)], default=EMBEDDED,
                    tooltip="Weights to load: 'embedded' is the small 64x64 model shipped with the pack; other "
                            "entries are files in models/pidm.",
                ),
                io.Combo.Input(
                    "dtype", options=list(DTYPES), default="auto",
                    tooltip="Precision of the weights. 'auto': bf16 on a CPU with bf16 instructions (fp32 on "
                            "other CPUs), the half type ComfyUI prefers on a GPU; the images look the same "
                            "(README: bf16 against fp32). fp32 reproduces the official outputs exactly and is the "
                            "safe choice if outputs turn black or NaN.",
                ),
            ],
            outputs=[PIDMModelType.Output(display_name="model", tooltip="The loaded PIDM model.")],
        )

    @classmethod
    def execute(cls, model_name: str, dtype: str) -> io.NodeOutput:
        load_device, offload_device = mm.get_torch_device(), mm.unet_offload_device()
        weight_dtype = _auto_dtype(load_device) if dtype == "auto" else devices.parse_dtype(dtype)
        model = checkpoint.load_model(_model_path(model_name), device=offload_device, dtype=weight_dtype,
                                      channels_last=channels_last_for(load_device))
        patcher = comfy.model_patcher.ModelPatcher(model.network, load_device=load_device, offload_device=offload_device)
        return io.NodeOutput(LoadedPIDM(model, patcher))


NODES = [PIDMLoadModel]
