"""Torch pickles (the official last.pt): read by the restricted unpickler of :mod:`..torch_pickle`, which
runs no code from the file, then the state dict picked and its tensors checked."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

import torch

from ..config import PIDMConfig, get_config
from ..errors import CheckpointError
from ..torch_pickle import LazyTensor, TorchArchive, materialize, view_reach
from .metadata import OFFICIAL_CONFIG, official_model_info
from .official_keys import check_foreign, config_label, first_few
from .opened import OpenedCheckpoint
from .sniff import existing_file, sniff_format


def safe_torch_load(path: str | os.PathLike) -> Any:
    """Load a torch checkpoint without running any code from it.

    Tensors (on CPU, the file's dtype), dicts, lists, tuples, sets and numbers are rebuilt; every
    other class or function named in the pickle becomes an inert :class:`PickleStub`.
    """
    path = existing_file(path)
    kind = sniff_format(path)
    if kind == "safetensors":
        raise CheckpointError(f"{path} is a safetensors file, not a torch pickle")
    with TorchArchive(path, kind) as archive:
        return materialize(archive.tree)


_FLOAT_DTYPES = (torch.float32, torch.float16, torch.bfloat16, torch.float64)


def _pick_state_dict(tree, path: Path) -> tuple[str, dict]:
    def is_state_dict(obj) -> bool:
        return isinstance(obj, dict) and bool(obj) and all(isinstance(v, (LazyTensor, torch.Tensor)) for v in obj.values())

    if isinstance(tree, dict):
        for key in ("ema", "model", "state_dict"):
            if key in tree and isinstance(tree[key], dict):
                _check_names(tree[key], path, f"the {key!r} state dict")
                check_foreign(tree[key], str(path))
                if is_state_dict(tree[key]):
                    return key, tree[key]
        if is_state_dict(tree):
            _check_names(tree, path, "the state dict")
            check_foreign(tree, str(path))
            return "", tree
        check_foreign((k for k in tree if isinstance(k, str)), str(path))
        found = sorted(str(k)[:80] for k in tree)[:10]
    else:
        found = type(tree).__name__
    raise CheckpointError(
        f"{path} holds no PIDM state dict: expected the official last.pt (a dict with 'ema' or "
        f"'model' mapping names to tensors) or a plain state dict; found {found}"
    )


def _check_names(state_dict: dict, path: Path, what: str) -> None:
    bad = [k for k in state_dict if not isinstance(k, str)]
    if bad:
        raise CheckpointError(
            f"{path}: {what} has {len(bad)} keys that are not tensor names (e.g. the {type(bad[0]).__name__} "
            f"{str(bad[0])[:40]}); a PIDM state dict maps names such as 'out.2.weight' to tensors: the file "
            "is damaged or not a PIDM checkpoint")


def _check_tensors(state_dict: Mapping[str, LazyTensor], path: Path, what: str) -> None:
    """Floating-point tensors only, and no storage much larger than what the state dict's views of it
    reach (a small view of a huge storage would read the whole storage)."""
    not_float = [k for k, v in state_dict.items() if v.dtype not in _FLOAT_DTYPES]
    if not_float:
        first = state_dict[not_float[0]]
        raise CheckpointError(
            f"{path}: {what} has {len(not_float)} tensors that are not floating point (e.g. {not_float[0]!r} is "
            f"{str(first.dtype).replace('torch.', '')}); PIDM weights are float32/float16/bfloat16: the file is "
            "damaged or not a PIDM checkpoint")
    reach: dict[int, list] = {}
    for tensor in state_dict.values():
        used = tensor.offset + view_reach(tensor.size, tensor.stride)
        entry = reach.setdefault(id(tensor.storage), [tensor.storage, 0])
        entry[1] = max(entry[1], used)
    for storage, used in reach.values():
        if storage.numel > 2 * used + 4096:
            raise CheckpointError(
                f"{path}: storage {storage.key} holds {storage.numel} elements but {what}'s tensors use only "
                f"{used} of them; a checkpoint written by torch.save does not pad storages (forged file?)")


def open_torch(path: Path, kind: str, config: PIDMConfig | None) -> OpenedCheckpoint:
    archive = TorchArchive(path, kind)
    try:
        which, state_dict = _pick_state_dict(archive.tree, path)
        _check_tensors(state_dict, path, f"the {which!r} state dict" if which else "the state dict")
    except CheckpointError:
        archive.close()
        raise

    def get(key: str) -> torch.Tensor:
        value = state_dict[key]
        return value.materialize() if isinstance(value, LazyTensor) else value

    where = f"{which!r} state dict" if which else "state dict"
    skipped = sorted(str(k)[:40] for k in archive.tree if k != which) if which and isinstance(archive.tree, dict) else []
    description = f"official torch checkpoint, {where}" + (f" (not used: {first_few(skipped, ', ')})" if skipped else "")
    if config is None or config == get_config(OFFICIAL_CONFIG):
        info = official_model_info(state_dict=which or "state_dict")
    else:
        info = official_model_info(name=path.stem, state_dict=which or "state_dict", config=config)
    shapes = {k: tuple(v.shape) for k, v in state_dict.items()}
    hint = (f" (a torch checkpoint carries no config we trust; it was read as {config_label(info.config)}: "
            "pass the network config if it is another PIDM size)")
    return OpenedCheckpoint(path, shapes, get, info, description, torch.float32, archive.close, hint)
