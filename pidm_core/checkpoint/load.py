"""Loading weights into a network: the embedded model or a file of either format, checked, then
assigned to a network built on the meta device."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

from ..config import PIDMConfig, get_config
from ..errors import CheckpointError, CheckpointNotFoundError
from ..network import PIDMNetwork
from .metadata import ModelInfo
from .official_keys import LoadReport, match_shapes
from .opened import OpenedCheckpoint
from .safetensors_file import open_safetensors
from .sniff import existing_file, sniff_format
from .torch_file import open_torch

EMBEDDED_NAME = "embedded"
EMBEDDED_PATH = Path(__file__).resolve().parents[1] / "weights" / "pidm_synthetic_64.safetensors"


@dataclass
class PIDMModel:
    """A network in eval mode with the description of its weights."""

    network: PIDMNetwork
    info: ModelInfo
    report: LoadReport | None = None

    @property
    def device(self) -> torch.device:
        return self.network.out[2].weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.network.out[2].weight.dtype

    @property
    def config(self) -> PIDMConfig:
        return self.network.config


def resolve_config(config: PIDMConfig | str | None) -> PIDMConfig | None:
    return get_config(config) if isinstance(config, str) else config


def open_checkpoint(path: Path, device: torch.device, config: PIDMConfig | None) -> OpenedCheckpoint:
    kind = sniff_format(path)
    if kind != "safetensors":
        return open_torch(path, kind, config)
    source = open_safetensors(path, device)
    if config is not None and config != source.info.config:
        raise CheckpointError(
            f"{path} was saved for the network config {source.info.config.to_json()}, not the requested "
            f"{config.to_json()}"
        )
    return source


def resolve_model_path(path_or_name: str | os.PathLike) -> Path:
    """``"embedded"`` → the bundled synthetic_64 weights; anything else is a file path."""
    if str(path_or_name) == EMBEDDED_NAME:
        if not EMBEDDED_PATH.is_file():
            raise CheckpointNotFoundError(
                f"the embedded PIDM model is missing: {EMBEDDED_PATH} does not exist (it is produced by "
                "training the synthetic_64 config); pass the path of a .safetensors or the official last.pt"
            )
        return EMBEDDED_PATH
    return existing_file(path_or_name)


def meta_network(config: PIDMConfig, source: str = "a weights file") -> PIDMNetwork:
    # Built on the meta device: no memory and no random init; the weights are assigned afterwards.
    # PIDMConfig bounds every field, so this takes well under a second for any config.
    try:
        with torch.device("meta"):
            return PIDMNetwork(config)
    except (ValueError, RuntimeError) as err:  # a combination the config checks did not foresee
        raise CheckpointError(f"{source}: its network config {config.to_json()} cannot be built: {err}") from None


def load_model(path_or_name: str | os.PathLike = EMBEDDED_NAME, device: torch.device | str | None = None,
               dtype: torch.dtype | None = None, *, config: PIDMConfig | str | None = None,
               channels_last: bool | None = None) -> PIDMModel:
    """Load PIDM weights (our .safetensors or the official last.pt) into a network in eval mode.

    ``dtype`` None keeps a safetensors file's dtype and gives fp32 for the official file; ``device``
    None means CPU. ``config`` (a PIDMConfig or a name) is the network of a torch checkpoint, which
    carries no trusted config (default deepfashion_256); for a safetensors file it must match the
    file's. ``channels_last`` stores conv weights NHWC, which the convolutions then follow; None
    turns it on for fp16/bf16 weights loaded to the CPU only (faster there: benchmarks/bench_sampler.py;
    in fp32 it would change results by more than the 1e-4 we allow against the official algorithm; on
    other devices it is unmeasured: scripts/gpu_check.sh).
    Raises :class:`CheckpointError` (or CheckpointNotFoundError) with the reason.
    """
    path = resolve_model_path(path_or_name)
    device = torch.device("cpu" if device is None else device)
    source = open_checkpoint(path, device, resolve_config(config))
    try:
        network = meta_network(source.info.config, str(path))
        report = match_shapes(network, source.shapes, str(path), source.hint)
        target = dtype or source.default_dtype
        if channels_last is None:  # measured to pay on the CPU only (on CUDA GroupNorm returns NCHW tensors)
            channels_last = target in (torch.float16, torch.bfloat16) and device.type == "cpu"
        tensors = {}
        for name, key in report.key_map.items():
            tensor = source.get(key)
            tensor_dtype = target if target is not None and tensor.is_floating_point() else tensor.dtype
            if channels_last:
                # One copy per tensor, conv weights NHWC: no tensor keeps viewing the memory-mapped
                # file, so the mapping and the pages read from it go when loading ends.
                layout = torch.channels_last if tensor.dim() == 4 else torch.contiguous_format
                tensor = tensor.to(device=device, dtype=tensor_dtype, memory_format=layout, copy=True)
            else:
                tensor = tensor.to(device=device, dtype=tensor_dtype)
            tensors[name] = tensor
    finally:
        source.close()
    network.load_state_dict(tensors, strict=True, assign=True)
    network.eval()
    return PIDMModel(network=network, info=source.info, report=report)


def read_checkpoint(path: str | os.PathLike, config: PIDMConfig | str | None = None
                    ) -> tuple[dict[str, torch.Tensor], ModelInfo, LoadReport, str]:
    """Every tensor of a checkpoint's state dict (unused official ones included, ``module.``
    stripped), checked against its config, with the model description and a one-line summary of
    what was read. Used by the converter."""
    path = existing_file(path)
    source = open_checkpoint(path, torch.device("cpu"), resolve_config(config))
    try:
        report = match_shapes(meta_network(source.info.config, str(path)), source.shapes, str(path), source.hint)
        prefix = len(report.prefix_stripped)
        tensors = {key[prefix:]: source.get(key) for key in source.shapes}
    finally:
        source.close()
    return tensors, source.info, report, source.description
