"""Writing PIDM .safetensors: tensors checked against the config, with the model's metadata."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

import torch

from ..network import PIDMNetwork
from .load import meta_network
from .metadata import ModelInfo
from .official_keys import match_state_dict


def _cast(tensor: torch.Tensor, dtype: torch.dtype | None) -> torch.Tensor:
    tensor = tensor.detach()
    if dtype is not None and tensor.is_floating_point():
        tensor = tensor.to(dtype)
    return tensor.to("cpu").contiguous()


def _own_storages(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Copies of the tensors that share a storage (or view part of one): safetensors refuses shared
    memory, and writes each tensor's own bytes anyway."""
    seen = set()
    for name, tensor in tensors.items():
        storage = tensor.untyped_storage()
        if storage.data_ptr() in seen or storage.nbytes() != tensor.numel() * tensor.element_size():
            tensor = tensors[name] = tensor.clone()
        seen.add(tensor.untyped_storage().data_ptr())
    return tensors


def save_state_dict(path: str | os.PathLike, state_dict: Mapping[str, torch.Tensor], info: ModelInfo,
                    dtype: torch.dtype | None = None) -> Path:
    """Write tensors and ``info`` as a PIDM .safetensors (atomically: a temp file, then rename).

    The tensors are checked against ``info.config`` first (unused official tensors may be included).
    """
    path = Path(path)
    prefix = len(match_state_dict(meta_network(info.config), state_dict, source=str(path)).prefix_stripped)
    from safetensors.torch import save_file

    tensors = _own_storages({k[prefix:]: _cast(v, dtype) for k, v in state_dict.items()})
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata=info.to_metadata())
    os.replace(tmp, path)
    return path


def save_model(path: str | os.PathLike, network: PIDMNetwork, info: ModelInfo, dtype: torch.dtype | None = None) -> Path:
    """Save a network's weights with its description; ``dtype`` None keeps the network's."""
    if info.config != network.config:
        raise ValueError(f"ModelInfo.config {info.config} does not match the network's config {network.config}")
    return save_state_dict(path, network.state_dict(), info, dtype)
